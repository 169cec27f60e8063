//! Visitor sessions and DNI refusals, as the account reads them back.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::ApiError;
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use callopt_store::{RefusalRecord, SessionRecord};
use serde::Serialize;
use utoipa::ToSchema;

/// A visitor session with its attribution.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    /// Session id.
    pub id: String,
    /// Campaign id.
    pub campaign_id: i64,
    /// The tag's visitor id.
    pub visitor: String,
    /// The number shown, E.164.
    pub number: String,
    /// False when the visitor got the overflow (default) number.
    pub attributed: bool,
    /// Landing page URL.
    pub landing_url: String,
    /// Referrer.
    pub referrer: Option<String>,
    /// utm_source.
    pub utm_source: Option<String>,
    /// utm_medium.
    pub utm_medium: Option<String>,
    /// utm_campaign.
    pub utm_campaign: Option<String>,
    /// utm_term.
    pub utm_term: Option<String>,
    /// utm_content.
    pub utm_content: Option<String>,
    /// Google click id.
    pub gclid: Option<String>,
    /// Meta click id.
    pub fbclid: Option<String>,
    /// Microsoft click id.
    pub msclkid: Option<String>,
    /// Visitor country.
    pub country: Option<String>,
    /// Visitor language.
    pub language: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// First request (RFC 3339).
    pub first_seen: String,
    /// Latest request (RFC 3339).
    pub last_seen: String,
    /// End of the lease (RFC 3339).
    pub lease_expires_at: String,
}

impl From<SessionRecord> for SessionDto {
    fn from(s: SessionRecord) -> Self {
        let a = s.attribution;
        Self {
            id: s.id,
            campaign_id: s.campaign_id,
            visitor: s.visitor,
            number: s.number_e164,
            attributed: s.attributed,
            landing_url: a.landing_url,
            referrer: a.referrer,
            utm_source: a.utm_source,
            utm_medium: a.utm_medium,
            utm_campaign: a.utm_campaign,
            utm_term: a.utm_term,
            utm_content: a.utm_content,
            gclid: a.gclid,
            fbclid: a.fbclid,
            msclkid: a.msclkid,
            country: s.country,
            language: s.language,
            user_agent: s.user_agent,
            first_seen: timestamp(s.first_seen),
            last_seen: timestamp(s.last_seen),
            lease_expires_at: timestamp(s.lease_expires_at),
        }
    }
}

/// One visitor session.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "dni",
    responses((status = 200, body = SessionDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<axum::Json<SessionDto>, ApiError> {
    let s = state
        .store
        .session(account, &id)
        .await
        .map_err(ApiError::store("session"))?;
    Ok(axum::Json(s.into()))
}

/// A refused DNI request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalDto {
    /// Id.
    pub id: i64,
    /// Campaign id.
    pub campaign_id: Option<i64>,
    /// The Origin or Referer presented.
    pub origin: Option<String>,
    /// The page URL the tag reported.
    pub page_url: Option<String>,
    /// `unverified_origin`, `missing_origin` or `quarantined_campaign`.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

impl From<RefusalRecord> for RefusalDto {
    fn from(r: RefusalRecord) -> Self {
        Self {
            id: r.id,
            campaign_id: r.refusal.campaign_id,
            origin: r.refusal.origin,
            page_url: r.refusal.page_url,
            reason: r.refusal.reason,
            at: timestamp(r.refusal.at),
        }
    }
}

/// Lists DNI refusals: requests for numbers from pages that are not verified.
#[utoipa::path(get, path = "/v1/dni/refusals", tag = "dni", params(ListParams),
    responses((status = 200, body = Listing<RefusalDto>)), security(("api_key" = [])))]
pub async fn refusals(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<RefusalDto>>, ApiError> {
    let page = state
        .store
        .refusals(account, params.page()?)
        .await
        .map_err(ApiError::store("refusal"))?;
    Ok(axum::Json(Listing::from_page(page, RefusalDto::from)))
}
