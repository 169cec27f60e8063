//! Calls: the record of every routed call, its attempts and the visit it is attributed to.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::ApiError;
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use callopt_domain::{CallOutcome, ValidationError, E164};
use callopt_store::{AttemptRecord, CallFilter, CallRecord, SessionRecord, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One attempt of a call: one target tried.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDto {
    /// Order within the call, from 1.
    pub seq: u32,
    /// The target tried; `null` when it was deleted since.
    pub target_id: Option<i64>,
    /// Where the attempt was sent (SIP URI or number).
    pub destination: String,
    /// `answered`, `busy`, `no_answer`, `failed`, `unreachable` or `canceled`; `null` while it
    /// rings or is connected.
    pub outcome: Option<String>,
    /// The SIP final status (or the carrier's equivalent), when one came.
    pub sip_status: Option<u16>,
    /// When it was sent (RFC 3339).
    pub started_at: String,
    /// When it was answered (RFC 3339).
    pub answered_at: Option<String>,
    /// When it ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Milliseconds from sending to answer or end; `null` while it rings.
    pub ring_ms: Option<i64>,
    /// Milliseconds from answer to end; `null` if never answered or still connected.
    pub talk_ms: Option<i64>,
}

impl From<AttemptRecord> for AttemptDto {
    fn from(a: AttemptRecord) -> Self {
        Self {
            seq: a.seq,
            target_id: a.target_id,
            destination: a.destination.to_string(),
            outcome: a.outcome.map(|o| o.as_str().into()),
            sip_status: a.sip_status,
            started_at: timestamp(a.started_at),
            answered_at: a.answered_at.map(timestamp),
            ended_at: a.ended_at.map(timestamp),
            ring_ms: a.answered_at.or(a.ended_at).map(|t| t - a.started_at),
            talk_ms: a.answered_at.zip(a.ended_at).map(|(from, to)| to - from),
        }
    }
}

/// Where the caller came from: the attribution of the visitor session that held the number.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttributionDto {
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
}

impl From<SessionRecord> for AttributionDto {
    fn from(s: SessionRecord) -> Self {
        let a = s.attribution;
        Self {
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
        }
    }
}

/// A call as the API lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDto {
    /// Id (increasing with arrival).
    pub id: i64,
    /// The campaign the tracking number belongs to.
    pub campaign_id: Option<i64>,
    /// The routing plan that routed it.
    pub routing_plan_id: Option<i64>,
    /// The number called, E.164 (or as dialled when it did not parse).
    pub tracking_number: String,
    /// The caller id as presented.
    pub caller: String,
    /// `sip`, or the carrier of a webhook call.
    pub channel: String,
    /// The call's id on its channel (SIP Call-ID, carrier call sid).
    pub external_id: String,
    /// `in_progress`, `answered`, `busy`, `no_answer`, `failed`, `abandoned`, `rejected` or
    /// `interrupted`.
    pub outcome: String,
    /// Why the call was rejected or failed, in words.
    pub reason: Option<String>,
    /// Who ended the connected call: `caller`, `target` or `system`.
    pub hung_up_by: Option<String>,
    /// When the call arrived (RFC 3339).
    pub started_at: String,
    /// When a target answered (RFC 3339).
    pub answered_at: Option<String>,
    /// When the call ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Seconds from the first attempt to the answer (or the end, when none answered); `null`
    /// without attempts or while it rings.
    pub ring_secs: Option<i64>,
    /// Seconds from the answer to the end; `null` if never answered or still connected.
    pub talk_secs: Option<i64>,
    /// The visitor session the call is attributed to.
    pub session_id: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptDto>,
    /// What the business reported the call was worth; `null` until it does.
    pub conversion: Option<super::conversions::ConversionDto>,
}

/// Whole seconds, rounded, of a span in milliseconds.
fn secs(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

impl From<CallRecord> for CallDto {
    fn from(c: CallRecord) -> Self {
        let first = c.attempts.first().map(|a| a.started_at);
        Self {
            id: c.id,
            campaign_id: c.campaign_id,
            routing_plan_id: c.routing_plan_id,
            tracking_number: c.tracking_number.to_string(),
            caller: c.caller.to_string(),
            channel: c.channel.to_string(),
            external_id: c.external_id.to_string(),
            outcome: c.outcome.as_str().into(),
            reason: c.reason,
            hung_up_by: c.hung_up_by.map(|h| h.as_str().into()),
            started_at: timestamp(c.started_at),
            answered_at: c.answered_at.map(timestamp),
            ended_at: c.ended_at.map(timestamp),
            ring_secs: first
                .zip(c.answered_at.or(c.ended_at))
                .map(|(from, to)| secs(to - from)),
            talk_secs: c
                .answered_at
                .zip(c.ended_at)
                .map(|(from, to)| secs(to - from)),
            session_id: c.session_id.as_deref().map(str::to_string),
            attempts: c.attempts.into_iter().map(AttemptDto::from).collect(),
            conversion: None,
        }
    }
}

/// One call, with the attribution of its visitor session.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallDetailDto {
    /// The call.
    #[serde(flatten)]
    pub call: CallDto,
    /// Where the caller came from; `null` when no visitor session held the number.
    pub attribution: Option<AttributionDto>,
    /// Why the Guard flagged the call (`scam_page`: it came on a number first shown on a page
    /// scanned as a scam); `null` when it is not flagged.
    pub guard_flag: Option<String>,
}

