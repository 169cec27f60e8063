//! The Guard's tables in SQLite: domain checks, page scans, quarantines, abuse reports, audit.

use super::db::*;
use super::{not_found_if_zero, page};
use crate::*;
use sqlx::Row;

const SCAN_COLUMNS: &str = "id, campaign_id, url, source, status, verdict, score, rule, \
     findings, error, created_at, finished_at, overridden_at, override_note";

fn scan_row(r: DbRow) -> ScanRecord {
    ScanRecord {
        id: r.get("id"),
        campaign_id: r.get("campaign_id"),
        url: r.get("url"),
        source: r.get("source"),
        status: r.get("status"),
        verdict: r.get("verdict"),
        score: r.get("score"),
        rule: r.get("rule"),
        findings: r.get("findings"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
        overridden_at: r.get("overridden_at"),
        override_note: r.get("override_note"),
    }
}

const QUARANTINE_COLUMNS: &str = "id, campaign_id, number_id, url_pattern, scan_id, reason, \
    status, created_at, lifted_at, lift_note";

fn quarantine_row(r: DbRow) -> QuarantineRecord {
    QuarantineRecord {
        id: r.get("id"),
        campaign_id: r.get("campaign_id"),
        number_id: r.get("number_id"),
        url_pattern: r.get("url_pattern"),
        scan_id: r.get("scan_id"),
        reason: r.get("reason"),
        status: r.get("status"),
        created_at: r.get("created_at"),
        lifted_at: r.get("lifted_at"),
        lift_note: r.get("lift_note"),
    }
}

async fn audit_in<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    account: AccountId,
    e: &AuditEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO guard_audit (account_id, actor, action, subject, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account.0)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.subject)
    .bind(&e.detail)
    .bind(e.at)
    .execute(db)
    .await?;
    Ok(())
}

fn entry(
    actor: &str,
    action: &str,
    subject: String,
    detail: Option<String>,
    at: i64,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        actor: actor.into(),
        action: action.into(),
        subject,
        detail,
        at,
    }
}

