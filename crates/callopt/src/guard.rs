//! The page scanner the service's scan worker calls: `callopt-scan` behind the Guard's
//! `PageScanner`, with the shared address rule.

use callopt_guard::scanner::{PageScanner, PageVerdict};
use callopt_scan::dynamic::{self, Chromium, DynamicError};
use callopt_scan::fetch::{self, Limits};
use callopt_scan::{Report, Verdict};
use std::path::PathBuf;

/// `callopt-scan` with one HTTP client for every scan, and one Chromium when pages also run in
/// a browser.
pub struct Scanner {
    /// Bounds on each fetch, and whether private addresses may be reached.
    limits: Limits,
    /// The client (its resolver keeps only public addresses unless allowed).
    client: reqwest::Client,
    /// `Some` when pages also run in Chromium: the executable (`None`: the one on the PATH).
    dynamic: Option<Option<PathBuf>>,
    /// The browser, started at the first scan and again after it failed.
    chromium: tokio::sync::RwLock<Option<Chromium>>,
}

impl Scanner {
    /// A scanner; `allow_private` only for tests and private deployments; `dynamic` also runs
    /// each page in Chromium.
    pub fn new(allow_private: bool, dynamic: Option<Option<PathBuf>>) -> Self {
        let limits = Limits {
            allow_private,
            ..Limits::default()
        };
        Self {
            client: fetch::client(&limits),
            limits,
            dynamic,
            chromium: tokio::sync::RwLock::new(None),
        }
    }

    /// Completes `report` with what Chromium saw of the page; when the browser failed, it is
    /// started anew for the next scan and this one keeps its static verdict with a note.
    async fn run_in_browser(&self, url: &str, report: Report) -> Report {
        let Some(executable) = &self.dynamic else {
            return report;
        };
        if self.chromium.read().await.is_none() {
            let mut slot = self.chromium.write().await;
            if slot.is_none() {
                match Chromium::launch(executable.clone(), &self.limits).await {
                    Ok(c) => *slot = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "page scans run without Chromium");
                        return noted(report, format!("not run in Chromium: {e}"));
                    }
                }
            }
        }
        let observed = match self.chromium.read().await.as_ref() {
            Some(chromium) => chromium.observe(url).await,
            None => return report,
        };
        match observed {
            Ok(observation) => dynamic::combine(report, &observation),
            Err(e) => {
                if matches!(e, DynamicError::Browser(_)) {
                    if let Some(old) = self.chromium.write().await.take() {
                        old.close().await;
                    }
                }
                noted(report, format!("not run in Chromium: {e}"))
            }
        }
    }
}

fn noted(mut report: Report, note: String) -> Report {
    report.notes.push(note);
    report
}

#[async_trait::async_trait]
impl PageScanner for Scanner {
    async fn scan(&self, url: &str) -> Result<PageVerdict, String> {
        let report = fetch::scan_url(&self.client, url, &self.limits)
            .await
            .map_err(|e| e.to_string())?;
        let report = self.run_in_browser(url, report).await;
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
