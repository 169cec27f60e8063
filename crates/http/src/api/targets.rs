//! Targets: where routed calls go, whom and when they serve, and how much they may take.

use super::{double_option, timestamp};
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::target::{parse_time_zone, RING_TIMEOUT_RANGE, WEEKDAYS, WEIGHT_RANGE};
use callopt_domain::{
    BusinessHours, Caps, Destination, OpenInterval, Region, Target, ValidationError,
};
use callopt_store::TargetRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Bounds of a target's priority (its tier; lower is tried first).
pub const PRIORITY_RANGE: std::ops::RangeInclusive<u32> = 0..=1000;

/// Bounds of every cap.
pub const CAP_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000_000;

/// Most regions, languages or intervals of one day a target may list.
const MAX_LIST: usize = 200;

/// Opening intervals per weekday as the API shows them, Monday first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeeklyDto {
    /// Monday: `[["09:00", "17:00"], ...]`; empty is closed.
    pub mon: Vec<[String; 2]>,
    /// Tuesday.
    pub tue: Vec<[String; 2]>,
    /// Wednesday.
    pub wed: Vec<[String; 2]>,
    /// Thursday.
    pub thu: Vec<[String; 2]>,
    /// Friday.
    pub fri: Vec<[String; 2]>,
    /// Saturday.
    pub sat: Vec<[String; 2]>,
    /// Sunday.
    pub sun: Vec<[String; 2]>,
}

/// Business hours as the API shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HoursDto {
    /// IANA time zone the intervals are in.
    pub time_zone: String,
    /// Intervals per weekday.
    pub weekly: WeeklyDto,
}

impl From<&BusinessHours> for HoursDto {
    fn from(h: &BusinessHours) -> Self {
        let day = |i: usize| -> Vec<[String; 2]> {
            h.days[i]
                .iter()
                .map(|iv| {
                    [
                        OpenInterval::format_minute(iv.start),
                        OpenInterval::format_minute(iv.end),
                    ]
                })
                .collect()
        };
        Self {
            time_zone: h.time_zone.name().to_string(),
            weekly: WeeklyDto {
                mon: day(0),
                tue: day(1),
                wed: day(2),
                thu: day(3),
                fri: day(4),
                sat: day(5),
                sun: day(6),
            },
        }
    }
}

/// Business hours as the API writes them: weekdays left out are closed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursInput {
    /// IANA time zone, such as `America/New_York`.
    pub time_zone: String,
    /// `mon` … `sun` → list of `["HH:MM", "HH:MM"]` intervals (`"24:00"` may end one).
    #[serde(default)]
    pub weekly: BTreeMap<String, Vec<Vec<String>>>,
}

impl HoursInput {
    /// Validates into business hours; errors name `hours.…`.
    fn parse(&self) -> Result<BusinessHours, ValidationError> {
        let time_zone = parse_time_zone("hours.time_zone", &self.time_zone)?;
        let mut days: [Vec<OpenInterval>; 7] = Default::default();
        for (name, intervals) in &self.weekly {
            let field = format!("hours.weekly.{name}");
            let day = WEEKDAYS
                .iter()
                .position(|d| d == name)
                .ok_or_else(|| ValidationError::new(&field, "expected mon, tue, … or sun"))?;
            if intervals.len() > MAX_LIST {
                return Err(ValidationError::new(&field, "at most 200 intervals"));
            }
            let mut parsed = Vec::with_capacity(intervals.len());
            for (i, pair) in intervals.iter().enumerate() {
                let field = format!("{field}[{i}]");
                let [start, end] = pair.as_slice() else {
                    return Err(ValidationError::new(
                        &field,
                        "expected [\"HH:MM\", \"HH:MM\"]",
                    ));
                };
                parsed.push(OpenInterval::parse(&field, start, end)?);
            }
            parsed.sort_by_key(|iv| iv.start);
            if let Some(i) = parsed.windows(2).position(|w| w[1].start < w[0].end) {
                return Err(ValidationError::new(
                    format!("{field}[{}]", i + 1),
                    "intervals of a day must not overlap",
                ));
            }
            days[day] = parsed;
        }
        Ok(BusinessHours { time_zone, days })
    }
}

