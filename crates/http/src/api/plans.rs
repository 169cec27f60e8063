//! Routing plans: which targets a campaign's calls go to, in what order, under which rules.

use super::{double_option, timestamp};
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::plan::{DUPLICATE_WINDOW_RANGE, MAX_ATTEMPTS_RANGE};
use callopt_domain::target::RING_TIMEOUT_RANGE;
use callopt_domain::{
    DuplicateAction, DuplicateCaller, Filters, NoTargetAnswer, Reroute, RoutingPlan, Strategy,
    ValidationError,
};
use callopt_store::PlanRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most targets one routing plan may name.
const MAX_TARGETS: usize = 200;

/// Which filters a plan applies before choosing a target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FiltersDto {
    /// Skip targets outside their business hours.
    pub open_now: bool,
    /// Skip targets whose regions do not include the caller's.
    pub geography: bool,
    /// Skip targets that do not speak the call's language.
    pub language: bool,
}

/// Filters as the API writes them: absent flags stay as they are (or take their defaults).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltersInput {
    /// Skip targets outside their business hours (default true).
    pub open_now: Option<bool>,
    /// Skip targets whose regions do not include the caller's (default false).
    pub geography: Option<bool>,
    /// Skip targets that do not speak the call's language (default false).
    pub language: Option<bool>,
}

/// The duplicate-caller rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateCallerDto {
    /// How far back a previous call counts, 1 to 720 hours.
    pub window_hours: u32,
    /// `same_target` or `reject`.
    pub action: String,
}

/// What the caller hears when no target is eligible.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoTargetDto {
    /// SIP status: 480 or 503.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
}

/// The no-target answer as the API writes it: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoTargetInput {
    /// SIP status: 480 (default) or 503.
    pub status: Option<u16>,
    /// Reason phrase, 1 to 100 printable ASCII characters (default `No Target Available`).
    pub reason: Option<String>,
}

