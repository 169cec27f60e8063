//! The explainable score: every finding with its weight and place, the rules that block
//! outright, and the bands.
//!
//! A page is blocked (`scam`) only on behaviour: words alone (an antivirus vendor's page, a news
//! article quoting a scam) go to `review` at most. The rules, in order:
//! 1. *number and locking*: a phone number shown (or taken from the query string) and two or
//!    more locking behaviours;
//! 2. *pressure and scare*: a phone number, scare wording (a claim about the visitor's device,
//!    "do not close", a fake error code) and at least one behaviour that pressures the visitor
//!    (locking, looped audio, anti-analysis);
//! 3. *score*: at least one such behaviour and a total of [`SCAM_SCORE`] or more.
//!
//! Otherwise `review` from [`REVIEW_SCORE`] or with any locking behaviour next to a phone
//! number, else `clean`.

use crate::js::Behaviour;
use serde::Serialize;

/// A total from which a page with a pressuring behaviour is a scam.
pub const SCAM_SCORE: f32 = 14.0;
/// A total from which a page goes to review.
pub const REVIEW_SCORE: f32 = 5.0;

/// The scanner's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Blocked: behaves like a tech-support scam page.
    Scam,
    /// Suspicious: a person should look.
    Review,
    /// Nothing that matters found.
    Clean,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Scam => "scam",
            Verdict::Review => "review",
            Verdict::Clean => "clean",
        })
    }
}

/// What kind of signal a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Keeps the visitor from leaving the page.
    Locking,
    /// Keeps analysts (and developer tools) out.
    AntiAnalysis,
    /// Frightens the visitor.
    Scare,
    /// A phone number, where it comes from, remote-access tools.
    Context,
    /// Seen and harmless on its own (fullscreen behind a button).
    Info,
}

/// One thing found, with its weight and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// A stable name (`fullscreen_on_load`, `victim_claim`, …).
    pub code: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its weight in the total.
    pub weight: f32,
    /// Where: a script and line, or an element.
    pub location: String,
    /// A sentence for people.
    pub detail: String,
}

/// The code, kind, weight and sentence of a script behaviour.
pub fn describe(b: Behaviour) -> (&'static str, Kind, f32, &'static str) {
    use Behaviour::*;
    match b {
        FullscreenAuto => (
            "fullscreen_auto",
            Kind::Locking,
            4.0,
            "requests fullscreen on load, on any click or key, or repeatedly",
        ),
        FullscreenOnControl => (
            "fullscreen_on_control",
            Kind::Info,
            0.0,
            "requests fullscreen from one control",
        ),
        KeyboardLockAuto => (
            "keyboard_lock_auto",
            Kind::Locking,
            3.0,
            "locks the keyboard without being asked",
        ),
        KeyboardLockOnControl => (
            "keyboard_lock_on_control",
            Kind::Info,
            0.5,
            "locks the keyboard from one control",
        ),
        PointerLockAuto => (
            "pointer_lock_auto",
            Kind::Locking,
            3.0,
            "locks the pointer without being asked",
        ),
        PointerLockOnControl => (
            "pointer_lock_on_control",
            Kind::Info,
            0.0,
            "locks the pointer from one control",
        ),
        BeforeUnloadTrap => (
            "beforeunload_trap",
            Kind::Locking,
            3.0,
            "asks the visitor to stay when leaving",
        ),
        HistoryFlood => (
            "history_flood",
            Kind::Locking,
            4.0,
            "fills the history so Back stays on the page",
        ),
        DialogLoop => (
            "dialog_loop",
            Kind::Locking,
            4.0,
            "shows alert/confirm/prompt dialogs again and again",
        ),
        WindowOpenLoop => (
            "window_open_loop",
            Kind::Locking,
            4.0,
            "opens windows again and again",
        ),
        PrintLoop => (
            "print_loop",
            Kind::Locking,
            4.0,
            "opens the print dialog again and again",
        ),
        DownloadLoop => (
            "download_loop",
            Kind::Locking,
            4.0,
            "starts downloads again and again",
        ),
        EscapeBlocked => (
            "escape_blocked",
            Kind::Locking,
            4.0,
            "cancels Escape, F11 or every key",
        ),
        DevtoolsKeysBlocked => (
            "devtools_keys_blocked",
            Kind::AntiAnalysis,
            1.0,
            "cancels F12 or developer-tool shortcuts",
        ),
        CursorHidden => (
            "cursor_hidden",
            Kind::Locking,
            3.0,
            "hides the mouse cursor on the page",
        ),
        ContextMenuBlocked => (
            "context_menu_blocked",
            Kind::AntiAnalysis,
            1.0,
            "cancels the context menu",
        ),
        DebuggerLoop => (
            "debugger_loop",
            Kind::AntiAnalysis,
            3.0,
            "runs `debugger` in a loop",
        ),
        ConsoleTampering => (
            "console_tampering",
            Kind::AntiAnalysis,
            2.0,
            "replaces or keeps clearing the console",
        ),
        Obfuscation => (
            "obfuscation",
            Kind::AntiAnalysis,
            2.0,
            "dense eval/unescape/atob/fromCharCode use",
        ),
        NumberFromQuery => (
            "number_from_query",
            Kind::Context,
            3.0,
            "writes a phone-number parameter of the URL into the page",
        ),
        AudioLoop => ("audio_loop", Kind::Scare, 3.0, "plays looped audio"),
    }
}