pub(super) async fn domain_checked(
    db: &DbPool,
    account: AccountId,
    id: i64,
    method: Option<&str>,
    now: i64,
    grace_ms: i64,
) -> Result<bool> {
    let mut tx = begin_write(db).await?;
    let row = sqlx::query(
        "SELECT host, verified_at, failing_since FROM domains WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account.0)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let host: String = row.get("host");
    let verified: Option<i64> = row.get("verified_at");
    let failing: Option<i64> = row.get("failing_since");
    let mut lost = false;
    if let Some(m) = method {
        sqlx::query(
            "UPDATE domains SET method = $1, checked_at = $2, failing_since = NULL \
             WHERE id = $3 AND account_id = $4",
        )
        .bind(m)
        .bind(now)
        .bind(id)
        .bind(account.0)
        .execute(&mut *tx)
        .await?;
    } else {
        let since = failing.unwrap_or(now);
        lost = verified.is_some() && now - since >= grace_ms;
        sqlx::query(
            "UPDATE domains SET checked_at = $1, failing_since = $2, \
             verified_at = CASE WHEN $3 THEN NULL ELSE verified_at END \
             WHERE id = $4 AND account_id = $5",
        )
        .bind(now)
        .bind(since)
        .bind(lost)
        .bind(id)
        .bind(account.0)
        .execute(&mut *tx)
        .await?;
        let action = if lost {
            "domain.unverified"
        } else {
            "domain.check_failed"
        };
        if lost || failing.is_none() {
            let e = entry(
                "system",
                action,
                format!("domain:{id}"),
                Some(format!(
                    "{host}: neither the TXT record nor the file proves the token"
                )),
                now,
            );
            audit_in(&mut *tx, account, &e).await?;
        }
    }
    tx.commit().await?;
    Ok(lost)
}

pub(super) async fn queue_scan(
    db: &DbPool,
    account: Option<AccountId>,
    campaign_id: Option<i64>,
    url: &str,
    source: &str,
    now: i64,
) -> Result<i64> {
    let existing: Option<i64> = match campaign_id {
        Some(c) => {
            sqlx::query_scalar("SELECT id FROM page_scans WHERE campaign_id = $1 AND url = $2")
                .bind(c)
                .bind(url)
                .fetch_optional(db)
                .await?
        }
        None => None,
    };
    if let Some(id) = existing {
        sqlx::query(
            "UPDATE page_scans SET status = 'queued', due_at = $1, source = $2, attempts = 0 \
             WHERE id = $3 AND status <> 'running'",
        )
        .bind(now)
        .bind(source)
        .bind(id)
        .execute(db)
        .await?;
        return Ok(id);
    }
    let id = sqlx::query_scalar(
        "INSERT INTO page_scans (account_id, campaign_id, url, source, due_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(account.map(|a| a.0))
    .bind(campaign_id)
    .bind(url)
    .bind(source)
    .bind(now)
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// Queues a `dni` scan of each (account, campaign, page URL) not queued before, in the session
/// batch's transaction.
pub(super) async fn queue_page_scans(
    conn: &mut DbConnection,
    pages: &[(i64, i64, String, i64)],
) -> Result<()> {
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO page_scans (account_id, campaign_id, url, source, due_at, created_at) ",
    );
    q.push_values(pages, |mut b, (account, campaign, url, at)| {
        b.push_bind(*account)
            .push_bind(*campaign)
            .push_bind(url.as_str())
            .push_bind("dni")
            .push_bind(*at)
            .push_bind(*at);
    });
    q.push(" ON CONFLICT DO NOTHING");
    q.build().execute(conn).await?;
    Ok(())
}

pub(super) async fn scanned_pages(db: &DbPool, url: &str) -> Result<Vec<(AccountId, i64)>> {
    let rows = sqlx::query(
        "SELECT account_id, campaign_id FROM page_scans \
         WHERE url = $1 AND campaign_id IS NOT NULL LIMIT 100",
    )
    .bind(url)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (AccountId(r.get("account_id")), r.get("campaign_id")))
        .collect())
}

/// Of `campaigns`, those with [`MAX_QUEUED_SCANS_PER_CAMPAIGN`] scans waiting.
pub(super) async fn full_scan_backlogs(
    conn: &mut DbConnection,
    campaigns: &[i64],
) -> Result<Vec<i64>> {
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "SELECT campaign_id FROM page_scans WHERE status = 'queued' AND campaign_id IN (",
    );
    let mut list = q.separated(", ");
    for c in campaigns {
        list.push_bind(*c);
    }
    q.push(") GROUP BY campaign_id HAVING COUNT(*) >= ")
        .push_bind(MAX_QUEUED_SCANS_PER_CAMPAIGN);
    Ok(q.build_query_scalar().fetch_all(conn).await?)
}

pub(super) async fn claim_scans(
    db: &DbPool,
    now: i64,
    lease_until: i64,
    limit: u32,
    per_campaign_per_day: u32,
) -> Result<Vec<ClaimedScan>> {
    // A running scan past its lease was lost with a crash: it is claimed again. `turn` numbers
    // each campaign's due scans oldest first (a scan without a campaign is a turn of its own);
    // `used` counts each campaign's scans finished in the last day or running now.
    let mut tx = begin_claim(db, super::Claim::Scans as i64).await?;
    let rows = sqlx::query(
        "UPDATE page_scans SET status = 'running', due_at = $1, attempts = attempts + 1 \
         WHERE id IN ( \
           WITH due AS ( \
             SELECT id, campaign_id, due_at, ROW_NUMBER() OVER ( \
               PARTITION BY COALESCE(campaign_id, -id) ORDER BY due_at, id) AS turn \
             FROM page_scans WHERE status IN ('queued', 'running') AND due_at <= $2), \
           used AS ( \
             SELECT campaign_id, COUNT(*) AS n FROM page_scans \
             WHERE campaign_id IN (SELECT campaign_id FROM due) \
               AND (finished_at > $2 - 86400000 OR (status = 'running' AND due_at > $2)) \
             GROUP BY campaign_id) \
           SELECT due.id FROM due LEFT JOIN used ON used.campaign_id = due.campaign_id \
           WHERE due.campaign_id IS NULL OR due.turn + COALESCE(used.n, 0) <= $4 \
           ORDER BY due.turn, due.due_at, due.id LIMIT $3) \
         RETURNING id, account_id, campaign_id, url, attempts",
    )
    .bind(lease_until)
    .bind(now)
    .bind(i64::from(limit))
    .bind(i64::from(per_campaign_per_day))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedScan {
            id: r.get("id"),
            account: r.get::<Option<i64>, _>("account_id").map(AccountId),
            campaign_id: r.get("campaign_id"),
            url: r.get("url"),
            attempts: r.get("attempts"),
        })
        .collect())
}

