//! SQLite queries of the reports: calls aggregated by a time bucket or a dimension, in one pass
//! over the account's calls of the range, with no join (migration 5 keeps what reports group by
//! on each call row).

use crate::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

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

/// The grouping key (text) and whether a call's caller is new to the group, over `c` (calls).
/// A caller is counted once in a period: at their first call in it, which is the call whose
/// previous call (`prev_call_at`) is before the period (or does not exist). In a breakdown,
/// callers count in the group of their first call of the range.
fn key_and_new_caller(r: &ReportQuery) -> (String, String) {
    let before_range = format!("(c.prev_call_at IS NULL OR c.prev_call_at < {})", r.from);
    let key = match r.group {
        ReportGroup::Total => "NULL".into(),
        ReportGroup::Hour | ReportGroup::Day => {
            let bucket = if r.group == ReportGroup::Hour {
                3_600_000
            } else {
                86_400_000
            };
            let started = bucket_expr("c.started_at", bucket, &r.offsets);
            let prev = bucket_expr("c.prev_call_at", bucket, &r.offsets);
            let new = format!("(c.prev_call_at IS NULL OR {prev} < {started})");
            return (started, new);
        }
        ReportGroup::Campaign => "CAST(c.campaign_id AS TEXT)".into(),
        ReportGroup::Source => "c.utm_source".into(),
        ReportGroup::Medium => "c.utm_medium".into(),
        ReportGroup::UtmCampaign => "c.utm_campaign".into(),
        ReportGroup::Term => "c.utm_term".into(),
        ReportGroup::LandingPage => "c.landing_page".into(),
        ReportGroup::TrackingNumber => "c.tracking_number".into(),
        ReportGroup::Target => "CAST(c.target_id AS TEXT)".into(),
        ReportGroup::Caller => "c.caller".into(),
        ReportGroup::Channel => "c.channel".into(),
    };
    (key, before_range)
}

/// Call ids are the start time in ms × 1000 plus a sequence number: the range's calls are one
/// contiguous run of the table's b-tree. The slack covers bursts of more than a thousand calls
/// in one millisecond; `started_at` then bounds the range exactly.
const ID_SLACK: i64 = 1_000_000;

/// Calls of the account in the query's range, aggregated by its grouping, in one pass.
pub(super) async fn report(
    db: &SqlitePool,
    account: AccountId,
    r: &ReportQuery,
) -> Result<Vec<ReportRow>> {
    let (key, new_caller) = key_and_new_caller(r);
    let new_to_range = format!("(c.prev_call_at IS NULL OR c.prev_call_at < {})", r.from);
    // The key is grouped as it comes (an integer for buckets) and read as text.
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT CAST(k AS TEXT) AS k, calls, answered, callers, range_callers, talk_ms, \
         by_caller, by_target, by_system, attempts, unattributed FROM (\
         SELECT {key} AS k, COUNT(*) AS calls, \
         SUM(c.answered_at IS NOT NULL) AS answered, SUM({new_caller}) AS callers, \
         SUM({new_to_range}) AS range_callers, \
         SUM(CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL \
             THEN c.ended_at - c.answered_at ELSE 0 END) AS talk_ms, \
         SUM(c.hung_up_by = 'caller') AS by_caller, SUM(c.hung_up_by = 'target') AS by_target, \
         SUM(c.hung_up_by = 'system') AS by_system, SUM(c.attempts) AS attempts, \
         SUM(c.session_id IS NULL) AS unattributed \
         FROM calls c WHERE c.account_id = "
    ));
    q.push_bind(account.0);
    q.push(" AND c.id >= ")
        .push_bind(r.from.saturating_mul(1000));
    q.push(" AND c.id < ")
        .push_bind(r.to.saturating_mul(1000).saturating_add(ID_SLACK));
    q.push(" AND c.started_at >= ").push_bind(r.from);
    q.push(" AND c.started_at < ").push_bind(r.to);
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
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    q.push(" GROUP BY 1) ORDER BY calls DESC, k");
    let rows = q.build().fetch_all(db).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let calls: i64 = row.get("calls");
            let callers: i64 = row.get("callers");
            ReportRow {
                key: row.get("k"),
                calls,
                answered: row.get("answered"),
                unique_callers: callers,
                range_callers: row.get("range_callers"),
                repeat_calls: calls - callers,
                talk_ms: row.get("talk_ms"),
                hung_up_by_caller: row.get("by_caller"),
                hung_up_by_target: row.get("by_target"),
                hung_up_by_system: row.get("by_system"),
                attempts: row.get("attempts"),
                unattributed: row.get("unattributed"),
            }
        })
        .collect())
}

/// Raises each (pool, hour) peak to the sample's.
pub(super) async fn record_pool_usage(db: &SqlitePool, samples: &[PoolSample]) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO pool_usage (pool_id, hour, peak_in_use, size) \
         SELECT column1, column2, column3, column4 FROM (",
    );
    q.push_values(samples, |mut b, s| {
        b.push_bind(s.pool_id)
            .push_bind(s.hour)
            .push_bind(s.peak_in_use)
            .push_bind(s.size);
    });
    // Samples of pools deleted meanwhile are dropped rather than failing the batch.
    q.push(
        ") WHERE column1 IN (SELECT id FROM pools) AND true \
         ON CONFLICT (pool_id, hour) DO UPDATE SET \
         peak_in_use = max(peak_in_use, excluded.peak_in_use), size = excluded.size",
    );
    q.build().execute(db).await?;
    Ok(())
}

/// The account's hourly pool peaks in `[from, to)`.
pub(super) async fn pool_usage(
    db: &SqlitePool,
    account: AccountId,
    from: i64,
    to: i64,
    pool: Option<i64>,
) -> Result<Vec<PoolUsageRow>> {
    let mut q = QueryBuilder::<Sqlite>::new(
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
