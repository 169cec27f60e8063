//! The DNI endpoints the tag and pages call: `POST /v1/dni/sessions` and the static feeds.
//! No API key: a request is served only when its `Origin` (or `Referer`) is a verified domain of
//! the campaign, and refused — with the refusal recorded — otherwise (fail closed).

use crate::dni::{CampaignEntry, LeaseSession, PoolState, ReplaceDto, RENEWAL_WRITE_INTERVAL_MS};
use crate::problem::ApiError;
use crate::problem::{Path, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callopt_calls::{Hold, Leased, SharedLeases};
use callopt_dni::{Assignment, VisitorProfile};
use callopt_domain::campaign::source_number;
use callopt_domain::{AssignmentMode, Attribution, DomainHost, VisitorId, E164};
use callopt_store::{Refusal, SessionRecord, SessionWrite};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

/// What the tag sends.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionRequest {
    /// The campaign key (`data-campaign`).
    pub campaign: String,
    /// The tag's first-party visitor id.
    pub visitor: String,
    /// The page URL (UTM fields and click ids are read from it).
    pub page_url: String,
    /// `document.referrer`.
    pub referrer: Option<String>,
}

/// What the tag gets back.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAnswer {
    /// Whether the tag should replace the page's numbers (false: leave the page as it is).
    pub swap: bool,
    /// The visitor session, when one was opened or renewed.
    pub session: Option<String>,
    /// The number to show, E.164.
    pub number: String,
    /// The number formatted for the visitor's country.
    pub display: String,
    /// The numbers on the page to replace.
    #[schema(value_type = Vec<ReplaceDto>)]
    pub replace: Arc<Vec<ReplaceDto>>,
    /// End of the lease (RFC 3339), when there is one.
    pub expires_at: Option<String>,
    /// Length of the lease in seconds.
    pub lease_seconds: u32,
    /// When the tag should renew the lease while the page stays open.
    pub renew_after_seconds: u32,
    /// False when the number is the overflow (default) number: calls on it cannot be tied to
    /// this visitor.
    pub attributed: bool,
}

/// Most bytes accepted in a DNI request body.
pub const MAX_BODY: usize = 16 * 1024;

fn cors(headers: &mut HeaderMap, origin: Option<&HeaderValue>) {
    if let Some(o) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The page host a request comes from: `Origin`, or lacking it (or `null`), `Referer`.
fn page_host(headers: &HeaderMap) -> (Option<String>, Option<DomainHost>) {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let presented = value(header::ORIGIN)
        .filter(|o| *o != "null")
        .or_else(|| value(header::REFERER))
        .map(|s| s.chars().take(512).collect::<String>());
    let host = presented.as_deref().and_then(DomainHost::from_origin);
    (presented, host)
}

/// Answers CORS preflights for callers that send `application/json` (the tag sends
/// `text/plain` and needs none).
pub async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    cors(h, headers.get(header::ORIGIN));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// Opens or renews a visitor session and answers the tracking number to show.
#[utoipa::path(post, path = "/v1/dni/sessions", tag = "dni",
    request_body(content = SessionRequest, content_type = "application/json",
        description = "Also accepted as text/plain, which spares browsers a CORS preflight."),
    responses((status = 200, body = SessionAnswer),
        (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem, description = "The page's origin is not a verified domain of the campaign"),
        (status = 404, body = crate::problem::Problem)))]
pub async fn sessions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let answer = match body {
        Ok(body) => serve_session(&state, peer, &headers, &body).await,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge(MAX_BODY))
        }
        Err(rejection) => Err(ApiError::BadBody(rejection.body_text())),
    };
    let mut response = match answer {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    };
    cors(response.headers_mut(), origin.as_ref());
    response
}

