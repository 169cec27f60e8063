//! The Guard's API: page scans and their verdicts, quarantines (review, override, lift), the
//! audit of every step, abuse reports about the account, and the public abuse report endpoint.

use super::timestamp;
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Path, Query};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use callopt_domain::{ValidationError, E164};
use callopt_store::{AbuseReportRecord, AuditEntry, NewAbuseReport, QuarantineRecord, ScanRecord};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;

/// A page scan and its verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanDto {
    /// Id.
    pub id: i64,
    /// The campaign whose tag was used on the page.
    pub campaign_id: Option<i64>,
    /// The exact page URL.
    pub url: String,
    /// `dni` or `abuse_report`.
    pub source: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// `scam`, `review` or `clean`.
    pub verdict: Option<String>,
    /// Total weight of the findings.
    pub score: Option<f64>,
    /// The rule that decided.
    pub rule: Option<String>,
    /// Findings: code, kind, weight, location, detail.
    #[schema(value_type = Object)]
    pub findings: serde_json::Value,
    /// Why the scan failed.
    pub error: Option<String>,
    /// Queued at.
    pub created_at: String,
    /// Finished at.
    pub finished_at: Option<String>,
    /// When an operator marked it not a scam.
    pub overridden_at: Option<String>,
    /// The operator's note.
    pub override_note: Option<String>,
}

impl From<ScanRecord> for ScanDto {
    fn from(s: ScanRecord) -> Self {
        Self {
            id: s.id,
            campaign_id: s.campaign_id,
            url: s.url,
            source: s.source,
            status: s.status,
            verdict: s.verdict,
            score: s.score,
            rule: s.rule,
            findings: s
                .findings
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or(serde_json::Value::Array(Vec::new())),
            error: s.error,
            created_at: timestamp(s.created_at),
            finished_at: s.finished_at.map(timestamp),
            overridden_at: s.overridden_at.map(timestamp),
            override_note: s.override_note,
        }
    }
}

/// A quarantine of a campaign or a tracking number.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineDto {
    /// Id.
    pub id: i64,
    /// The quarantined campaign.
    pub campaign_id: Option<i64>,
    /// The quarantined tracking number.
    pub number_id: Option<i64>,
    /// With a campaign: only its pages whose URL (without click ids) is this, or starts with
    /// it when it ends in `*`; `null`: the whole campaign.
    pub url_pattern: Option<String>,
    /// The scan that caused it.
    pub scan_id: Option<i64>,
    /// `scam_page`, `abuse_reports` or `operator`.
    pub reason: String,
    /// `active` or `lifted`.
    pub status: String,
    /// When.
    pub created_at: String,
    /// When lifted.
    pub lifted_at: Option<String>,
    /// The operator's note at lifting.
    pub lift_note: Option<String>,
}

impl From<QuarantineRecord> for QuarantineDto {
    fn from(q: QuarantineRecord) -> Self {
        Self {
            id: q.id,
            campaign_id: q.campaign_id,
            number_id: q.number_id,
            url_pattern: q.url_pattern,
            scan_id: q.scan_id,
            reason: q.reason,
            status: q.status,
            created_at: timestamp(q.created_at),
            lifted_at: q.lifted_at.map(timestamp),
            lift_note: q.lift_note,
        }
    }
}

/// One step of the Guard.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditDto {
    /// Id.
    pub id: i64,
    /// `system`, `operator` or `reporter`.
    pub actor: String,
    /// `scan.finished`, `campaign.quarantined`, `number.quarantined`, `scan.overridden`,
    /// `quarantine.lifted`, `abuse_report.received`, `domain.check_failed`, `domain.unverified`.
    pub action: String,
    /// `scan:3`, `campaign:7`, `number:9`, `domain:2`.
    pub subject: String,
    /// Details.
    pub detail: Option<String>,
    /// When.
    pub at: String,
}

impl From<AuditEntry> for AuditDto {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            at: timestamp(e.at),
        }
    }
}

