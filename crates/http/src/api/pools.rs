//! Pools: the sets of tracking numbers campaigns draw from.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::ValidationError;
use callopt_store::PoolRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A pool as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolDto {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Tracking numbers in the pool.
    pub size: i64,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<PoolRecord> for PoolDto {
    fn from(p: PoolRecord) -> Self {
        Self {
            id: p.id,
            name: p.name,
            size: p.size,
            created_at: timestamp(p.created_at),
        }
    }
}

/// The fields of a pool.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolInput {
    /// Name (1 to 200 characters).
    pub name: String,
}

fn valid_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ValidationError::new("name", "1 to 200 characters").into());
    }
    Ok(name)
}

/// Creates a pool.
#[utoipa::path(post, path = "/v1/pools", tag = "pools", request_body = PoolInput,
    responses((status = 201, body = PoolDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<PoolInput>,
) -> Result<(StatusCode, axum::Json<PoolDto>), ApiError> {
    let name = valid_name(&input.name)?;
    let pool = state
        .store
        .create_pool(account, name, crate::now_ms())
        .await
        .map_err(ApiError::store("pool"))?;
    Ok((StatusCode::CREATED, axum::Json(pool.into())))
}

/// Lists pools.
#[utoipa::path(get, path = "/v1/pools", tag = "pools", params(ListParams),
    responses((status = 200, body = Listing<PoolDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<PoolDto>>, ApiError> {
    let page = state
        .store
        .pools(account, params.page()?)
        .await
        .map_err(ApiError::store("pool"))?;
    Ok(axum::Json(Listing::from_page(page, PoolDto::from)))
}

/// One pool.
#[utoipa::path(get, path = "/v1/pools/{id}", tag = "pools",
    responses((status = 200, body = PoolDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<PoolDto>, ApiError> {
    let pool = state
        .store
        .pool(account, id)
        .await
        .map_err(ApiError::store("pool"))?;
    Ok(axum::Json(pool.into()))
}

/// Renames a pool.
#[utoipa::path(patch, path = "/v1/pools/{id}", tag = "pools", request_body = PoolInput,
    responses((status = 200, body = PoolDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<PoolInput>,
) -> Result<axum::Json<PoolDto>, ApiError> {
    let name = valid_name(&input.name)?;
    let pool = state
        .store
        .rename_pool(account, id, name)
        .await
        .map_err(ApiError::store("pool"))?;
    Ok(axum::Json(pool.into()))
}

/// Deletes a pool; its numbers stay in the account, out of any pool.
#[utoipa::path(delete, path = "/v1/pools/{id}", tag = "pools",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_pool(account, id)
        .await
        .map_err(ApiError::store("pool"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pools at or above this share of numbers in use are flagged: the next visitors may get the
/// campaign's default number, and their calls go unattributed.
pub const EXHAUSTION_WARNING: f64 = 0.9;

/// How much of a pool is leased to visitors now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolUtilisationDto {
    /// Pool id.
    pub pool_id: i64,
    /// Pool name.
    pub name: String,
    /// Numbers that can be leased (active numbers of the pool).
    pub size: i64,
    /// Numbers leased to a visitor session now.
    pub in_use: i64,
    /// `in_use ÷ size` (1 for an empty pool: it has nothing to give).
    pub utilisation: f64,
    /// True at or above 90% in use: add numbers before attribution is lost.
    pub near_exhaustion: bool,
}

/// Pool utilisation now: numbers leased against pool size, with an exhaustion warning.
#[utoipa::path(get, path = "/v1/pools/utilisation", tag = "pools", params(ListParams),
    responses((status = 200, body = Listing<PoolUtilisationDto>)), security(("api_key" = [])))]
pub async fn utilisation(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<PoolUtilisationDto>>, ApiError> {
    let page = state
        .store
        .pools(account, params.page()?)
        .await
        .map_err(ApiError::store("pool"))?;
    let live: std::collections::HashMap<i64, (usize, usize)> = state
        .dni
        .utilisation(crate::now_ms())
        .into_iter()
        .map(|(id, used, size)| (id, (used, size)))
        .collect();
    Ok(axum::Json(Listing::from_page(page, |p| {
        let (in_use, size) = match live.get(&p.id) {
            Some(&(used, size)) => (used as i64, size as i64),
            None => (0, p.size),
        };
        let utilisation = if size == 0 {
            1.0
        } else {
            in_use as f64 / size as f64
        };
        PoolUtilisationDto {
            pool_id: p.id,
            name: p.name,
            size,
            in_use,
            utilisation,
            near_exhaustion: utilisation >= EXHAUSTION_WARNING,
        }
    })))
}