async fn serve_session(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SessionAnswer, ApiError> {
    let request: SessionRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadBody(format!("expected a JSON session request: {e}")))?;
    let entry = state
        .dni
        .campaign(&request.campaign)
        .ok_or(ApiError::NotFound("campaign"))?;
    check_origin(state, &entry, headers, Some(&request.page_url))?;
    let visitor = VisitorId::parse("visitor", &request.visitor)?;
    let attribution = Attribution::parse(&request.page_url, request.referrer.as_deref())?;
    let country = state.geo.country(headers, Some(peer));
    let language = crate::geo::preferred_language(headers);
    let now = crate::now_ms();
    let visit = Visit {
        dni: &state.dni,
        entry: &entry,
        visitor,
        attribution,
        country,
        language,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        now,
    };
    let shared = (state.leases.as_ref())
        .zip(entry.campaign.pool_id)
        .zip(entry.pool.as_ref());
    let (answer, write, hold) = match (entry.campaign.assignment, shared) {
        (AssignmentMode::PerVisitor, Some(((leases, pool_id), pool))) => {
            match per_visitor_shared(&visit, leases, pool_id, pool).await {
                Ok(served) => served,
                Err(e) => {
                    metrics::counter!("callopt_shared_leases_errors_total").increment(1);
                    tracing::warn!(error = %e, "shared leases unreachable: leasing on this node's");
                    with_no_hold(per_visitor(&visit))
                }
            }
        }
        (AssignmentMode::PerVisitor, _) => with_no_hold(per_visitor(&visit)),
        (AssignmentMode::PerSource, _) => with_no_hold(per_source(&visit)),
    };
    // A new session is committed before the visitor is told its number (it must survive a
    // crash); a renewal only extends a committed lease, so it is queued and not waited for.
    let written = match write {
        Some(w @ SessionWrite::Renew { .. }) => state.writer.queue(w).await,
        Some(w) => state.writer.write(w).await,
        None => Ok(()),
    };
    written.map_err(|e| ApiError::Unexpected(e.into()))?;
    if let (Some(hold), Some(leases)) = (hold, state.leases.clone()) {
        tokio::spawn(async move {
            if let Err(e) = leases.announce(&hold).await {
                tracing::warn!(error = %e, "lease not announced to the other nodes");
            }
        });
    }
    // Calls on the number while the lease lives are attributed to this session.
    if let (true, Some(session)) = (answer.attributed, &answer.session) {
        state.switchboard.hold(
            &answer.number,
            session,
            visit.language.as_deref(),
            visit.now + visit.idle_ms(),
        );
    }
    Ok(answer)
}

/// Refuses, and records the refusal, unless the request's page is a verified domain of the
/// campaign.
fn check_origin(
    state: &AppState,
    entry: &CampaignEntry,
    headers: &HeaderMap,
    page_url: Option<&str>,
) -> Result<(), ApiError> {
    let (presented, host) = page_host(headers);
    let page_quarantined = page_url.is_some_and(|u| entry.page_quarantined(u));
    let reason = match &host {
        Some(h) if entry.serves(h) && !entry.quarantined && !page_quarantined => return Ok(()),
        Some(h) if entry.serves(h) && entry.quarantined => "quarantined_campaign",
        Some(h) if entry.serves(h) => "quarantined_page",
        Some(_) => "unverified_origin",
        None => "missing_origin",
    };
    metrics::counter!("callopt_dni_requests_total", "outcome" => "refused").increment(1);
    tracing::info!(campaign = entry.campaign.id, origin = ?presented, reason, "DNI refused");
    let refusal = Refusal {
        account: Some(entry.account),
        campaign_id: Some(entry.campaign.id),
        origin: presented.clone(),
        page_url: page_url.map(|u| u.chars().take(2048).collect()),
        reason: reason.into(),
        at: crate::now_ms(),
    };
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_refusal(&refusal).await {
            tracing::warn!(error = %e, "could not record a DNI refusal");
        }
    });
    Err(ApiError::Forbidden {
        detail: match presented {
            Some(_) if reason == "quarantined_campaign" => {
                "this campaign is quarantined by the Guard: no tracking number is served".into()
            }
            Some(_) if reason == "quarantined_page" => {
                "this page is quarantined by the Guard: no tracking number is served on it".into()
            }
            Some(o) => format!(
                "{o} is not a verified domain of this campaign: no tracking number is served there"
            ),
            None => "requests without an Origin or Referer are not served".into(),
        },
    })
}