pub(super) async fn finish_scan(db: &DbPool, id: i64, v: &ScanVerdict, now: i64) -> Result<()> {
    let mut tx = begin_write(db).await?;
    let account: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE page_scans SET status = 'done', verdict = $1, score = $2, rule = $3, findings = $4, \
         error = NULL, finished_at = $5 WHERE id = $6 RETURNING account_id",
    )
    .bind(&v.verdict)
    .bind(v.score)
    .bind(&v.rule)
    .bind(&v.findings)
    .bind(now)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(Some(account)) = account {
        let e = entry(
            "system",
            "scan.finished",
            format!("scan:{id}"),
            Some(format!("{}: {}", v.verdict, v.rule)),
            now,
        );
        audit_in(&mut *tx, AccountId(account), &e).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn fail_scan(
    db: &DbPool,
    id: i64,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE page_scans SET status = CASE WHEN $1 IS NULL THEN 'failed' ELSE 'queued' END, \
         due_at = COALESCE($2, due_at), error = $3, finished_at = $4 WHERE id = $5",
    )
    .bind(retry_at)
    .bind(retry_at)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn scans(
    db: &DbPool,
    account: AccountId,
    p: PageRequest,
) -> Result<Page<ScanRecord>> {
    let sql = format!(
        "SELECT {SCAN_COLUMNS} FROM page_scans WHERE account_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(account.0)
        .bind(p.after.unwrap_or(0))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(db)
        .await?;
    Ok(page(
        rows.into_iter().map(scan_row).collect(),
        p.limit,
        |r| r.id,
    ))
}

pub(super) async fn override_scan(
    db: &DbPool,
    account: AccountId,
    id: i64,
    note: &str,
    now: i64,
) -> Result<ScanRecord> {
    let mut tx = begin_write(db).await?;
    let done = sqlx::query(
        "UPDATE page_scans SET overridden_at = $1, override_note = $2 \
         WHERE id = $3 AND account_id = $4",
    )
    .bind(now)
    .bind(note)
    .bind(id)
    .bind(account.0)
    .execute(&mut *tx)
    .await?;
    not_found_if_zero(done.rows_affected())?;
    let e = entry(
        "operator",
        "scan.overridden",
        format!("scan:{id}"),
        Some(note.to_string()),
        now,
    );
    audit_in(&mut *tx, account, &e).await?;
    let sql = format!("SELECT {SCAN_COLUMNS} FROM page_scans WHERE id = $1 AND account_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(account.0)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(scan_row(row))
}

pub(super) async fn quarantine_campaign(
    db: &DbPool,
    account: AccountId,
    campaign_id: i64,
    scan_id: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<Option<QuarantineRecord>> {
    let mut tx = begin_write(db).await?;
    let sql = format!(
        "INSERT INTO quarantines (account_id, campaign_id, scan_id, reason, created_at) \
         SELECT account_id, id, $1, $2, $3 FROM campaigns WHERE id = $4 AND account_id = $5 \
         ON CONFLICT DO NOTHING RETURNING {QUARANTINE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(scan_id)
        .bind(reason)
        .bind(now)
        .bind(campaign_id)
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(q) = row.map(quarantine_row) else {
        return Ok(None);
    };
    // Calls already on numbers first shown on that page (the rule of migration 11).
    let flagged = sqlx::query(
        "UPDATE calls SET guard_flag = 'scam_page' WHERE account_id = $1 AND guard_flag IS NULL \
         AND session_id IN (SELECT s.id FROM visitor_sessions s JOIN page_scans p \
             ON p.campaign_id = s.campaign_id \
             WHERE p.id = $2 AND s.account_id = $3 \
               AND (s.landing_url = p.url \
                    OR (substr(s.landing_url, 1, length(p.url)) = p.url \
                        AND substr(s.landing_url, length(p.url) + 1, 1) IN ('?', '&', '#'))))",
    )
    .bind(account.0)
    .bind(scan_id)
    .bind(account.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let e = entry(
        "system",
        "campaign.quarantined",
        format!("campaign:{campaign_id}"),
        Some(match scan_id {
            Some(s) => format!("{reason} (scan:{s}); {flagged} calls flagged"),
            None => reason.to_string(),
        }),
        now,
    );
    audit_in(&mut *tx, account, &e).await?;
    tx.commit().await?;
    Ok(Some(q))
}

pub(super) async fn quarantine_number(
    db: &DbPool,
    account: AccountId,
    number_id: i64,
    reason: &str,
    now: i64,
) -> Result<Option<QuarantineRecord>> {
    let mut tx = begin_write(db).await?;
    let sql = format!(
        "INSERT INTO quarantines (account_id, number_id, reason, created_at) \
         SELECT account_id, id, $1, $2 FROM tracking_numbers WHERE id = $3 AND account_id = $4 \
         ON CONFLICT DO NOTHING RETURNING {QUARANTINE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(reason)
        .bind(now)
        .bind(number_id)
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(q) = row.map(quarantine_row) else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE tracking_numbers SET status = 'quarantined' WHERE id = $1 AND account_id = $2 \
         AND status = 'active'",
    )
    .bind(number_id)
    .bind(account.0)
    .execute(&mut *tx)
    .await?;
    let e = entry(
        "system",
        "number.quarantined",
        format!("number:{number_id}"),
        Some(reason.to_string()),
        now,
    );
    audit_in(&mut *tx, account, &e).await?;
    tx.commit().await?;
    Ok(Some(q))
}

pub(super) async fn quarantined_campaigns(db: &DbPool, account: AccountId) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT campaign_id FROM quarantines WHERE account_id = $1 AND status = 'active' \
         AND campaign_id IS NOT NULL AND url_pattern IS NULL",
    )
    .bind(account.0)
    .fetch_all(db)
    .await?)
}

/// The account's active page quarantines: (campaign, URL pattern).
pub(super) async fn quarantined_pages(
    db: &DbPool,
    account: AccountId,
) -> Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT campaign_id, url_pattern FROM quarantines WHERE account_id = $1 \
         AND status = 'active' AND campaign_id IS NOT NULL AND url_pattern IS NOT NULL",
    )
    .bind(account.0)
    .fetch_all(db)
    .await?)
}

