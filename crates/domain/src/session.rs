//! Visitor sessions: who saw which number, and the attribution read from the page they landed on.

use crate::ValidationError;

/// The first-party id the tag keeps for a visitor (random, chosen by the page).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisitorId(pub String);

impl VisitorId {
    /// Accepts 8 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        if (8..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(Self(raw.to_string()))
        } else {
            Err(ValidationError::new(
                field,
                "8 to 64 characters of letters, digits, '_' or '-'",
            ))
        }
    }
}

/// Where a visitor came from: read once from the landing page URL and the referrer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The page URL the tag ran on, query string included.
    pub landing_url: String,
    /// The document referrer, if any.
    pub referrer: Option<String>,
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// `utm_term`.
    pub utm_term: Option<String>,
    /// `utm_content`.
    pub utm_content: Option<String>,
    /// Google Ads click id.
    pub gclid: Option<String>,
    /// Meta click id.
    pub fbclid: Option<String>,
    /// Microsoft Ads click id.
    pub msclkid: Option<String>,
    /// The query string's pairs, for the campaign trigger.
    pub query: Vec<(String, String)>,
}

/// Longest page URL or referrer accepted (browsers go further, analytics does not need to).
pub const MAX_URL_LEN: usize = 4096;

impl Attribution {
    /// Reads attribution from a page URL and referrer. The page URL must be an absolute
    /// http(s) URL; a referrer that is not one is dropped rather than refused.
    pub fn parse(page_url: &str, referrer: Option<&str>) -> Result<Self, ValidationError> {
        if page_url.len() > MAX_URL_LEN {
            return Err(ValidationError::new("page_url", "longer than 4096 bytes"));
        }
        let url = url::Url::parse(page_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ValidationError::new("page_url", "an absolute http(s) URL"))?;
        let query: Vec<(String, String)> = url
            .query_pairs()
            .take(64)
            .map(|(k, v)| (k.into_owned(), v.chars().take(256).collect()))
            .collect();
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let referrer = referrer
            .filter(|r| r.len() <= MAX_URL_LEN)
            .filter(|r| url::Url::parse(r).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
            .map(str::to_string);
        Ok(Self {
            landing_url: page_url.to_string(),
            referrer,
            utm_source: get("utm_source"),
            utm_medium: get("utm_medium"),
            utm_campaign: get("utm_campaign"),
            utm_term: get("utm_term"),
            utm_content: get("utm_content"),
            gclid: get("gclid"),
            fbclid: get("fbclid"),
            msclkid: get("msclkid"),
            query,
        })
    }

    /// The traffic source as one string, for per-source grouping: utm_source, else the click-id
    /// network, else the referrer's host, else `direct`.
    pub fn source(&self) -> String {
        if let Some(s) = &self.utm_source {
            return s.to_ascii_lowercase();
        }
        if self.gclid.is_some() {
            return "google".into();
        }
        if self.fbclid.is_some() {
            return "facebook".into();
        }
        if self.msclkid.is_some() {
            return "bing".into();
        }
        self.referrer
            .as_deref()
            .and_then(crate::DomainHost::from_origin)
            .map(|h| h.as_str().to_string())
            .unwrap_or_else(|| "direct".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utm_and_click_ids() {
        let a = Attribution::parse(
            "https://shop.example.com/p?utm_source=Google&utm_medium=cpc&utm_term=plumber&gclid=abc",
            Some("https://www.google.com/"),
        )
        .unwrap();
        assert_eq!(a.utm_source.as_deref(), Some("Google"));
        assert_eq!(a.utm_medium.as_deref(), Some("cpc"));
        assert_eq!(a.utm_term.as_deref(), Some("plumber"));
        assert_eq!(a.gclid.as_deref(), Some("abc"));
        assert_eq!(a.fbclid, None);
        assert_eq!(a.source(), "google");
    }

    #[test]
    fn rejects_non_http_page_and_drops_bad_referrer() {
        assert_eq!(
            Attribution::parse("javascript:alert(1)", None)
                .unwrap_err()
                .field,
            "page_url"
        );
        assert!(Attribution::parse("/relative", None).is_err());
        let a = Attribution::parse("http://x.test/", Some("not a url")).unwrap();
        assert_eq!(a.referrer, None);
        assert_eq!(a.source(), "direct");
    }

    #[test]
    fn visitor_ids_are_bounded() {
        assert!(VisitorId::parse("visitor", "abcd1234").is_ok());
        assert!(VisitorId::parse("visitor", "short").is_err());
        assert!(VisitorId::parse("visitor", "has space in it").is_err());
    }
}