/// One DNI request, validated.
struct Visit<'a> {
    dni: &'a crate::dni::Dni,
    entry: &'a CampaignEntry,
    visitor: VisitorId,
    attribution: Attribution,
    country: Option<String>,
    language: Option<String>,
    user_agent: Option<String>,
    now: i64,
}

impl Visit<'_> {
    fn answer(
        &self,
        number: &E164,
        session: Option<String>,
        expires_at: Option<i64>,
        attributed: bool,
    ) -> SessionAnswer {
        let lease = self.entry.campaign.idle_timeout_secs;
        SessionAnswer {
            swap: true,
            session,
            number: number.to_string(),
            display: self
                .dni
                .formats(number)
                .for_visitor(self.display_country())
                .to_string(),
            replace: self.entry.replace.clone(),
            expires_at: expires_at.map(crate::api::timestamp),
            lease_seconds: lease,
            renew_after_seconds: (lease / 2).max(30),
            attributed,
        }
    }

    /// The country whose conventions the number is written in: the visitor's, or when unknown,
    /// that of the campaign's default number (the page was written for its readers).
    fn display_country(&self) -> Option<&str> {
        self.country
            .as_deref()
            .or(self.entry.default_country.as_deref())
    }

    fn not_triggered(&self) -> SessionAnswer {
        metrics::counter!("callopt_dni_requests_total", "outcome" => "not_triggered").increment(1);
        let mut a = self.answer(&self.entry.campaign.default_number, None, None, false);
        a.swap = false;
        a
    }

    fn record(
        &self,
        id: &str,
        number_id: Option<i64>,
        number: &E164,
        attributed: bool,
        expires: i64,
    ) -> SessionWrite {
        SessionWrite::Insert(Box::new(SessionRecord {
            id: id.to_string(),
            account: self.entry.account,
            campaign_id: self.entry.campaign.id,
            visitor: self.visitor.0.clone(),
            number_id,
            number_e164: number.to_string(),
            attributed,
            attribution: self.attribution.clone(),
            country: self.country.clone(),
            language: self.language.clone(),
            user_agent: self.user_agent.clone(),
            first_seen: self.now,
            last_seen: self.now,
            lease_expires_at: expires,
        }))
    }

    fn idle_ms(&self) -> i64 {
        i64::from(self.entry.campaign.idle_timeout_secs) * 1000
    }
}

/// A session id: the creation time in milliseconds (11 base-36 digits), then 16 random
/// characters. Time first, so that new sessions land at the end of the id index instead of on
/// a random page of it; the random part keeps ids unguessable.
fn new_session_id(now: i64) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    let mut id = String::with_capacity(31);
    id.push_str("ses_");
    let mut digits = [b'0'; 11];
    let mut n = now.max(0) as u64;
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    id.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
    id.push_str(&Alphanumeric.sample_string(&mut rand::rng(), 16));
    id
}