/// Quarantines the pages of a campaign `pattern` covers, flags the calls already on numbers
/// first shown on them, and audits it. `None` when that pattern is already quarantined;
/// `NotFound` when the campaign is not the account's.
pub(super) async fn quarantine_page(
    db: &DbPool,
    account: AccountId,
    campaign_id: i64,
    pattern: &str,
    note: &str,
    now: i64,
) -> Result<Option<QuarantineRecord>> {
    let mut tx = begin_write(db).await?;
    let owned: Option<i64> =
        sqlx::query_scalar("SELECT id FROM campaigns WHERE id = $1 AND account_id = $2")
            .bind(campaign_id)
            .bind(account.0)
            .fetch_optional(&mut *tx)
            .await?;
    if owned.is_none() {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "INSERT INTO quarantines \
             (account_id, campaign_id, url_pattern, reason, created_at) \
         VALUES ($1, $2, $3, 'operator', $4) ON CONFLICT DO NOTHING RETURNING {QUARANTINE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(account.0)
        .bind(campaign_id)
        .bind(pattern)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(q) = row.map(quarantine_row) else {
        return Ok(None);
    };
    // Sessions on the pattern's pages: by prefix, or by the scan-URL rule of migration 11.
    let on_pages = match pattern.strip_suffix('*') {
        Some(_) => "substr(s.landing_url, 1, length($1)) = $1",
        None => {
            "(s.landing_url = $1 OR (substr(s.landing_url, 1, length($1)) = $1 \
             AND substr(s.landing_url, length($1) + 1, 1) IN ('?', '&', '#')))"
        }
    };
    let flagged = sqlx::query(&format!(
        "UPDATE calls SET guard_flag = 'scam_page' WHERE account_id = $2 AND guard_flag IS NULL \
         AND session_id IN (SELECT s.id FROM visitor_sessions s \
             WHERE s.account_id = $2 AND s.campaign_id = $3 AND {on_pages})"
    ))
    .bind(pattern.strip_suffix('*').unwrap_or(pattern))
    .bind(account.0)
    .bind(campaign_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let e = entry(
        "operator",
        "page.quarantined",
        format!("campaign:{campaign_id}"),
        Some(format!("{pattern}: {note}; {flagged} calls flagged")),
        now,
    );
    audit_in(&mut *tx, account, &e).await?;
    tx.commit().await?;
    Ok(Some(q))
}

pub(super) async fn quarantines(
    db: &DbPool,
    account: AccountId,
    p: PageRequest,
) -> Result<Page<QuarantineRecord>> {
    let sql = format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantines WHERE account_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(account.0)
        .bind(p.after.unwrap_or(0))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(db)
        .await?;
    Ok(page(
        rows.into_iter().map(quarantine_row).collect(),
        p.limit,
        |r| r.id,
    ))
}

pub(super) async fn quarantine(
    db: &DbPool,
    account: AccountId,
    id: i64,
) -> Result<QuarantineRecord> {
    let sql =
        format!("SELECT {QUARANTINE_COLUMNS} FROM quarantines WHERE id = $1 AND account_id = $2");
    sqlx::query(&sql)
        .bind(id)
        .bind(account.0)
        .fetch_optional(db)
        .await?
        .map(quarantine_row)
        .ok_or(StoreError::NotFound)
}

pub(super) async fn lift_quarantine(
    db: &DbPool,
    account: AccountId,
    id: i64,
    note: &str,
    now: i64,
) -> Result<QuarantineRecord> {
    let mut tx = begin_write(db).await?;
    let sql = format!(
        "UPDATE quarantines SET status = 'lifted', lifted_at = $1, lift_note = $2 \
         WHERE id = $3 AND account_id = $4 AND status = 'active' RETURNING {QUARANTINE_COLUMNS}"
    );
    let q = sqlx::query(&sql)
        .bind(now)
        .bind(note)
        .bind(id)
        .bind(account.0)
        .fetch_optional(&mut *tx)
        .await?
        .map(quarantine_row)
        .ok_or(StoreError::NotFound)?;
    if let Some(n) = q.number_id {
        sqlx::query(
            "UPDATE tracking_numbers SET status = 'active' WHERE id = $1 AND account_id = $2 \
             AND status = 'quarantined'",
        )
        .bind(n)
        .bind(account.0)
        .execute(&mut *tx)
        .await?;
    }
    let subject = match (q.campaign_id, q.number_id) {
        (Some(c), _) if q.url_pattern.is_some() => {
            format!(
                "campaign:{c} pages:{}",
                q.url_pattern.as_deref().unwrap_or("")
            )
        }
        (Some(c), _) => format!("campaign:{c}"),
        (_, Some(n)) => format!("number:{n}"),
        _ => format!("quarantine:{id}"),
    };
    let e = entry(
        "operator",
        "quarantine.lifted",
        subject,
        Some(note.to_string()),
        now,
    );
    audit_in(&mut *tx, account, &e).await?;
    tx.commit().await?;
    Ok(q)
}

pub(super) async fn number_owner(db: &DbPool, e164: &str) -> Result<Option<(AccountId, i64)>> {
    let row = sqlx::query("SELECT account_id, id FROM tracking_numbers WHERE e164 = $1")
        .bind(e164)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| (AccountId(r.get("account_id")), r.get("id"))))
}