/// An abuse report about one of the account's numbers or pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct AbuseReportDto {
    /// Id.
    pub id: i64,
    /// The reference the reporter was given.
    pub reference: String,
    /// The reported number.
    pub number: Option<String>,
    /// The tracking number it is.
    pub number_id: Option<i64>,
    /// The reported page.
    pub page_url: Option<String>,
    /// What the reporter said.
    pub description: String,
    /// When.
    pub at: String,
}

impl From<AbuseReportRecord> for AbuseReportDto {
    fn from(r: AbuseReportRecord) -> Self {
        let a = r.report;
        Self {
            id: r.id,
            reference: a.reference,
            number: a.number,
            number_id: a.number_id,
            page_url: a.page_url,
            description: a.description,
            at: timestamp(a.at),
        }
    }
}

/// What an operator writes when overriding or lifting.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteRequest {
    /// Why (1 to 2000 characters).
    pub note: String,
}

fn note(n: &NoteRequest) -> Result<String, ValidationError> {
    let t = n.note.trim();
    if t.is_empty() || t.chars().count() > 2000 {
        return Err(ValidationError::new("note", "1 to 2000 characters"));
    }
    Ok(t.to_string())
}

/// Lists the account's page scans and verdicts.
#[utoipa::path(get, path = "/v1/guard/scans", tag = "guard", params(ListParams),
    responses((status = 200, body = Listing<ScanDto>)), security(("api_key" = [])))]
