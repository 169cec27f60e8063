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

/// Query parameters that say which ad or e-mail brought the visitor, not what the page shows:
/// a new value comes with every click, so they are left out of the URL a page is scanned at.
const CLICK_PARAMETERS: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "utm_id",
    "gclid",
    "gclsrc",
    "gbraid",
    "wbraid",
    "dclid",
    "fbclid",
    "msclkid",
    "ttclid",
    "twclid",
    "li_fat_id",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
];

/// The URL a landing page is scanned at and known by in the Guard: the page URL with its query
/// string (scam kits pass the phone number and their switches in it) but without the ad-click and
/// analytics parameters that differ on every click, and without the fragment. The other
/// parameters keep their text and order.
pub fn scan_url(page_url: &str) -> String {
    let without_fragment = page_url.split('#').next().unwrap_or_default();
    let Some((base, query)) = without_fragment.split_once('?') else {
        return without_fragment.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !pair.is_empty()
                && !CLICK_PARAMETERS
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(name))
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_url_keeps_what_the_page_shows_and_drops_click_ids() {
        for (page, scanned) in [
            ("https://a.example/lp", "https://a.example/lp"),
            ("https://a.example/lp?gclid=abc", "https://a.example/lp"),
            (
                "https://a.example/lp?utm_source=g&ph=18005550100&gclid=x&lock=1#top",
                "https://a.example/lp?ph=18005550100&lock=1",
            ),
            (
                "https://a.example/lp?a=%20b&&GCLID=1",
                "https://a.example/lp?a=%20b",
            ),
            ("https://a.example/lp?#x", "https://a.example/lp"),
            (
                "https://a.example/lp?utm_sourcex=1",
                "https://a.example/lp?utm_sourcex=1",
            ),
        ] {
            assert_eq!(scan_url(page), scanned, "{page}");
        }
    }

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
