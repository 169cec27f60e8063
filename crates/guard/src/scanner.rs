//! What the service's scan worker needs of a page scanner: a URL in, a verdict with its
//! findings out.

/// A page's verdict as the service stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct PageVerdict {
    /// `scam`, `review` or `clean`.
    pub verdict: String,
    /// The total of the findings' weights.
    pub score: f64,
    /// The rule that decided it, in words.
    pub rule: String,
    /// The findings as a JSON array (code, kind, weight, location, detail), heaviest first.
    pub findings_json: String,
}

/// Scans one page URL. Implementations obey the shared address rules (`callopt-egress`).
#[async_trait::async_trait]
pub trait PageScanner: Send + Sync + 'static {
    /// Fetches and scans `url`; the error is a sentence for the account.
    async fn scan(&self, url: &str) -> Result<PageVerdict, String>;
}