pub async fn scans(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<ScanDto>>, ApiError> {
    let page = state
        .store
        .scans(account, params.page()?)
        .await
        .map_err(ApiError::store("scan"))?;
    Ok(axum::Json(Listing::from_page(page, ScanDto::from)))
}

/// Marks a scan not a scam (its page's calls are no longer flagged from then on). Lifting the
/// quarantine it caused is a separate step.
#[utoipa::path(post, path = "/v1/guard/scans/{id}/override", tag = "guard",
    request_body = NoteRequest,
    responses((status = 200, body = ScanDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn override_scan(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    crate::problem::Json(body): crate::problem::Json<NoteRequest>,
) -> Result<axum::Json<ScanDto>, ApiError> {
    let note = note(&body)?;
    let s = state
        .store
        .override_scan(account, id, &note, crate::now_ms())
        .await
        .map_err(ApiError::store("scan"))?;
    tracing::info!(account = account.0, scan = id, "scan overridden");
    Ok(axum::Json(s.into()))
}

/// Lists the account's quarantines.
#[utoipa::path(get, path = "/v1/guard/quarantines", tag = "guard", params(ListParams),
    responses((status = 200, body = Listing<QuarantineDto>)), security(("api_key" = [])))]
pub async fn quarantines(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<QuarantineDto>>, ApiError> {
    let page = state
        .store
        .quarantines(account, params.page()?)
        .await
        .map_err(ApiError::store("quarantine"))?;
    Ok(axum::Json(Listing::from_page(page, QuarantineDto::from)))
}

/// An operator's quarantine of some pages of a campaign.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PageQuarantineRequest {
    /// The campaign.
    pub campaign_id: i64,
    /// Its pages to quarantine: a page URL (matched without click ids, such as `gclid`), or a
    /// URL prefix ending in `*` (`https://example.com/offers/*`).
    pub url_pattern: String,
    /// Why (1 to 2000 characters).
    pub note: String,
}

/// The pattern, validated: an http(s) URL of at most 2048 characters, `*` only at its end.
fn url_pattern(raw: &str) -> Result<String, ValidationError> {
    let p = raw.trim();
    let head = p.strip_suffix('*').unwrap_or(p);
    let ok = p.chars().count() <= 2048
        && !head.contains('*')
        && url::Url::parse(head).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !ok {
        return Err(ValidationError::new(
            "url_pattern",
            "an http or https URL of at most 2048 characters, with * only at its end",
        ));
    }
    // A page URL is matched as pages are scanned: without click ids.
    Ok(match p.strip_suffix('*') {
        Some(prefix) => format!("{prefix}*"),
        None => callopt_domain::scan_url(p),
    })
}

/// Quarantines some pages of a campaign (a rogue page, not the whole campaign): those pages get
/// no numbers, the campaign's other pages keep them, and calls already on numbers first shown
/// on them are flagged.
#[utoipa::path(post, path = "/v1/guard/quarantines", tag = "guard",
    request_body = PageQuarantineRequest,
    responses((status = 201, body = QuarantineDto), (status = 400, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn quarantine_page(
    State(state): State<AppState>,
    Account(account): Account,
    crate::problem::Json(body): crate::problem::Json<PageQuarantineRequest>,
) -> Result<(StatusCode, axum::Json<QuarantineDto>), ApiError> {
    let pattern = url_pattern(&body.url_pattern)?;
    let note = note(&NoteRequest { note: body.note })?;
    let q = state
        .store
        .quarantine_page(account, body.campaign_id, &pattern, &note, crate::now_ms())
        .await
        .map_err(ApiError::store("campaign"))?
        .ok_or_else(|| ApiError::Conflict("url_pattern".into()))?;
    tracing::warn!(
        account = account.0,
        campaign = body.campaign_id,
        pattern,
        "pages quarantined"
    );
    state.refresh(account).await?;
    Ok((StatusCode::CREATED, axum::Json(q.into())))
}

/// One quarantine.
#[utoipa::path(get, path = "/v1/guard/quarantines/{id}", tag = "guard",
    responses((status = 200, body = QuarantineDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn quarantine(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<QuarantineDto>, ApiError> {
    let q = state
        .store
        .quarantine(account, id)
        .await
        .map_err(ApiError::store("quarantine"))?;
    Ok(axum::Json(q.into()))
}

/// Lifts an active quarantine: the campaign's or number's numbers are served again.
#[utoipa::path(post, path = "/v1/guard/quarantines/{id}/lift", tag = "guard",
    request_body = NoteRequest,
    responses((status = 200, body = QuarantineDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn lift(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    crate::problem::Json(body): crate::problem::Json<NoteRequest>,
) -> Result<axum::Json<QuarantineDto>, ApiError> {
    let note = note(&body)?;
    let q = state
        .store
        .lift_quarantine(account, id, &note, crate::now_ms())
        .await
        .map_err(ApiError::store("active quarantine"))?;
    tracing::info!(account = account.0, quarantine = id, "quarantine lifted");
    state.refresh(account).await?;
    Ok(axum::Json(q.into()))
}

/// Lists the Guard's audit of the account: every verdict, quarantine, override and lift.
#[utoipa::path(get, path = "/v1/guard/audit", tag = "guard", params(ListParams),
    responses((status = 200, body = Listing<AuditDto>)), security(("api_key" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<AuditDto>>, ApiError> {
    let page = state
        .store
        .audit_log(account, params.page()?)
        .await
        .map_err(ApiError::store("audit entry"))?;
    Ok(axum::Json(Listing::from_page(page, AuditDto::from)))
}

/// Lists abuse reports about the account's numbers and pages.
#[utoipa::path(get, path = "/v1/guard/abuse-reports", tag = "guard", params(ListParams),
    responses((status = 200, body = Listing<AbuseReportDto>)), security(("api_key" = [])))]
pub async fn abuse_reports(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<Listing<AbuseReportDto>>, ApiError> {
    let page = state
        .store
        .abuse_reports(account, params.page()?)
        .await
        .map_err(ApiError::store("abuse report"))?;
    Ok(axum::Json(Listing::from_page(page, AbuseReportDto::from)))
}

/// Most bytes accepted in an abuse report.
pub const MAX_REPORT_BODY: usize = 8 * 1024;

/// What anyone may report.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AbuseReportRequest {
    /// The phone number shown (any common format with its country code, or E.164).
    pub number: Option<String>,
    /// The page that showed it (http or https, at most 2048 characters).
    pub page_url: Option<String>,
    /// What happened (1 to 2000 characters).
    pub description: String,
}

/// The reporter's receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AbuseReportReceipt {
    /// Quote this reference in any follow-up.
    pub reference: String,
}

/// A validated report.
struct Report {
    number: Option<E164>,
    page_url: Option<String>,
    description: String,
}

fn validate(r: AbuseReportRequest) -> Result<Report, ValidationError> {
    let number = match r.number.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.len() > 64 => return Err(ValidationError::new("number", "too long")),
        Some(n) => Some(E164::parse("number", n, None)?),
    };
    let page_url = match r.page_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => {
            let ok = u.chars().count() <= 2048
                && url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
            if !ok {
                return Err(ValidationError::new(
                    "page_url",
                    "an http or https URL of at most 2048 characters",
                ));
            }
            Some(u.to_string())
        }
    };
    if number.is_none() && page_url.is_none() {
        return Err(ValidationError::new(
            "number",
            "a number or a page_url (or both) is required",
        ));
    }
    let description = r.description.trim();
    if description.is_empty() || description.chars().count() > 2000 {
        return Err(ValidationError::new("description", "1 to 2000 characters"));
    }
    Ok(Report {
        number,
        page_url,
        description: description.to_string(),
    })
}

/// Reports a phone number and/or a page as a scam. No API key; rate-limited per client
/// address. The answer never says whether the number or page belongs to an account.
#[utoipa::path(post, path = "/v1/abuse-reports", tag = "guard",
    request_body = AbuseReportRequest,
    responses((status = 202, body = AbuseReportReceipt),
        (status = 400, body = crate::problem::Problem),
        (status = 413, body = crate::problem::Problem),
        (status = 429, body = crate::problem::Problem)))]
pub async fn report_abuse(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<AbuseReportReceipt>), ApiError> {
    // Behind a proxy every peer is the proxy: the client is in `client_ip_header`.
    let client = state.geo.limit_key(&headers, peer);
    if let Err(not_until) = state.guard.limiter.check_key(&client) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_REPORT_BODY)
        } else {
            ApiError::BadBody(r.body_text())
        }
    })?;
    let request: AbuseReportRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadBody(format!("expected a JSON abuse report: {e}")))?;
    let report = validate(request)?;
    let reference = receive(&state, client, report)
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(AbuseReportReceipt { reference }),
    ))
}

