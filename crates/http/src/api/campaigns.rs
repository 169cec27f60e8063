//! Campaigns: default number, pool, trigger, assignment mode, verified domains, source rules.

use super::{double_option, timestamp};
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::campaign::IDLE_TIMEOUT_RANGE;
use callopt_domain::{
    AssignmentMode, Campaign, CampaignKey, DomainHost, SourceRule, Trigger, ValidationError, E164,
};
use callopt_store::CampaignRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A source rule as the API writes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRuleDto {
    /// `utm_source`, `referrer_domain`, `click_id` or `any`.
    #[serde(rename = "match")]
    pub matches: String,
    /// The utm_source value, referrer domain, or click id name (`gclid`, `fbclid`, `msclkid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The number these visitors see, E.164.
    pub number: String,
}

/// A campaign as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignDto {
    /// Id.
    pub id: i64,
    /// Public key for the tag.
    pub key: String,
    /// Name.
    pub name: String,
    /// Number printed on the page; shown when no tracking number is served.
    pub default_number: String,
    /// Other numbers on the page that the tag replaces.
    pub swap_numbers: Vec<String>,
    /// Query parameter that makes the tag act; `null` means on every page.
    pub trigger_parameter: Option<String>,
    /// `per_visitor` or `per_source`.
    pub assignment: String,
    /// Seconds of inactivity that end a visitor's lease.
    pub idle_timeout_secs: u32,
    /// Hosts whose pages may be served numbers (each must be verified in the account).
    pub domains: Vec<String>,
    /// Per-source rules, first match wins.
    pub source_rules: Vec<SourceRuleDto>,
    /// The pool numbers come from.
    pub pool_id: Option<i64>,
    /// The routing plan for calls on the campaign's numbers.
    pub routing_plan_id: Option<i64>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<CampaignRecord> for CampaignDto {
    fn from(r: CampaignRecord) -> Self {
        let c = r.campaign;
        Self {
            id: c.id,
            key: c.key.0,
            name: c.name,
            default_number: c.default_number.to_string(),
            swap_numbers: c.swap_numbers.iter().map(ToString::to_string).collect(),
            trigger_parameter: c.trigger.parameter().map(str::to_string),
            assignment: c.assignment.as_str().into(),
            idle_timeout_secs: c.idle_timeout_secs,
            domains: c.domains.iter().map(|d| d.as_str().to_string()).collect(),
            source_rules: c
                .source_rules
                .iter()
                .map(|r| {
                    let (kind, value) = r.kind_and_value();
                    SourceRuleDto {
                        matches: kind.into(),
                        value: value.map(str::to_string),
                        number: r.number.to_string(),
                    }
                })
                .collect(),
            pool_id: c.pool_id,
            routing_plan_id: c.routing_plan_id,
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

/// The fields of a campaign. On create, `name` and `default_number` are required; on update,
/// absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Name (1 to 200 characters).
    pub name: Option<String>,
    /// The number printed on the page, E.164.
    pub default_number: Option<String>,
    /// Other page numbers to replace.
    pub swap_numbers: Option<Vec<String>>,
    /// Query parameter that makes the tag act; `null` for every page.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub trigger_parameter: Option<Option<String>>,
    /// `per_visitor` (default) or `per_source`.
    pub assignment: Option<String>,
    /// Lease idle timeout in seconds (60 to 86400, default 1800).
    pub idle_timeout_secs: Option<u32>,
    /// Hosts whose pages may be served.
    pub domains: Option<Vec<String>>,
    /// Per-source rules.
    pub source_rules: Option<Vec<SourceRuleDto>>,
    /// The pool numbers come from; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub pool_id: Option<Option<i64>>,
    /// The routing plan for calls; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub routing_plan_id: Option<Option<i64>>,
}

/// Applies the input on top of `base`, validating every field it sets.
fn apply(mut c: Campaign, input: CampaignInput) -> Result<Campaign, ValidationError> {
    if let Some(name) = input.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ValidationError::new("name", "1 to 200 characters"));
        }
        c.name = name.to_string();
    }
    if let Some(n) = input.default_number {
        c.default_number = E164::parse("default_number", &n, None)?;
    }
    if let Some(list) = input.swap_numbers {
        if list.len() > 20 {
            return Err(ValidationError::new("swap_numbers", "at most 20 numbers"));
        }
        c.swap_numbers = list
            .iter()
            .enumerate()
            .map(|(i, n)| E164::parse(&format!("swap_numbers[{i}]"), n, None))
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = input.trigger_parameter {
        c.trigger = Trigger::parse("trigger_parameter", t.as_deref())?;
    }
    if let Some(a) = input.assignment {
        c.assignment = AssignmentMode::parse("assignment", &a)?;
    }
    if let Some(secs) = input.idle_timeout_secs {
        if !IDLE_TIMEOUT_RANGE.contains(&secs) {
            return Err(ValidationError::new(
                "idle_timeout_secs",
                "between 60 and 86400",
            ));
        }
        c.idle_timeout_secs = secs;
    }
    if let Some(list) = input.domains {
        if list.len() > 100 {
            return Err(ValidationError::new("domains", "at most 100 hosts"));
        }
        c.domains = list
            .iter()
            .enumerate()
            .map(|(i, d)| DomainHost::parse(&format!("domains[{i}]"), d))
            .collect::<Result<_, _>>()?;
    }
    if let Some(rules) = input.source_rules {
        if rules.len() > 200 {
            return Err(ValidationError::new("source_rules", "at most 200 rules"));
        }
        c.source_rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                SourceRule::parse(
                    &format!("source_rules[{i}]"),
                    &r.matches,
                    r.value.as_deref(),
                    &r.number,
                )
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(pool) = input.pool_id {
        c.pool_id = pool;
    }
    if let Some(plan) = input.routing_plan_id {
        c.routing_plan_id = plan;
    }
    Ok(c)
}

/// A fresh campaign key: `cmp_` and 20 random alphanumerics.
fn new_key() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!(
        "{}{}",
        CampaignKey::PREFIX,
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    )
}

