//! Fetching a landing page the way its visitors' browsers would, safely.
//!
//! Scam pages cloak: they show the locker only to some browsers. So the page is fetched once per
//! user agent in [`USER_AGENTS`] (desktop Windows, macOS, mobile), each version is scanned, and
//! the worst verdict stands. Every fetch is bounded: [`Limits`] caps the body, the time and the
//! redirects, and each redirect's target is checked again. Addresses are checked twice: the URL
//! by [`callopt_egress::check_url`] and every name as resolved by
//! [`callopt_egress::PublicResolver`], so a DNS name that points inward is refused too, unless
//! `allow_private` (tests, private deployments).

use crate::{analyze, Report, Verdict};
use callopt_egress::{check_url, PublicResolver};
use std::time::Duration;
use url::Url;

/// The browsers a page is fetched as.
pub const USER_AGENTS: &[(&str, &str)] = &[
    (
        "windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ),
    (
        "macos",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    ),
    (
        "mobile",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    ),
];

/// Bounds on one scan's fetches.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest page body read (the rest is ignored).
    pub max_body: usize,
    /// Largest external script read.
    pub max_script: usize,
    /// Most external scripts fetched per page version.
    pub max_scripts: usize,
    /// Time for one page version, its redirects and scripts included.
    pub timeout: Duration,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Let fetches reach loopback and private addresses.
    pub allow_private: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 2 * 1024 * 1024,
            max_script: 1024 * 1024,
            max_scripts: 16,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
            allow_private: false,
        }
    }
}

/// Why a page could not be fetched at all.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL, or a redirect, names a place the scanner may not go.
    #[error("refused {url}: {reason}")]
    Refused {
        /// The URL refused.
        url: String,
        /// Why.
        reason: callopt_egress::DestinationError,
    },
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection or protocol failure (a name that resolves only to private addresses too).
    #[error("could not fetch {url}: {reason}")]
    Http {
        /// The URL tried.
        url: String,
        /// The client's error.
        reason: String,
    },
}

/// A client that connects only where the limits allow and follows no redirect by itself.
pub fn client(limits: &Limits) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(PublicResolver {
            allow_private: limits.allow_private,
        }))
        .connect_timeout(limits.timeout)
        .build()
        .expect("a client with rustls and a resolver builds")
}

/// Fetches `url` as `user_agent`, following redirects one by one: the final URL and at most
/// `max` bytes of the body (lossy UTF-8).
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    user_agent: &str,
    max: usize,
    limits: &Limits,
) -> Result<(Url, String), FetchError> {
    let mut url = check(url, limits)?;
    for _ in 0..=limits.max_redirects {
        let mut response = client
            .get(url.clone())
            .header(reqwest::header::USER_AGENT, user_agent)
            .header(
                reqwest::header::ACCEPT,
                "text/html,application/xhtml+xml,*/*;q=0.8",
            )
            .send()
            .await
            .map_err(|e| http_error(&url, e))?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| FetchError::Http {
                    url: url.to_string(),
                    reason: "a redirect without a usable Location".into(),
                })?;
            url = check(location.as_str(), limits)?;
            continue;
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| http_error(&url, e))? {
            let room = max.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= max {
                break;
            }
        }
        return Ok((url, String::from_utf8_lossy(&body).into_owned()));
    }
    Err(FetchError::TooManyRedirects(limits.max_redirects))
}

fn check(url: &str, limits: &Limits) -> Result<Url, FetchError> {
    check_url(url, limits.allow_private).map_err(|reason| FetchError::Refused {
        url: url.to_string(),
        reason,
    })
}

fn http_error(url: &Url, e: reqwest::Error) -> FetchError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    for _ in 0..8 {
        let Some(s) = source else { break };
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    FetchError::Http {
        url: url.to_string(),
        reason,
    }
}

/// Fetches one version of the page and its external scripts within the time limit, and scans it.
async fn scan_as(
    client: &reqwest::Client,
    input: &str,
    user_agent: &str,
    limits: &Limits,
) -> Result<Report, FetchError> {
    let work = async {
        let (final_url, html) = get(client, input, user_agent, limits.max_body, limits).await?;
        let markup = crate::html::read(&html);
        let mut scripts = Vec::new();
        let mut notes = Vec::new();
        for src in markup.external_scripts.iter().take(limits.max_scripts) {
            let Ok(url) = final_url.join(src) else {
                notes.push(format!("script {src}: not a URL"));
                continue;
            };
            match get(client, url.as_str(), user_agent, limits.max_script, limits).await {
                Ok((_, code)) => scripts.push((url.to_string(), code)),
                Err(e) => notes.push(format!("script {url}: {e}")),
            }
        }
        let mut report = analyze(input, &html, &scripts);
        report.notes = notes;
        Ok(report)
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .unwrap_or(Err(FetchError::Timeout(limits.timeout)))
}

/// Scans a URL as each browser in [`USER_AGENTS`]; the worst verdict stands, with the browser
/// that saw it noted. Fails only when no browser could fetch the page.
pub async fn scan_url(
    client: &reqwest::Client,
    url: &str,
    limits: &Limits,
) -> Result<Report, FetchError> {
    let mut worst: Option<Report> = None;
    let mut failures = Vec::new();
    for (name, agent) in USER_AGENTS {
        match scan_as(client, url, agent, limits).await {
            Ok(mut report) => {
                report.notes.insert(0, format!("seen as {name}"));
                let rank = |r: &Report| match r.decision.verdict {
                    Verdict::Scam => 2,
                    Verdict::Review => 1,
                    Verdict::Clean => 0,
                };
                let better = worst.as_ref().is_none_or(|w| {
                    (rank(&report), report.decision.score) > (rank(w), w.decision.score)
                });
                if better {
                    worst = Some(report);
                }
            }
            Err(e @ FetchError::Refused { .. }) => return Err(e),
            Err(e) => failures.push((name, e)),
        }
    }
    match worst {
        Some(mut report) => {
            for (name, e) in failures {
                report.notes.push(format!("as {name}: {e}"));
            }
            Ok(report)
        }
        None => Err(failures
            .pop()
            .map(|(_, e)| e)
            .expect("three user agents were tried")),
    }
}
