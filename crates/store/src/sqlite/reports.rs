//! SQLite queries of the reports: calls aggregated by a time bucket or a dimension, in one pass
//! over the account's calls of the range (the `calls_account_started` index).

use crate::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

/// The SQL expression of a report's grouping key (text), over `c` (calls) and `s` (sessions).
fn key_expr(group: ReportGroup, offsets: &[(i64, i64)]) -> String {
    match group {
        ReportGroup::Total => "NULL".into(),
        ReportGroup::Hour | ReportGroup::Day => {
            let bucket = if group == ReportGroup::Hour {
                3_600_000
            } else {
                86_400_000
            };
            // Local time = UTC + the zone's offset in force then; the offsets come as
            // (until, offset) intervals, the last one open-ended.
            let mut case = String::from("(c.started_at + CASE");
            for (until, offset) in offsets {
                case.push_str(&format!(" WHEN c.started_at < {until} THEN {offset}"));
            }
            let last = offsets.last().map_or(0, |(_, o)| *o);
            case.push_str(&format!(" ELSE {last} END)"));
            format!(
                "CAST(({case} - ((({case} % {bucket}) + {bucket}) % {bucket})) / {bucket} AS TEXT)"
            )
        }
        ReportGroup::Campaign => "CAST(c.campaign_id AS TEXT)".into(),
        ReportGroup::Source => "s.utm_source".into(),
        ReportGroup::Medium => "s.utm_medium".into(),
        ReportGroup::UtmCampaign => "s.utm_campaign".into(),
        ReportGroup::Term => "s.utm_term".into(),
        ReportGroup::LandingPage => {
            // The page without its query string: one row per page, whatever the ad's parameters.
            "CASE WHEN s.landing_url IS NULL THEN NULL \
             WHEN instr(s.landing_url, '?') > 0 THEN substr(s.landing_url, 1, instr(s.landing_url, '?') - 1) \
             ELSE s.landing_url END"
                .into()
        }
        ReportGroup::TrackingNumber => "c.tracking_number".into(),
        ReportGroup::Target => {
            "CAST((SELECT a.target_id FROM call_attempts a WHERE a.call_id = c.id \
             ORDER BY a.answered_at IS NULL, a.seq DESC LIMIT 1) AS TEXT)"
                .into()
        }
        ReportGroup::Caller => "c.caller".into(),
        ReportGroup::Channel => "c.channel".into(),
    }
}

/// Calls of the account in the query's range, aggregated by its grouping.
pub(super) async fn report(
    db: &SqlitePool,
    account: AccountId,
    r: &ReportQuery,
) -> Result<Vec<ReportRow>> {
    let key = key_expr(r.group, &r.offsets);
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT k, SUM(n) AS calls, SUM(answered) AS answered, COUNT(*) AS callers, \
         SUM(n > 1) AS repeat_callers, SUM(talk_ms) AS talk_ms, SUM(by_caller) AS by_caller, \
         SUM(by_target) AS by_target, SUM(by_system) AS by_system, SUM(attempts) AS attempts, \
         SUM(unattributed) AS unattributed FROM (\
         SELECT {key} AS k, c.caller, COUNT(*) AS n, \
         SUM(c.answered_at IS NOT NULL) AS answered, \
         SUM(CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL \
             THEN c.ended_at - c.answered_at ELSE 0 END) AS talk_ms, \
         SUM(c.hung_up_by = 'caller') AS by_caller, SUM(c.hung_up_by = 'target') AS by_target, \
         SUM(c.hung_up_by = 'system') AS by_system, \
         SUM((SELECT COUNT(*) FROM call_attempts a WHERE a.call_id = c.id)) AS attempts, \
         SUM(c.session_id IS NULL) AS unattributed \
         FROM calls c LEFT JOIN visitor_sessions s ON s.id = c.session_id \
         WHERE c.account_id = "
    ));
    q.push_bind(account.0);
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
        ("s.utm_source", &f.utm_source),
        ("s.utm_medium", &f.utm_medium),
        ("s.utm_campaign", &f.utm_campaign),
        ("s.utm_term", &f.utm_term),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    q.push(" GROUP BY k, c.caller) GROUP BY k ORDER BY calls DESC, k");
    let rows = q.build().fetch_all(db).await?;
    Ok(rows
        .iter()
        .map(|row| ReportRow {
            key: row.get("k"),
            calls: row.get("calls"),
            answered: row.get("answered"),
            unique_callers: row.get("callers"),
            repeat_callers: row.get("repeat_callers"),
            talk_ms: row.get("talk_ms"),
            hung_up_by_caller: row.get("by_caller"),
            hung_up_by_target: row.get("by_target"),
            hung_up_by_system: row.get("by_system"),
            attempts: row.get("attempts"),
            unattributed: row.get("unattributed"),
        })
        .collect())
}
