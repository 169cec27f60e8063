//! Where Callopt may connect out to. Webhook URLs are chosen by accounts and landing page URLs
//! by whoever uses a tag or files a report, and both are fetched from inside the service's
//! network: unless configuration allows it (tests, a private deployment), such a request must
//! not reach loopback, private, link-local or other non-public addresses, or it would let anyone
//! probe the service's network (SSRF).
//!
//! A URL is checked before use (scheme, no credentials, no private address literal, no
//! `localhost`) by [`check_url`], and every connection goes through [`PublicResolver`], which
//! hands the HTTP client only public addresses, so a name that resolves elsewhere after the
//! first check (or that always pointed inward) still cannot reach a private one.
//!
//! Used by `callopt-events` (webhook delivery) and `callopt-scan` (landing page fetches).
//! [`dns::resolver`] builds the DNS resolver the Guard's verification and the SIP router's
//! target names use.

pub mod dns;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Why a URL cannot be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not a URL at all.
    #[error("not a valid URL")]
    Invalid,
    /// Not http or https.
    #[error("the scheme must be http or https")]
    Scheme,
    /// User and password in the URL.
    #[error("credentials in the URL are not accepted; put a token in the path or query")]
    Credentials,
    /// A loopback, private or otherwise non-public destination.
    #[error("the destination is not a public address")]
    Private,
}

/// The URL parsed, if the service may connect to it: http(s), a host, no user or password, and
/// (unless `allow_private`) no private address literal or `localhost`.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, DestinationError> {
    let url = Url::parse(raw.trim()).map_err(|_| DestinationError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    let host = url.host().ok_or(DestinationError::Invalid)?;
    if allow_private {
        return Ok(url);
    }
    let public = match host {
        Host::Ipv4(ip) => is_public(IpAddr::V4(ip)),
        Host::Ipv6(ip) => is_public(IpAddr::V6(ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost") && name.contains('.')
        }
    };
    if public {
        Ok(url)
    } else {
        Err(DestinationError::Private)
    }
}

/// Whether `ip` is a public unicast address (not loopback, private, shared, link-local,
/// unspecified, documentation, benchmarking, multicast, reserved or unique local).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 can reach anything IPv4
        || ip.to_ipv4().is_some_and(|v4| s[0..6] == [0; 6] && !is_public_v4(v4)))
}

/// A DNS resolver for the HTTP client that drops non-public addresses (all of them are kept
/// when `allow_private`), and fails when none is left.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    /// Keep private addresses too.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(DestinationError::Private) as Box<_>);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_webhook_may_name() {
        let cases: &[(&str, bool, Result<(), DestinationError>)] = &[
            ("https://hooks.example.com/callopt?token=x", false, Ok(())),
            ("http://203.0.113.9/", false, Err(DestinationError::Private)),
            ("http://8.8.8.8/in", false, Ok(())),
            ("ftp://example.com/", false, Err(DestinationError::Scheme)),
            (
                "https://u:p@example.com/",
                false,
                Err(DestinationError::Credentials),
            ),
            ("not a url", false, Err(DestinationError::Invalid)),
            ("http://127.0.0.1:9/", false, Err(DestinationError::Private)),
            ("http://127.0.0.1:9/", true, Ok(())),
            ("http://localhost/", false, Err(DestinationError::Private)),
            (
                "http://api.localhost/",
                false,
                Err(DestinationError::Private),
            ),
            ("http://intranet/", false, Err(DestinationError::Private)),
            ("http://10.1.2.3/", false, Err(DestinationError::Private)),
            (
                "http://169.254.169.254/latest",
                false,
                Err(DestinationError::Private),
            ),
            ("http://[::1]/", false, Err(DestinationError::Private)),
            (
                "http://[::ffff:10.0.0.1]/",
                false,
                Err(DestinationError::Private),
            ),
            ("http://[fd00::1]/", false, Err(DestinationError::Private)),
            ("http://[2606:4700::1111]/", false, Ok(())),
            ("http://0.0.0.0/", false, Err(DestinationError::Private)),
            ("http://100.64.0.1/", false, Err(DestinationError::Private)),
        ];
        for (url, allow, want) in cases {
            assert_eq!(
                check_url(url, *allow).map(|_| ()),
                *want,
                "{url} allow_private={allow}"
            );
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_private_addresses() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        assert!(PublicResolver {
            allow_private: false
        }
        .resolve(name())
        .await
        .is_err());
        let found: Vec<_> = PublicResolver {
            allow_private: true,
        }
        .resolve(name())
        .await
        .unwrap()
        .collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }
}
