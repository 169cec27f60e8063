//! Reports: the account's calls over time (hours and days of a time zone) or broken down by
//! campaign, traffic source, landing page, tracking number, target, caller country or channel,
//! with the measures a call buyer reads every day. JSON, or CSV with `format=csv`.

use crate::auth::Account;
use crate::problem::{ApiError, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use callopt_domain::target::parse_time_zone;
use callopt_domain::{ValidationError, E164};
use callopt_store::{ReportFilter, ReportGroup, ReportQuery, ReportRow};
use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The longest range one report covers (days).
const MAX_DAYS: i64 = 400;

/// How far apart the zone's offset is sampled to find its changes (ms). Every zone changes
/// offset on a quarter hour.
const OFFSET_STEP_MS: i64 = 15 * 60 * 1000;

const HOUR_MS: i64 = 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// What a report asks for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `hour`, `day` (default), `campaign`, `source`, `medium`, `utm_campaign`, `term`,
    /// `landing_page`, `tracking_number`, `target`, `caller_country`, `channel` or `total`.
    pub group_by: Option<String>,
    /// Start: `YYYY-MM-DD` (local midnight) or RFC 3339; default 30 days before `to`.
    pub from: Option<String>,
    /// End, exclusive: `YYYY-MM-DD` (local midnight) or RFC 3339; default now.
    pub to: Option<String>,
    /// IANA time zone of days, hours and dates (default `UTC`).
    pub time_zone: Option<String>,
    /// Only this campaign.
    pub campaign_id: Option<i64>,
    /// Only this tracking number (E.164).
    pub tracking_number: Option<String>,
    /// Only calls with an attempt on this target.
    pub target_id: Option<i64>,
    /// Only this channel (`sip`, `twilio`, …).
    pub channel: Option<String>,
    /// Only visits with this `utm_source`.
    pub utm_source: Option<String>,
    /// Only visits with this `utm_medium`.
    pub utm_medium: Option<String>,
    /// Only visits with this `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// Only visits with this `utm_term`.
    pub utm_term: Option<String>,
    /// Only visits that landed on this page (its URL without the query string).
    pub landing_page: Option<String>,
    /// Only callers from this country (ISO 3166 alpha-2, such as `US`).
    pub caller_country: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// How the calls ended after an answer.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct HungUpDto {
    /// The caller hung up.
    pub caller: i64,
    /// The target hung up.
    pub target: i64,
    /// Callopt ended it (its hang-up never came).
    pub system: i64,
}

/// One row of a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportRowDto {
    /// The group: a bucket's local start (`2026-03-08` or `2026-03-08T01:00`), a campaign or
    /// target id, a source, page, number or country; `null` for calls without it.
    pub key: Option<String>,
    /// For hour and day buckets: the bucket's first instant (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Calls.
    pub calls: i64,
    /// Answered calls.
    pub answered: i64,
    /// Answered ÷ calls (0 without calls).
    pub answer_rate: f64,
    /// Unique calls: calls whose caller had not called the account in the 30 days before. Each
    /// call is unique or a repeat whatever the period looked at, so both add up over rows.
    pub unique_calls: i64,
    /// Repeat calls: calls whose caller had called the account in the 30 days before.
    pub repeat_calls: i64,
    /// Total talk time (seconds).
    pub talk_secs: i64,
    /// Average talk time of answered calls (seconds).
    pub avg_talk_secs: f64,
    /// Who hung up answered calls.
    pub hung_up_by: HungUpDto,
    /// Routing attempts per call.
    pub attempts_per_call: f64,
    /// Calls no visitor session was holding the number for.
    pub unattributed: i64,
    /// Calls the account marked converted (`POST /v1/calls/{id}/conversion`).
    pub conversions: i64,
    /// The sum of their conversion values (in the account's currency).
    pub conversion_value: f64,
}

impl ReportRowDto {
    fn new(key: Option<String>, start: Option<String>, r: &ReportRow) -> Self {
        let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Self {
            key,
            start,
            calls: r.calls,
            answered: r.answered,
            answer_rate: ratio(r.answered, r.calls),
            unique_calls: r.unique_calls,
            repeat_calls: r.calls - r.unique_calls,
            talk_secs: r.talk_ms / 1000,
            avg_talk_secs: ratio(r.talk_ms, r.answered) / 1000.0,
            hung_up_by: HungUpDto {
                caller: r.hung_up_by_caller,
                target: r.hung_up_by_target,
                system: r.hung_up_by_system,
            },
            attempts_per_call: ratio(r.attempts, r.calls),
            unattributed: r.unattributed,
            conversions: r.conversions,
            conversion_value: r.conversion_value,
        }
    }
}

