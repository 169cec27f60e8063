//! Verified domains: the hosts whose pages may be served tracking numbers.

use crate::ValidationError;

/// A host name (optionally with a port), lower case, as it appears in an `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainHost(String);

impl DomainHost {
    /// Parses a host such as `example.com`, `shop.example.com` or `127.0.0.1:8080`.
    /// Schemes, paths and wildcards are rejected: the account proves ownership of one host.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad = || {
            ValidationError::new(
                field,
                format!("{raw:?} is not a host name such as \"www.example.com\""),
            )
        };
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
        if host.is_empty() || host.len() > 253 || !host.chars().all(allowed) {
            return Err(bad());
        }
        let parsed = url::Url::parse(&format!("http://{host}/")).map_err(|_| bad())?;
        let name = parsed.host_str().ok_or_else(bad)?;
        let normalised = match parsed.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_string(),
        };
        if normalised != host || !parsed.username().is_empty() {
            return Err(bad());
        }
        Ok(Self(normalised))
    }

    /// The host in its normal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host (with port, when not the scheme's default) of an `Origin` or `Referer` value.
    pub fn from_origin(origin: &str) -> Option<Self> {
        let url = url::Url::parse(origin).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let name = url.host_str()?.to_ascii_lowercase();
        Some(Self(match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name,
        }))
    }

    /// Whether a page on `page` may be served as this verified host: the same host, or a
    /// subdomain of it (a verified `example.com` covers `www.example.com`).
    pub fn covers(&self, page: &DomainHost) -> bool {
        page.0 == self.0
            || (page.0.len() > self.0.len()
                && page.0.ends_with(&self.0)
                && page.0.as_bytes()[page.0.len() - self.0.len() - 1] == b'.')
    }
}

/// The token a domain's owner publishes at `/.well-known/callopt-verification.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationToken(pub String);

impl VerificationToken {
    /// The path on the domain where the token must be published.
    pub const WELL_KNOWN_PATH: &'static str = "/.well-known/callopt-verification.txt";

    /// Whether a fetched body proves ownership: the token alone on a line.
    pub fn is_proved_by(&self, body: &str) -> bool {
        body.lines().any(|l| l.trim() == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalise_and_reject_urls() {
        assert_eq!(
            DomainHost::parse("h", "Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            DomainHost::parse("h", "127.0.0.1:8080").unwrap().as_str(),
            "127.0.0.1:8080"
        );
        assert!(DomainHost::parse("h", "https://example.com").is_err());
        assert!(DomainHost::parse("h", "example.com/path").is_err());
        assert!(DomainHost::parse("h", "*.example.com").is_err());
        assert!(DomainHost::parse("h", "user@example.com").is_err());
        assert!(DomainHost::parse("h", "").is_err());
    }

    #[test]
    fn coverage_is_exact_host_or_subdomain() {
        let v = DomainHost::parse("h", "example.com").unwrap();
        let page = |o: &str| DomainHost::from_origin(o).unwrap();
        assert!(v.covers(&page("https://example.com")));
        assert!(v.covers(&page("https://www.example.com/x?y")));
        assert!(!v.covers(&page("https://badexample.com")));
        assert!(!v.covers(&page("https://example.com.evil.net")));
        assert!(!v.covers(&page("https://example.com:8443")));
        assert_eq!(DomainHost::from_origin("null"), None);
        assert_eq!(DomainHost::from_origin("file:///tmp/x"), None);
    }

    #[test]
    fn token_must_stand_alone_on_a_line() {
        let t = VerificationToken("callopt-verify=abc".into());
        assert!(t.is_proved_by("other\ncallopt-verify=abc\n"));
        assert!(!t.is_proved_by("xcallopt-verify=abcx"));
    }
}
