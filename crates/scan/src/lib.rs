//! Callopt's landing page scanner: reads a page and its scripts and says whether it behaves
//! like a tech-support scam (browser locking, fake alerts, a number to call), with the reasons.
//!
//! # Layout
//! - [`dynamic`]: the page run in headless Chromium with a recorder of the locking APIs
//!   (`--dynamic`), for code static analysis cannot read.
//! - [`fetch`]: fetching a page with several browser user agents and its external scripts,
//!   bounded in size, time and redirects, never to a non-public address unless allowed.
//! - [`html`]: the markup (html5gum's WHATWG tokenizer): scripts, visible and large text, media,
//!   page-wide CSS, links.
//! - [`js`]: each script's behaviour, from its syntax tree (oxc), in context.
//! - [`text`]: phone numbers and scare wording in several languages.
//! - [`score`]: findings with weights and places, the blocking rules and the bands.
//!
//! [`analyze`] is pure (no I/O): it takes the page's HTML and the code of the external scripts
//! the caller fetched or read; [`fetch::scan_url`] does both steps for a URL.

pub mod dynamic;
pub mod fetch;
pub mod html;
pub mod js;
pub mod score;
pub mod text;

pub use score::{Decision, Finding, Kind, Verdict};
use serde::Serialize;

/// Hosts of remote-access tools that scam callers ask victims to install.
const REMOTE_ACCESS: &[&str] = &[
    "anydesk.",
    "teamviewer.",
    "ultraviewer.",
    "supremocontrol.",
    "ammyy.",
    "logmeinrescue.",
    "lmi1.com",
    "screenconnect.",
    "connectwise.",
    "assist.zoho.",
    "splashtop.",
    "fixme.it",
    "aeroadmin.",
    "rustdesk.",
    "islonline.",
    "remotepc.",
    "getscreen.me",
    "rsupport.",
];

/// Most findings kept per code (their places).
const MAX_PLACES: usize = 5;

/// The scanner's answer for one page.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was scanned: the URL or file as given.
    pub input: String,
    /// The verdict, score and deciding rule.
    #[serde(flatten)]
    pub decision: Decision,
    /// Every finding, heaviest first.
    pub findings: Vec<Finding>,
    /// Scripts read (inline, attributes and external).
    pub scripts: usize,
    /// Syntax errors the JavaScript parser recovered from, over all scripts.
    pub script_errors: usize,
    /// Problems that kept part of the page from being read (a script that could not be
    /// fetched, a user agent that got no answer).
    pub notes: Vec<String>,
}

/// Scans a page: its HTML and the code of its external scripts (`(src, code)`).
pub fn analyze(input: &str, html: &str, external: &[(String, String)]) -> Report {
    let markup = html::read(html);
    let mut findings = Vec::new();
    let mut script_errors = 0;
    let scripts = markup
        .scripts
        .iter()
        .map(|s| (s.source.clone(), s.code.as_str()));
    let external = external
        .iter()
        .map(|(src, code)| (html::ScriptSource::External(src.clone()), code.as_str()));
    let mut count = 0;
    // A kit may read its number from the query string in one script and write it in another.
    let mut number_param: Option<String> = None;
    let mut page_written = false;
    for (source, code) in scripts.chain(external) {
        count += 1;
        let origin = match &source {
            html::ScriptSource::Attribute { tag, attribute } => js::Origin::Attribute {
                event: leak_event(&attribute[2..]),
                page_wide: matches!(tag.as_str(), "body" | "html" | "frameset"),
            },
            _ => js::Origin::Script,
        };
        let report = js::analyze(code, origin);
        script_errors += report.errors;
        if report.reads_number_param && number_param.is_none() {
            number_param = Some(source.to_string());
        }
        page_written |= report.writes_page;
        for hit in report.hits {
            let (code, kind, weight, detail) = score::describe(hit.behaviour);
            let location = match &source {
                html::ScriptSource::Attribute { .. } => source.to_string(),
                _ => format!("{source}, line {}", hit.line),
            };
            findings.push(Finding {
                code,
                kind,
                weight,
                location,
                detail: detail.to_string(),
            });
        }
    }
    if let (Some(location), true) = (number_param, page_written) {
        let (code, kind, weight, detail) = score::describe(js::Behaviour::NumberFromQuery);
        if !findings.iter().any(|f| f.code == code) {
            findings.push(Finding {
                code,
                kind,
                weight,
                location,
                detail: format!("{detail} (by another script)"),
            });
        }
    }
    markup_findings(&markup, &mut findings);
    let findings = merge(findings);
    Report {
        input: input.to_string(),
        decision: score::decide(&findings),
        findings,
        scripts: count,
        script_errors,
        notes: Vec::new(),
    }
}