pub(super) async fn record_abuse_report(
    db: &DbPool,
    r: &NewAbuseReport,
    since: i64,
) -> Result<u32> {
    let mut tx = begin_write(db).await?;
    sqlx::query(
        "INSERT INTO abuse_reports (reference, account_id, number_e164, number_id, page_url, \
         description, reporter, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.reference)
    .bind(r.account.map(|a| a.0))
    .bind(&r.number)
    .bind(r.number_id)
    .bind(&r.page_url)
    .bind(&r.description)
    .bind(&r.reporter)
    .bind(r.at)
    .execute(&mut *tx)
    .await?;
    if let Some(account) = r.account {
        let subject = match r.number_id {
            Some(n) => format!("number:{n}"),
            None => "page".to_string(),
        };
        let e = entry(
            "reporter",
            "abuse_report.received",
            subject,
            Some(r.reference.clone()),
            r.at,
        );
        audit_in(&mut *tx, account, &e).await?;
    }
    let reporters: i64 = match r.number_id {
        Some(n) => {
            sqlx::query_scalar(
                "SELECT count(DISTINCT reporter) FROM abuse_reports \
                 WHERE number_id = $1 AND created_at >= $2",
            )
            .bind(n)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?
        }
        None => 0,
    };
    tx.commit().await?;
    Ok(reporters as u32)
}

pub(super) async fn abuse_reports(
    db: &DbPool,
    account: AccountId,
    p: PageRequest,
) -> Result<Page<AbuseReportRecord>> {
    let rows = sqlx::query(
        "SELECT id, reference, account_id, number_e164, number_id, page_url, description, \
         reporter, created_at FROM abuse_reports WHERE account_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(account.0)
    .bind(p.after.unwrap_or(0))
    .bind(i64::from(p.limit) + 1)
    .fetch_all(db)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| AbuseReportRecord {
            id: r.get("id"),
            report: NewAbuseReport {
                reference: r.get("reference"),
                account: r.get::<Option<i64>, _>("account_id").map(AccountId),
                number: r.get("number_e164"),
                number_id: r.get("number_id"),
                page_url: r.get("page_url"),
                description: r.get("description"),
                reporter: r.get("reporter"),
                at: r.get("created_at"),
            },
        })
        .collect();
    Ok(page(items, p.limit, |r| r.id))
}

pub(super) async fn audit(db: &DbPool, account: AccountId, e: &AuditEntry) -> Result<()> {
    audit_in(db, account, e).await
}

pub(super) async fn audit_log(
    db: &DbPool,
    account: AccountId,
    p: PageRequest,
) -> Result<Page<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT id, actor, action, subject, detail, created_at FROM guard_audit \
         WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(account.0)
    .bind(p.after.unwrap_or(0))
    .bind(i64::from(p.limit) + 1)
    .fetch_all(db)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.get("id"),
            actor: r.get("actor"),
            action: r.get("action"),
            subject: r.get("subject"),
            detail: r.get("detail"),
            at: r.get("created_at"),
        })
        .collect();
    Ok(page(items, p.limit, |r| r.id))
}

pub(super) async fn call_flag(
    db: &DbPool,
    account: AccountId,
    call_id: i64,
) -> Result<Option<String>> {
    let flag: Option<Option<String>> =
        sqlx::query_scalar("SELECT guard_flag FROM calls WHERE id = $1 AND account_id = $2")
            .bind(call_id)
            .bind(account.0)
            .fetch_optional(db)
            .await?;
    Ok(flag.flatten())
}
