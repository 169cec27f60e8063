//! The carriers' voice webhooks: `/carriers/{key}/voice` (a call comes in), `/dial` (the dial
//! action: an attempt ended) and `/status` (the call ended). Each request is verified with the
//! connection's credentials, turned into a switchboard step, and answered in the carrier's XML.
//! The failover cursor travels in the dial action URL, signed, so that no per-call state is kept
//! here: a call survives a restart of the service (it is taken back from the store).

use crate::problem::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callopt_calls::{CallState, Next};
use callopt_carriers::params::{self, DialStatus, ParamError};
use callopt_carriers::signature;
use callopt_carriers::xml::{render, Answer, Dialled};
use callopt_carriers::{Carrier, Cursor, Params, Refusal};
use callopt_domain::{AttemptOutcome, CallOutcome, Destination, HungUpBy};
use callopt_store::{CarrierConnectionRecord, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The largest webhook body taken (carriers send a few dozen short parameters).
pub const MAX_BODY: usize = 64 * 1024;

/// Most Telnyx signatures remembered inside the replay window.
const MAX_REMEMBERED: usize = 100_000;

/// What the webhooks share.
pub struct Webhooks {
    /// Signs and checks failover cursors; one per database, so every node and restart agree.
    cursor_key: Vec<u8>,
    /// The base URL carriers reach the service at, when configured.
    public_url: Option<String>,
    /// Telnyx requests seen in the replay window (path and signature → when they may be
    /// forgotten, s): a captured request replayed within the window is refused too. The path is
    /// part of the key because Telnyx signs the body, not the URL.
    seen: Mutex<HashMap<String, i64>>,
}

impl Webhooks {
    /// Loads (or creates, on first start) the cursor key from the store.
    pub async fn load(
        store: &Arc<dyn Store>,
        public_url: Option<String>,
    ) -> Result<Self, StoreError> {
        let fresh: [u8; 32] = rand::random();
        let cursor_key = store.server_secret("carrier_cursor", &fresh).await?;
        Ok(Self {
            cursor_key,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The scheme and authority carriers used for this request.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.public_url {
            return u.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        format!("{scheme}://{host}")
    }

    /// Remembers a Telnyx request; false when it was seen inside the window already.
    fn first_sighting(&self, request: &str, now_secs: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, forget_at| *forget_at > now_secs);
        }
        let forget_at = now_secs + 2 * signature::TELNYX_WINDOW_SECS;
        match seen.get(request) {
            Some(t) if *t > now_secs => false,
            _ => {
                seen.insert(request.to_string(), forget_at);
                true
            }
        }
    }
}

/// One verified webhook request: its connection, carrier and parameters.
struct Verified {
    /// The connection whose URL was called.
    connection: CarrierConnectionRecord,
    /// Its carrier.
    carrier: Carrier,
    /// The request's parameters.
    params: Params,
    /// The scheme and authority the carrier used.
    base: String,
}

fn refused(why: &Refusal, connection: &CarrierConnectionRecord) -> ApiError {
    metrics::counter!("callopt_carrier_webhooks_refused_total", "carrier" => connection.connection.carrier.clone())
        .increment(1);
    tracing::warn!(
        connection = connection.id,
        carrier = %connection.connection.carrier,
        reason = %why,
        "carrier webhook refused"
    );
    ApiError::Forbidden {
        detail: why.to_string(),
    }
}

/// The body's parameters: a form, or a JSON object whose members are strings or numbers.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiError> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if kind.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadBody(format!("the body is not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::BadBody("the body is not a JSON object".into()))?;
        let mut p = Params::default();
        for (k, v) in object {
            match v {
                serde_json::Value::String(s) => p.push(k, s),
                serde_json::Value::Number(n) => p.push(k, &n.to_string()),
                serde_json::Value::Bool(b) => p.push(k, &b.to_string()),
                _ => {}
            }
        }
        return Ok(p);
    }
    if !(kind.is_empty() || kind.starts_with("application/x-www-form-urlencoded")) {
        return Err(ApiError::BadBody(
            "expected an application/x-www-form-urlencoded or JSON body".into(),
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::BadBody("the form body is not UTF-8".into()));
    }
    Ok(Params::from_form(body))
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Refusal> {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .ok_or(Refusal::MissingSignature(name))
}

/// Checks the carrier's signature over this request.
fn verify_signature(
    state: &Webhooks,
    carrier: Carrier,
    secret: &str,
    url: &str,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    match carrier {
        Carrier::Twilio => {
            signature::twilio(secret, url, params, header(headers, "x-twilio-signature")?)
        }
        Carrier::SignalWire => {
            let sig = header(headers, "x-signalwire-signature")
                .or_else(|_| header(headers, "x-twilio-signature"))?;
            signature::signalwire(secret, url, params, body, sig)
        }
        Carrier::Plivo => signature::plivo(
            secret,
            url,
            params,
            header(headers, "x-plivo-signature-v3-nonce")?,
            header(headers, "x-plivo-signature-v3")?,
        ),
        Carrier::Telnyx => {
            let sig = header(headers, "telnyx-signature-ed25519")?;
            let ts = header(headers, "telnyx-timestamp")?;
            let now = crate::now_ms() / 1000;
            signature::telnyx(secret, ts, body, sig, now)?;
            if state.first_sighting(&format!("{url} {sig}"), now) {
                Ok(())
            } else {
                Err(Refusal::Replayed)
            }
        }
    }
}

/// Finds the connection, reads the body and verifies the signature: the steps every webhook
/// takes before it may change anything.
async fn verified(
    state: &AppState,
    key: &str,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, ApiError> {
    let connection = match state.store.carrier_connection_by_key(key).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("carrier connection")),
        Err(e) => return Err(ApiError::store("carrier connection")(e)),
    };
    let carrier = Carrier::parse(&connection.connection.carrier).ok_or_else(|| {
        ApiError::Unexpected(anyhow::anyhow!(
            "carrier connection {} names an unknown carrier",
            connection.id
        ))
    })?;
    let params = parse_body(headers, body)?;
    let base = state.carriers.base_url(headers);
    let path = uri.0.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{base}{path}");
    let secret = connection.connection.secret.0.as_str();
    if let Err(why) = verify_signature(
        &state.carriers,
        carrier,
        secret,
        &url,
        &params,
        headers,
        body,
    ) {
        return Err(refused(&why, &connection));
    }
    if let (Some(ours), Some(theirs)) = (
        connection.connection.carrier_account.as_deref(),
        params.get("AccountSid"),
    ) {
        if ours != theirs {
            return Err(refused(&Refusal::BadSignature, &connection));
        }
    }
    Ok(Verified {
        connection,
        carrier,
        params,
        base,
    })
}

fn xml(carrier: Carrier, answer: &Answer<'_>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        render(carrier, answer),
    )
        .into_response()
}

