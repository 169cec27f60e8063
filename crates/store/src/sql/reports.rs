//! SQLite queries of the reports: calls aggregated by a time bucket or a dimension. Settled days
//! come from the rollups (migration 9) where the report has no filter; the rest of the range
//! (its edges, the days not rolled yet, days changed since they were rolled) is one pass over
//! the account's calls of that time, with no join (migration 5 keeps what reports group by on
//! each call row). Every measure adds up, so the parts are summed by key.

use super::db::*;
use crate::*;
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// The granule of the `time` rollups: every zone's offset is a whole number of quarter hours.
const GRANULE_MS: i64 = 15 * 60_000;

/// The SQL expression of the local bucket (hour or day number) of the instant in `column`:
/// local time = UTC + the zone's offset in force then, from (until, offset) intervals whose last
/// one is open-ended. Instants are after 1970 in every zone, so integer division floors.
fn bucket_expr(column: &str, bucket: i64, offsets: &[(i64, i64)]) -> String {
    let (last, changes) = offsets.split_last().map_or((0, &[][..]), |(l, c)| (l.1, c));
    if changes.is_empty() {
        return format!("(({column} + {last}) / {bucket})");
    }
    let mut local = format!("({column} + CASE");
    for (until, offset) in changes {
        local.push_str(&format!(" WHEN {column} < {until} THEN {offset}"));
    }
    local.push_str(&format!(" ELSE {last} END)"));
    format!("({local} / {bucket})")
}

/// The grouping key of a call row (`c`), as SQL.
fn call_key(r: &ReportQuery) -> String {
    match r.group {
        ReportGroup::Total => "NULL".into(),
        ReportGroup::Hour => bucket_expr("c.started_at", HOUR_MS, &r.offsets),
        ReportGroup::Day => bucket_expr("c.started_at", DAY_MS, &r.offsets),
        g => dimension(g).unwrap_or("NULL").into(),
    }
}

/// The SQL of a breakdown's key on a call row, for the groupings that have one.
fn dimension(g: ReportGroup) -> Option<&'static str> {
    Some(match g {
        ReportGroup::Campaign => "CAST(c.campaign_id AS TEXT)",
        ReportGroup::Source => "c.utm_source",
        ReportGroup::Medium => "c.utm_medium",
        ReportGroup::UtmCampaign => "c.utm_campaign",
        ReportGroup::Term => "c.utm_term",
        ReportGroup::LandingPage => "c.landing_page",
        ReportGroup::TrackingNumber => "c.tracking_number",
        ReportGroup::Target => "CAST(c.target_id AS TEXT)",
        ReportGroup::Caller => "NULLIF(c.caller_country, '')",
        ReportGroup::Channel => "c.channel",
        ReportGroup::Total | ReportGroup::Hour | ReportGroup::Day => return None,
    })
}

/// The rollups' name of a breakdown.
fn rolled_dimension(g: ReportGroup) -> Option<&'static str> {
    Some(match g {
        ReportGroup::Campaign => "campaign",
        ReportGroup::Source => "source",
        ReportGroup::Medium => "medium",
        ReportGroup::UtmCampaign => "utm_campaign",
        ReportGroup::Term => "term",
        ReportGroup::LandingPage => "landing_page",
        ReportGroup::TrackingNumber => "tracking_number",
        ReportGroup::Target => "target",
        ReportGroup::Channel => "channel",
        ReportGroup::Caller => "caller_country",
        _ => return None,
    })
}

/// The rolled breakdowns, with their key on a call row.
const ROLLED: [ReportGroup; 10] = [
    ReportGroup::Campaign,
    ReportGroup::Source,
    ReportGroup::Medium,
    ReportGroup::UtmCampaign,
    ReportGroup::Term,
    ReportGroup::LandingPage,
    ReportGroup::TrackingNumber,
    ReportGroup::Target,
    ReportGroup::Channel,
    ReportGroup::Caller,
];

