//! Event webhooks: URLs an account registers for call and visitor-session events, and the
//! deliveries made to each. The signing secret is generated here and shown once, at creation;
//! afterwards the API shows only its last characters.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::ValidationError;
use callopt_store::{DeliveryRecord, EventType, Secret, Webhook, WebhookRecord};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest URL a webhook may name.
const MAX_URL: usize = 2048;

/// A webhook as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    /// Id.
    pub id: i64,
    /// Where events are posted.
    pub url: String,
    /// The event types it gets: `call.started`, `call.routed`, `call.finished`,
    /// `session.created`, `campaign.quarantined`.
    pub events: Vec<String>,
    /// Whether events are delivered (a disabled webhook gets no new events; its pending
    /// deliveries wait until it is enabled again).
    pub enabled: bool,
    /// The last characters of the signing secret.
    pub secret_hint: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<WebhookRecord> for WebhookDto {
    fn from(r: WebhookRecord) -> Self {
        Self {
            id: r.id,
            url: r.webhook.url,
            events: r
                .webhook
                .events
                .iter()
                .map(|e| e.as_str().to_string())
                .collect(),
            enabled: r.webhook.enabled,
            secret_hint: r.secret.hint(),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        }
    }
}

/// A webhook just created, with its signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookDto {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// Verify `Callopt-Signature` with it: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    pub secret: String,
}

/// The fields of a webhook. On create, `url` and `events` are required and `enabled` defaults
/// to true; on update, absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `http` or `https` URL on a public address.
    pub url: Option<String>,
    /// One or more of `call.started`, `call.routed`, `call.finished`, `session.created`, `campaign.quarantined`.
    pub events: Option<Vec<String>>,
    /// Whether events are delivered.
    pub enabled: Option<bool>,
}

/// Applies the input on top of `w`, validating what it sets.
fn apply(mut w: Webhook, input: WebhookInput, allow_private: bool) -> Result<Webhook, ApiError> {
    if let Some(url) = input.url {
        if url.len() > MAX_URL {
            return Err(ValidationError::new("url", "at most 2048 characters").into());
        }
        let parsed = callopt_events::check_url(&url, allow_private)
            .map_err(|e| ValidationError::new("url", e.to_string()))?;
        w.url = parsed.to_string();
    }
    if let Some(names) = input.events {
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let e = EventType::parse(name.trim()).ok_or_else(|| {
                ValidationError::new(
                    format!("events[{i}]"),
                    "one of call.started, call.routed, call.finished, session.created, campaign.quarantined",
                )
            })?;
            if !events.contains(&e) {
                events.push(e);
            }
        }
        if events.is_empty() {
            return Err(ValidationError::new("events", "at least one event type").into());
        }
        w.events = events;
    }
    if let Some(enabled) = input.enabled {
        w.enabled = enabled;
    }
    Ok(w)
}

/// `whsec_` and 32 random alphanumerics (190 bits).
fn new_secret() -> Secret {
    Secret(format!(
        "whsec_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    ))
}

/// Creates a webhook and answers its signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookInput,
    responses((status = 201, body = CreatedWebhookDto), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<WebhookInput>,
) -> Result<(StatusCode, axum::Json<CreatedWebhookDto>), ApiError> {
    if input.url.is_none() {
        return Err(ValidationError::new("url", "required").into());
    }
    if input.events.is_none() {
        return Err(ValidationError::new("events", "required").into());
    }
    let base = Webhook {
        url: String::new(),
        events: Vec::new(),
        enabled: true,
    };
    let webhook = apply(base, input, state.webhooks_allow_private)?;
    let secret = new_secret();
    let record = state
        .store
        .create_webhook(account, &webhook, &secret, crate::now_ms())
        .await
        .map_err(ApiError::store("webhook"))?;
    state.announce(account).await?;
    tracing::info!(webhook = record.id, "webhook created");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedWebhookDto {
            webhook: record.into(),
            secret: secret.0,
        }),
    ))
}

/// Lists webhooks.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(ListParams),
    responses((status = 200, body = Listing<WebhookDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<WebhookDto>>, ApiError> {
    let page = state
        .store
        .webhooks(account, params.page()?)
        .await
        .map_err(ApiError::store("webhook"))?;
    Ok(axum::Json(Listing::from_page(page, WebhookDto::from)))
}

/// One webhook.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 200, body = WebhookDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let record = state
        .store
        .webhook(account, id)
        .await
        .map_err(ApiError::store("webhook"))?;
    Ok(axum::Json(record.into()))
}

/// Changes a webhook's URL, events or enabled flag (its secret stays).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookInput,
    responses((status = 200, body = WebhookDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(input): Json<WebhookInput>,
) -> Result<axum::Json<WebhookDto>, ApiError> {
    let current = state
        .store
        .webhook(account, id)
        .await
        .map_err(ApiError::store("webhook"))?;
    let webhook = apply(current.webhook, input, state.webhooks_allow_private)?;
    let record = state
        .store
        .update_webhook(account, id, &webhook, crate::now_ms())
        .await
        .map_err(ApiError::store("webhook"))?;
    state.announce(account).await?;
    Ok(axum::Json(record.into()))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_webhook(account, id)
        .await
        .map_err(ApiError::store("webhook"))?;
    state.announce(account).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One event's delivery to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    /// The idempotency id the receiver sees as `Callopt-Delivery` on every attempt.
    pub id: String,
    /// The event's id (`id` in the body), the same for every webhook that gets it.
    pub event_id: String,
    /// `call.started`, `call.routed`, `call.finished` or `session.created`, `campaign.quarantined`.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, when one came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries, RFC 3339).
    pub next_attempt_at: Option<String>,
    /// When the event happened (RFC 3339).
    pub created_at: String,
    /// When the receiver accepted it (RFC 3339).
    pub delivered_at: Option<String>,
}

impl From<DeliveryRecord> for DeliveryDto {
    fn from(d: DeliveryRecord) -> Self {
        let pending = d.status == callopt_store::DeliveryStatus::Pending;
        Self {
            id: format!("dlv_{}", d.id),
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at.filter(|_| pending).map(timestamp),
            created_at: timestamp(d.created_at),
            delivered_at: d.delivered_at.map(timestamp),
        }
    }
}

/// Lists a webhook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(ListParams),
    responses((status = 200, body = Listing<DeliveryDto>), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<DeliveryDto>>, ApiError> {
    let page = state
        .store
        .deliveries(account, id, params.page()?)
        .await
        .map_err(ApiError::store("webhook"))?;
    Ok(axum::Json(Listing::from_page(page, DeliveryDto::from)))
}
