//! SQLite rows of event webhooks, their deliveries (the outbox, filled in the transactions that
//! change sessions and calls: by the session batch and the call writer, each knowing in memory
//! which accounts hook its events), and call conversions.

use super::db::*;
use crate::*;
use sqlx::{QueryBuilder, Row};
use std::collections::{HashMap, HashSet};

use super::{corrupt, not_found_if_zero, page};

/// The webhooks table.
pub(super) const WEBHOOKS: super::routing::Table = ("webhooks", COLUMNS);

const COLUMNS: &str = "id, account_id, url, events, enabled, secret, created_at, updated_at";

/// `,call.started,call.finished,`: a comma at each end, so that `events LIKE '%,name,%'`
/// matches whole names only.
fn events_text(events: &[EventType]) -> String {
    let mut s = String::from(",");
    for e in events {
        s.push_str(e.as_str());
        s.push(',');
    }
    s
}

/// The accounts with an enabled webhook for `session.created`: the session batch writes that
/// event only for them, so that the DNI path pays nothing for accounts without one.
pub(super) async fn session_hook_accounts(db: &DbPool) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT account_id FROM webhooks \
         WHERE enabled AND events LIKE '%,session.created,%'",
    )
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().collect())
}

/// Queues `session.created` for the sessions `ids` (already inserted, in this transaction) to
/// every webhook of their account that asks for it.
pub(super) async fn queue_session_created(conn: &mut DbConnection, ids: &[&str]) -> Result<()> {
    let mut q = QueryBuilder::<Db>::new(format!(
        "INSERT INTO webhook_deliveries \
             (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at) \
         SELECT w.account_id, w.id, 'evt_' || s.id, 'session.created', \
             CAST({json_object}( \
                 'session_id', s.id, 'campaign_id', s.campaign_id, 'visitor', s.visitor, \
                 'number', s.number_e164, 'attributed', {attributed}, \
                 'landing_url', s.landing_url, 'referrer', s.referrer, \
                 'utm_source', s.utm_source, 'utm_medium', s.utm_medium, \
                 'utm_campaign', s.utm_campaign, 'utm_term', s.utm_term, \
                 'utm_content', s.utm_content, 'gclid', s.gclid, 'fbclid', s.fbclid, \
                 'msclkid', s.msclkid, 'country', s.country, 'language', s.language, \
                 'lease_expires_at', {lease_expires_at}) AS TEXT), \
             s.first_seen, s.first_seen \
         FROM visitor_sessions s JOIN webhooks w ON w.account_id = s.account_id \
         WHERE w.enabled AND w.events LIKE '%,session.created,%' AND s.id IN (",
        json_object = JSON_OBJECT,
        attributed = json_flag("s.attributed"),
        lease_expires_at = utc_rfc3339("s.lease_expires_at"),
    ));
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(") ON CONFLICT DO NOTHING");
    q.build().execute(conn).await?;
    Ok(())
}

/// The accounts with an enabled webhook for `call.started`, `call.routed` or `call.finished`:
/// the call writer queues those events only for their calls.
pub(super) async fn call_hook_accounts(db: &DbPool) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT account_id FROM webhooks WHERE enabled \
         AND (events LIKE '%,call.started,%' OR events LIKE '%,call.routed,%' \
              OR events LIKE '%,call.finished,%')",
    )
    .fetch_all(db)
    .await?;
    Ok(ids.into_iter().collect())
}

/// What the database held of some calls before a batch of records rewrote them: which events
/// the batch's writes are.
pub(super) struct CallsBefore {
    /// Each stored call's outcome.
    outcomes: HashMap<i64, String>,
    /// Each stored attempt, as (call, seq).
    attempts: HashSet<(i64, i64)>,
}

/// Rows per statement of the event queries below (two parameters a row at most).
const EVENT_ROWS: usize = 256;

