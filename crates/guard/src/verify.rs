//! Domain verification: a DNS TXT record or the well-known file proves that an account owns a
//! host.
//!
//! DNS: a TXT record holding the token (`callopt-verification=…`) at `_callopt.<host>` or at
//! `<host>` itself; the resolver's nameservers are the system's unless configuration names
//! others (tests point them at a responder on loopback).
//!
//! The file: `/.well-known/callopt-verification.txt`, tried over `https://` and then `http://`
//! (as ACME's HTTP-01 challenge does), at most three redirects and only within the same host,
//! at most 64 KiB, five seconds. A redirect to another host is a failure, never followed:
//! otherwise anyone who controls an open redirect on a domain could verify it. The fetch obeys
//! the shared address rules (`callopt-egress`): no loopback or private address unless
//! `allow_private`.

use callopt_domain::{DomainHost, VerificationToken};
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
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
    /// Neither the TXT record nor the file proves the token.
    #[error("no TXT record at _callopt.{host} or {host} holds the token, and {file}")]
    NotProved {
        /// The host.
        host: String,
        /// What the well-known file gave.
        file: Box<VerifyError>,
    },
}

/// How a domain was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A DNS TXT record.
    Dns,
    /// The well-known file.
    File,
}

impl Method {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Dns => "dns",
            Method::File => "file",
        }
    }
}

/// What configuration sets in the verifier.
#[derive(Debug, Clone, Default)]
pub struct VerifySettings {
    /// Nameservers to ask for TXT records (UDP); the system's when empty.
    pub nameservers: Vec<SocketAddr>,
    /// Let the file fetch reach loopback and private addresses (tests, private deployments).
    pub allow_private: bool,
}

/// Largest body read from the well-known file.
const MAX_BODY: usize = 64 * 1024;

/// Proves domains by DNS or by the well-known file.
pub struct Verifier {
    /// The TXT resolver.
    resolver: TokioResolver,
    /// The shared address rule's switch.
    allow_private: bool,
}

impl Verifier {
    /// A verifier with these settings.
    pub fn new(settings: &VerifySettings) -> Result<Self, std::io::Error> {
        // Re-verification must see a removed record soon, not after a long TTL.
        let resolver = callopt_egress::dns::resolver(
            &settings.nameservers,
            Duration::from_secs(3),
            Duration::from_secs(60),
            Duration::from_secs(10),
        )?;
        Ok(Self {
            resolver,
            allow_private: settings.allow_private,
        })
    }

    /// Proves `host` by its TXT record, else by its well-known file.
    pub async fn verify(
        &self,
        host: &DomainHost,
        token: &VerificationToken,
    ) -> Result<Method, VerifyError> {
        if self.verify_dns(host, token).await {
            return Ok(Method::Dns);
        }
        match self.verify_file(host, token).await {
            Ok(()) => Ok(Method::File),
            Err(file) => Err(VerifyError::NotProved {
                host: name_of(host).to_string(),
                file: Box::new(file),
            }),
        }
    }

    /// Whether a TXT record at `_callopt.<host>` or `<host>` holds the token.
    pub async fn verify_dns(&self, host: &DomainHost, token: &VerificationToken) -> bool {
        let name = name_of(host);
        if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
            return false;
        }
        for query in [format!("_callopt.{name}."), format!("{name}.")] {
            match self.resolver.txt_lookup(query.as_str()).await {
                Ok(found) => {
                    let proved = found.iter().any(|txt| {
                        let text: String = txt
                            .txt_data()
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect();
                        text.trim() == token.0
                    });
                    if proved {
                        return true;
                    }
                }
                Err(e) => tracing::debug!(%query, error = %e, "TXT lookup failed"),
            }
        }
        false
    }

    /// Fetches the verification file of `host` over HTTPS, then HTTP, and checks for `token`.
    pub async fn verify_file(
        &self,
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
            match fetch(&url, host, self.allow_private).await {
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
}

/// The host without its port (DNS names have none).
fn name_of(host: &DomainHost) -> &str {
    let s = host.as_str();
    match s.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => s,
    }
}

async fn fetch(url: &str, host: &DomainHost, allow_private: bool) -> Result<String, String> {
    callopt_egress::check_url(url, allow_private).map_err(|e| e.to_string())?;
    let expected = host.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let same_host = DomainHost::from_origin(attempt.url().as_str()).as_ref() == Some(&expected);
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if !same_host {
            attempt.error("redirect to another host")
        } else if callopt_egress::check_url(attempt.url().as_str(), allow_private).is_err() {
            attempt.error("redirect to a private address")
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .redirect(policy)
        .timeout(Duration::from_secs(5))
        .dns_resolver(std::sync::Arc::new(callopt_egress::PublicResolver {
            allow_private,
        }))
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
        "connection failed (or the address is not public)".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::name_of;
    use callopt_domain::DomainHost;

    #[test]
    fn the_dns_name_drops_the_port() {
        for (host, name) in [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]:8080", "[::1]"),
        ] {
            assert_eq!(name_of(&DomainHost::parse("h", host).unwrap()), name);
        }
    }
}