/// A report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportDto {
    /// The grouping.
    pub group_by: String,
    /// The time zone of buckets and dates.
    pub time_zone: String,
    /// Start of the range (RFC 3339).
    pub from: String,
    /// End of the range, exclusive (RFC 3339).
    pub to: String,
    /// Rows: buckets in time order (empty ones included), other groupings by calls.
    pub rows: Vec<ReportRowDto>,
    /// The whole range.
    pub totals: ReportRowDto,
}

fn group_of(raw: &str) -> Option<ReportGroup> {
    Some(match raw {
        "total" => ReportGroup::Total,
        "hour" => ReportGroup::Hour,
        "day" => ReportGroup::Day,
        "campaign" => ReportGroup::Campaign,
        "source" => ReportGroup::Source,
        "medium" => ReportGroup::Medium,
        "utm_campaign" => ReportGroup::UtmCampaign,
        "term" => ReportGroup::Term,
        "landing_page" => ReportGroup::LandingPage,
        "tracking_number" => ReportGroup::TrackingNumber,
        "target" => ReportGroup::Target,
        "caller_country" => ReportGroup::Caller,
        "channel" => ReportGroup::Channel,
        _ => return None,
    })
}

/// A range end: a local date (its midnight in `tz`) or an RFC 3339 instant.
fn instant(field: &str, raw: &str, tz: Tz) -> Result<i64, ValidationError> {
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A midnight skipped by a daylight-saving change starts at the first instant after it.
        return tz
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| ValidationError::new(field, "a date this time zone skips"));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ValidationError::new(field, "expected YYYY-MM-DD or an RFC 3339 time"))
}

fn offset_ms(tz: Tz, at: i64) -> i64 {
    let utc = DateTime::<Utc>::from_timestamp_millis(at).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000
}

/// The zone's offsets over `[from, to)` as (until, offset) intervals.
pub fn offsets(tz: Tz, from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut current = offset_ms(tz, from);
    let mut t = from - from.rem_euclid(OFFSET_STEP_MS);
    while t < to {
        t += OFFSET_STEP_MS;
        let next = offset_ms(tz, t);
        if next != current {
            out.push((t, current));
            current = next;
        }
    }
    out.push((i64::MAX, current));
    out
}

fn rfc3339(ms: i64) -> String {
    super::timestamp(ms)
}

/// The label and first instant of local bucket `b` (bucket numbers count local time).
fn bucket_label(tz: Tz, b: i64, size: i64) -> (String, Option<String>) {
    let local = DateTime::<Utc>::from_timestamp_millis(b * size)
        .unwrap_or_default()
        .naive_utc();
    let label = if size == DAY_MS {
        local.format("%Y-%m-%d").to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M").to_string()
    };
    let start = tz
        .from_local_datetime(&local)
        .earliest()
        .map(|t| rfc3339(t.timestamp_millis()));
    (label, start)
}

/// Rows of hour or day buckets from `from` to `to`, empty ones included.
fn bucket_rows(tz: Tz, q: &ReportQuery, rows: &[ReportRow], size: i64) -> Vec<ReportRowDto> {
    let local = |t: i64| (t + offset_ms(tz, t)).div_euclid(size);
    let by_bucket: BTreeMap<i64, &ReportRow> = rows
        .iter()
        .filter_map(|r| Some((r.key.as_deref()?.parse::<i64>().ok()?, r)))
        .collect();
    let (first, last) = (local(q.from), local(q.to - 1));
    (first..=last)
        .filter_map(|b| {
            let (label, start) = bucket_label(tz, b, size);
            let row = by_bucket.get(&b).copied();
            // A local hour the zone skips (spring forward) is no bucket.
            if start.is_none() && row.is_none() {
                return None;
            }
            Some(ReportRowDto::new(
                Some(label),
                start,
                row.unwrap_or(&ReportRow::default()),
            ))
        })
        .collect()
}

/// The whole range: every measure adds up over the rows.
fn total_of(rows: &[ReportRow]) -> ReportRow {
    let mut t = ReportRow::default();
    for r in rows {
        t.add(r);
    }
    t
}

