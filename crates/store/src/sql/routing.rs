//! SQLite rows of call routing: targets, routing plans and call records.

use super::db::*;
use crate::*;
use callopt_domain::{
    AttemptOutcome, BusinessHours, CallOutcome, Caps, Destination, DuplicateAction,
    DuplicateCaller, Filters, HungUpBy, NoTargetAnswer, OpenInterval, Region, Reroute, RoutingPlan,
    Strategy, Target,
};
use serde_json::{json, Value};
use sqlx::{QueryBuilder, Row};
use std::collections::{HashMap, HashSet};

use super::{corrupt, not_found_if_zero, page, split_languages};

/// A table of account objects and the columns its row function reads.
pub(super) type Table = (&'static str, &'static str);

/// The targets table.
pub(super) const TARGETS: Table = ("targets", TARGET_COLUMNS);

/// The routing plans table.
pub(super) const PLANS: Table = ("routing_plans", PLAN_COLUMNS);

/// One object of the account, by id.
pub(super) async fn one<T>(
    db: &DbPool,
    (table, columns): Table,
    account: AccountId,
    id: i64,
    row: fn(DbRow) -> Result<T>,
) -> Result<T> {
    let sql = format!("SELECT {columns} FROM {table} WHERE id = $1 AND account_id = $2");
    let found = sqlx::query(&sql)
        .bind(id)
        .bind(account.0)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    row(found)
}

/// Up to `limit + 1` objects of the account after the page's cursor, in id order.
pub(super) async fn page_of<T>(
    db: &DbPool,
    (table, columns): Table,
    account: AccountId,
    p: PageRequest,
    row: fn(DbRow) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(account.0)
        .bind(p.after.unwrap_or(0))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(row).collect()
}

/// Every object of every account (for building the routing table).
pub(super) async fn all<T>(
    db: &DbPool,
    (table, columns): Table,
    row: fn(DbRow) -> Result<T>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT {columns} FROM {table} ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(db).await?;
    rows.into_iter().map(row).collect()
}

const TARGET_COLUMNS: &str = "id, account_id, name, destination, languages, regions, \
     hours, cap_concurrent, cap_hourly, cap_daily, cap_monthly, priority, weight, \
     ring_timeout_secs, enabled, created_at, updated_at";

fn hours_json(h: &BusinessHours) -> String {
    let days: Vec<Vec<[u16; 2]>> = h
        .days
        .iter()
        .map(|d| d.iter().map(|i| [i.start, i.end]).collect())
        .collect();
    json!({"time_zone": h.time_zone.name(), "days": days}).to_string()
}

fn hours_from(raw: &str) -> Result<BusinessHours> {
    let v: Value = serde_json::from_str(raw).map_err(|_| corrupt("hours"))?;
    let time_zone = v["time_zone"]
        .as_str()
        .and_then(|z| z.parse().ok())
        .ok_or_else(|| corrupt("time zone"))?;
    let mut days: [Vec<OpenInterval>; 7] = Default::default();
    let stored = v["days"].as_array().ok_or_else(|| corrupt("hours"))?;
    for (day, intervals) in days.iter_mut().zip(stored) {
        for i in intervals.as_array().ok_or_else(|| corrupt("hours"))? {
            let (start, end) = (i[0].as_u64(), i[1].as_u64());
            match (start, end) {
                (Some(s), Some(e)) if s < e && e <= 1440 => day.push(OpenInterval {
                    start: s as u16,
                    end: e as u16,
                }),
                _ => return Err(corrupt("hours")),
            }
        }
    }
    Ok(BusinessHours { time_zone, days })
}

fn cap(r: &DbRow, col: &str) -> Option<u32> {
    r.get::<Option<i64>, _>(col).map(|v| v as u32)
}

