//! Where a visitor is and what language it reads: from a trusted header or a MaxMind-format
//! database, and from `Accept-Language`.

use axum::http::{HeaderMap, HeaderName};
use std::net::{IpAddr, SocketAddr};

/// How the service learns a visitor's country.
#[derive(Default)]
pub struct GeoConfig {
    /// A header set by a CDN or load balancer in front of Callopt with the visitor's ISO
    /// country code (`CF-IPCountry`, `CloudFront-Viewer-Country`, ...). Trusted as is.
    pub country_header: Option<HeaderName>,
    /// A MaxMind-format country or city database, looked up by the client address.
    pub database: Option<maxminddb::Reader<Vec<u8>>>,
    /// A header with the client address set by a trusted proxy (`X-Forwarded-For`: the first
    /// address is used); without it, the connection's peer address.
    pub client_ip_header: Option<HeaderName>,
}

impl GeoConfig {
    /// The visitor's country (ISO 3166-1 alpha-2, upper case), when it can be told.
    pub fn country(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
        if let Some(name) = &self.country_header {
            let code = headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .to_ascii_uppercase();
            return (code.len() == 2
                && code.bytes().all(|b| b.is_ascii_uppercase())
                && code != "XX")
                .then_some(code);
        }
        let db = self.database.as_ref()?;
        let ip = self.client_ip(headers, peer)?;
        let found: maxminddb::geoip2::Country = db.lookup(ip).ok()?.decode().ok()??;
        found.country.iso_code.map(str::to_string)
    }

    /// The client address to rate-limit by: with `client_ip_header`, its last address (the one
    /// the trusted proxy in front added: a client can put any addresses before it), else the
    /// connection's peer. Falls back to the peer when the header is missing or unreadable.
    pub fn limit_key(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        self.client_ip_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
            .unwrap_or(peer.ip())
    }

    fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        match &self.client_ip_header {
            Some(name) => headers
                .get(name)?
                .to_str()
                .ok()?
                .split(',')
                .next()?
                .trim()
                .parse()
                .ok(),
            None => peer.map(|p| p.ip()),
        }
    }
}

/// The preferred language (primary ISO 639 subtag) of an `Accept-Language` value.
pub fn preferred_language(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    let mut best: Option<(f32, String)> = None;
    for part in value.split(',').take(16) {
        let mut pieces = part.split(';');
        let tag = pieces.next()?.trim();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next()?.to_ascii_lowercase();
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
            continue;
        }
        if best.as_ref().is_none_or(|(bq, _)| q > *bq) {
            best = Some((q, primary));
        }
    }
    best.map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn language_takes_the_highest_quality() {
        let h = headers(&[("accept-language", "en;q=0.5, de-AT, fr;q=0.9, *;q=0.1")]);
        assert_eq!(preferred_language(&h).as_deref(), Some("de"));
        assert_eq!(
            preferred_language(&headers(&[("accept-language", "*")])),
            None
        );
        assert_eq!(preferred_language(&HeaderMap::new()), None);
    }

    #[test]
    fn trusted_header_gives_the_country() {
        let geo = GeoConfig {
            country_header: Some(HeaderName::from_static("cf-ipcountry")),
            ..Default::default()
        };
        assert_eq!(
            geo.country(&headers(&[("cf-ipcountry", "gb")]), None)
                .as_deref(),
            Some("GB")
        );
        assert_eq!(geo.country(&headers(&[("cf-ipcountry", "XX")]), None), None);
        assert_eq!(
            geo.country(&headers(&[("cf-ipcountry", "<script>")]), None),
            None
        );
        assert_eq!(geo.country(&HeaderMap::new(), None), None);
    }
}