fn csv_of(report: &ReportDto) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "key",
        "start",
        "calls",
        "answered",
        "answer_rate",
        "unique_calls",
        "repeat_calls",
        "talk_secs",
        "avg_talk_secs",
        "hung_up_by_caller",
        "hung_up_by_target",
        "hung_up_by_system",
        "attempts_per_call",
        "unattributed",
        "conversions",
        "conversion_value",
    ];
    let unexpected = |e: csv::Error| ApiError::Unexpected(e.into());
    w.write_record(header).map_err(unexpected)?;
    for r in report.rows.iter().chain(std::iter::once(&report.totals)) {
        w.write_record([
            r.key.clone().unwrap_or_default(),
            r.start.clone().unwrap_or_default(),
            r.calls.to_string(),
            r.answered.to_string(),
            format!("{:.4}", r.answer_rate),
            r.unique_calls.to_string(),
            r.repeat_calls.to_string(),
            r.talk_secs.to_string(),
            format!("{:.1}", r.avg_talk_secs),
            r.hung_up_by.caller.to_string(),
            r.hung_up_by.target.to_string(),
            r.hung_up_by.system.to_string(),
            format!("{:.2}", r.attempts_per_call),
            r.unattributed.to_string(),
            r.conversions.to_string(),
            format!("{:.2}", r.conversion_value),
        ])
        .map_err(unexpected)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Unexpected(e.into()))
}

/// Calls over time or broken down by a dimension.
#[utoipa::path(get, path = "/v1/reports/calls", tag = "reports", params(ReportParams),
    responses((status = 200, body = ReportDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn calls(
    State(state): State<AppState>,
    Account(account): Account,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let tz = match p.time_zone.as_deref() {
        None => Tz::UTC,
        Some(z) => parse_time_zone("time_zone", z)?,
    };
    let group_name = p.group_by.clone().unwrap_or_else(|| "day".into());
    let group = group_of(&group_name).ok_or_else(|| {
        ValidationError::new(
            "group_by",
            "one of hour, day, campaign, source, medium, utm_campaign, term, landing_page, \
             tracking_number, target, caller_country, channel, total",
        )
    })?;
    let to = match &p.to {
        Some(raw) => instant("to", raw, tz)?,
        None => crate::now_ms(),
    };
    let from = match &p.from {
        Some(raw) => instant("from", raw, tz)?,
        None => to - 30 * DAY_MS,
    };
    if from >= to {
        return Err(ValidationError::new("from", "must be before to").into());
    }
    if to - from > MAX_DAYS * DAY_MS {
        return Err(ValidationError::new("to", "at most 400 days after from").into());
    }
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::new("format", "json or csv").into()),
    };
    let tracking_number = p
        .tracking_number
        .as_deref()
        .map(|n| E164::parse("tracking_number", n, None).map(|e| e.as_str().to_string()))
        .transpose()?;
    let caller_country = p
        .caller_country
        .as_deref()
        .map(|c| {
            let c = c.trim();
            if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(c.to_ascii_uppercase())
            } else {
                Err(ValidationError::new(
                    "caller_country",
                    "an ISO 3166 country code such as US",
                ))
            }
        })
        .transpose()?;
    let query = ReportQuery {
        from,
        to,
        group,
        offsets: offsets(tz, from, to),
        filter: ReportFilter {
            campaign_id: p.campaign_id,
            tracking_number,
            target_id: p.target_id,
            channel: p.channel.clone(),
            utm_source: p.utm_source.clone(),
            utm_medium: p.utm_medium.clone(),
            utm_campaign: p.utm_campaign.clone(),
            utm_term: p.utm_term.clone(),
            landing_page: p.landing_page.clone(),
            caller_country,
        },
    };
    let rows = state
        .store
        .report(account, &query)
        .await
        .map_err(ApiError::store("report"))?;
    let totals = total_of(&rows);
    let rows = match group {
        ReportGroup::Hour => bucket_rows(tz, &query, &rows, HOUR_MS),
        ReportGroup::Day => bucket_rows(tz, &query, &rows, DAY_MS),
        _ => rows
            .iter()
            .map(|r| ReportRowDto::new(r.key.clone(), None, r))
            .collect(),
    };
    let report = ReportDto {
        group_by: group_name,
        time_zone: tz.name().to_string(),
        from: rfc3339(from),
        to: rfc3339(to),
        rows,
        totals: ReportRowDto::new(None, None, &totals),
    };
    if csv {
        let body = csv_of(&report)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"callopt-report.csv\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(axum::Json(report).into_response())
}

/// What a pool utilisation report asks for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolReportParams {
    /// Start: `YYYY-MM-DD` (local midnight) or RFC 3339; default 7 days before `to`.
    pub from: Option<String>,
    /// End, exclusive: `YYYY-MM-DD` (local midnight) or RFC 3339; default now.
    pub to: Option<String>,
    /// IANA time zone of the hours' labels (default `UTC`).
    pub time_zone: Option<String>,
    /// Only this pool.
    pub pool_id: Option<i64>,
}