/// Records the report, quarantines a number enough reporters named, and queues the page.
async fn receive(
    state: &AppState,
    client: std::net::IpAddr,
    report: Report,
) -> Result<String, callopt_store::StoreError> {
    use rand::distr::{Alphanumeric, SampleString};
    use sha2::Digest;
    let now = crate::now_ms();
    let store = &state.store;
    let owner = match &report.number {
        Some(n) => store.number_owner(&n.to_string()).await?,
        None => None,
    };
    // The page is known, and scanned, by its scan URL (without click ids).
    let scan_url = report.page_url.as_deref().map(callopt_domain::scan_url);
    let pages = match &scan_url {
        Some(u) => store.scanned_pages(u).await?,
        None => Vec::new(),
    };
    let reference = format!("abr_{}", Alphanumeric.sample_string(&mut rand::rng(), 20));
    let reporter = format!("{:x}", sha2::Sha256::digest(client.to_string()));
    let settings = &state.guard.settings;
    let record = NewAbuseReport {
        reference: reference.clone(),
        account: owner.map(|o| o.0).or(pages.first().map(|p| p.0)),
        number: report.number.as_ref().map(|n| n.to_string()),
        number_id: owner.map(|o| o.1),
        page_url: report.page_url.clone(),
        description: report.description,
        reporter,
        at: now,
    };
    let since = now - settings.abuse_window.as_millis() as i64;
    let reporters = store.record_abuse_report(&record, since).await?;
    tracing::info!(reference, reporters, "abuse report received");
    if let (Some((account, number)), true) = (owner, reporters >= settings.abuse_threshold) {
        if store
            .quarantine_number(account, number, "abuse_reports", now)
            .await?
            .is_some()
        {
            tracing::warn!(
                account = account.0,
                number,
                "number quarantined by abuse reports"
            );
            if let Err(e) = state.refresh(account).await {
                tracing::error!(error = %e, "could not refresh after a quarantine");
            }
        }
    }
    if let Some(url) = &scan_url {
        if pages.is_empty() {
            store
                .queue_scan(None, None, url, "abuse_report", now)
                .await?;
        }
        for (account, campaign) in &pages {
            store
                .queue_scan(Some(*account), Some(*campaign), url, "abuse_report", now)
                .await?;
        }
        state.guard.wake.notify_one();
    }
    Ok(reference)
}
