//! Carrier connections: a programmable-voice carrier account (Twilio, Telnyx, SignalWire,
//! Plivo) whose webhooks route calls on some of the account's tracking numbers. The credential
//! that verifies the carrier's signatures is write-only: the API shows only its last characters.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use callopt_carriers::Carrier;
use callopt_domain::{ValidationError, E164};
use callopt_store::{CarrierConnection, CarrierConnectionRecord, Secret};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most tracking numbers one connection lists.
const MAX_NUMBERS: usize = 10_000;

/// A carrier connection as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierConnectionDto {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `twilio`, `telnyx`, `signalwire` or `plivo`.
    pub carrier: String,
    /// The carrier's id of the account (Twilio AccountSid, SignalWire project, Telnyx account);
    /// webhooks naming another are refused.
    pub carrier_account: Option<String>,
    /// The last characters of the credential that verifies the carrier's signatures.
    pub credential_hint: String,
    /// The tracking numbers (E.164) whose calls it routes.
    pub numbers: Vec<String>,
    /// Configure as the number's voice (answer) URL at the carrier, method POST.
    pub voice_url: String,
    /// Configure as the number's status callback (Plivo: hangup URL), method POST.
    pub status_url: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl CarrierConnectionDto {
    fn new(r: CarrierConnectionRecord, base: &str) -> Self {
        let c = r.connection;
        Self {
            id: r.id,
            name: c.name,
            carrier: c.carrier,
            carrier_account: c.carrier_account,
            credential_hint: c.secret.hint(),
            numbers: c.numbers,
            voice_url: format!("{base}/carriers/{}/voice", r.key),
            status_url: format!("{base}/carriers/{}/status", r.key),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

/// The fields of a carrier connection. On create, `name`, `carrier` and the carrier's
/// credential are required; on update, absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierConnectionInput {
    /// Name (1 to 200 characters).
    pub name: Option<String>,
    /// `twilio`, `telnyx`, `signalwire` or `plivo` (fixed once created).
    pub carrier: Option<String>,
    /// The carrier's id of the account; `null` checks none.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub carrier_account: Option<Option<String>>,
    /// Twilio or Plivo: the auth token that signs their webhooks.
    pub auth_token: Option<String>,
    /// SignalWire: the signing key.
    pub signing_key: Option<String>,
    /// Telnyx: the account's public key (base64 Ed25519).
    pub public_key: Option<String>,
    /// Tracking numbers (E.164) whose calls it routes; replaces the list.
    pub numbers: Option<Vec<String>>,
}

/// The name of the credential field `carrier` takes.
fn credential_field(carrier: Carrier) -> &'static str {
    match carrier {
        Carrier::Twilio | Carrier::Plivo => "auth_token",
        Carrier::SignalWire => "signing_key",
        Carrier::Telnyx => "public_key",
    }
}

/// The credential given for `carrier`, validated; errors name the field.
fn credential(
    carrier: Carrier,
    input: &CarrierConnectionInput,
) -> Result<Option<Secret>, ValidationError> {
    let field = credential_field(carrier);
    let given = [
        ("auth_token", &input.auth_token),
        ("signing_key", &input.signing_key),
        ("public_key", &input.public_key),
    ];
    if let Some((other, _)) = given.iter().find(|(f, v)| *f != field && v.is_some()) {
        return Err(ValidationError::new(
            *other,
            format!("{carrier} connections take {field}, not {other}"),
        ));
    }
    let Some(value) = given
        .iter()
        .find(|(f, _)| *f == field)
        .and_then(|(_, v)| v.as_deref())
    else {
        return Ok(None);
    };
    let value = value.trim();
    if value.len() < 8 || value.len() > 512 || !value.is_ascii() {
        return Err(ValidationError::new(field, "8 to 512 ASCII characters"));
    }
    if carrier == Carrier::Telnyx {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.decode(value);
        if key.map(|k| k.len()) != Ok(32) {
            return Err(ValidationError::new(
                field,
                "a base64 Ed25519 public key (32 bytes)",
            ));
        }
    }
    Ok(Some(Secret(value.to_string())))
}

/// Applies the input on top of `c` (whose carrier is `carrier`), validating what it sets.
fn apply(
    mut c: CarrierConnection,
    carrier: Carrier,
    input: CarrierConnectionInput,
) -> Result<CarrierConnection, ValidationError> {
    if let Some(name) = &input.name {
        c.name = super::valid_name(name)?;
    }
    if let Some(secret) = credential(carrier, &input)? {
        c.secret = secret;
    }
    if let Some(account) = input.carrier_account {
        c.carrier_account = match account.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) if a.len() > 128 => {
                return Err(ValidationError::new(
                    "carrier_account",
                    "at most 128 characters",
                ))
            }
            Some(a) => Some(a.to_string()),
        };
    }
    if let Some(numbers) = input.numbers {
        if numbers.len() > MAX_NUMBERS {
            return Err(ValidationError::new("numbers", "at most 10000 numbers"));
        }
        let mut parsed: Vec<String> = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.iter().enumerate() {
            let e164 = E164::parse(&format!("numbers[{i}]"), n, None)?;
            if !parsed.iter().any(|p| p == e164.as_str()) {
                parsed.push(e164.as_str().to_string());
            }
        }
        c.numbers = parsed;
    }
    Ok(c)
}