fn per_visitor(v: &Visit<'_>) -> (SessionAnswer, Option<SessionWrite>) {
    let campaign = &v.entry.campaign;
    let Some(pool) = &v.entry.pool else {
        return overflow(v);
    };
    let mut guard = pool.lock().expect("pool lock");
    let PoolState {
        pool, session_of, ..
    } = &mut *guard;
    if pool.lease_of(&v.visitor, v.now).is_none() && !campaign.trigger.fires(&v.attribution.query) {
        return (v.not_triggered(), None);
    }
    let profile = VisitorProfile {
        visitor: &v.visitor,
        country: v.country.as_deref(),
        language: v.language.as_deref(),
    };
    match pool.assign(&profile, v.now, v.idle_ms()) {
        Assignment::Renewed {
            number_id,
            expires_at,
        } => {
            let number = pool
                .number(number_id)
                .expect("leased number is in the pool")
                .e164
                .clone();
            let session = session_of.get_mut(&v.visitor);
            let id = session.as_ref().map(|s| s.id.clone());
            let write = session
                .filter(|s| expires_at - s.written_until >= RENEWAL_WRITE_INTERVAL_MS)
                .map(|s| {
                    s.written_until = expires_at;
                    SessionWrite::Renew {
                        id: s.id.clone(),
                        last_seen: v.now,
                        lease_expires_at: expires_at,
                    }
                });
            drop(guard);
            metrics::counter!("callopt_dni_requests_total", "outcome" => "renewed").increment(1);
            (v.answer(&number, id, Some(expires_at), true), write)
        }
        Assignment::New {
            number_id,
            expires_at,
            ..
        } => {
            let number = pool
                .number(number_id)
                .expect("leased number is in the pool")
                .e164
                .clone();
            let id = new_session_id(v.now);
            let session = LeaseSession {
                id: id.clone(),
                written_until: expires_at,
                shared_until: 0,
            };
            session_of.insert(v.visitor.clone(), session);
            drop(guard);
            metrics::counter!("callopt_dni_requests_total", "outcome" => "new").increment(1);
            let write = v.record(&id, Some(number_id), &number, true, expires_at);
            (
                v.answer(&number, Some(id), Some(expires_at), true),
                Some(write),
            )
        }
        Assignment::Exhausted => {
            drop(guard);
            overflow(v)
        }
    }
}

/// What serving a visit gives: the answer, what to write to the store, and the lease to
/// announce to the other nodes.
type Served = (SessionAnswer, Option<SessionWrite>, Option<Hold>);

fn with_no_hold((answer, write): (SessionAnswer, Option<SessionWrite>)) -> Served {
    (answer, write, None)
}

/// How many numbers are offered to the shared leases at once, and at most how many times.
const OFFERED: usize = 8;
const OFFERS: usize = 6;
/// The numbers offered are a random choice among this many times as many of the next free
/// ones, kept in their order: every node's copy of the pool has the same order, and nodes that
/// all offered the very next ones would mostly offer each other's new leases.
const SPREAD: usize = 4;
/// Numbers this node offered, marked in the pool's state while the request is under way so
/// that its concurrent requests offer others; unmarked when dropped.
struct Offered<'a> {
    pool: &'a Mutex<PoolState>,
    numbers: Vec<i64>,
}

impl<'a> Offered<'a> {
    /// Nothing offered (the visitor may only renew).
    fn none(pool: &'a Mutex<PoolState>) -> Self {
        Self {
            pool,
            numbers: Vec::new(),
        }
    }

    /// A random choice, in order, of the next free numbers for the visitor, preferring those
    /// no other request here offers (all of them if there are no others).
    fn choose(pool: &'a Mutex<PoolState>, who: &VisitorProfile<'_>, now: i64) -> Self {
        use rand::seq::index::sample;
        let mut state = pool.lock().expect("pool lock");
        let PoolState {
            pool: copy,
            offered,
            ..
        } = &mut *state;
        let mut window = copy.candidates(who, now, OFFERED * SPREAD + offered.len());
        if window.iter().any(|n| !offered.contains_key(n)) {
            window.retain(|n| !offered.contains_key(n));
        }
        window.truncate(OFFERED * SPREAD);
        let mut picks =
            sample(&mut rand::rng(), window.len(), OFFERED.min(window.len())).into_vec();
        picks.sort_unstable();
        let numbers: Vec<i64> = picks.into_iter().map(|i| window[i]).collect();
        for n in &numbers {
            *offered.entry(*n).or_default() += 1;
        }
        Self { pool, numbers }
    }
}