pub(super) fn target_row(r: DbRow) -> Result<TargetRecord> {
    let destination: String = r.get("destination");
    let regions: Vec<String> =
        serde_json::from_str(r.get::<&str, _>("regions")).map_err(|_| corrupt("regions"))?;
    Ok(TargetRecord {
        account: AccountId(r.get("account_id")),
        target: Target {
            id: r.get("id"),
            name: r.get("name"),
            destination: Destination::parse("destination", &destination)
                .map_err(|_| corrupt("destination"))?,
            languages: split_languages(r.get("languages")),
            regions: regions
                .iter()
                .map(|g| Region::parse("regions", g).map_err(|_| corrupt("region")))
                .collect::<Result<_>>()?,
            hours: r
                .get::<Option<&str>, _>("hours")
                .map(hours_from)
                .transpose()?,
            caps: Caps {
                concurrent: cap(&r, "cap_concurrent"),
                hourly: cap(&r, "cap_hourly"),
                daily: cap(&r, "cap_daily"),
                monthly: cap(&r, "cap_monthly"),
            },
            priority: r.get::<i64, _>("priority") as u32,
            weight: r.get::<i64, _>("weight") as u32,
            ring_timeout_secs: cap(&r, "ring_timeout_secs"),
            enabled: r.get("enabled"),
        },
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

/// Binds a target's fields in the order of the INSERT and UPDATE statements below.
fn bind_target<'q>(
    q: sqlx::query::Query<'q, Db, DbArguments<'q>>,
    t: &'q Target,
) -> sqlx::query::Query<'q, Db, DbArguments<'q>> {
    let regions: Vec<String> = t.regions.iter().map(ToString::to_string).collect();
    q.bind(&t.name)
        .bind(t.destination.as_str())
        .bind(t.languages.join(","))
        .bind(json!(regions).to_string())
        .bind(t.hours.as_ref().map(hours_json))
        .bind(t.caps.concurrent.map(i64::from))
        .bind(t.caps.hourly.map(i64::from))
        .bind(t.caps.daily.map(i64::from))
        .bind(t.caps.monthly.map(i64::from))
        .bind(i64::from(t.priority))
        .bind(i64::from(t.weight))
        .bind(t.ring_timeout_secs.map(i64::from))
        .bind(t.enabled)
}

pub(super) async fn create_target(
    db: &DbPool,
    account: AccountId,
    t: &Target,
    now: i64,
) -> Result<i64> {
    let q = sqlx::query(
        "INSERT INTO targets (name, destination, languages, regions, hours, cap_concurrent, \
         cap_hourly, cap_daily, cap_monthly, priority, weight, ring_timeout_secs, enabled, \
         account_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    );
    let row = bind_target(q, t)
        .bind(account.0)
        .bind(now)
        .bind(now)
        .fetch_one(db)
        .await?;
    Ok(row.get(0))
}

pub(super) async fn update_target(
    db: &DbPool,
    account: AccountId,
    id: i64,
    t: &Target,
    now: i64,
) -> Result<()> {
    let q = sqlx::query(
        "UPDATE targets SET name = $1, destination = $2, languages = $3, regions = $4, hours = $5, \
         cap_concurrent = $6, cap_hourly = $7, cap_daily = $8, cap_monthly = $9, priority = $10, \
         weight = $11, ring_timeout_secs = $12, enabled = $13, updated_at = $14 \
         WHERE id = $15 AND account_id = $16",
    );
    let done = bind_target(q, t)
        .bind(now)
        .bind(id)
        .bind(account.0)
        .execute(db)
        .await?;
    not_found_if_zero(done.rows_affected())
}

/// Removes a deleted target from the account's plans (their target lists are JSON).
pub(super) async fn delete_target(db: &DbPool, account: AccountId, id: i64) -> Result<()> {
    let mut tx = begin_write(db).await?;
    let done = sqlx::query("DELETE FROM targets WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account.0)
        .execute(&mut *tx)
        .await?;
    not_found_if_zero(done.rows_affected())?;
    let plans: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, targets FROM routing_plans WHERE account_id = $1")
            .bind(account.0)
            .fetch_all(&mut *tx)
            .await?;
    for (plan, targets) in plans {
        let ids: Vec<i64> = serde_json::from_str(&targets).map_err(|_| corrupt("targets"))?;
        if ids.contains(&id) {
            let kept: Vec<i64> = ids.into_iter().filter(|t| *t != id).collect();
            sqlx::query("UPDATE routing_plans SET targets = $1 WHERE id = $2 AND account_id = $3")
                .bind(json!(kept).to_string())
                .bind(plan)
                .bind(account.0)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

const PLAN_COLUMNS: &str = "id, account_id, name, targets, strategy, filters, \
     duplicate_hours, duplicate_action, ring_timeout_secs, reroute_on, max_attempts, \
     overflow_target_id, no_target_status, no_target_reason, created_at, updated_at";

pub(super) fn plan_row(r: DbRow) -> Result<PlanRecord> {
    let filters: Value =
        serde_json::from_str(r.get::<&str, _>("filters")).map_err(|_| corrupt("filters"))?;
    let flag = |name: &str| filters[name].as_bool().unwrap_or(false);
    let reroute: Vec<String> =
        serde_json::from_str(r.get::<&str, _>("reroute_on")).map_err(|_| corrupt("reroute"))?;
    let duplicate = match (
        r.get::<Option<i64>, _>("duplicate_hours"),
        r.get::<Option<&str>, _>("duplicate_action"),
    ) {
        (Some(h), Some(a)) => Some(DuplicateCaller {
            window_hours: h as u32,
            action: DuplicateAction::parse("duplicate_action", a)
                .map_err(|_| corrupt("duplicate action"))?,
        }),
        _ => None,
    };
    Ok(PlanRecord {
        account: AccountId(r.get("account_id")),
        plan: RoutingPlan {
            id: r.get("id"),
            name: r.get("name"),
            targets: serde_json::from_str(r.get::<&str, _>("targets"))
                .map_err(|_| corrupt("targets"))?,
            strategy: Strategy::parse("strategy", r.get("strategy"))
                .map_err(|_| corrupt("strategy"))?,
            filters: Filters {
                open_now: flag("open_now"),
                geography: flag("geography"),
                language: flag("language"),
            },
            duplicate_caller: duplicate,
            ring_timeout_secs: r.get::<i64, _>("ring_timeout_secs") as u32,
            reroute: Reroute::parse("reroute_on", &reroute).map_err(|_| corrupt("reroute"))?,
            max_attempts: r.get::<i64, _>("max_attempts") as u32,
            overflow_target: r.get("overflow_target_id"),
            no_target: NoTargetAnswer {
                status: r.get::<i64, _>("no_target_status") as u16,
                reason: r.get("no_target_reason"),
            },
        },
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

/// Refuses a plan that names targets of another account (or none at all).
pub(super) async fn check_plan_targets(
    db: &DbPool,
    account: AccountId,
    p: &RoutingPlan,
) -> Result<()> {
    let named = p
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("targets[{i}]"), *t))
        .chain(
            p.overflow_target
                .map(|t| ("overflow_target_id".to_string(), t)),
        );
    for (field, id) in named {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM targets WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account.0)
                .fetch_optional(db)
                .await?;
        if found.is_none() {
            return Err(StoreError::BadReference(field));
        }
    }
    Ok(())
}

fn bind_plan<'q>(
    q: sqlx::query::Query<'q, Db, DbArguments<'q>>,
    p: &'q RoutingPlan,
) -> sqlx::query::Query<'q, Db, DbArguments<'q>> {
    let f = &p.filters;
    q.bind(&p.name)
        .bind(json!(p.targets).to_string())
        .bind(p.strategy.as_str())
        .bind(
            json!({"open_now": f.open_now, "geography": f.geography, "language": f.language})
                .to_string(),
        )
        .bind(p.duplicate_caller.map(|d| i64::from(d.window_hours)))
        .bind(p.duplicate_caller.map(|d| d.action.as_str()))
        .bind(i64::from(p.ring_timeout_secs))
        .bind(json!(p.reroute.names()).to_string())
        .bind(i64::from(p.max_attempts))
        .bind(p.overflow_target)
        .bind(i64::from(p.no_target.status))
        .bind(&p.no_target.reason)
}

pub(super) async fn create_plan(
    db: &DbPool,
    account: AccountId,
    p: &RoutingPlan,
    now: i64,
) -> Result<i64> {
    check_plan_targets(db, account, p).await?;
    let q = sqlx::query(
        "INSERT INTO routing_plans (name, targets, strategy, filters, duplicate_hours, \
         duplicate_action, ring_timeout_secs, reroute_on, max_attempts, overflow_target_id, \
         no_target_status, no_target_reason, account_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    );
    let row = bind_plan(q, p)
        .bind(account.0)
        .bind(now)
        .bind(now)
        .fetch_one(db)
        .await?;
    Ok(row.get(0))
}

pub(super) async fn update_plan(
    db: &DbPool,
    account: AccountId,
    id: i64,
    p: &RoutingPlan,
    now: i64,
) -> Result<()> {
    check_plan_targets(db, account, p).await?;
    let q = sqlx::query(
        "UPDATE routing_plans SET name = $1, targets = $2, strategy = $3, filters = $4, \
         duplicate_hours = $5, duplicate_action = $6, ring_timeout_secs = $7, reroute_on = $8, \
         max_attempts = $9, overflow_target_id = $10, no_target_status = $11, no_target_reason = $12, \
         updated_at = $13 WHERE id = $14 AND account_id = $15",
    );
    let done = bind_plan(q, p)
        .bind(now)
        .bind(id)
        .bind(account.0)
        .execute(db)
        .await?;
    not_found_if_zero(done.rows_affected())
}

/// Most calls per multi-row statement (19 columns) and attempts per statement (9 columns).
pub(crate) const ROWS_PER_STATEMENT: usize = 512;

/// `rows` cut into runs whose lengths are powers of two (largest first), at most
/// [`ROWS_PER_STATEMENT`]: a batch's statements then come from a dozen texts the connection
/// has prepared already, where one statement of the batch's own length would be parsed and
/// planned again for nearly every batch.
pub(crate) fn power_of_two_runs<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let len = rows.len().min(ROWS_PER_STATEMENT);
        let run = 1 << len.ilog2();
        let (head, tail) = rows.split_at(run);
        rows = tail;
        Some(head)
    })
}

/// What a call row written again changes: what a later record of the call can change, and
/// only when it did (a row rewritten unchanged would cost its indexes and triggers for nothing).
pub(crate) const CALL_UPSERT: &str = " ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, \
     reason = excluded.reason, hung_up_by = excluded.hung_up_by, \
     session_id = excluded.session_id, answered_at = excluded.answered_at, \
     ended_at = excluded.ended_at, node_id = excluded.node_id, \
     attempts = CASE WHEN excluded.attempts > calls.attempts \
       THEN excluded.attempts ELSE calls.attempts END, \
     target_id = excluded.target_id \
     WHERE calls.outcome IS DISTINCT FROM excluded.outcome \
     OR calls.reason IS DISTINCT FROM excluded.reason \
     OR calls.hung_up_by IS DISTINCT FROM excluded.hung_up_by \
     OR calls.node_id IS DISTINCT FROM excluded.node_id \
     OR calls.session_id IS DISTINCT FROM excluded.session_id \
     OR calls.answered_at IS DISTINCT FROM excluded.answered_at \
     OR calls.ended_at IS DISTINCT FROM excluded.ended_at \
     OR calls.attempts < excluded.attempts \
     OR calls.target_id IS DISTINCT FROM excluded.target_id";

/// What an attempt row written again changes, and only when it did.
pub(crate) const ATTEMPT_UPSERT: &str = " ON CONFLICT (call_id, seq) DO UPDATE SET \
     outcome = excluded.outcome, sip_status = excluded.sip_status, \
     answered_at = excluded.answered_at, ended_at = excluded.ended_at \
     WHERE call_attempts.outcome IS DISTINCT FROM excluded.outcome \
     OR call_attempts.sip_status IS DISTINCT FROM excluded.sip_status \
     OR call_attempts.answered_at IS DISTINCT FROM excluded.answered_at \
     OR call_attempts.ended_at IS DISTINCT FROM excluded.ended_at";

/// The latest record of each call in a batch, in the order they came: a later record of a
/// call holds all that an earlier one did.
pub(crate) fn latest_records(calls: &[CallRecord]) -> Vec<&CallRecord> {
    let mut latest: HashMap<i64, usize> = HashMap::with_capacity(calls.len());
    for (i, c) in calls.iter().enumerate() {
        latest.insert(c.id, i);
    }
    let mut order: Vec<usize> = latest.into_values().collect();
    order.sort_unstable();
    order.iter().map(|i| &calls[*i]).collect()
}

pub(crate) const CALL_COLUMNS: &str =
    "id, account_id, campaign_id, routing_plan_id, tracking_number, \
     caller, session_id, channel, external_id, outcome, reason, hung_up_by, started_at, \
     answered_at, ended_at";

pub(crate) const ATTEMPT_COLUMNS: &str =
    "call_id, seq, target_id, destination, outcome, sip_status, started_at, answered_at, ended_at";

/// The country of a caller's number (ISO 3166 alpha-2), `""` when it has none. Parsing a number
/// is the costly part of writing a call, and a call is written several times: answers are
/// remembered, up to [`COUNTRIES_KEPT`] callers.
pub(crate) fn caller_country(caller: &str) -> String {
    use std::sync::{Mutex, OnceLock};
    static KNOWN: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(c) = known.lock().expect("lock").get(caller) {
        return c.clone();
    }
    let country = callopt_domain::E164::parse("caller", caller, None)
        .ok()
        .and_then(|n| n.country())
        .unwrap_or_default();
    let mut known = known.lock().expect("lock");
    if known.len() >= COUNTRIES_KEPT {
        known.clear();
    }
    known.insert(caller.to_string(), country.clone());
    country
}

const COUNTRIES_KEPT: usize = 50_000;

/// The target a report counts a call for: the attempt that answered, else the last one tried.
/// Written with the call's row (a record holds every attempt made so far), where a trigger on
/// each attempt row once rewrote the call's row again.
pub(crate) fn reported_target(c: &CallRecord) -> Option<i64> {
    c.attempts
        .iter()
        .rev()
        .find(|a| a.answered_at.is_some())
        .or(c.attempts.last())
        .and_then(|a| a.target_id)
}

/// Writes a batch of call records in one transaction, with the `call.started`, `call.routed`
/// and `call.finished` events of the calls in `hooked` (those whose account has a webhook for
/// one of them; the others cost no event work).
pub(super) async fn write_calls(
    db: &DbPool,
    calls: &[CallRecord],
    node: Option<i64>,
    hooked: &HashSet<i64>,
) -> Result<()> {
    let calls = latest_records(calls);
    let attempts: Vec<(i64, &AttemptRecord)> = calls
        .iter()
        .flat_map(|c| c.attempts.iter().map(move |a| (c.id, a)))
        .collect();
    let mut tx = begin_write(db).await?;
    let hooked: Vec<&CallRecord> = calls
        .iter()
        .copied()
        .filter(|c| hooked.contains(&c.id))
        .collect();
    let before = if hooked.is_empty() {
        None
    } else {
        Some(super::webhooks::calls_before(&mut tx, &hooked).await?)
    };
    for chunk in power_of_two_runs(&calls) {
        let mut q = QueryBuilder::<Db>::new(format!(
            "INSERT INTO calls ({CALL_COLUMNS}, caller_country, node_id, attempts, target_id) "
        ));
        q.push_values(chunk, |mut b, c| {
            b.push_bind(c.id)
                .push_bind(c.account.0)
                .push_bind(c.campaign_id)
                .push_bind(c.routing_plan_id)
                .push_bind(&*c.tracking_number)
                .push_bind(&*c.caller)
                .push_bind(c.session_id.as_deref())
                .push_bind(&*c.channel)
                .push_bind(&*c.external_id)
                .push_bind(c.outcome.as_str())
                .push_bind(&c.reason)
                .push_bind(c.hung_up_by.map(HungUpBy::as_str))
                .push_bind(c.started_at)
                .push_bind(c.answered_at)
                .push_bind(c.ended_at)
                .push_bind(caller_country(&c.caller))
                .push_bind(node)
                .push_bind(c.attempts.len() as i64)
                .push_bind(reported_target(c));
        });
        q.push(CALL_UPSERT);
        q.build().execute(&mut *tx).await?;
    }
    for chunk in power_of_two_runs(&attempts) {
        let mut q =
            QueryBuilder::<Db>::new(format!("INSERT INTO call_attempts ({ATTEMPT_COLUMNS}) "));
        q.push_values(chunk, |mut b, (call, a)| {
            b.push_bind(*call)
                .push_bind(i64::from(a.seq))
                .push_bind(a.target_id)
                .push_bind(&*a.destination)
                .push_bind(a.outcome.map(AttemptOutcome::as_str))
                .push_bind(a.sip_status.map(i64::from))
                .push_bind(a.started_at)
                .push_bind(a.answered_at)
                .push_bind(a.ended_at);
        });
        q.push(ATTEMPT_UPSERT);
        q.build().execute(&mut *tx).await?;
    }
    if let Some(before) = before {
        super::webhooks::queue_call_events(&mut tx, &hooked, &before).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Slack before a period start when finding its attempts by call id (ids grow with the
/// calls' start): an attempt answered in the period belongs to a call started at most this
/// long before it.
const HISTORY_SLACK_MS: i64 = 24 * 3_600_000;

/// The first call id a call started at `at` can have (ids are at least the start × 1000).
fn first_id_at(at: i64) -> i64 {
    at.saturating_sub(HISTORY_SLACK_MS).saturating_mul(1000)
}

pub(super) async fn routing_history(db: &DbPool, q: &HistoryQuery) -> Result<History> {
    let mut history = History::default();
    for (i, [hour, day, month]) in q.periods.iter().copied().enumerate() {
        let rows = sqlx::query(
            "SELECT target_id, \
             SUM(CASE WHEN answered_at >= $1 THEN 1 ELSE 0 END) AS hour, \
             SUM(CASE WHEN answered_at >= $2 THEN 1 ELSE 0 END) AS day, \
             COUNT(*) AS month \
             FROM call_attempts \
             WHERE call_id >= $3 AND answered_at >= $4 AND answered_at <= $5 \
             AND target_id IS NOT NULL GROUP BY target_id",
        )
        .bind(hour)
        .bind(day)
        .bind(first_id_at(month))
        .bind(month)
        .bind(q.now)
        .fetch_all(db)
        .await?;
        for r in rows {
            let count = |c: &str| u32::try_from(r.get::<i64, _>(c)).unwrap_or(u32::MAX);
            history.answered.push((
                i,
                r.get("target_id"),
                [count("hour"), count("day"), count("month")],
            ));
        }
    }
    let rows = sqlx::query(
        "SELECT target_id, started_at / 60000 AS minute, COUNT(*) AS n FROM call_attempts \
         WHERE call_id >= $1 AND started_at >= $2 AND started_at <= $3 \
         AND target_id IS NOT NULL GROUP BY target_id, started_at / 60000",
    )
    .bind(first_id_at(q.attempts_since))
    .bind(q.attempts_since)
    .bind(q.now)
    .fetch_all(db)
    .await?;
    history.attempts = rows
        .iter()
        .map(|r| {
            (
                r.get("target_id"),
                r.get::<i64, _>("minute") * 60_000,
                u32::try_from(r.get::<i64, _>("n")).unwrap_or(u32::MAX),
            )
        })
        .collect();
    for &(plan, since) in &q.callers_since {
        let rows = sqlx::query(
            "SELECT caller, target_id, answered_at FROM ( \
             SELECT c.caller, a.target_id, a.answered_at, ROW_NUMBER() OVER ( \
             PARTITION BY c.caller ORDER BY a.answered_at DESC) AS rn \
             FROM calls c JOIN call_attempts a ON a.call_id = c.id \
             WHERE c.id >= $1 AND c.routing_plan_id = $2 AND a.answered_at >= $3 \
             AND a.answered_at <= $4 AND a.target_id IS NOT NULL) latest WHERE rn = 1",
        )
        .bind(first_id_at(since))
        .bind(plan)
        .bind(since)
        .bind(q.now)
        .fetch_all(db)
        .await?;
        history.callers.extend(rows.iter().map(|r| {
            (
                plan,
                r.get::<String, _>("caller"),
                r.get::<i64, _>("target_id"),
                r.get::<i64, _>("answered_at"),
            )
        }));
    }
    Ok(history)
}

fn call_row(r: &DbRow) -> Result<CallRecord> {
    Ok(CallRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        campaign_id: r.get("campaign_id"),
        routing_plan_id: r.get("routing_plan_id"),
        tracking_number: r.get::<&str, _>("tracking_number").into(),
        caller: r.get::<&str, _>("caller").into(),
        session_id: r.get::<Option<&str>, _>("session_id").map(Into::into),
        channel: r.get::<&str, _>("channel").into(),
        external_id: r.get::<&str, _>("external_id").into(),
        outcome: CallOutcome::parse("outcome", r.get("outcome")).map_err(|_| corrupt("outcome"))?,
        reason: r.get("reason"),
        hung_up_by: r
            .get::<Option<&str>, _>("hung_up_by")
            .map(|h| HungUpBy::parse("hung_up_by", h).map_err(|_| corrupt("hung up by")))
            .transpose()?,
        started_at: r.get("started_at"),
        answered_at: r.get("answered_at"),
        ended_at: r.get("ended_at"),
        attempts: Vec::new(),
    })
}

fn attempt_row(r: &DbRow) -> Result<(i64, AttemptRecord)> {
    Ok((
        r.get("call_id"),
        AttemptRecord {
            seq: r.get::<i64, _>("seq") as u32,
            target_id: r.get("target_id"),
            destination: r.get::<&str, _>("destination").into(),
            outcome: r
                .get::<Option<&str>, _>("outcome")
                .map(|o| AttemptOutcome::parse("outcome", o).map_err(|_| corrupt("attempt")))
                .transpose()?,
            sip_status: r.get::<Option<i64>, _>("sip_status").map(|s| s as u16),
            started_at: r.get("started_at"),
            answered_at: r.get("answered_at"),
            ended_at: r.get("ended_at"),
        },
    ))
}

/// Calls of one account matching `filter`, with their attempts.
pub(super) async fn calls(
    db: &DbPool,
    account: AccountId,
    filter: &CallFilter,
    only: Option<i64>,
    p: PageRequest,
) -> Result<Page<CallRecord>> {
    let mut q = QueryBuilder::<Db>::new(format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE account_id = "
    ));
    q.push_bind(account.0);
    if let Some(id) = only {
        q.push(" AND id = ").push_bind(id);
    }
    if let Some(after) = p.after {
        q.push(if filter.newest_first {
            " AND id < "
        } else {
            " AND id > "
        })
        .push_bind(after);
    }
    if let Some(c) = filter.campaign_id {
        q.push(" AND campaign_id = ").push_bind(c);
    }
    if let Some(o) = filter.outcome {
        q.push(" AND outcome = ").push_bind(o.as_str());
    }
    if let Some(n) = &filter.tracking_number {
        q.push(" AND tracking_number = ").push_bind(n.clone());
    }
    if let Some(c) = &filter.caller {
        q.push(" AND caller = ").push_bind(c.clone());
    }
    if let Some(t) = filter.target_id {
        q.push(" AND id IN (SELECT call_id FROM call_attempts WHERE target_id = ")
            .push_bind(t)
            .push(")");
    }
    if let Some(from) = filter.from {
        q.push(" AND started_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" AND started_at < ").push_bind(to);
    }
    q.push(if filter.newest_first {
        " ORDER BY id DESC LIMIT "
    } else {
        " ORDER BY id LIMIT "
    })
    .push_bind(i64::from(p.limit) + 1);
    let rows = q.build().fetch_all(db).await?;
    let mut items: Vec<CallRecord> = rows.iter().map(call_row).collect::<Result<_>>()?;
    if !items.is_empty() {
        let mut q = QueryBuilder::<Db>::new(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM call_attempts WHERE call_id IN ("
        ));
        let mut ids = q.separated(", ");
        for c in &items {
            ids.push_bind(c.id);
        }
        q.push(") ORDER BY call_id, seq");
        let mut by_call: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
        for r in q.build().fetch_all(db).await? {
            let (call, a) = attempt_row(&r)?;
            by_call.entry(call).or_default().push(a);
        }
        for c in &mut items {
            c.attempts = by_call.remove(&c.id).unwrap_or_default();
        }
    }
    Ok(page(items, p.limit, |c| c.id))
}

/// Registers the node `name` (see [`Store::register_node`]), one registration at a time.
pub(super) async fn register_node(
    db: &DbPool,
    name: &str,
    now: i64,
    live_since: i64,
) -> Result<NodeRecord> {
    let mut tx = begin_claim(db, super::Claim::Nodes as i64).await?;
    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT slot FROM nodes WHERE heartbeat_at >= $1 AND name <> $2 ORDER BY slot",
    )
    .bind(live_since)
    .bind(name)
    .fetch_all(&mut *tx)
    .await?;
    let slot = (0..NODE_SLOTS)
        .find(|s| !held.contains(s))
        .ok_or_else(|| StoreError::Conflict(format!("a node slot ({NODE_SLOTS} nodes live)")))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO nodes (name, slot, started_at, heartbeat_at) VALUES ($1, $2, $3, $3) \
         RETURNING id",
    )
    .bind(name)
    .bind(slot)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(NodeRecord { id, slot })
}

/// Closes the calls in progress of gone nodes (see [`Store::interrupt_calls`]); `me` is this
/// node's id (0 when not registered), never gone.
pub(super) async fn interrupt_calls(
    db: &DbPool,
    name: &str,
    me: i64,
    now: i64,
    live_since: i64,
) -> Result<crate::Interrupted> {
    // The gone nodes' calls: $1 is this node's name, $2 its id, $3 when a live node last beat
    // at the latest.
    const GONE: &str = "SELECT c.id FROM calls c LEFT JOIN nodes n ON n.id = c.node_id \
         WHERE c.ended_at IS NULL AND (c.node_id IS NULL OR n.id IS NULL \
           OR (n.name = $1 AND n.id <> $2) OR (n.heartbeat_at < $3 AND n.id <> $2))";
    const GONE_NODES: &str = "id <> $2 AND (heartbeat_at < $3 OR name = $1)";
    // Most beats find nothing to do, and then write nothing.
    let to_do: i64 = sqlx::query_scalar(&format!(
        "SELECT (SELECT COUNT(*) FROM ({GONE}) g) \
         + (SELECT COUNT(*) FROM nodes WHERE {GONE_NODES})"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .fetch_one(db)
    .await?;
    if to_do == 0 {
        return Ok(crate::Interrupted::default());
    }
    let mut tx = begin_write(db).await?;
    let attempts: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT call_id, target_id FROM call_attempts \
         WHERE ended_at IS NULL AND target_id IS NOT NULL AND call_id IN ({GONE})"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE call_attempts SET ended_at = $4 WHERE ended_at IS NULL AND call_id IN ({GONE})"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // A ringing call is interrupted, and finished for webhooks; a connected one stays
    // answered, ended now.
    let ringing: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM calls WHERE outcome = 'in_progress' AND id IN ({GONE})"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .fetch_all(&mut *tx)
    .await?;
    let done = sqlx::query(&format!(
        "UPDATE calls SET hung_up_by = 'system', ended_at = $4, \
           outcome = CASE WHEN outcome = 'in_progress' THEN 'interrupted' ELSE outcome END, \
           reason = 'the service stopped during the call' WHERE id IN ({GONE})"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    super::webhooks::queue_call_finished(&mut tx, &ringing).await?;
    // Gone nodes with no call left in progress are forgotten.
    sqlx::query(&format!(
        "DELETE FROM nodes WHERE {GONE_NODES} AND id NOT IN (SELECT node_id FROM calls \
           WHERE ended_at IS NULL AND node_id IS NOT NULL)"
    ))
    .bind(name)
    .bind(me)
    .bind(live_since)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(crate::Interrupted {
        calls: done.rows_affected(),
        attempts,
    })
}

#[cfg(test)]
mod runs_tests {
    use super::{power_of_two_runs, ROWS_PER_STATEMENT};

    #[test]
    fn runs_are_powers_of_two_that_cover_the_rows_in_order() {
        for n in [0, 1, 2, 3, 7, 191, 512, 513, 1500, 2047] {
            let rows: Vec<usize> = (0..n).collect();
            let runs: Vec<&[usize]> = power_of_two_runs(&rows).collect();
            assert!(runs
                .iter()
                .all(|r| r.len().is_power_of_two() && r.len() <= ROWS_PER_STATEMENT));
            assert_eq!(runs.concat(), rows, "{n} rows");
        }
        let rows = [0u8; 191];
        let sizes: Vec<usize> = power_of_two_runs(&rows).map(<[u8]>::len).collect();
        assert_eq!(sizes, [128, 32, 16, 8, 4, 2, 1]);
    }
}
