//! Conversions: the business marks a call converted, with what it was worth, by the call's id
//! or by the caller and the time of the sale (the latest call from that caller before it).

use super::timestamp;
use crate::auth::Account;
use crate::problem::{ApiError, Json, Path};
use crate::AppState;
use axum::extract::State;
use callopt_domain::{AccountId, ValidationError, E164};
use callopt_store::{Conversion, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How far back a conversion by caller looks for the call: 30 days.
const WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

/// Largest value accepted.
const MAX_VALUE: f64 = 1e12;

/// A call's conversion.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversionDto {
    /// The call it is recorded on.
    pub call_id: i64,
    /// What the call was worth.
    pub value: f64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// When it was reported (RFC 3339).
    pub converted_at: String,
}

fn dto(call_id: i64, c: Conversion) -> ConversionDto {
    ConversionDto {
        call_id,
        value: c.value,
        currency: c.currency,
        converted_at: timestamp(c.at),
    }
}

/// A conversion of a known call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallConversionInput {
    /// What the call was worth (0 or more).
    pub value: f64,
    /// ISO 4217 code; `USD` when absent.
    pub currency: Option<String>,
}

/// A conversion of the caller's latest call at or before `at` (within 30 days).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerConversionInput {
    /// The caller id, as calls list it (E.164 for most carriers).
    pub caller: String,
    /// When the sale happened (RFC 3339).
    pub at: String,
    /// What the call was worth (0 or more).
    pub value: f64,
    /// ISO 4217 code; `USD` when absent.
    pub currency: Option<String>,
}

/// The conversion to store, validated; errors name the field.
fn conversion(value: f64, currency: Option<&str>) -> Result<Conversion, ValidationError> {
    if !value.is_finite() || !(0.0..=MAX_VALUE).contains(&value) {
        return Err(ValidationError::new("value", "a number from 0 to 1e12"));
    }
    let currency = currency.unwrap_or("USD").trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ValidationError::new(
            "currency",
            "an ISO 4217 code such as USD",
        ));
    }
    Ok(Conversion {
        value,
        currency: currency.to_ascii_uppercase(),
        at: crate::now_ms(),
    })
}

/// Marks a call converted (replacing an earlier conversion of it).
#[utoipa::path(post, path = "/v1/calls/{id}/conversion", tag = "calls",
    request_body = CallConversionInput,
    responses((status = 200, body = ConversionDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn convert_call(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<CallConversionInput>,
) -> Result<axum::Json<ConversionDto>, ApiError> {
    let c = conversion(input.value, input.currency.as_deref())?;
    state
        .store
        .convert_call(account, id, &c)
        .await
        .map_err(ApiError::store("call"))?;
    Ok(axum::Json(dto(id, c)))
}

/// Marks converted the account's latest call from `caller` that started at or before `at`,
/// within 30 days of it.
#[utoipa::path(post, path = "/v1/conversions", tag = "calls",
    request_body = CallerConversionInput,
    responses((status = 200, body = ConversionDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn convert_by_caller(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<CallerConversionInput>,
) -> Result<axum::Json<ConversionDto>, ApiError> {
    let c = conversion(input.value, input.currency.as_deref())?;
    let at = chrono::DateTime::parse_from_rfc3339(input.at.trim())
        .map_err(|_| ValidationError::new("at", "expected RFC 3339, such as 2025-01-31T09:00:00Z"))?
        .timestamp_millis();
    let raw = input.caller.trim();
    if raw.is_empty() || raw.len() > 128 {
        return Err(ValidationError::new("caller", "1 to 128 characters").into());
    }
    // Calls keep the caller id as presented; a number given in another format is tried in
    // E.164 too.
    let mut callers = vec![raw.to_string()];
    if let Ok(e164) = E164::parse("caller", raw, None) {
        if e164.as_str() != raw {
            callers.push(e164.as_str().to_string());
        }
    }
    for caller in &callers {
        match state
            .store
            .convert_latest_call(account, caller, at - WINDOW_MS, at, &c)
            .await
        {
            Ok(id) => return Ok(axum::Json(dto(id, c))),
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(ApiError::store("call")(e)),
        }
    }
    Err(ApiError::NotFound(
        "call from this caller within 30 days before `at`",
    ))
}

/// The conversions of the calls among `ids` that have one.
pub async fn of_calls(
    state: &AppState,
    account: AccountId,
    ids: &[i64],
) -> Result<Vec<ConversionDto>, ApiError> {
    let found = state
        .store
        .conversions(account, ids)
        .await
        .map_err(ApiError::store("call"))?;
    Ok(found.into_iter().map(|(id, c)| dto(id, c)).collect())
}