impl Drop for Offered<'_> {
    fn drop(&mut self) {
        if self.numbers.is_empty() {
            return;
        }
        let mut state = self.pool.lock().expect("pool lock");
        for n in &self.numbers {
            if let Some(count) = state.offered.get_mut(n) {
                *count -= 1;
                if *count == 0 {
                    state.offered.remove(n);
                }
            }
        }
    }
}

/// Per-visitor assignment with leases shared between nodes. Redis renews the visitor's lease,
/// wherever it was made, or takes the first of the numbers this node's copy of the pool
/// offers that no visitor holds; the copy learns whatever Redis answers, including who holds
/// the numbers it could not take, and offers the next ones. No number taken after a few
/// offers: the overflow number, as when the pool is exhausted.
async fn per_visitor_shared(
    v: &Visit<'_>,
    leases: &SharedLeases,
    pool_id: i64,
    pool: &Mutex<PoolState>,
) -> Result<Served, callopt_calls::RedisError> {
    let triggered = v.entry.campaign.trigger.fires(&v.attribution.query);
    let profile = VisitorProfile {
        visitor: &v.visitor,
        country: v.country.as_deref(),
        language: v.language.as_deref(),
    };
    let (idle, now) = (v.idle_ms(), v.now);
    // A lease this node renewed in Redis within the last minute is held there past the end
    // told now: renewed here alone, as most page views are.
    if let Some((number_id, session)) = renewed_lately(pool, &v.visitor, now + idle, now) {
        if let Ok(served) = take_lease(v, pool, pool_id, number_id, session, false, None) {
            return Ok(served);
        }
    }
    let shared_until = now + idle + SHARED_SLACK_MS;
    let new_session = new_session_id(now);
    for _ in 0..OFFERS {
        let offered = match triggered {
            true => Offered::choose(pool, &profile, now),
            false => Offered::none(pool),
        };
        let leased = leases
            .lease(
                pool_id,
                &v.visitor.0,
                &offered.numbers,
                &new_session,
                idle + SHARED_SLACK_MS,
            )
            .await?;
        let (number_id, session) = match leased {
            Leased::Renewed { number_id, session } => (number_id, session),
            Leased::New { number_id } => (number_id, new_session.clone()),
            Leased::None if triggered => return Ok(with_no_hold(overflow(v))),
            Leased::None => return Ok((v.not_triggered(), None, None)),
            Leased::Taken(held) => {
                let mut guard = pool.lock().expect("pool lock");
                for (number, holder, left) in held {
                    if let Ok(holder) = VisitorId::parse("holder", &holder) {
                        guard.pool.hold(&holder, number, now, now + left, now);
                    }
                }
                continue;
            }
        };
        let fresh = session == new_session;
        match take_lease(
            v,
            pool,
            pool_id,
            number_id,
            session,
            fresh,
            Some(shared_until),
        ) {
            Ok(served) => return Ok(served),
            // The number left the pool since it was leased: the lease ends and the visitor is
            // served afresh.
            Err(session) => {
                (leases.release(pool_id, &v.visitor.0, number_id, &session)).await?;
            }
        }
    }
    Ok(with_no_hold(overflow(v)))
}

/// How much longer than the idle timeout a lease lasts in Redis: a node renews a lease there
/// at most once per this (ms), and Redis never lets a number go before the end told.
const SHARED_SLACK_MS: i64 = RENEWAL_WRITE_INTERVAL_MS;

/// The visitor's lease in this node's copy and its session, if this node renewed it in Redis
/// lately enough that Redis holds it until `until` at least.
fn renewed_lately(
    pool: &Mutex<PoolState>,
    visitor: &VisitorId,
    until: i64,
    now: i64,
) -> Option<(i64, String)> {
    let state = pool.lock().expect("pool lock");
    let (number_id, _) = state.pool.lease_of(visitor, now)?;
    let session = state.session_of.get(visitor)?;
    (session.shared_until >= until).then(|| (number_id, session.id.clone()))
}