/// Filters and pagination of the call listing; every filter narrows it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    /// Calls of this campaign.
    pub campaign_id: Option<String>,
    /// Calls with this outcome (`answered`, `rejected`, …).
    pub outcome: Option<String>,
    /// Calls on this tracking number (E.164).
    pub tracking_number: Option<String>,
    /// Calls from this caller id.
    pub caller: Option<String>,
    /// Calls with an attempt on this target.
    pub target_id: Option<String>,
    /// Calls that started at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Calls that started before this time (RFC 3339).
    pub to: Option<String>,
    /// `oldest` (default) or `newest` first; a page's `next_cursor` goes on in the same order.
    pub order: Option<String>,
    /// How many calls per page (1 to 500, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl CallQuery {
    /// The store's filter, or a validation error naming the parameter.
    fn filter(&self) -> Result<CallFilter, ValidationError> {
        let id = |field: &str, raw: &Option<String>| -> Result<Option<i64>, ValidationError> {
            raw.as_deref()
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| ValidationError::new(field, format!("{v:?} is not an id")))
                })
                .transpose()
        };
        let time = |field: &str, raw: &Option<String>| -> Result<Option<i64>, ValidationError> {
            raw.as_deref()
                .map(|v| {
                    chrono::DateTime::parse_from_rfc3339(v.trim())
                        .map(|t| t.timestamp_millis())
                        .map_err(|_| {
                            ValidationError::new(
                                field,
                                format!("{v:?}: expected RFC 3339, such as 2025-01-31T09:00:00Z"),
                            )
                        })
                })
                .transpose()
        };
        let tracking_number = self.tracking_number.as_deref().map(|n| {
            let n = plus_restored(n);
            match E164::parse("tracking_number", &n, None) {
                Ok(e164) => e164.as_str().to_string(),
                Err(_) => n,
            }
        });
        Ok(CallFilter {
            campaign_id: id("campaign_id", &self.campaign_id)?,
            outcome: self
                .outcome
                .as_deref()
                .map(|o| CallOutcome::parse("outcome", o))
                .transpose()?,
            tracking_number,
            caller: self.caller.as_deref().map(plus_restored),
            target_id: id("target_id", &self.target_id)?,
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            newest_first: match self.order.as_deref().map(str::trim) {
                None | Some("oldest") => false,
                Some("newest") => true,
                Some(_) => return Err(ValidationError::new("order", "oldest or newest")),
            },
        })
    }
}