/// The measures of calls (`c`), summed; the same names as the rollups' columns. Sums are
/// cast to integers: PostgreSQL sums integers as `numeric`.
fn measures() -> String {
    let count_if =
        |condition: &str| format!("CAST(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS BIGINT)");
    format!(
        "COUNT(*) AS calls, {answered} AS answered, {unique_calls} AS unique_calls, \
         CAST(SUM(CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL \
             THEN c.ended_at - c.answered_at ELSE 0 END) AS BIGINT) AS talk_ms, \
         {by_caller} AS by_caller, {by_target} AS by_target, {by_system} AS by_system, \
         CAST(SUM(c.attempts) AS BIGINT) AS attempts, {unattributed} AS unattributed, \
         {conversions} AS conversions, \
         COALESCE(SUM(c.conversion_value), 0.0) AS conversion_value",
        answered = count_if("c.answered_at IS NOT NULL"),
        unique_calls = count_if(&format!(
            "c.prev_call_at IS NULL OR c.started_at - c.prev_call_at >= {REPEAT_WINDOW_MS}"
        )),
        by_caller = count_if("c.hung_up_by = 'caller'"),
        by_target = count_if("c.hung_up_by = 'target'"),
        by_system = count_if("c.hung_up_by = 'system'"),
        unattributed = count_if("c.session_id IS NULL"),
        conversions = count_if("c.converted_at IS NOT NULL"),
    )
}

/// The same measures summed over rollup rows (`u`).
const ROLLED_MEASURES: &str = "CAST(SUM(u.calls) AS BIGINT) AS calls, \
    CAST(SUM(u.answered) AS BIGINT) AS answered, \
    CAST(SUM(u.unique_calls) AS BIGINT) AS unique_calls, \
    CAST(SUM(u.talk_ms) AS BIGINT) AS talk_ms, CAST(SUM(u.by_caller) AS BIGINT) AS by_caller, \
    CAST(SUM(u.by_target) AS BIGINT) AS by_target, \
    CAST(SUM(u.by_system) AS BIGINT) AS by_system, CAST(SUM(u.attempts) AS BIGINT) AS attempts, \
    CAST(SUM(u.unattributed) AS BIGINT) AS unattributed, \
    CAST(SUM(u.conversions) AS BIGINT) AS conversions, \
    COALESCE(SUM(u.conversion_value), 0.0) AS conversion_value";

/// Call ids are the start time in ms × 1000 plus a sequence number: the calls of a time range
/// are one contiguous run of the table's b-tree. The slack covers bursts of more than a
/// thousand calls in one millisecond; `started_at` then bounds the range exactly.
const ID_SLACK: i64 = 1_000_000;

fn push_range(q: &mut QueryBuilder<'_, Db>, from: i64, to: i64) {
    q.push(" AND c.id >= ").push_bind(from.saturating_mul(1000));
    q.push(" AND c.id < ")
        .push_bind(to.saturating_mul(1000).saturating_add(ID_SLACK));
    q.push(" AND c.started_at >= ").push_bind(from);
    q.push(" AND c.started_at < ").push_bind(to);
}

fn row_of(row: &DbRow) -> ReportRow {
    ReportRow {
        key: row.get("k"),
        calls: row.get("calls"),
        answered: row.get("answered"),
        unique_calls: row.get("unique_calls"),
        talk_ms: row.get("talk_ms"),
        hung_up_by_caller: row.get("by_caller"),
        hung_up_by_target: row.get("by_target"),
        hung_up_by_system: row.get("by_system"),
        attempts: row.get("attempts"),
        unattributed: row.get("unattributed"),
        conversions: row.get("conversions"),
        conversion_value: row.get("conversion_value"),
    }
}

fn is_unfiltered(f: &ReportFilter) -> bool {
    f.campaign_id.is_none()
        && f.tracking_number.is_none()
        && f.target_id.is_none()
        && f.channel.is_none()
        && f.utm_source.is_none()
        && f.utm_medium.is_none()
        && f.utm_campaign.is_none()
        && f.utm_term.is_none()
        && f.landing_page.is_none()
        && f.caller_country.is_none()
}