/// What decided a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// The total of the findings' weights.
    pub score: f32,
    /// The rule that decided it, in words.
    pub rule: String,
}

/// Decides a verdict from the findings.
pub fn decide(findings: &[Finding]) -> Decision {
    // An empty float sum is -0.0, which would print as "-0": adding 0.0 makes it 0.0.
    let score: f32 = findings.iter().map(|f| f.weight).sum::<f32>() + 0.0;
    let distinct = |kind: Kind| {
        let mut codes: Vec<&str> = findings
            .iter()
            .filter(|f| f.kind == kind && f.weight > 0.0)
            .map(|f| f.code)
            .collect();
        codes.sort();
        codes.dedup();
        codes.len()
    };
    let has = |code: &str| findings.iter().any(|f| f.code == code);
    let locks = distinct(Kind::Locking);
    let phone = has("phone_number") || has("number_from_query");
    let scare = has("victim_claim") || has("do_not_close") || has("error_code");
    let pressure = locks
        + usize::from(has("audio_loop") || has("html_audio_loop"))
        + usize::from(has("debugger_loop") || has("console_tampering"));
    let (verdict, rule) = if phone && locks >= 2 {
        (
            Verdict::Scam,
            format!("a phone number and {locks} locking behaviours"),
        )
    } else if phone && scare && pressure >= 1 {
        (
            Verdict::Scam,
            "a phone number, scare wording and a behaviour that pressures the visitor".to_string(),
        )
    } else if pressure >= 1 && score >= SCAM_SCORE {
        (
            Verdict::Scam,
            format!("score {score} ≥ {SCAM_SCORE} with a pressuring behaviour"),
        )
    } else if score >= REVIEW_SCORE {
        (Verdict::Review, format!("score {score} ≥ {REVIEW_SCORE}"))
    } else if phone && locks >= 1 {
        (
            Verdict::Review,
            "a phone number and a locking behaviour".to_string(),
        )
    } else {
        (Verdict::Clean, format!("score {score} < {REVIEW_SCORE}"))
    };
    Decision {
        verdict,
        score,
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_findings_scores_a_plain_zero() {
        let d = decide(&[]);
        assert_eq!(d.verdict, Verdict::Clean);
        assert!(d.score.is_sign_positive(), "{}", d.score);
        assert_eq!(d.rule, format!("score 0 < {REVIEW_SCORE}"));
    }
}