fn bad_param(e: ParamError) -> ApiError {
    ApiError::BadBody(e.to_string())
}

/// The answer to the switchboard's next step: dial the target (with a cursor for the attempt)
/// or end the call.
fn answer_next(
    state: &AppState,
    v: &Verified,
    call: &CallState,
    next: &Next,
    caller: &str,
    first: bool,
) -> Response {
    match next {
        Next::Target {
            target,
            destination,
            ring_timeout,
        } => {
            let cursor = Cursor {
                call: call.key as i64,
                seq: call.seq,
                target: *target,
                tried: call.tried.clone(),
                issued_ms: crate::now_ms(),
            };
            let action = format!(
                "{}/carriers/{}/dial?c={}",
                v.base,
                v.connection.key,
                cursor.encode(&state.carriers.cursor_key)
            );
            let to = match destination {
                Destination::Sip(uri) => Dialled::Sip(uri.as_str()),
                Destination::Number(n) => Dialled::Number(n.as_str()),
            };
            let timeout_secs = ring_timeout.as_secs().clamp(5, 600) as u32;
            xml(
                v.carrier,
                &Answer::Dial {
                    to,
                    timeout_secs,
                    caller_id: Some(caller),
                    action_url: &action,
                },
            )
        }
        Next::Reject { status, .. } if first => xml(
            v.carrier,
            &Answer::Reject {
                busy: *status == 486,
            },
        ),
        Next::Reject { .. } => xml(v.carrier, &Answer::Hangup),
    }
}

/// A call comes in on a tracking number: route it.
pub async fn voice(
    State(state): State<AppState>,
    crate::problem::Path(key): crate::problem::Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = verified(&state, &key, &uri, &headers, &body).await?;
    let incoming = params::incoming(v.carrier, &v.params).map_err(|e| bad_param(e.into()))?;
    let owned = state.switchboard.owner(&incoming.to) == Some(v.connection.account);
    if !owned || !v.connection.connection.numbers.contains(&incoming.to) {
        tracing::warn!(
            connection = v.connection.id,
            number = %incoming.to,
            "carrier webhook for a number the connection does not serve"
        );
        return Err(ApiError::Forbidden {
            detail: format!(
                "{} is not a tracking number this carrier connection serves",
                incoming.to
            ),
        });
    }
    let channel = v.carrier.as_str();
    if let Some(live) = state.switchboard.find_call(channel, &incoming.call_id) {
        // The carrier asks again (it retries a webhook whose answer it did not get): the same
        // attempt, not a second call.
        if let Some(next) = live.dialling.clone() {
            return Ok(answer_next(&state, &v, &live, &next, &incoming.from, true));
        }
        return Err(ApiError::Conflict(format!(
            "call {} (the carrier's {})",
            live.key, incoming.call_id
        )));
    }
    let board = &state.switchboard;
    let confirms = state.shared.is_some();
    let (key, mut next) = board.start_call_with(
        channel,
        &incoming.call_id,
        &incoming.to,
        &incoming.from,
        confirms,
    );
    if let (Some(shared), Some(key)) = (&state.shared, key) {
        next = shared.reserve_next(board, key, next, |_| true).await;
    }
    let call = key
        .and_then(|k| state.switchboard.call_state(k))
        .unwrap_or(CallState {
            key: key.unwrap_or(0),
            seq: 0,
            target: None,
            answered: false,
            tried: Vec::new(),
            external_id: incoming.call_id.clone(),
            dialling: None,
        });
    Ok(answer_next(&state, &v, &call, &next, &incoming.from, true))
}