/// Reads what the database holds of `calls`, in the transaction about to rewrite them.
pub(super) async fn calls_before(
    conn: &mut DbConnection,
    calls: &[&CallRecord],
) -> Result<CallsBefore> {
    let mut before = CallsBefore {
        outcomes: HashMap::new(),
        attempts: HashSet::new(),
    };
    for chunk in calls.chunks(EVENT_ROWS) {
        let mut q = QueryBuilder::<Db>::new("SELECT id, outcome FROM calls WHERE id IN (");
        let mut list = q.separated(", ");
        for c in chunk {
            list.push_bind(c.id);
        }
        q.push(")");
        let rows: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
        before.outcomes.extend(rows);
        let mut q =
            QueryBuilder::<Db>::new("SELECT call_id, seq FROM call_attempts WHERE call_id IN (");
        let mut list = q.separated(", ");
        for c in chunk {
            list.push_bind(c.id);
        }
        q.push(")");
        let rows: Vec<(i64, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
        before.attempts.extend(rows);
    }
    Ok(before)
}

/// Queues the events of `calls` (just written, in this transaction) to every webhook of their
/// account that asks for them: `call.started` for a call new to the database, `call.routed`
/// for each new attempt, `call.finished` for a call whose outcome left `in_progress` (or that
/// was written finished at once). Each event has one id, so a repeated write queues nothing.
pub(super) async fn queue_call_events(
    conn: &mut DbConnection,
    calls: &[&CallRecord],
    before: &CallsBefore,
) -> Result<()> {
    let started: Vec<i64> = calls
        .iter()
        .filter(|c| !before.outcomes.contains_key(&c.id))
        .map(|c| c.id)
        .collect();
    let routed: Vec<(i64, i64)> = calls
        .iter()
        .flat_map(|c| c.attempts.iter().map(move |a| (c.id, i64::from(a.seq))))
        .filter(|a| !before.attempts.contains(a))
        .collect();
    let finished: Vec<i64> = calls
        .iter()
        .filter(|c| {
            c.outcome != callopt_domain::CallOutcome::InProgress
                && before
                    .outcomes
                    .get(&c.id)
                    .is_none_or(|o| o == callopt_domain::CallOutcome::InProgress.as_str())
        })
        .map(|c| c.id)
        .collect();
    let select = format!(
        "SELECT w.account_id, w.id, 'evt_call_' || c.id || '_started', 'call.started', \
             CAST({json_object}( \
                 'call_id', c.id, 'campaign_id', c.campaign_id, \
                 'tracking_number', c.tracking_number, 'caller', c.caller, \
                 'channel', c.channel, 'session_id', c.session_id, \
                 'started_at', {started_at}) AS TEXT), \
             c.started_at, c.started_at",
        json_object = JSON_OBJECT,
        started_at = utc_rfc3339("c.started_at"),
    );
    queue_for_calls(conn, &started, &select, "call.started").await?;
    for chunk in routed.chunks(EVENT_ROWS) {
        let mut q = QueryBuilder::<Db>::new(format!(
            "{DELIVERY_INSERT} \
             SELECT w.account_id, w.id, 'evt_call_' || a.call_id || '_routed_' || a.seq, \
                 'call.routed', \
                 CAST({json_object}( \
                     'call_id', c.id, 'campaign_id', c.campaign_id, \
                     'tracking_number', c.tracking_number, 'caller', c.caller, \
                     'session_id', c.session_id, 'attempt', a.seq, 'target_id', a.target_id, \
                     'destination', a.destination, 'routed_at', {routed_at}) AS TEXT), \
                 a.started_at, a.started_at \
             FROM call_attempts a JOIN calls c ON c.id = a.call_id \
             JOIN webhooks w ON w.account_id = c.account_id \
             WHERE w.enabled AND w.events LIKE '%,call.routed,%' \
               AND (a.call_id, a.seq) IN (VALUES ",
            json_object = JSON_OBJECT,
            routed_at = utc_rfc3339("a.started_at"),
        ));
        let mut list = q.separated(", ");
        for (call, seq) in chunk {
            list.push("(");
            list.push_bind_unseparated(*call);
            list.push_unseparated(", ");
            list.push_bind_unseparated(*seq);
            list.push_unseparated(")");
        }
        q.push(") ORDER BY a.call_id, a.seq, w.id ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await?;
    }
    queue_call_finished(conn, &finished).await
}

/// Queues `call.finished` for the calls `ids` (just finished, in this transaction) to every
/// webhook of their account that asks for it.
pub(super) async fn queue_call_finished(conn: &mut DbConnection, ids: &[i64]) -> Result<()> {
    let select = format!(
        "SELECT w.account_id, w.id, 'evt_call_' || c.id || '_finished', 'call.finished', \
             CAST({json_object}( \
                 'call_id', c.id, 'campaign_id', c.campaign_id, \
                 'tracking_number', c.tracking_number, 'caller', c.caller, \
                 'channel', c.channel, 'session_id', c.session_id, 'outcome', c.outcome, \
                 'reason', c.reason, 'hung_up_by', c.hung_up_by, \
                 'started_at', {started_at}, 'answered_at', {answered_at}, \
                 'ended_at', {ended_at}, \
                 'talk_secs', (c.ended_at - c.answered_at + 500) / 1000) AS TEXT), \
             COALESCE(c.ended_at, c.started_at), COALESCE(c.ended_at, c.started_at)",
        json_object = JSON_OBJECT,
        started_at = utc_rfc3339("c.started_at"),
        answered_at = utc_rfc3339("c.answered_at"),
        ended_at = utc_rfc3339("c.ended_at"),
    );
    queue_for_calls(conn, ids, &select, "call.finished").await
}

/// The head of every statement that queues deliveries.
const DELIVERY_INSERT: &str = "INSERT INTO webhook_deliveries \
     (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)";

/// Queues the event `event` of the calls `ids`, each row from `select` over `calls c` joined
/// with each enabled webhook `w` of the call's account that asks for the event.
async fn queue_for_calls(
    conn: &mut DbConnection,
    ids: &[i64],
    select: &str,
    event: &str,
) -> Result<()> {
    for chunk in ids.chunks(EVENT_ROWS) {
        let mut q = QueryBuilder::<Db>::new(format!(
            "{DELIVERY_INSERT} {select} \
             FROM calls c JOIN webhooks w ON w.account_id = c.account_id \
             WHERE w.enabled AND w.events LIKE '%,{event},%' AND c.id IN ("
        ));
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(") ORDER BY c.id, w.id ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) fn webhook_row(r: DbRow) -> Result<WebhookRecord> {
    let events = r
        .get::<&str, _>("events")
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|e| EventType::parse(e).ok_or_else(|| corrupt("event type")))
        .collect::<Result<_>>()?;
    Ok(WebhookRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        webhook: Webhook {
            url: r.get("url"),
            events,
            enabled: r.get("enabled"),
        },
        secret: Secret(r.get("secret")),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

pub(super) async fn create(
    db: &DbPool,
    account: AccountId,
    w: &Webhook,
    secret: &Secret,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO webhooks (account_id, url, events, enabled, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(account.0)
    .bind(&w.url)
    .bind(events_text(&w.events))
    .bind(w.enabled)
    .bind(&secret.0)
    .bind(now)
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(row.get(0))
}

pub(super) async fn update(
    db: &DbPool,
    account: AccountId,
    id: i64,
    w: &Webhook,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE webhooks SET url = $1, events = $2, enabled = $3, updated_at = $4 \
         WHERE id = $5 AND account_id = $6",
    )
    .bind(&w.url)
    .bind(events_text(&w.events))
    .bind(w.enabled)
    .bind(now)
    .bind(id)
    .bind(account.0)
    .execute(db)
    .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn delete(db: &DbPool, account: AccountId, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account.0)
        .execute(db)
        .await?;
    not_found_if_zero(done.rows_affected())
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, status, attempts, \
     last_status, last_error, next_attempt_at, created_at, delivered_at";

fn delivery_row(r: &DbRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.get("id"),
        webhook_id: r.get("webhook_id"),
        event_id: r.get("event_id"),
        event_type: r.get("event_type"),
        status: DeliveryStatus::parse(r.get("status")).ok_or_else(|| corrupt("status"))?,
        attempts: r.get::<i64, _>("attempts") as u32,
        last_status: r.get::<Option<i64>, _>("last_status").map(|s| s as u16),
        last_error: r.get("last_error"),
        next_attempt_at: r.get("next_attempt_at"),
        created_at: r.get("created_at"),
        delivered_at: r.get("delivered_at"),
    })
}

/// A webhook's deliveries, newest first: the cursor is the last id of the previous page.
pub(super) async fn deliveries(
    db: &DbPool,
    account: AccountId,
    webhook: i64,
    p: PageRequest,
) -> Result<Page<DeliveryRecord>> {
    super::routing::one(db, WEBHOOKS, account, webhook, webhook_row).await?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE account_id = $1 AND webhook_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(account.0)
        .bind(webhook)
        .bind(p.after.unwrap_or(i64::MAX))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(db)
        .await?;
    let items = rows.iter().map(delivery_row).collect::<Result<Vec<_>>>()?;
    Ok(page(items, p.limit, |d| d.id))
}

pub(super) async fn claim(
    db: &DbPool,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    let mut tx = begin_claim(db, super::Claim::Deliveries as i64).await?;
    let rows = sqlx::query(
        "SELECT d.id, d.account_id, d.webhook_id, w.url, w.secret, d.event_id, d.event_type, \
         d.data, d.created_at, d.attempts \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.enabled \
         ORDER BY d.next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let due: Vec<DueDelivery> = rows
        .iter()
        .map(|r| DueDelivery {
            id: r.get("id"),
            account: AccountId(r.get("account_id")),
            webhook_id: r.get("webhook_id"),
            url: r.get("url"),
            secret: Secret(r.get("secret")),
            event_id: r.get("event_id"),
            event_type: r.get("event_type"),
            data: r.get("data"),
            created_at: r.get("created_at"),
            attempts: r.get::<i64, _>("attempts") as u32,
        })
        .collect();
    let mut q = QueryBuilder::<Db>::new("UPDATE webhook_deliveries SET next_attempt_at = ");
    q.push_bind(lease_until).push(" WHERE id IN (");
    let mut ids = q.separated(", ");
    for d in &due {
        ids.push_bind(d.id);
    }
    q.push(")");
    q.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(due)
}

pub(super) async fn finish(
    db: &DbPool,
    account: AccountId,
    id: i64,
    result: &DeliveryResult,
    now: i64,
) -> Result<()> {
    let (status, code, error, next, delivered) = match result {
        DeliveryResult::Delivered { status } => ("delivered", Some(*status), None, None, Some(now)),
        DeliveryResult::Retry {
            status,
            error,
            next_attempt_at,
        } => (
            "pending",
            *status,
            Some(error),
            Some(*next_attempt_at),
            None,
        ),
        DeliveryResult::Failed { status, error } => ("failed", *status, Some(error), None, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, last_status = $2, \
         last_error = $3, next_attempt_at = $4, delivered_at = $5 \
         WHERE id = $6 AND account_id = $7 AND status = 'pending'",
    )
    .bind(status)
    .bind(code.map(i64::from))
    .bind(error)
    .bind(next)
    .bind(delivered)
    .bind(id)
    .bind(account.0)
    .execute(db)
    .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn convert_call(
    db: &DbPool,
    account: AccountId,
    id: i64,
    c: &Conversion,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE calls SET conversion_value = $1, conversion_currency = $2, converted_at = $3 \
         WHERE id = $4 AND account_id = $5",
    )
    .bind(c.value)
    .bind(&c.currency)
    .bind(c.at)
    .bind(id)
    .bind(account.0)
    .execute(db)
    .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn convert_latest_call(
    db: &DbPool,
    account: AccountId,
    caller: &str,
    (from, to): (i64, i64),
    c: &Conversion,
) -> Result<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE calls SET conversion_value = $1, conversion_currency = $2, converted_at = $3 \
         WHERE id = (SELECT id FROM calls WHERE account_id = $4 AND caller = $5 \
                     AND started_at BETWEEN $6 AND $7 ORDER BY started_at DESC, id DESC LIMIT 1) \
         AND account_id = $8 RETURNING id",
    )
    .bind(c.value)
    .bind(&c.currency)
    .bind(c.at)
    .bind(account.0)
    .bind(caller)
    .bind(from)
    .bind(to)
    .bind(account.0)
    .fetch_optional(db)
    .await?;
    id.ok_or(StoreError::NotFound)
}

pub(super) async fn conversions(
    db: &DbPool,
    account: AccountId,
    calls: &[i64],
) -> Result<Vec<(i64, Conversion)>> {
    let mut out = Vec::new();
    for chunk in calls.chunks(500) {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT id, conversion_value, conversion_currency, converted_at FROM calls \
             WHERE conversion_value IS NOT NULL AND account_id = ",
        );
        q.push_bind(account.0).push(" AND id IN (");
        let mut ids = q.separated(", ");
        for id in chunk {
            ids.push_bind(*id);
        }
        q.push(")");
        for r in q.build().fetch_all(db).await? {
            out.push((
                r.get("id"),
                Conversion {
                    value: r.get("conversion_value"),
                    currency: r
                        .get::<Option<String>, _>("conversion_currency")
                        .unwrap_or_default(),
                    at: r.get::<Option<i64>, _>("converted_at").unwrap_or_default(),
                },
            ));
        }
    }
    Ok(out)
}