/// A number from a query string, with the `+` that an unencoded URL turns into a space put
/// back (`?caller=+14155550100` arrives as `" 14155550100"`).
fn plus_restored(raw: &str) -> String {
    let trimmed = raw.trim();
    if raw.starts_with(' ') && trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("+{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// Lists calls, oldest first (or newest with `order=newest`), narrowed by the filters given.
#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(CallQuery),
    responses((status = 200, body = Listing<CallDto>), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(query): Query<CallQuery>,
) -> Result<axum::Json<Listing<CallDto>>, ApiError> {
    let filter = query.filter()?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    let page = state
        .store
        .calls(account, &filter, page)
        .await
        .map_err(ApiError::store("call"))?;
    let ids: Vec<i64> = page.items.iter().map(|c| c.id).collect();
    let conversions = super::conversions::of_calls(&state, account, &ids).await?;
    let mut listing = Listing::from_page(page, CallDto::from);
    for conversion in conversions {
        if let Some(call) = listing
            .items
            .iter_mut()
            .find(|c| c.id == conversion.call_id)
        {
            call.conversion = Some(conversion);
        }
    }
    Ok(axum::Json(listing))
}

/// One call with its attempts and attribution.
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls",
    responses((status = 200, body = CallDetailDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<CallDetailDto>, ApiError> {
    let call = state
        .store
        .call(account, id)
        .await
        .map_err(ApiError::store("call"))?;
    let attribution = match &call.session_id {
        None => None,
        Some(session) => match state.store.session(account, session).await {
            Ok(s) => Some(AttributionDto::from(s)),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(ApiError::store("session")(e)),
        },
    };
    let mut call = CallDto::from(call);
    call.conversion = super::conversions::of_calls(&state, account, &[id])
        .await?
        .pop();
    let guard_flag = state
        .store
        .call_flag(account, id)
        .await
        .map_err(ApiError::store("call"))?;
    Ok(axum::Json(CallDetailDto {
        call,
        attribution,
        guard_flag,
    }))
}

/// Calls per page of the export's store reads.
const EXPORT_PAGE: u32 = 500;

/// The export's columns, in order.
const EXPORT_COLUMNS: [&str; 29] = [
    "id",
    "started_at",
    "answered_at",
    "ended_at",
    "caller",
    "caller_country",
    "tracking_number",
    "campaign_id",
    "routing_plan_id",
    "channel",
    "outcome",
    "reason",
    "hung_up_by",
    "ring_secs",
    "talk_secs",
    "attempts",
    "target_id",
    "session_id",
    "landing_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "conversion_value",
    "conversion_currency",
];

/// One page of calls as CSV rows, with their attribution and conversions.
async fn export_rows(
    state: &AppState,
    account: callopt_domain::AccountId,
    calls: Vec<CallRecord>,
    header: bool,
) -> Result<Vec<u8>, ApiError> {
    let ids: Vec<i64> = calls.iter().map(|c| c.id).collect();
    let sessions: Vec<String> = calls
        .iter()
        .filter_map(|c| c.session_id.as_deref().map(str::to_string))
        .collect();
    let sessions: std::collections::HashMap<String, SessionRecord> = state
        .store
        .sessions(account, &sessions)
        .await
        .map_err(ApiError::store("session"))?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let conversions: std::collections::HashMap<i64, _> =
        super::conversions::of_calls(state, account, &ids)
            .await?
            .into_iter()
            .map(|c| (c.call_id, c))
            .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let unexpected = |e: csv::Error| ApiError::Unexpected(e.into());
    if header {
        w.write_record(EXPORT_COLUMNS).map_err(unexpected)?;
    }
    let text = |v: Option<String>| v.unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for c in calls {
        let country = E164::parse("caller", &c.caller, None)
            .ok()
            .and_then(|n| n.country());
        let target = c
            .attempts
            .iter()
            .rev()
            .find(|a| a.answered_at.is_some())
            .or(c.attempts.last())
            .and_then(|a| a.target_id);
        let attempts = c.attempts.len().to_string();
        let session = c.session_id.as_deref().and_then(|s| sessions.get(s));
        let a = session.map(|s| s.attribution.clone()).unwrap_or_default();
        let conversion = conversions.get(&c.id);
        let call = CallDto::from(c);
        w.write_record([
            call.id.to_string(),
            call.started_at,
            text(call.answered_at),
            text(call.ended_at),
            call.caller,
            text(country),
            call.tracking_number,
            num(call.campaign_id),
            num(call.routing_plan_id),
            call.channel,
            call.outcome,
            text(call.reason),
            text(call.hung_up_by),
            num(call.ring_secs),
            num(call.talk_secs),
            attempts,
            num(target),
            text(call.session_id),
            a.landing_url,
            text(a.referrer),
            text(a.utm_source),
            text(a.utm_medium),
            text(a.utm_campaign),
            text(a.utm_term),
            text(a.utm_content),
            text(a.gclid),
            text(a.fbclid),
            conversion.map(|c| c.value.to_string()).unwrap_or_default(),
            text(conversion.map(|c| c.currency.clone())),
        ])
        .map_err(unexpected)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("{e}")))
}

/// Every call the filters select, as CSV (one row per call, with its attribution and
/// conversion), streamed page by page so that any number of calls can be exported.
#[utoipa::path(get, path = "/v1/calls/export", tag = "calls", params(CallQuery),
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Account(account): Account,
    Query(query): Query<CallQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    let filter = query.filter()?;
    // The first page is read before answering, so that an error is still a problem answer.
    let first = state
        .store
        .calls(
            account,
            &filter,
            callopt_store::PageRequest {
                after: None,
                limit: EXPORT_PAGE,
            },
        )
        .await
        .map_err(ApiError::store("call"))?;
    let next = first.next_after;
    let head = export_rows(&state, account, first.items, true).await?;
    let rest = futures_util::stream::unfold(next, move |after| {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let after = after?;
            let page = callopt_store::PageRequest {
                after: Some(after),
                limit: EXPORT_PAGE,
            };
            let result = match state.store.calls(account, &filter, page).await {
                Ok(page) => {
                    let next = page.next_after;
                    match export_rows(&state, account, page.items, false).await {
                        Ok(bytes) => Ok((bytes, next)),
                        Err(e) => Err(std::io::Error::other(format!("{e:?}"))),
                    }
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            // A failure ends the body early: the client sees a truncated download.
            match result {
                Ok((bytes, next)) => Some((Ok(bytes), next)),
                Err(e) => {
                    tracing::warn!(error = %e, "call export ended early");
                    Some((Err(e), None))
                }
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(rest);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"callopt-calls.csv\"",
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}
