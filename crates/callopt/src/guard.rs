//! The page scanner the service's scan worker calls: `callopt-scan` behind the Guard's
//! `PageScanner`, with the shared address rule.

use callopt_guard::scanner::{PageScanner, PageVerdict};
use callopt_scan::fetch::{self, Limits};
use callopt_scan::Verdict;

/// `callopt-scan` with one HTTP client for every scan.
pub struct Scanner {
    /// Bounds on each fetch, and whether private addresses may be reached.
    limits: Limits,
    /// The client (its resolver keeps only public addresses unless allowed).
    client: reqwest::Client,
}

impl Scanner {
    /// A scanner; `allow_private` only for tests and private deployments.
    pub fn new(allow_private: bool) -> Self {
        let limits = Limits {
            allow_private,
            ..Limits::default()
        };
        Self {
            client: fetch::client(&limits),
            limits,
        }
    }
}

#[async_trait::async_trait]
impl PageScanner for Scanner {
    async fn scan(&self, url: &str) -> Result<PageVerdict, String> {
        let report = fetch::scan_url(&self.client, url, &self.limits)
            .await
            .map_err(|e| e.to_string())?;
        Ok(verdict_of(&report))
    }
}

/// The stored form of a scanner report.
pub fn verdict_of(report: &callopt_scan::Report) -> PageVerdict {
    PageVerdict {
        verdict: match report.decision.verdict {
            Verdict::Scam => "scam",
            Verdict::Review => "review",
            Verdict::Clean => "clean",
        }
        .to_string(),
        score: f64::from(report.decision.score),
        rule: report.decision.rule.clone(),
        findings_json: serde_json::to_string(&report.findings).unwrap_or_else(|_| "[]".into()),
    }
}
