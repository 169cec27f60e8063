//! The DNI tag (`web/dni.js`), embedded in the binary and served with cache headers.
//!
//! `/dni.js` is the current version, cached for five minutes so a new release reaches pages
//! soon; `/dni/<version>.js` is immutable and cached for a year, so pages that pin a version can
//! use Subresource Integrity ([`sri`]).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha384};
use std::sync::OnceLock;

/// The tag's source.
pub const SOURCE: &str = include_str!("../../../web/dni.js");

/// The tag's version; the source carries the same string.
pub const VERSION: &str = "1.0.0";

/// The Subresource Integrity value of this version (`sha384-…`).
pub fn sri() -> &'static str {
    static SRI: OnceLock<String> = OnceLock::new();
    SRI.get_or_init(|| {
        let digest = Sha384::digest(SOURCE.as_bytes());
        format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    })
}

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(SOURCE.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

fn respond(headers: &HeaderMap, cache: &'static str) -> Response {
    let tag = etag();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        SOURCE.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_str(tag).expect("ascii"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert("x-callopt-tag-version", HeaderValue::from_static(VERSION));
    response
}

/// `GET /dni.js`: the current tag.
pub async fn current(headers: HeaderMap) -> Response {
    respond(&headers, "public, max-age=300")
}

/// `GET /dni/{version}.js`: one version of the tag, immutable.
pub async fn versioned(
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if file.strip_suffix(".js") == Some(VERSION) {
        respond(&headers, "public, max-age=31536000, immutable")
    } else {
        crate::problem::ApiError::NotFound("tag version").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_carries_the_version() {
        assert!(
            SOURCE.contains(VERSION),
            "web/dni.js must name version {VERSION}"
        );
        assert!(sri().starts_with("sha384-"));
    }
}