/// Calls of the account in `[from, to)` aggregated by the query's grouping, from the calls.
async fn scan(
    db: &mut DbConnection,
    account: AccountId,
    r: &ReportQuery,
    from: i64,
    to: i64,
) -> Result<Vec<ReportRow>> {
    // The key is grouped as it comes (an integer for buckets) and read as text.
    let mut q = QueryBuilder::<Db>::new(format!(
        "SELECT CAST({key} AS TEXT) AS k, {measures} FROM calls c WHERE c.account_id = ",
        key = call_key(r),
        measures = measures(),
    ));
    q.push_bind(account.0);
    push_range(&mut q, from, to);
    let f = &r.filter;
    if let Some(c) = f.campaign_id {
        q.push(" AND c.campaign_id = ").push_bind(c);
    }
    if let Some(n) = &f.tracking_number {
        q.push(" AND c.tracking_number = ").push_bind(n.clone());
    }
    if let Some(t) = f.target_id {
        q.push(" AND c.id IN (SELECT call_id FROM call_attempts WHERE target_id = ")
            .push_bind(t)
            .push(")");
    }
    if let Some(ch) = &f.channel {
        q.push(" AND c.channel = ").push_bind(ch.clone());
    }
    for (column, value) in [
        ("c.utm_source", &f.utm_source),
        ("c.utm_medium", &f.utm_medium),
        ("c.utm_campaign", &f.utm_campaign),
        ("c.utm_term", &f.utm_term),
        ("c.landing_page", &f.landing_page),
        ("c.caller_country", &f.caller_country),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    q.push(" GROUP BY 1");
    let rows = q.build().fetch_all(&mut *db).await?;
    Ok(rows.iter().map(row_of).collect())
}

/// Rollup rows of the account in `[from, to)` (granule starts), but for the `dirty` days,
/// aggregated by the query's grouping.
async fn rolled(
    db: &mut DbConnection,
    account: AccountId,
    r: &ReportQuery,
    from: i64,
    to: i64,
    dirty: &[i64],
) -> Result<Vec<ReportRow>> {
    let (grouping, key) = match r.group {
        ReportGroup::Total => ("time", "NULL".to_string()),
        ReportGroup::Hour => ("time", bucket_expr("u.start", HOUR_MS, &r.offsets)),
        ReportGroup::Day => ("time", bucket_expr("u.start", DAY_MS, &r.offsets)),
        g => (rolled_dimension(g).unwrap_or("none"), "u.key".to_string()),
    };
    let mut q = QueryBuilder::<Db>::new(format!(
        "SELECT CAST({key} AS TEXT) AS k, {ROLLED_MEASURES} FROM call_rollups u \
         WHERE u.account_id = "
    ));
    q.push_bind(account.0);
    q.push(" AND u.grouping = ").push_bind(grouping);
    q.push(" AND u.start >= ").push_bind(from);
    q.push(" AND u.start < ").push_bind(to);
    if !dirty.is_empty() {
        q.push(format!(" AND u.start - u.start % {DAY_MS} NOT IN ("));
        let mut list = q.separated(", ");
        for d in dirty {
            list.push_bind(*d);
        }
        q.push(")");
    }
    q.push(" GROUP BY 1");
    let rows = q.build().fetch_all(&mut *db).await?;
    Ok(rows.iter().map(row_of).collect())
}

/// Calls of the account in the query's range, aggregated by its grouping, ordered by calls.
pub(super) async fn report(
    db: &DbPool,
    account: AccountId,
    r: &ReportQuery,
) -> Result<Vec<ReportRow>> {
    let granule = match r.group {
        ReportGroup::Total | ReportGroup::Hour | ReportGroup::Day => Some(GRANULE_MS),
        g => rolled_dimension(g).map(|_| DAY_MS),
    };
    // One read transaction: the rollups, their state and the calls seen at one moment.
    let mut tx = db.begin().await?;
    let db = &mut *tx;
    let mut parts = Vec::new();
    match granule.filter(|_| is_unfiltered(&r.filter)) {
        None => parts.push(scan(db, account, r, r.from, r.to).await?),
        Some(granule) => {
            let rolled_until: i64 =
                sqlx::query_scalar("SELECT rolled_until FROM call_rollup_state")
                    .fetch_one(&mut *db)
                    .await?;
            // [a, b): whole granules, rolled; the edges are read from the calls.
            let a = (r.from + granule - 1).div_euclid(granule) * granule;
            let b = r.to.div_euclid(granule) * granule;
            let b = b.min(rolled_until - rolled_until.rem_euclid(granule));
            if a >= b {
                parts.push(scan(db, account, r, r.from, r.to).await?);
            } else {
                let dirty: Vec<i64> = sqlx::query_scalar(
                    "SELECT day FROM call_rollup_dirty WHERE account_id = $1 AND day >= $2 \
                     AND day < $3 ORDER BY day",
                )
                .bind(account.0)
                .bind(a - a.rem_euclid(DAY_MS))
                .bind(b)
                .fetch_all(&mut *db)
                .await?;
                parts.push(rolled(db, account, r, a, b, &dirty).await?);
                if r.from < a {
                    parts.push(scan(db, account, r, r.from, a).await?);
                }
                if b < r.to {
                    parts.push(scan(db, account, r, b, r.to).await?);
                }
                for day in dirty {
                    let (from, to) = (day.max(a), (day + DAY_MS).min(b));
                    if from < to {
                        parts.push(scan(db, account, r, from, to).await?);
                    }
                }
            }
        }
    }
    tx.commit().await?;
    let mut by_key: HashMap<Option<String>, ReportRow> = HashMap::new();
    for row in parts.into_iter().flatten() {
        by_key
            .entry(row.key.clone())
            .and_modify(|sum| sum.add(&row))
            .or_insert(row);
    }
    let mut rows: Vec<ReportRow> = by_key.into_values().collect();
    rows.sort_by(|x, y| y.calls.cmp(&x.calls).then_with(|| x.key.cmp(&y.key)));
    Ok(rows)
}

/// Builds the rollups of `[day, day + 1 day)`: of one account, or of all.
async fn roll_day(conn: &mut DbConnection, day: i64, account: Option<i64>) -> Result<()> {
    let mut scope = String::new();
    if let Some(a) = account {
        scope = format!(" AND account_id = {a}");
    }
    sqlx::query(&format!(
        "DELETE FROM call_rollups WHERE start >= {day} AND start < {}{scope}",
        day + DAY_MS
    ))
    .execute(&mut *conn)
    .await?;
    let calls_scope = scope.replace("account_id", "c.account_id");
    let range = format!(
        "c.id >= {} AND c.id < {} AND c.started_at >= {day} AND c.started_at < {}{calls_scope}",
        day * 1000,
        (day + DAY_MS) * 1000 + ID_SLACK,
        day + DAY_MS
    );
    let columns = "account_id, grouping, start, key, calls, answered, unique_calls, talk_ms, \
                   by_caller, by_target, by_system, attempts, unattributed, conversions, \
                   conversion_value";
    let measures = measures();
    let mut statements = vec![format!(
        "INSERT INTO call_rollups ({columns}) SELECT c.account_id, 'time', \
         c.started_at - c.started_at % {GRANULE_MS}, NULL, {measures} FROM calls c \
         WHERE {range} GROUP BY 1, 3"
    )];
    for g in ROLLED {
        let (Some(name), Some(key)) = (rolled_dimension(g), dimension(g)) else {
            continue;
        };
        statements.push(format!(
            "INSERT INTO call_rollups ({columns}) SELECT c.account_id, '{name}', {day}, {key}, \
             {measures} FROM calls c WHERE {range} GROUP BY 1, 4"
        ));
    }
    for sql in statements {
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rolls up to `max_days` days: first the settled days not rolled yet (oldest first), then the
/// dirty ones. Each day is one transaction.
pub(super) async fn roll(db: &DbPool, settled_before: i64, max_days: u32) -> Result<RollupStatus> {
    let rolled_until: i64 = sqlx::query_scalar("SELECT rolled_until FROM call_rollup_state")
        .fetch_one(db)
        .await?;
    // A day is settled when every call of it started before `settled_before` and all of them
    // ended (a connected call is answered before it ends).
    let in_progress: Option<i64> =
        sqlx::query_scalar("SELECT MIN(started_at) FROM calls WHERE ended_at IS NULL")
            .fetch_one(db)
            .await?;
    let settled = in_progress.map_or(settled_before, |s| s.min(settled_before));
    let target = settled - settled.rem_euclid(DAY_MS);
    let mut next = rolled_until;
    if next == 0 {
        // Nothing rolled yet: start at the first call's day.
        let first: Option<i64> = sqlx::query_scalar("SELECT MIN(started_at) FROM calls")
            .fetch_one(db)
            .await?;
        next = first.map_or(target, |f| (f - f.rem_euclid(DAY_MS)).min(target));
    }
    // Calls recorded before their caller's country was: fill it in first, so that the days
    // rolled group them by it.
    let mut budget = max_days;
    while budget > 0 && fill_caller_countries(db).await? {
        budget -= 1;
    }
    let unknown_left = budget == 0;
    while next < target && budget > 0 {
        let mut tx = begin_claim(db, super::Claim::Rollups as i64).await?;
        lock_calls(&mut tx).await?;
        roll_day(&mut tx, next, None).await?;
        next += DAY_MS;
        sqlx::query("UPDATE call_rollup_state SET rolled_until = $1")
            .bind(next)
            .execute(&mut *tx)
            .await?;
        // Calls of the day written before it was rolled are in it now.
        sqlx::query("DELETE FROM call_rollup_dirty WHERE day = $1")
            .bind(next - DAY_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        budget -= 1;
    }
    while budget > 0 {
        let Some((account, day)) = sqlx::query_as::<_, (i64, i64)>(
            "SELECT account_id, day FROM call_rollup_dirty ORDER BY day LIMIT 1",
        )
        .fetch_optional(db)
        .await?
        else {
            break;
        };
        let mut tx = begin_claim(db, super::Claim::Rollups as i64).await?;
        lock_calls(&mut tx).await?;
        roll_day(&mut tx, day, Some(account)).await?;
        sqlx::query("DELETE FROM call_rollup_dirty WHERE account_id = $1 AND day = $2")
            .bind(account)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        budget -= 1;
    }
    let dirty: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM call_rollup_dirty")
        .fetch_one(db)
        .await?;
    Ok(RollupStatus {
        rolled_until: next.max(rolled_until),
        pending_days: (target - next).max(0) / DAY_MS + dirty + i64::from(unknown_left),
    })
}

/// Calls whose caller's country one step fills in.
const COUNTRIES_PER_STEP: i64 = 5_000;

/// Fills in the caller's country of up to [`COUNTRIES_PER_STEP`] calls recorded without it;
/// returns whether there may be more.
async fn fill_caller_countries(db: &DbPool) -> Result<bool> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, caller FROM calls WHERE caller_country IS NULL LIMIT $1")
            .bind(COUNTRIES_PER_STEP)
            .fetch_all(db)
            .await?;
    if rows.is_empty() {
        return Ok(false);
    }
    let mut q = QueryBuilder::<Db>::new("UPDATE calls SET caller_country = v.column2 FROM (");
    q.push_values(&rows, |mut b, (id, caller)| {
        b.push_bind(*id)
            .push_bind(super::routing::caller_country(caller));
    });
    q.push(") AS v WHERE calls.id = v.column1");
    q.build().execute(db).await?;
    Ok(rows.len() as i64 == COUNTRIES_PER_STEP)
}

/// Raises each (pool, hour) peak to the sample's.
pub(super) async fn record_pool_usage(db: &DbPool, samples: &[PoolSample]) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Db>::new(
        "INSERT INTO pool_usage (pool_id, hour, peak_in_use, size) \
         SELECT v.column1, v.column2, v.column3, v.column4 FROM (",
    );
    q.push_values(samples, |mut b, s| {
        b.push_bind(s.pool_id)
            .push_bind(s.hour)
            .push_bind(s.peak_in_use)
            .push_bind(s.size);
    });
    // Samples of pools deleted meanwhile are dropped rather than failing the batch.
    q.push(
        ") AS v WHERE v.column1 IN (SELECT id FROM pools) AND true \
         ON CONFLICT (pool_id, hour) DO UPDATE SET \
         peak_in_use = CASE WHEN excluded.peak_in_use > pool_usage.peak_in_use \
             THEN excluded.peak_in_use ELSE pool_usage.peak_in_use END, \
         size = excluded.size",
    );
    q.build().execute(db).await?;
    Ok(())
}

/// The account's hourly pool peaks in `[from, to)`.
pub(super) async fn pool_usage(
    db: &DbPool,
    account: AccountId,
    from: i64,
    to: i64,
    pool: Option<i64>,
) -> Result<Vec<PoolUsageRow>> {
    let mut q = QueryBuilder::<Db>::new(
        "SELECT u.pool_id, u.hour, u.peak_in_use, u.size, p.name FROM pool_usage u \
         JOIN pools p ON p.id = u.pool_id WHERE p.account_id = ",
    );
    q.push_bind(account.0);
    q.push(" AND u.hour >= ")
        .push_bind(from - from.rem_euclid(3_600_000));
    q.push(" AND u.hour < ").push_bind(to);
    if let Some(p) = pool {
        q.push(" AND u.pool_id = ").push_bind(p);
    }
    q.push(" ORDER BY u.pool_id, u.hour");
    let rows = q.build().fetch_all(db).await?;
    Ok(rows
        .iter()
        .map(|r| PoolUsageRow {
            sample: PoolSample {
                pool_id: r.get(0),
                hour: r.get(1),
                peak_in_use: r.get(2),
                size: r.get(3),
            },
            pool_name: r.get(4),
        })
        .collect())
}