/// `cc_` and 24 random alphanumerics: the connection's part of its webhook URLs.
fn new_key() -> String {
    format!("cc_{}", Alphanumeric.sample_string(&mut rand::rng(), 24))
}

/// Creates a carrier connection.
#[utoipa::path(post, path = "/v1/carrier-connections", tag = "carriers",
    request_body = CarrierConnectionInput,
    responses((status = 201, body = CarrierConnectionDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    headers: HeaderMap,
    Json(input): Json<CarrierConnectionInput>,
) -> Result<(StatusCode, axum::Json<CarrierConnectionDto>), ApiError> {
    if input.name.is_none() {
        return Err(ValidationError::new("name", "required").into());
    }
    let raw = input
        .carrier
        .as_deref()
        .ok_or_else(|| ValidationError::new("carrier", "required"))?;
    let carrier = Carrier::parse(raw).ok_or_else(|| {
        ValidationError::new("carrier", "one of twilio, telnyx, signalwire, plivo")
    })?;
    let field = credential_field(carrier);
    if credential(carrier, &input)?.is_none() {
        return Err(ValidationError::new(field, "required").into());
    }
    let base = CarrierConnection {
        name: String::new(),
        carrier: carrier.as_str().to_string(),
        carrier_account: None,
        secret: Secret(String::new()),
        numbers: Vec::new(),
    };
    let connection = apply(base, carrier, input)?;
    let record = state
        .store
        .create_carrier_connection(account, &connection, &new_key(), crate::now_ms())
        .await
        .map_err(ApiError::store("carrier connection"))?;
    tracing::info!(connection = record.id, %carrier, "carrier connection created");
    let base = state.carriers.base_url(&headers);
    Ok((
        StatusCode::CREATED,
        axum::Json(CarrierConnectionDto::new(record, &base)),
    ))
}

/// Lists carrier connections.
#[utoipa::path(get, path = "/v1/carrier-connections", tag = "carriers", params(ListParams),
    responses((status = 200, body = Listing<CarrierConnectionDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<CarrierConnectionDto>>, ApiError> {
    let page = state
        .store
        .carrier_connections(account, params.page()?)
        .await
        .map_err(ApiError::store("carrier connection"))?;
    let base = state.carriers.base_url(&headers);
    Ok(axum::Json(Listing::from_page(page, |r| {
        CarrierConnectionDto::new(r, &base)
    })))
}

/// One carrier connection.
#[utoipa::path(get, path = "/v1/carrier-connections/{id}", tag = "carriers",
    responses((status = 200, body = CarrierConnectionDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<axum::Json<CarrierConnectionDto>, ApiError> {
    let record = state
        .store
        .carrier_connection(account, id)
        .await
        .map_err(ApiError::store("carrier connection"))?;
    let base = state.carriers.base_url(&headers);
    Ok(axum::Json(CarrierConnectionDto::new(record, &base)))
}

/// Changes a carrier connection (its carrier stays).
#[utoipa::path(patch, path = "/v1/carrier-connections/{id}", tag = "carriers",
    request_body = CarrierConnectionInput,
    responses((status = 200, body = CarrierConnectionDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(input): Json<CarrierConnectionInput>,
) -> Result<axum::Json<CarrierConnectionDto>, ApiError> {
    let current = state
        .store
        .carrier_connection(account, id)
        .await
        .map_err(ApiError::store("carrier connection"))?;
    let carrier = Carrier::parse(&current.connection.carrier)
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("stored carrier is unknown")))?;
    if input
        .carrier
        .as_deref()
        .is_some_and(|c| c != carrier.as_str())
    {
        return Err(
            ValidationError::new("carrier", "cannot change; create another connection").into(),
        );
    }
    let connection = apply(current.connection, carrier, input)?;
    let record = state
        .store
        .update_carrier_connection(account, id, &connection, crate::now_ms())
        .await
        .map_err(ApiError::store("carrier connection"))?;
    let base = state.carriers.base_url(&headers);
    Ok(axum::Json(CarrierConnectionDto::new(record, &base)))
}

/// Deletes a carrier connection: its webhooks answer 404 from then on.
#[utoipa::path(delete, path = "/v1/carrier-connections/{id}", tag = "carriers",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_carrier_connection(account, id)
        .await
        .map_err(ApiError::store("carrier connection"))?;
    Ok(StatusCode::NO_CONTENT)
}