/// A routing plan as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDto {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Target ids; tiers come from their priorities.
    pub targets: Vec<i64>,
    /// `weighted`, `round_robin`, `least_busy` or `lowest_volume`.
    pub strategy: String,
    /// Filters applied before choosing (caps always apply).
    pub filters: FiltersDto,
    /// The duplicate-caller rule; `null` for none.
    pub duplicate_caller: Option<DuplicateCallerDto>,
    /// Ring timeout for targets that set none, seconds.
    pub ring_timeout_secs: u32,
    /// Attempt outcomes that send the call on: `busy`, `no_answer`, `failure`, `unreachable`.
    pub reroute_on: Vec<String>,
    /// Most targets tried for one call, the overflow target included.
    pub max_attempts: u32,
    /// Tried when no target of the plan is eligible or all attempts failed.
    pub overflow_target_id: Option<i64>,
    /// What the caller hears when nothing is eligible.
    pub no_target: NoTargetDto,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<PlanRecord> for PlanDto {
    fn from(r: PlanRecord) -> Self {
        let p = r.plan;
        Self {
            id: p.id,
            name: p.name,
            targets: p.targets,
            strategy: p.strategy.as_str().into(),
            filters: FiltersDto {
                open_now: p.filters.open_now,
                geography: p.filters.geography,
                language: p.filters.language,
            },
            duplicate_caller: p.duplicate_caller.map(|d| DuplicateCallerDto {
                window_hours: d.window_hours,
                action: d.action.as_str().into(),
            }),
            ring_timeout_secs: p.ring_timeout_secs,
            reroute_on: p.reroute.names().into_iter().map(String::from).collect(),
            max_attempts: p.max_attempts,
            overflow_target_id: p.overflow_target,
            no_target: NoTargetDto {
                status: p.no_target.status,
                reason: p.no_target.reason,
            },
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

/// The fields of a routing plan. On create, `name` is required; on update, absent fields stay
/// as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// Name (1 to 200 characters).
    pub name: Option<String>,
    /// Target ids of this account, each at most once (default none).
    pub targets: Option<Vec<i64>>,
    /// `weighted` (default), `round_robin`, `least_busy` or `lowest_volume`.
    pub strategy: Option<String>,
    /// Filters; absent flags stay as they are.
    pub filters: Option<FiltersInput>,
    /// The duplicate-caller rule; `null` (default) for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DuplicateCallerDto>)]
    pub duplicate_caller: Option<Option<DuplicateCallerDto>>,
    /// Ring timeout for targets that set none, 5 to 300 seconds (default 30).
    pub ring_timeout_secs: Option<u32>,
    /// Outcomes that send the call on (default all four).
    pub reroute_on: Option<Vec<String>>,
    /// Most targets tried for one call, 1 to 10 (default 3).
    pub max_attempts: Option<u32>,
    /// A target of this account tried last; `null` (default) for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub overflow_target_id: Option<Option<i64>>,
    /// What the caller hears when nothing is eligible (default 480 `No Target Available`).
    pub no_target: Option<NoTargetInput>,
}

/// Applies the input on top of `p`, validating every field it sets. References to targets are
/// checked by the store (another account's target is a 422).
fn apply(mut p: RoutingPlan, input: PlanInput) -> Result<RoutingPlan, ValidationError> {
    if let Some(name) = input.name {
        p.name = super::valid_name(&name)?;
    }
    if let Some(targets) = input.targets {
        if targets.len() > MAX_TARGETS {
            return Err(ValidationError::new("targets", "at most 200 targets"));
        }
        for (i, id) in targets.iter().enumerate() {
            if targets[..i].contains(id) {
                return Err(ValidationError::new(
                    format!("targets[{i}]"),
                    format!("target {id} is already in the plan"),
                ));
            }
        }
        p.targets = targets;
    }
    if let Some(s) = input.strategy {
        p.strategy = Strategy::parse("strategy", &s)?;
    }
    if let Some(f) = input.filters {
        p.filters = Filters {
            open_now: f.open_now.unwrap_or(p.filters.open_now),
            geography: f.geography.unwrap_or(p.filters.geography),
            language: f.language.unwrap_or(p.filters.language),
        };
    }
    if let Some(d) = input.duplicate_caller {
        p.duplicate_caller = d.map(parse_duplicate).transpose()?;
    }
    if let Some(secs) = input.ring_timeout_secs {
        if !RING_TIMEOUT_RANGE.contains(&secs) {
            return Err(ValidationError::new(
                "ring_timeout_secs",
                "between 5 and 300",
            ));
        }
        p.ring_timeout_secs = secs;
    }
    if let Some(names) = input.reroute_on {
        p.reroute = Reroute::parse("reroute_on", &names)?;
    }
    if let Some(n) = input.max_attempts {
        if !MAX_ATTEMPTS_RANGE.contains(&n) {
            return Err(ValidationError::new("max_attempts", "between 1 and 10"));
        }
        p.max_attempts = n;
    }
    if let Some(o) = input.overflow_target_id {
        p.overflow_target = o;
    }
    if let Some(n) = input.no_target {
        let status = n.status.unwrap_or(p.no_target.status);
        let reason = n.reason.unwrap_or_else(|| p.no_target.reason.clone());
        p.no_target = NoTargetAnswer::parse("no_target", status, &reason)?;
    }
    Ok(p)
}

fn parse_duplicate(d: DuplicateCallerDto) -> Result<DuplicateCaller, ValidationError> {
    if !DUPLICATE_WINDOW_RANGE.contains(&d.window_hours) {
        return Err(ValidationError::new(
            "duplicate_caller.window_hours",
            "between 1 and 720",
        ));
    }
    Ok(DuplicateCaller {
        window_hours: d.window_hours,
        action: DuplicateAction::parse("duplicate_caller.action", &d.action)?,
    })
}

/// Creates a routing plan.
#[utoipa::path(post, path = "/v1/routing-plans", tag = "routing-plans", request_body = PlanInput,
    responses((status = 201, body = PlanDto), (status = 400, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<PlanInput>,
) -> Result<(StatusCode, axum::Json<PlanDto>), ApiError> {
    if input.name.is_none() {
        return Err(ValidationError::new("name", "required").into());
    }
    let base = RoutingPlan {
        id: 0,
        name: String::new(),
        targets: Vec::new(),
        strategy: Strategy::Weighted,
        filters: Filters::default(),
        duplicate_caller: None,
        ring_timeout_secs: 30,
        reroute: Reroute::default(),
        max_attempts: 3,
        overflow_target: None,
        no_target: NoTargetAnswer::default(),
    };
    let plan = apply(base, input)?;
    let record = state
        .store
        .create_plan(account, &plan, crate::now_ms())
        .await
        .map_err(ApiError::store("routing plan"))?;
    state.refresh(account).await?;
    Ok((StatusCode::CREATED, axum::Json(record.into())))
}

/// Lists routing plans.
#[utoipa::path(get, path = "/v1/routing-plans", tag = "routing-plans", params(ListParams),
    responses((status = 200, body = Listing<PlanDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<PlanDto>>, ApiError> {
    let page = state
        .store
        .plans(account, params.page()?)
        .await
        .map_err(ApiError::store("routing plan"))?;
    Ok(axum::Json(Listing::from_page(page, PlanDto::from)))
}

/// One routing plan.
#[utoipa::path(get, path = "/v1/routing-plans/{id}", tag = "routing-plans",
    responses((status = 200, body = PlanDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<PlanDto>, ApiError> {
    let record = state
        .store
        .plan(account, id)
        .await
        .map_err(ApiError::store("routing plan"))?;
    Ok(axum::Json(record.into()))
}

/// Changes a routing plan; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/routing-plans/{id}", tag = "routing-plans",
    request_body = PlanInput,
    responses((status = 200, body = PlanDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<PlanInput>,
) -> Result<axum::Json<PlanDto>, ApiError> {
    let current = state
        .store
        .plan(account, id)
        .await
        .map_err(ApiError::store("routing plan"))?;
    let plan = apply(current.plan, input)?;
    let record = state
        .store
        .update_plan(account, id, &plan, crate::now_ms())
        .await
        .map_err(ApiError::store("routing plan"))?;
    state.refresh(account).await?;
    Ok(axum::Json(record.into()))
}

/// Deletes a routing plan; campaigns that use it keep no plan.
#[utoipa::path(delete, path = "/v1/routing-plans/{id}", tag = "routing-plans",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_plan(account, id)
        .await
        .map_err(ApiError::store("routing plan"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}
