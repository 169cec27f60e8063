//! The Guard inside the service: the page scan worker, periodic re-verification of domains, and
//! what abuse reports share (the per-client rate limit).
//!
//! Scans are queued by the store (a trigger on new visitor sessions, inside the session batch,
//! so the DNI path never waits for them) and by abuse reports. [`start`] spawns the worker,
//! which claims due scans, runs at most `scan_concurrency` at once through the
//! [`PageScanner`] the binary gives it, stores each verdict with its findings, and quarantines
//! the campaign of a page scanned as a scam: its numbers stop being served at once (the DNI
//! state is refreshed), a `campaign.quarantined` event is written to the outbox, calls on
//! numbers first shown on that page are flagged, and every step is audited.

use crate::AppState;
use callopt_domain::{AccountId, DomainHost, VerificationToken};
use callopt_guard::scanner::PageScanner;
use callopt_guard::verify::{Verifier, VerifySettings};
use callopt_store::ScanVerdict;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What configuration sets in the Guard.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Let domain verification (and the scanner, which the binary configures) reach loopback
    /// and private addresses: tests and private deployments only.
    pub allow_private: bool,
    /// Nameservers for TXT verification (UDP); the system's when empty.
    pub nameservers: Vec<SocketAddr>,
    /// How often verified domains are checked again.
    pub reverify_interval: Duration,
    /// How long a verified domain may fail its checks before it is unverified.
    pub reverify_grace: Duration,
    /// How often the scan worker looks for queued scans when nothing wakes it.
    pub scan_poll: Duration,
    /// Scans run at once.
    pub scan_concurrency: usize,
    /// Scans one campaign may run per 24 hours (its other pages wait their turn).
    pub scans_per_campaign_per_day: u32,
    /// Abuse reports accepted per client address per minute.
    pub abuse_reports_per_minute: u32,
    /// Distinct reporters of one number, within [`GuardSettings::abuse_window`], that
    /// quarantine it pending review.
    pub abuse_threshold: u32,
    /// The window in which reporters of a number are counted.
    pub abuse_window: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            nameservers: Vec::new(),
            reverify_interval: Duration::from_secs(6 * 3600),
            reverify_grace: Duration::from_secs(72 * 3600),
            scan_poll: Duration::from_secs(1),
            scan_concurrency: 2,
            scans_per_campaign_per_day: 500,
            abuse_reports_per_minute: 5,
            abuse_threshold: 3,
            abuse_window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The Guard's shared state.
pub struct Guard {
    /// Settings.
    pub settings: GuardSettings,
    /// Domain verification.
    pub verifier: Verifier,
    /// Wakes the scan worker when a scan is queued outside the session batch.
    pub wake: Notify,
    /// Abuse reports per client address.
    pub limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl Guard {
    /// The Guard with these settings.
    pub fn new(settings: GuardSettings) -> anyhow::Result<Self> {
        let verifier = Verifier::new(&VerifySettings {
            nameservers: settings.nameservers.clone(),
            allow_private: settings.allow_private,
        })?;
        let per_minute =
            NonZeroU32::new(settings.abuse_reports_per_minute.max(1)).expect("at least one");
        Ok(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            verifier,
            wake: Notify::new(),
            settings,
        })
    }
}

/// Starts the re-verifier and, when a scanner is given, the scan worker.
pub fn start(state: &AppState, scanner: Option<Arc<dyn PageScanner>>) {
    if let Some(scanner) = scanner {
        tokio::spawn(scan_worker(state.clone(), scanner));
    }
    let state = state.clone();
    tokio::spawn(async move {
        let every = state.guard.settings.reverify_interval;
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = reverify_once(&state, crate::now_ms()).await {
                tracing::warn!(error = %e, "re-verification failed");
            }
            // Keep the limiter's memory bounded to clients seen recently.
            state.guard.limiter.retain_recent();
        }
    });
}