/// Records in this node's copy of the pool the lease Redis gave (`fresh`: a new one) or
/// renewed (until `shared_until` there, if Redis was asked), and answers; `Err(session)` if the
/// number is no longer in the pool.
fn take_lease(
    v: &Visit<'_>,
    pool: &Mutex<PoolState>,
    pool_id: i64,
    number_id: i64,
    session: String,
    fresh: bool,
    shared_until: Option<i64>,
) -> Result<Served, String> {
    let expires_at = v.now + v.idle_ms();
    let mut guard = pool.lock().expect("pool lock");
    let PoolState {
        pool: copy,
        session_of,
        ..
    } = &mut *guard;
    if !copy.hold(&v.visitor, number_id, v.now, expires_at, v.now) {
        return Err(session);
    }
    let number = copy.number(number_id).expect("held number").e164.clone();
    let known = session_of.get(&v.visitor).filter(|s| s.id == session);
    let written_until = known.map(|s| s.written_until);
    let shared_until = shared_until
        .unwrap_or(0)
        .max(known.map_or(0, |s| s.shared_until));
    let write = match written_until {
        _ if fresh => Some(v.record(&session, Some(number_id), &number, true, expires_at)),
        Some(w) if expires_at - w < RENEWAL_WRITE_INTERVAL_MS => None,
        _ => Some(SessionWrite::Renew {
            id: session.clone(),
            last_seen: v.now,
            lease_expires_at: expires_at,
        }),
    };
    let lease = LeaseSession {
        id: session.clone(),
        written_until: match (&write, written_until) {
            (None, Some(w)) => w,
            _ => expires_at,
        },
        shared_until,
    };
    session_of.insert(v.visitor.clone(), lease);
    drop(guard);
    let outcome = if fresh { "new" } else { "renewed" };
    metrics::counter!("callopt_dni_requests_total", "outcome" => outcome).increment(1);
    // Every node learns of the lease when it starts and each time it is written.
    let hold = write.is_some().then(|| Hold {
        pool_id,
        number_id,
        number: number.to_string(),
        visitor: v.visitor.0.clone(),
        session: session.clone(),
        language: v.language.clone(),
        until: expires_at,
    });
    let answer = v.answer(&number, Some(session), Some(expires_at), true);
    Ok((answer, write, hold))
}

/// No free number: the default number, recorded as an unattributed session.
fn overflow(v: &Visit<'_>) -> (SessionAnswer, Option<SessionWrite>) {
    metrics::counter!("callopt_dni_requests_total", "outcome" => "overflow").increment(1);
    let number = &v.entry.campaign.default_number;
    let id = new_session_id(v.now);
    let write = v.record(&id, None, number, false, v.now);
    (v.answer(number, Some(id), None, false), Some(write))
}

fn per_source(v: &Visit<'_>) -> (SessionAnswer, Option<SessionWrite>) {
    let campaign = &v.entry.campaign;
    let mut sessions = v.entry.source_sessions.lock().expect("sessions lock");
    let live = sessions
        .get(&v.visitor)
        .filter(|(_, expires)| *expires > v.now)
        .cloned();
    if live.is_none() && !campaign.trigger.fires(&v.attribution.query) {
        return (v.not_triggered(), None);
    }
    let expires = v.now + v.idle_ms();
    let rule = source_number(&campaign.source_rules, &v.attribution);
    let (number, attributed) = match rule {
        Some(r) => (&r.number, true),
        None => (&campaign.default_number, false),
    };
    if let Some((id, _)) = live {
        sessions.insert(v.visitor.clone(), (id.clone(), expires));
        drop(sessions);
        metrics::counter!("callopt_dni_requests_total", "outcome" => "renewed").increment(1);
        let write = SessionWrite::Renew {
            id: id.clone(),
            last_seen: v.now,
            lease_expires_at: expires,
        };
        return (
            v.answer(number, Some(id), Some(expires), attributed),
            Some(write),
        );
    }
    let id = new_session_id(v.now);
    sessions.insert(v.visitor.clone(), (id.clone(), expires));
    drop(sessions);
    metrics::counter!("callopt_dni_requests_total", "outcome" => "per_source").increment(1);
    let write = v.record(&id, None, number, attributed, expires);
    (
        v.answer(number, Some(id), Some(expires), attributed),
        Some(write),
    )
}

