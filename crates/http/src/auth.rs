//! Bearer API keys: the extractor that turns a key into the one account every query is scoped to.

use crate::{problem::ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use callopt_domain::{AccountId, ApiKey};

/// The account of the request's API key. Handlers take it and pass it to every store call.
#[derive(Debug, Clone, Copy)]
pub struct Account(pub AccountId);

impl FromRequestParts<AppState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_headers(state, &parts.headers).await
    }
}

impl Account {
    /// The account of the `Authorization: Bearer` key in `headers`.
    pub async fn from_headers(
        state: &AppState,
        headers: &axum::http::HeaderMap,
    ) -> Result<Self, ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or(ApiError::Unauthorized)?;
        let account = state
            .store
            .account_by_key(&ApiKey::presented(key).hash())
            .await
            .map_err(ApiError::store("account"))?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Account(account))
    }
}