/// Limits on what a target takes; `null` is unlimited.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapsDto {
    /// Calls ringing or connected at once.
    #[serde(default)]
    pub concurrent: Option<u32>,
    /// Connected calls per clock hour (in the target's time zone).
    #[serde(default)]
    pub hourly: Option<u32>,
    /// Connected calls per day.
    #[serde(default)]
    pub daily: Option<u32>,
    /// Connected calls per calendar month.
    #[serde(default)]
    pub monthly: Option<u32>,
}

impl CapsDto {
    /// Validates into caps; errors name `caps.…`.
    fn parse(&self) -> Result<Caps, ValidationError> {
        let check = |name: &str, v: Option<u32>| match v {
            Some(n) if !CAP_RANGE.contains(&n) => Err(ValidationError::new(
                format!("caps.{name}"),
                "at least 1 (null for no limit)",
            )),
            _ => Ok(v),
        };
        Ok(Caps {
            concurrent: check("concurrent", self.concurrent)?,
            hourly: check("hourly", self.hourly)?,
            daily: check("daily", self.daily)?,
            monthly: check("monthly", self.monthly)?,
        })
    }
}

impl From<Caps> for CapsDto {
    fn from(c: Caps) -> Self {
        Self {
            concurrent: c.concurrent,
            hourly: c.hourly,
            daily: c.daily,
            monthly: c.monthly,
        }
    }
}

/// A target as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetDto {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// A `sip:` URI or an E.164 number.
    pub destination: String,
    /// Languages its agents speak (ISO 639-1); empty serves every language.
    pub languages: Vec<String>,
    /// Caller geographies served (`US`, `US-415`); empty serves every caller.
    pub regions: Vec<String>,
    /// Opening hours; `null` is always open.
    pub hours: Option<HoursDto>,
    /// Limits.
    pub caps: CapsDto,
    /// Tier: lower is tried first.
    pub priority: u32,
    /// Share within its tier for weighted selection.
    pub weight: u32,
    /// Seconds to ring before giving up; `null` takes the routing plan's.
    pub ring_timeout_secs: Option<u32>,
    /// A disabled target takes no calls.
    pub enabled: bool,
    /// Calls ringing or connected on it now.
    pub live_calls: u32,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl TargetDto {
    /// The API view of a stored target with its live call count.
    fn new(r: TargetRecord, live_calls: u32) -> Self {
        let t = r.target;
        Self {
            id: t.id,
            name: t.name,
            destination: t.destination.as_str().to_string(),
            languages: t.languages,
            regions: t.regions.iter().map(ToString::to_string).collect(),
            hours: t.hours.as_ref().map(HoursDto::from),
            caps: t.caps.into(),
            priority: t.priority,
            weight: t.weight,
            ring_timeout_secs: t.ring_timeout_secs,
            enabled: t.enabled,
            live_calls,
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }

    /// The API view, reading the live call count from the switchboard.
    fn of(state: &AppState, r: TargetRecord) -> Self {
        let live = state.switchboard.live_calls(r.target.id);
        Self::new(r, live)
    }
}

/// The fields of a target. On create, `name` and `destination` are required; on update, absent
/// fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// Name (1 to 200 characters).
    pub name: Option<String>,
    /// A `sip:`/`sips:` URI or an E.164 number.
    pub destination: Option<String>,
    /// Language tags (default none: every language).
    pub languages: Option<Vec<String>>,
    /// Regions: `US` or `US-415` (default none: every caller).
    pub regions: Option<Vec<String>>,
    /// Opening hours; `null` (default) is always open.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<HoursInput>)]
    pub hours: Option<Option<HoursInput>>,
    /// Limits; replaces all four caps (absent caps are unlimited).
    pub caps: Option<CapsDto>,
    /// Tier, 0 to 1000 (default 1); lower is tried first.
    pub priority: Option<u32>,
    /// Weight, 1 to 1000 (default 1).
    pub weight: Option<u32>,
    /// Ring timeout, 5 to 300 seconds; `null` (default) takes the routing plan's.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub ring_timeout_secs: Option<Option<u32>>,
    /// Whether it takes calls (default true).
    pub enabled: Option<bool>,
}

