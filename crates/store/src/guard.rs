//! The rows of the Guard: page scans and their verdicts, quarantines, abuse reports and the
//! audit of every step.

use crate::AccountId;

/// Scans a campaign may have waiting at once; past that its new pages are not queued.
pub const MAX_QUEUED_SCANS_PER_CAMPAIGN: i64 = 1000;

/// A page scan: a queued URL, then its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRecord {
    /// Store id.
    pub id: i64,
    /// The campaign whose tag was used on the page, when one was.
    pub campaign_id: Option<i64>,
    /// The exact page URL, query string included.
    pub url: String,
    /// What queued it: `dni` (first use of the tag on the URL) or `abuse_report`.
    pub source: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// `scam`, `review` or `clean`, once scanned.
    pub verdict: Option<String>,
    /// The total of the findings' weights.
    pub score: Option<f64>,
    /// The rule that decided the verdict.
    pub rule: Option<String>,
    /// The findings as the scanner wrote them (a JSON array).
    pub findings: Option<String>,
    /// Why the scan failed, when it did.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When it finished.
    pub finished_at: Option<i64>,
    /// When an operator marked it not a scam.
    pub overridden_at: Option<i64>,
    /// The operator's note.
    pub override_note: Option<String>,
}

/// A scan claimed by the worker.
#[derive(Debug, Clone)]
pub struct ClaimedScan {
    /// Store id.
    pub id: i64,
    /// Owner, when the page belongs to a campaign.
    pub account: Option<AccountId>,
    /// The campaign, when one.
    pub campaign_id: Option<i64>,
    /// The page URL.
    pub url: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// A scan's verdict, as written.
#[derive(Debug, Clone)]
pub struct ScanVerdict {
    /// `scam`, `review` or `clean`.
    pub verdict: String,
    /// Score.
    pub score: f64,
    /// Deciding rule.
    pub rule: String,
    /// Findings JSON.
    pub findings: String,
}

/// A quarantine of a campaign or a tracking number.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRecord {
    /// Store id.
    pub id: i64,
    /// The quarantined campaign, or
    pub campaign_id: Option<i64>,
    /// the quarantined tracking number.
    pub number_id: Option<i64>,
    /// With a campaign: only its pages whose scan URL is this, or starts with it when it ends
    /// in `*`; `None`: the whole campaign.
    pub url_pattern: Option<String>,
    /// The scan that caused it, when one did.
    pub scan_id: Option<i64>,
    /// Why: `scam_page`, `abuse_reports`.
    pub reason: String,
    /// `active` or `lifted`.
    pub status: String,
    /// When.
    pub created_at: i64,
    /// When it was lifted.
    pub lifted_at: Option<i64>,
    /// The operator's note at lifting.
    pub lift_note: Option<String>,
}

/// An abuse report as received (validated at the edge).
#[derive(Debug, Clone)]
pub struct NewAbuseReport {
    /// The public reference given to the reporter.
    pub reference: String,
    /// The account it is about, when the number or page is one of an account's.
    pub account: Option<AccountId>,
    /// The reported number, E.164.
    pub number: Option<String>,
    /// The tracking number it is, when it is one.
    pub number_id: Option<i64>,
    /// The reported page.
    pub page_url: Option<String>,
    /// What the reporter says.
    pub description: String,
    /// A hash of the reporter's address.
    pub reporter: String,
    /// When.
    pub at: i64,
}

/// An abuse report as stored.
#[derive(Debug, Clone)]
pub struct AbuseReportRecord {
    /// Store id.
    pub id: i64,
    /// The report.
    pub report: NewAbuseReport,
}

/// One step of the Guard, for the audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Store id (0 before it is written).
    pub id: i64,
    /// `system`, `operator` or `reporter`.
    pub actor: String,
    /// What happened: `scan.finished`, `campaign.quarantined`, `quarantine.lifted`, ...
    pub action: String,
    /// What it happened to: `scan:3`, `campaign:7`, `number:9`, `domain:2`.
    pub subject: String,
    /// Details in words.
    pub detail: Option<String>,
    /// When.
    pub at: i64,
}