/// Creates a campaign.
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CampaignInput,
    responses((status = 201, body = CampaignDto), (status = 400, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<CampaignInput>,
) -> Result<(StatusCode, axum::Json<CampaignDto>), ApiError> {
    if input.name.is_none() {
        return Err(ValidationError::new("name", "required").into());
    }
    let default = input
        .default_number
        .as_deref()
        .ok_or_else(|| ValidationError::new("default_number", "required"))?;
    let base = Campaign {
        id: 0,
        key: CampaignKey(String::new()),
        name: String::new(),
        default_number: E164::parse("default_number", default, None)?,
        swap_numbers: Vec::new(),
        trigger: Trigger::Always,
        assignment: AssignmentMode::PerVisitor,
        idle_timeout_secs: 1800,
        domains: Vec::new(),
        source_rules: Vec::new(),
        pool_id: None,
        routing_plan_id: None,
    };
    let campaign = apply(base, input)?;
    let record = state
        .store
        .create_campaign(account, &campaign, &new_key(), crate::now_ms())
        .await
        .map_err(ApiError::store("campaign"))?;
    state.refresh(account).await?;
    Ok((StatusCode::CREATED, axum::Json(record.into())))
}

/// Lists campaigns.
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", params(ListParams),
    responses((status = 200, body = Listing<CampaignDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<CampaignDto>>, ApiError> {
    let page = state
        .store
        .campaigns(account, params.page()?)
        .await
        .map_err(ApiError::store("campaign"))?;
    Ok(axum::Json(Listing::from_page(page, CampaignDto::from)))
}

/// One campaign.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns",
    responses((status = 200, body = CampaignDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<CampaignDto>, ApiError> {
    let c = state
        .store
        .campaign(account, id)
        .await
        .map_err(ApiError::store("campaign"))?;
    Ok(axum::Json(c.into()))
}

/// Changes a campaign; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/campaigns/{id}", tag = "campaigns", request_body = CampaignInput,
    responses((status = 200, body = CampaignDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<CampaignInput>,
) -> Result<axum::Json<CampaignDto>, ApiError> {
    let current = state
        .store
        .campaign(account, id)
        .await
        .map_err(ApiError::store("campaign"))?;
    let campaign = apply(current.campaign, input)?;
    let record = state
        .store
        .update_campaign(account, id, &campaign, crate::now_ms())
        .await
        .map_err(ApiError::store("campaign"))?;
    state.refresh(account).await?;
    Ok(axum::Json(record.into()))
}

/// Deletes a campaign and its visitor sessions.
#[utoipa::path(delete, path = "/v1/campaigns/{id}", tag = "campaigns",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_campaign(account, id)
        .await
        .map_err(ApiError::store("campaign"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}
