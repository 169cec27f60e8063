//! Verified domains: add a host, publish its token, verify, and only then serve numbers there.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::{DomainHost, VerificationToken};
use callopt_store::DomainRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A domain as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainDto {
    /// Id.
    pub id: i64,
    /// The host (with port when not the default).
    pub host: String,
    /// Publish this line at `well_known_path` on the host, then call verify.
    pub token: String,
    /// The path where the token must be published.
    pub well_known_path: String,
    /// Whether ownership has been proved.
    pub verified: bool,
    /// When it was proved (RFC 3339).
    pub verified_at: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<DomainRecord> for DomainDto {
    fn from(d: DomainRecord) -> Self {
        Self {
            id: d.id,
            host: d.host,
            token: d.token,
            well_known_path: VerificationToken::WELL_KNOWN_PATH.into(),
            verified: d.verified_at.is_some(),
            verified_at: d.verified_at.map(timestamp),
            created_at: timestamp(d.created_at),
        }
    }
}

/// A domain to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainInput {
    /// A host such as `www.example.com` (a port may follow).
    pub host: String,
}

fn new_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!(
        "callopt-verification={}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    )
}

/// Adds a domain to verify.
#[utoipa::path(post, path = "/v1/domains", tag = "domains", request_body = DomainInput,
    responses((status = 201, body = DomainDto), (status = 400, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<DomainInput>,
) -> Result<(StatusCode, axum::Json<DomainDto>), ApiError> {
    let host = DomainHost::parse("host", &input.host)?;
    let d = state
        .store
        .create_domain(account, host.as_str(), &new_token(), crate::now_ms())
        .await
        .map_err(ApiError::store("domain"))?;
    Ok((StatusCode::CREATED, axum::Json(d.into())))
}

/// Lists domains.
#[utoipa::path(get, path = "/v1/domains", tag = "domains", params(ListParams),
    responses((status = 200, body = Listing<DomainDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<DomainDto>>, ApiError> {
    let page = state
        .store
        .domains(account, params.page()?)
        .await
        .map_err(ApiError::store("domain"))?;
    Ok(axum::Json(Listing::from_page(page, DomainDto::from)))
}

/// One domain.
#[utoipa::path(get, path = "/v1/domains/{id}", tag = "domains",
    responses((status = 200, body = DomainDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<DomainDto>, ApiError> {
    let d = state
        .store
        .domain(account, id)
        .await
        .map_err(ApiError::store("domain"))?;
    Ok(axum::Json(d.into()))
}

/// Looks for the token in the host's TXT record (`_callopt.<host>` or `<host>`), then in its
/// well-known file, and when either holds it, marks the domain verified.
#[utoipa::path(post, path = "/v1/domains/{id}/verify", tag = "domains",
    responses((status = 200, body = DomainDto), (status = 422, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<DomainDto>, ApiError> {
    let d = state
        .store
        .domain(account, id)
        .await
        .map_err(ApiError::store("domain"))?;
    let host = DomainHost::parse("host", &d.host)?;
    let method = state
        .guard
        .verifier
        .verify(&host, &VerificationToken(d.token.clone()))
        .await
        .map_err(|e| ApiError::Unprocessable {
            detail: e.to_string(),
            field: Some("host".into()),
        })?;
    let now = crate::now_ms();
    let d = state
        .store
        .mark_domain_verified(account, id, now)
        .await
        .map_err(ApiError::store("domain"))?;
    state
        .store
        .domain_checked(account, id, Some(method.as_str()), now, 0)
        .await
        .map_err(ApiError::store("domain"))?;
    tracing::info!(account = account.0, host = %d.host, "domain verified");
    state.refresh(account).await?;
    Ok(axum::Json(d.into()))
}

/// Deletes a domain; pages on it are no longer served numbers.
#[utoipa::path(delete, path = "/v1/domains/{id}", tag = "domains",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_domain(account, id)
        .await
        .map_err(ApiError::store("domain"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}