/// Applies the input on top of `t`, validating every field it sets.
fn apply(mut t: Target, input: TargetInput) -> Result<Target, ValidationError> {
    if let Some(name) = input.name {
        t.name = super::valid_name(&name)?;
    }
    if let Some(d) = input.destination {
        t.destination = Destination::parse("destination", &d)?;
    }
    if let Some(langs) = input.languages {
        if langs.len() > MAX_LIST {
            return Err(ValidationError::new("languages", "at most 200 languages"));
        }
        t.languages = Target::parse_languages(&langs)?;
    }
    if let Some(regions) = input.regions {
        if regions.len() > MAX_LIST {
            return Err(ValidationError::new("regions", "at most 200 regions"));
        }
        let mut parsed: Vec<Region> = Vec::with_capacity(regions.len());
        for (i, r) in regions.iter().enumerate() {
            let region = Region::parse(&format!("regions[{i}]"), r)?;
            if !parsed.contains(&region) {
                parsed.push(region);
            }
        }
        t.regions = parsed;
    }
    if let Some(hours) = input.hours {
        t.hours = hours.as_ref().map(HoursInput::parse).transpose()?;
    }
    if let Some(caps) = input.caps {
        t.caps = caps.parse()?;
    }
    if let Some(p) = input.priority {
        if !PRIORITY_RANGE.contains(&p) {
            return Err(ValidationError::new("priority", "between 0 and 1000"));
        }
        t.priority = p;
    }
    if let Some(w) = input.weight {
        if !WEIGHT_RANGE.contains(&w) {
            return Err(ValidationError::new("weight", "between 1 and 1000"));
        }
        t.weight = w;
    }
    if let Some(secs) = input.ring_timeout_secs {
        if secs.is_some_and(|s| !RING_TIMEOUT_RANGE.contains(&s)) {
            return Err(ValidationError::new(
                "ring_timeout_secs",
                "between 5 and 300 (null for the routing plan's)",
            ));
        }
        t.ring_timeout_secs = secs;
    }
    if let Some(enabled) = input.enabled {
        t.enabled = enabled;
    }
    Ok(t)
}

/// Creates a target.
#[utoipa::path(post, path = "/v1/targets", tag = "targets", request_body = TargetInput,
    responses((status = 201, body = TargetDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<TargetInput>,
) -> Result<(StatusCode, axum::Json<TargetDto>), ApiError> {
    if input.name.is_none() {
        return Err(ValidationError::new("name", "required").into());
    }
    let destination = input
        .destination
        .as_deref()
        .ok_or_else(|| ValidationError::new("destination", "required"))?;
    let base = Target {
        id: 0,
        name: String::new(),
        destination: Destination::parse("destination", destination)?,
        languages: Vec::new(),
        regions: Vec::new(),
        hours: None,
        caps: Caps::default(),
        priority: 1,
        weight: 1,
        ring_timeout_secs: None,
        enabled: true,
    };
    let target = apply(base, input)?;
    let record = state
        .store
        .create_target(account, &target, crate::now_ms())
        .await
        .map_err(ApiError::store("target"))?;
    state.refresh(account).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TargetDto::of(&state, record)),
    ))
}

/// Lists targets.
#[utoipa::path(get, path = "/v1/targets", tag = "targets", params(ListParams),
    responses((status = 200, body = Listing<TargetDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<TargetDto>>, ApiError> {
    let page = state
        .store
        .targets(account, params.page()?)
        .await
        .map_err(ApiError::store("target"))?;
    Ok(axum::Json(Listing::from_page(page, |r| {
        TargetDto::of(&state, r)
    })))
}

/// One target.
#[utoipa::path(get, path = "/v1/targets/{id}", tag = "targets",
    responses((status = 200, body = TargetDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<TargetDto>, ApiError> {
    let record = state
        .store
        .target(account, id)
        .await
        .map_err(ApiError::store("target"))?;
    Ok(axum::Json(TargetDto::of(&state, record)))
}

/// Changes a target; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/targets/{id}", tag = "targets", request_body = TargetInput,
    responses((status = 200, body = TargetDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<TargetInput>,
) -> Result<axum::Json<TargetDto>, ApiError> {
    let current = state
        .store
        .target(account, id)
        .await
        .map_err(ApiError::store("target"))?;
    let target = apply(current.target, input)?;
    let record = state
        .store
        .update_target(account, id, &target, crate::now_ms())
        .await
        .map_err(ApiError::store("target"))?;
    state.refresh(account).await?;
    Ok(axum::Json(TargetDto::of(&state, record)))
}

/// Deletes a target; routing plans that name it drop it.
#[utoipa::path(delete, path = "/v1/targets/{id}", tag = "targets",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_target(account, id)
        .await
        .map_err(ApiError::store("target"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}
