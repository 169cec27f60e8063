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