/// Checks every verified domain again; a domain failing for longer than the grace period loses
/// its verification, and its pages stop being served. Returns how many were unverified.
pub async fn reverify_once(state: &AppState, now: i64) -> anyhow::Result<usize> {
    let grace = state.guard.settings.reverify_grace.as_millis() as i64;
    let mut lost = 0;
    for d in state.store.all_verified_domains().await? {
        let Ok(host) = DomainHost::parse("host", &d.host) else {
            continue;
        };
        let proved = state
            .guard
            .verifier
            .verify(&host, &VerificationToken(d.token.clone()))
            .await;
        let method = proved.as_ref().ok().map(|m| m.as_str());
        if let Err(e) = &proved {
            tracing::info!(account = d.account.0, host = %d.host, reason = %e, "domain check failed");
        }
        if state
            .store
            .domain_checked(d.account, d.id, method, now, grace)
            .await?
        {
            tracing::warn!(account = d.account.0, host = %d.host, "domain unverified");
            lost += 1;
            state.refresh(d.account).await.map_err(anyhow::Error::new)?;
        }
    }
    Ok(lost)
}

/// How long a claimed scan may take before another claim takes it over.
const SCAN_LEASE_MS: i64 = 120_000;

/// Attempts before a scan that cannot fetch its page is marked failed.
const MAX_SCAN_ATTEMPTS: i64 = 3;

async fn scan_worker(state: AppState, scanner: Arc<dyn PageScanner>) {
    let concurrency = state.guard.settings.scan_concurrency.max(1);
    let mut running = tokio::task::JoinSet::new();
    loop {
        let room = concurrency - running.len();
        if room > 0 {
            let now = crate::now_ms();
            match state
                .store
                .claim_scans(
                    now,
                    now + SCAN_LEASE_MS,
                    room as u32,
                    state.guard.settings.scans_per_campaign_per_day,
                )
                .await
            {
                Ok(claimed) => {
                    for scan in claimed {
                        let (state, scanner) = (state.clone(), scanner.clone());
                        running.spawn(async move { run_scan(&state, &*scanner, scan).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim scans"),
            }
        }
        let poll = state.guard.settings.scan_poll;
        tokio::select! {
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = state.guard.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn run_scan(state: &AppState, scanner: &dyn PageScanner, scan: callopt_store::ClaimedScan) {
    let outcome = scanner.scan(&scan.url).await;
    let now = crate::now_ms();
    let verdict = match outcome {
        Ok(v) => v,
        Err(e) => {
            let retry = (scan.attempts < MAX_SCAN_ATTEMPTS).then_some(now + 60_000 * scan.attempts);
            if let Err(e) = state.store.fail_scan(scan.id, &e, retry, now).await {
                tracing::warn!(error = %e, "could not record a failed scan");
            }
            return;
        }
    };
    metrics::counter!("callopt_guard_scans_total", "verdict" => verdict.verdict.clone())
        .increment(1);
    let stored = ScanVerdict {
        verdict: verdict.verdict.clone(),
        score: verdict.score,
        rule: verdict.rule.clone(),
        findings: verdict.findings_json.clone(),
    };
    // A scam page's campaign is quarantined (and the routing table refreshed) before the
    // verdict is recorded: whoever sees the scan done sees its campaign refused numbers too,
    // never a window in which the verdict is known and numbers still go out.
    if let (true, Some(account), Some(campaign)) =
        (verdict.verdict == "scam", scan.account, scan.campaign_id)
    {
        if let Err(e) = quarantine(state, account, campaign, scan.id, now).await {
            tracing::error!(error = %e, campaign, "could not quarantine a campaign");
        }
    }
    if let Err(e) = state.store.finish_scan(scan.id, &stored, now).await {
        tracing::warn!(error = %e, "could not record a scan verdict");
    }
}

async fn quarantine(
    state: &AppState,
    account: AccountId,
    campaign: i64,
    scan: i64,
    now: i64,
) -> anyhow::Result<()> {
    let q = state
        .store
        .quarantine_campaign(account, campaign, Some(scan), "scam_page", now)
        .await?;
    if q.is_some() {
        tracing::warn!(account = account.0, campaign, scan, "campaign quarantined");
        state.refresh(account).await.map_err(anyhow::Error::new)?;
    }
    Ok(())
}
