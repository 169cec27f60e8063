//! The dashboard (`web/dashboard`), embedded in the binary: its page and versioned assets.
//!
//! `/dashboard` is the page, never cached long, which names its scripts and stylesheets under
//! `/dashboard/<version>/…`; `<version>` is a hash of every asset, so those are immutable and
//! cached for a year, and a new build changes every URL at once. The page and its assets are
//! public: the data comes from the API with the API key the visitor signs in with, which the
//! page keeps in `sessionStorage` and sends only as an `Authorization` header.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The page; `{{VERSION}}` is replaced with [`version`].
const INDEX: &str = include_str!("../../../web/dashboard/index.html");

/// Every asset: (path under the version, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/dashboard/api.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/dashboard/views.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/dashboard/style.css"),
    ),
    (
        "vendor/uPlot.esm.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/dashboard/vendor/uPlot.esm.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/dashboard/vendor/uPlot.min.css"),
    ),
];

/// Same-origin scripts, styles and API calls only; no framing; no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// A hash of every asset (16 hex digits): the path segment that versions them.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hash = Sha256::new();
        for (name, _, bytes) in ASSETS {
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| INDEX.replace("{{VERSION}}", version()))
}

fn secure(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// `GET /dashboard`: the page. Revalidated on every load, so it always names current assets.
pub async fn index() -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page(),
    )
        .into_response();
    secure(&mut response);
    response
}

/// `GET /dashboard/{version}/{*file}`: one asset. Immutable under the current version; a page
/// of an older version still gets the current file, uncached.
pub async fn asset(Path((v, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return crate::problem::ApiError::NotFound("dashboard file").into_response();
    };
    let current = v == version();
    let etag = format!("\"{}\"", version());
    let mut response = if current
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|t| t.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if current {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    if current {
        h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    }
    secure(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_assets_of_the_current_version() {
        assert_eq!(version().len(), 16);
        assert!(page().contains(&format!("/dashboard/{}/app.js", version())));
        assert!(!page().contains("{{VERSION}}"));
    }

    #[tokio::test]
    async fn assets_of_the_current_version_are_immutable_and_others_are_not() {
        let current = asset(
            Path((version().to_string(), "app.js".into())),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(current.status(), StatusCode::OK);
        assert_eq!(
            current.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let old = asset(Path(("0".into(), "app.js".into())), HeaderMap::new()).await;
        assert_eq!(old.status(), StatusCode::OK);
        assert_eq!(old.headers()[header::CACHE_CONTROL], "no-cache");
        let missing = asset(
            Path((version().to_string(), "../Cargo.toml".into())),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
