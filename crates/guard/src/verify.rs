//! Domain verification: fetch `/.well-known/callopt-verification.txt` and look for the token.
//!
//! The fetch tries `https://` and then `http://` (as ACME's HTTP-01 challenge does), follows at
//! most three redirects and only within the same host, reads at most 64 KiB and gives up after
//! five seconds. A redirect to another host is a failure, never followed: otherwise anyone who
//! controls an open redirect on a domain could verify it.

use callopt_domain::{DomainHost, VerificationToken};
use std::time::Duration;

/// Why a domain could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file was fetched but does not hold the token.
    #[error("the file at {url} does not contain the verification token")]
    TokenMissing {
        /// Where it was fetched.
        url: String,
    },
    /// No scheme answered with a 2xx: the last problem seen.
    #[error("could not fetch {url}: {reason}")]
    Unreachable {
        /// What was tried last.
        url: String,
        /// A sentence for the account.
        reason: String,
    },
}

/// Largest body read from the well-known file.
const MAX_BODY: usize = 64 * 1024;

/// Fetches the verification file of `host` over HTTPS, then HTTP, and checks for `token`.
pub async fn verify_domain(
    host: &DomainHost,
    token: &VerificationToken,
) -> Result<(), VerifyError> {
    let mut last = None;
    for scheme in ["https", "http"] {
        let url = format!(
            "{scheme}://{}{}",
            host.as_str(),
            VerificationToken::WELL_KNOWN_PATH
        );
        match fetch(&url, host).await {
            Ok(body) if token.is_proved_by(&body) => return Ok(()),
            Ok(_) => return Err(VerifyError::TokenMissing { url }),
            Err(reason) => {
                tracing::debug!(%url, %reason, "verification fetch failed");
                last = Some(VerifyError::Unreachable { url, reason });
            }
        }
    }
    Err(last.expect("two schemes were tried"))
}

async fn fetch(url: &str, host: &DomainHost) -> Result<String, String> {
    let expected = host.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let same_host = DomainHost::from_origin(attempt.url().as_str()).as_ref() == Some(&expected);
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if !same_host {
            attempt.error("redirect to another host")
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .redirect(policy)
        .timeout(Duration::from_secs(5))
        .user_agent(concat!("callopt-verifier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client.get(url).send().await.map_err(describe)?;
    if !response.status().is_success() {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err("the file is larger than 64 KiB".into());
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn describe(e: reqwest::Error) -> String {
    if e.is_redirect() {
        "it redirects to another host or too many times".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}