/// One hour of a pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolHourDto {
    /// The hour's local start (`2026-03-08T01:00`).
    pub hour: String,
    /// The hour's start (RFC 3339, UTC).
    pub start: String,
    /// Most numbers leased at once in the hour.
    pub peak_in_use: i64,
    /// Numbers in the pool.
    pub size: i64,
    /// Peak ÷ size (1 when the pool was exhausted).
    pub utilisation: f64,
}

/// One pool's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolHistoryDto {
    /// The pool.
    pub pool_id: i64,
    /// Its name.
    pub name: String,
    /// Hours with leases, in time order (hours without a recorded peak had none).
    pub hours: Vec<PoolHourDto>,
    /// The highest hourly utilisation of the range.
    pub peak_utilisation: f64,
    /// Hours in which every number was leased (visitors then saw the overflow number).
    pub exhausted_hours: usize,
}

/// Pool utilisation per hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolReportDto {
    /// The time zone of the hours' labels.
    pub time_zone: String,
    /// Start of the range (RFC 3339).
    pub from: String,
    /// End of the range, exclusive (RFC 3339).
    pub to: String,
    /// Pools with leases in the range.
    pub pools: Vec<PoolHistoryDto>,
}

/// Pool utilisation per hour: the most numbers leased at once against the pool's size.
#[utoipa::path(get, path = "/v1/reports/pools", tag = "reports", params(PoolReportParams),
    responses((status = 200, body = PoolReportDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn pools(
    State(state): State<AppState>,
    Account(account): Account,
    Query(p): Query<PoolReportParams>,
) -> Result<axum::Json<PoolReportDto>, ApiError> {
    let tz = match p.time_zone.as_deref() {
        None => Tz::UTC,
        Some(z) => parse_time_zone("time_zone", z)?,
    };
    let to = match &p.to {
        Some(raw) => instant("to", raw, tz)?,
        None => crate::now_ms(),
    };
    let from = match &p.from {
        Some(raw) => instant("from", raw, tz)?,
        None => to - 7 * DAY_MS,
    };
    if from >= to {
        return Err(ValidationError::new("from", "must be before to").into());
    }
    if to - from > MAX_DAYS * DAY_MS {
        return Err(ValidationError::new("to", "at most 400 days after from").into());
    }
    let rows = state
        .store
        .pool_usage(account, from, to, p.pool_id)
        .await
        .map_err(ApiError::store("pool"))?;
    let mut pools: Vec<PoolHistoryDto> = Vec::new();
    for row in rows {
        let s = row.sample;
        if pools.last().is_none_or(|h| h.pool_id != s.pool_id) {
            pools.push(PoolHistoryDto {
                pool_id: s.pool_id,
                name: row.pool_name.clone(),
                hours: Vec::new(),
                peak_utilisation: 0.0,
                exhausted_hours: 0,
            });
        }
        let Some(history) = pools.last_mut() else {
            continue;
        };
        let utilisation = if s.size == 0 {
            1.0
        } else {
            (s.peak_in_use as f64 / s.size as f64).min(1.0)
        };
        let local = DateTime::<Utc>::from_timestamp_millis(s.hour)
            .unwrap_or_default()
            .with_timezone(&tz);
        history.peak_utilisation = history.peak_utilisation.max(utilisation);
        if s.peak_in_use >= s.size {
            history.exhausted_hours += 1;
        }
        history.hours.push(PoolHourDto {
            hour: local.format("%Y-%m-%dT%H:%M").to_string(),
            start: rfc3339(s.hour),
            peak_in_use: s.peak_in_use,
            size: s.size,
            utilisation,
        });
    }
    Ok(axum::Json(PoolReportDto {
        time_zone: tz.name().to_string(),
        from: rfc3339(from),
        to: rfc3339(to),
        pools,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_daylight_saving() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT (07:00 UTC).
        let from = instant("from", "2026-03-07", tz).unwrap();
        let to = instant("to", "2026-03-10", tz).unwrap();
        let o = offsets(tz, from, to);
        let change = DateTime::parse_from_rfc3339("2026-03-08T07:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(o, vec![(change, -5 * HOUR_MS), (i64::MAX, -4 * HOUR_MS)]);
        assert_eq!(offsets(Tz::UTC, from, to), vec![(i64::MAX, 0)]);
    }

    #[test]
    fn day_buckets_are_local_days() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let (label, start) = bucket_label(tz, 20520, DAY_MS);
        assert_eq!(label, "2026-03-08");
        assert_eq!(start.as_deref(), Some("2026-03-08T05:00:00Z"));
        assert!(instant("to", "tomorrow", tz).is_err());
    }
}