/// Event names as `'static` strings for the context table (unknown ones map to a control's).
fn leak_event(event: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "load",
        "domcontentloaded",
        "readystatechange",
        "pageshow",
        "keydown",
        "keyup",
        "keypress",
        "click",
        "mousedown",
        "mouseup",
        "pointerdown",
        "pointerup",
        "touchstart",
        "touchend",
        "dblclick",
        "auxclick",
        "mousemove",
        "mouseover",
        "mouseenter",
        "scroll",
        "wheel",
        "beforeunload",
        "unload",
        "pagehide",
        "popstate",
        "hashchange",
        "blur",
        "focusout",
        "visibilitychange",
        "resize",
        "fullscreenchange",
        "contextmenu",
    ];
    let lower = event.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|k| **k == lower)
        .copied()
        .unwrap_or("other")
}

fn markup_findings(markup: &html::Markup, findings: &mut Vec<Finding>) {
    let mut add = |code, kind, weight, location: &str, detail: String| {
        findings.push(Finding {
            code,
            kind,
            weight,
            location: location.to_string(),
            detail,
        })
    };
    let said = text::read(&markup.text);
    let large = text::read(&markup.large_text);
    if let Some((number, times)) = said.phones.iter().max_by_key(|(_, n)| *n) {
        add(
            "phone_number",
            Kind::Context,
            1.0,
            "text",
            format!("shows a phone number ({number})"),
        );
        let in_large = large.phones.iter().any(|(d, _)| d == number);
        if *times >= 3 || in_large {
            add(
                "phone_prominent",
                Kind::Context,
                2.0,
                if in_large { "large text" } else { "text" },
                format!("repeats it ({times} times) or sets it in large type"),
            );
        }
    }
    if let Some(claim) = &said.victim_claim {
        let (weight, detail) = match &said.brand {
            Some(brand) => (3.0, format!("names {brand} and claims: \"{claim}\"")),
            None => (2.0, format!("claims: \"{claim}\"")),
        };
        add("victim_claim", Kind::Scare, weight, "text", detail);
    }
    if let Some(p) = &said.do_not_close {
        add(
            "do_not_close",
            Kind::Scare,
            3.0,
            "text",
            format!("tells the visitor \"{p}\""),
        );
    }
    if let Some(c) = &said.error_code {
        add(
            "error_code",
            Kind::Scare,
            2.0,
            "text",
            format!("shows an error code ({c})"),
        );
    }
    if let Some(p) = &said.call_support {
        add(
            "call_support",
            Kind::Scare,
            1.0,
            "text",
            format!("asks for a call (\"{p}\")"),
        );
    }
    for el in &markup.audio_loops {
        add(
            "audio_loop",
            Kind::Scare,
            3.0,
            el,
            "plays looped audio on its own".into(),
        );
    }
    for el in &markup.cursor_hidden {
        add(
            "cursor_hidden",
            Kind::Locking,
            3.0,
            el,
            "hides the mouse cursor on the page".into(),
        );
    }
    for link in &markup.links {
        let lower = link.to_ascii_lowercase();
        if let Some(tool) = REMOTE_ACCESS.iter().find(|t| lower.contains(*t)) {
            let tool = tool.trim_end_matches('.');
            add(
                "remote_access_link",
                Kind::Context,
                2.0,
                link,
                format!("links to a remote-access tool ({tool})"),
            );
        }
    }
}

/// One finding per code: the first keeps the weight, the places are listed.
pub(crate) fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        match out.iter_mut().find(|o| o.code == f.code) {
            Some(o) => {
                let places = o.location.matches("; ").count() + 1;
                if places < MAX_PLACES && !o.location.contains(&f.location) {
                    o.location.push_str("; ");
                    o.location.push_str(&f.location);
                }
            }
            None => out.push(f),
        }
    }
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locker_is_a_scam_and_a_plumber_is_clean() {
        let locker = r#"<html><body><h1>Windows Defender Security Alert</h1>
            <p>Your computer has been blocked. Call +1-888-555-0142</p>
            <script>document.onclick=function(){document.documentElement.requestFullscreen()};
            setInterval(function(){alert('Virus!')},500)</script></body></html>"#;
        let r = analyze("t", locker, &[]);
        assert_eq!(r.decision.verdict, Verdict::Scam, "{r:#?}");
        let plumber = r#"<h1>Joe's Plumbing: call 1-888-555-0199</h1><p>Leaks fixed fast.</p>"#;
        assert_eq!(analyze("t", plumber, &[]).decision.verdict, Verdict::Clean);
    }
}