/// The query of the dial action URL.
#[derive(serde::Deserialize)]
pub struct DialQuery {
    /// The failover cursor.
    c: Option<String>,
}

/// The call this cursor is about, as the switchboard holds it (taken back from the store after
/// a restart), or None when it is over.
async fn call_of(
    state: &AppState,
    v: &Verified,
    cursor: &Cursor,
) -> Result<Option<CallState>, ApiError> {
    let Ok(key) = u64::try_from(cursor.call) else {
        return Ok(None);
    };
    if let Some(live) = state.switchboard.call_state(key) {
        return Ok(Some(live));
    }
    let record = match state.store.call(v.connection.account, cursor.call).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(ApiError::store("call")(e)),
    };
    let open = matches!(
        record.outcome,
        CallOutcome::InProgress | CallOutcome::Interrupted
    );
    if !open || *record.channel != *v.carrier.as_str() {
        return Ok(None);
    }
    Ok(state.switchboard.resume(record, cursor.tried.clone()))
}

/// A dial attempt ended: the next target, or the end of the call.
pub async fn dial(
    State(state): State<AppState>,
    crate::problem::Path(key): crate::problem::Path<String>,
    crate::problem::Query(query): crate::problem::Query<DialQuery>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = verified(&state, &key, &uri, &headers, &body).await?;
    let now = crate::now_ms();
    let cursor = query
        .c
        .as_deref()
        .ok_or(Refusal::BadCursor)
        .and_then(|c| Cursor::decode(c, &state.carriers.cursor_key, now))
        .map_err(|why| refused(&why, &v.connection))?;
    let ended = params::dial_ended(v.carrier, &v.params).map_err(bad_param)?;
    let Some(call) = call_of(&state, &v, &cursor).await? else {
        tracing::info!(call = cursor.call, "dial action for a call that is over");
        return Ok(xml(v.carrier, &Answer::Hangup));
    };
    if call.external_id != ended.call_id {
        return Err(refused(&Refusal::BadCursor, &v.connection));
    }
    if call.seq != cursor.seq || call.target != Some(cursor.target) {
        return Err(ApiError::Conflict(format!(
            "attempt {} of call {} was reported already",
            cursor.seq, cursor.call
        )));
    }
    let board = &state.switchboard;
    let outcome = match ended.status {
        DialStatus::Answered => {
            let talk_ms = i64::from(ended.talk_secs.unwrap_or(0)) * 1000;
            board.answered_for(call.key, cursor.target, 200, talk_ms);
            let by = if ended.caller_gone {
                HungUpBy::Caller
            } else {
                HungUpBy::Target
            };
            board.ended(call.key, by, true);
            if let Some(shared) = &state.shared {
                shared.count_answer(board, call.key, cursor.target).await;
                shared.let_go(call.key, cursor.target).await;
            }
            return Ok(xml(v.carrier, &Answer::Hangup));
        }
        DialStatus::Canceled => {
            board.ended(call.key, HungUpBy::Caller, false);
            if let Some(shared) = &state.shared {
                shared.let_go(call.key, cursor.target).await;
            }
            return Ok(xml(v.carrier, &Answer::Hangup));
        }
        DialStatus::Busy => AttemptOutcome::Busy,
        DialStatus::NoAnswer => AttemptOutcome::NoAnswer,
        DialStatus::Failed => AttemptOutcome::Failed,
    };
    let mut next = board.attempt_failed(call.key, cursor.target, outcome, None);
    if let Some(shared) = &state.shared {
        shared.let_go(call.key, cursor.target).await;
        next = shared.reserve_next(board, call.key, next, |_| true).await;
    }
    let after = board.call_state(call.key).unwrap_or(call);
    let caller = params::normalize_number(v.params.get("From").unwrap_or_default());
    Ok(answer_next(&state, &v, &after, &next, &caller, false))
}

/// The carrier's status callback (Plivo's hangup URL): the call is over.
pub async fn status(
    State(state): State<AppState>,
    crate::problem::Path(key): crate::problem::Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let v = verified(&state, &key, &uri, &headers, &body).await?;
    let ended = params::call_ended(v.carrier, &v.params).map_err(|e| bad_param(e.into()))?;
    if !ended.is_final {
        return Ok(StatusCode::NO_CONTENT);
    }
    let Some(call) = state
        .switchboard
        .find_call(v.carrier.as_str(), &ended.call_id)
    else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let by = match ended.by_caller {
        Some(false) => HungUpBy::Target,
        _ => HungUpBy::Caller,
    };
    state.switchboard.ended(call.key, by, call.answered);
    if let (Some(shared), Some(target)) = (&state.shared, call.target) {
        shared.let_go(call.key, target).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