/// What a static feed is asked about.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The page URL the number is for (its UTM fields and click ids pick the source rule).
    pub page_url: Option<String>,
    /// The referrer of that page.
    pub referrer: Option<String>,
}

/// A campaign's current per-source number.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedAnswer {
    /// Campaign key.
    pub campaign: String,
    /// The number, E.164.
    pub number: String,
    /// The number formatted for the requester's country.
    pub display: String,
    /// The traffic source the number was chosen for.
    pub source: String,
    /// False when no source rule matched and the default number is given.
    pub attributed: bool,
}

/// The per-source number for pages that cannot run the tag, as JSON or XML.
#[utoipa::path(get, path = "/v1/dni/feeds/{campaign}/{format}", tag = "dni",
    params(("campaign" = String, Path, description = "Campaign key"),
        ("format" = String, Path, description = "`number.json` or `number.xml`"), FeedQuery),
    responses((status = 200, body = FeedAnswer), (status = 403, body = crate::problem::Problem)))]
pub async fn feed(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((key, format)): Path<(String, String)>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let xml = match format.as_str() {
        "number.json" => false,
        "number.xml" => true,
        _ => return Err(ApiError::NotFound("feed format")),
    };
    let entry = state
        .dni
        .campaign(&key)
        .ok_or(ApiError::NotFound("campaign"))?;
    let bearer = headers.contains_key(header::AUTHORIZATION);
    if bearer {
        let crate::auth::Account(account) =
            crate::auth::Account::from_headers(&state, &headers).await?;
        if account != entry.account {
            return Err(ApiError::NotFound("campaign"));
        }
    } else {
        check_origin(&state, &entry, &headers, query.page_url.as_deref())?;
    }
    let attribution = match &query.page_url {
        Some(url) => Attribution::parse(url, query.referrer.as_deref())?,
        None => Attribution {
            referrer: query.referrer.clone(),
            ..Default::default()
        },
    };
    let campaign = &entry.campaign;
    let rule = source_number(&campaign.source_rules, &attribution);
    let number = rule.map_or(&campaign.default_number, |r| &r.number);
    let country = state.geo.country(&headers, Some(peer));
    let answer = FeedAnswer {
        campaign: key,
        number: number.to_string(),
        display: state
            .dni
            .formats(number)
            .for_visitor(country.as_deref())
            .to_string(),
        source: attribution.source(),
        attributed: rule.is_some(),
    };
    let mut response = if xml {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<number campaign=\"{}\" source=\"{}\" attributed=\"{}\">\n  <e164>{}</e164>\n  <display>{}</display>\n</number>\n",
            xml_escape(&answer.campaign),
            xml_escape(&answer.source),
            answer.attributed,
            xml_escape(&answer.number),
            xml_escape(&answer.display),
        );
        (
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            body,
        )
            .into_response()
    } else {
        axum::Json(answer).into_response()
    };
    cors(response.headers_mut(), headers.get(header::ORIGIN));
    Ok(response)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::new_session_id;

    #[test]
    fn session_ids_sort_by_creation_time_and_differ() {
        let (a, b) = (
            new_session_id(1_700_000_000_000),
            new_session_id(1_700_000_000_001),
        );
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 31);
        assert_ne!(new_session_id(5), new_session_id(5));
        assert!(
            new_session_id(4_102_444_800_000) > b,
            "year 2100 still sorts after"
        );
    }
}
