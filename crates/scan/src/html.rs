//! The markup of a page, read with a WHATWG tokenizer (html5gum): its scripts (inline, external
//! and event attributes), its visible text and the text set in large type, looped audio,
//! page-wide CSS that hides the cursor, and links.

use html5gum::{DefaultEmitter, Token, Tokenizer};

/// Most tokens read from one page; the rest is ignored.
const MAX_TOKENS: usize = 500_000;
/// Most text kept (visible and large).
const MAX_TEXT: usize = 512 * 1024;
/// Most scripts kept (inline, attributes and external references).
const MAX_SCRIPTS: usize = 256;

/// Where a script of the page came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// The n-th inline `<script>` element (1-based).
    Inline(usize),
    /// An event attribute: `<body onload="…">`.
    Attribute {
        /// The element's tag.
        tag: String,
        /// The attribute, such as `onclick`.
        attribute: String,
    },
    /// A `<script src>` fetched separately.
    External(String),
}

impl std::fmt::Display for ScriptSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptSource::Inline(n) => write!(f, "inline script #{n}"),
            ScriptSource::Attribute { tag, attribute } => write!(f, "<{tag} {attribute}>"),
            ScriptSource::External(url) => write!(f, "script {url}"),
        }
    }
}

/// A script's code and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    /// Where it came from.
    pub source: ScriptSource,
    /// The code.
    pub code: String,
}

/// What the markup holds.
#[derive(Debug, Default)]
pub struct Markup {
    /// Inline scripts and event attributes, in document order.
    pub scripts: Vec<Script>,
    /// `src` of external scripts, in document order.
    pub external_scripts: Vec<String>,
    /// Visible text (title included), whitespace collapsed.
    pub text: String,
    /// Text in headings, `<font size>` ≥ 5, or styled with a font size of 24px (2em) or more.
    pub large_text: String,
    /// Elements that play looped audio on their own: `<audio autoplay loop>`, `<bgsound>`.
    pub audio_loops: Vec<String>,
    /// Where page-wide CSS hides the cursor.
    pub cursor_hidden: Vec<String>,
    /// `href`s of links.
    pub links: Vec<String>,
}

/// Reads the markup. Never fails: malformed HTML is read as browsers would tokenize it.
pub fn read(html: &str) -> Markup {
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(true);
    let mut m = Markup::default();
    let mut in_script: Option<bool> = None; // Some(inline?)
    let mut script_buf = String::new();
    let mut hidden_depth = 0usize; // inside <style>, <template>, <noscript>
    let mut in_style = false;
    let mut large: Vec<String> = Vec::new();
    let mut inline_count = 0usize;
    for (n, token) in Tokenizer::new_with_emitter(html, emitter).enumerate() {
        if n >= MAX_TOKENS {
            break;
        }
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                let attr = |k: &str| {
                    tag.attributes
                        .get(k.as_bytes())
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                for (k, v) in &tag.attributes {
                    let k = String::from_utf8_lossy(k).to_ascii_lowercase();
                    if k.starts_with("on") && k.len() > 2 && m.scripts.len() < MAX_SCRIPTS {
                        m.scripts.push(Script {
                            source: ScriptSource::Attribute {
                                tag: name.clone(),
                                attribute: k,
                            },
                            code: String::from_utf8_lossy(v).into_owned(),
                        });
                    }
                }
                if let Some(style) = attr("style") {
                    if matches!(name.as_str(), "body" | "html")
                        && crate::js::css_hides_cursor(&style)
                    {
                        m.cursor_hidden.push(format!("<{name} style>"));
                    }
                    if !tag.self_closing && large_style(&style) {
                        large.push(name.clone());
                    }
                }
                match name.as_str() {
                    "script" if !tag.self_closing => {
                        let src = attr("src");
                        let kind = attr("type").unwrap_or_default().to_ascii_lowercase();
                        let is_js = kind.is_empty()
                            || kind.contains("javascript")
                            || kind.contains("ecmascript")
                            || kind == "module";
                        if let Some(src) = src {
                            if m.external_scripts.len() < MAX_SCRIPTS && is_js {
                                m.external_scripts.push(src);
                            }
                            in_script = Some(false);
                        } else {
                            in_script = Some(is_js);
                        }
                        script_buf.clear();
                    }
                    "style" => {
                        in_style = true;
                        hidden_depth += 1;
                    }
                    "template" | "noscript" | "textarea" => hidden_depth += 1,
                    "h1" | "h2" | "h3" | "marquee" | "blink" => large.push(name.clone()),
                    "font"
                        if attr("size")
                            .and_then(|s| s.trim().trim_start_matches('+').parse::<u8>().ok())
                            .is_some_and(|s| s >= 5) =>
                    {
                        large.push(name.clone());
                    }
                    "audio" | "video" | "embed" | "bgsound" => {
                        let has = |k: &str| tag.attributes.contains_key(k.as_bytes());
                        let looped = has("loop");
                        let auto = has("autoplay") || name == "bgsound" || name == "embed";
                        let muted = has("muted");
                        if looped && auto && !muted && name != "video" || name == "bgsound" {
                            m.audio_loops.push(format!("<{name}>"));
                        }
                    }
                    "a" | "area" => {
                        if let Some(h) = attr("href") {
                            if m.links.len() < 2_000 {
                                m.links.push(h);
                            }
                        }
                    }
                    "br" | "p" | "div" | "li" | "tr" => push_text(&mut m.text, " "),
                    _ => {}
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "script" => {
                        if in_script == Some(true) && m.scripts.len() < MAX_SCRIPTS {
                            inline_count += 1;
                            m.scripts.push(Script {
                                source: ScriptSource::Inline(inline_count),
                                code: std::mem::take(&mut script_buf),
                            });
                        }
                        in_script = None;
                    }
                    "style" => {
                        in_style = false;
                        hidden_depth = hidden_depth.saturating_sub(1);
                    }
                    "template" | "noscript" | "textarea" => {
                        hidden_depth = hidden_depth.saturating_sub(1)
                    }
                    _ => {}
                }
                if let Some(pos) = large.iter().rposition(|t| *t == name) {
                    large.truncate(pos);
                }
                push_text(&mut m.text, " ");
            }
            Token::String(s) => {
                let s = String::from_utf8_lossy(&s);
                if in_script.is_some() {
                    if script_buf.len() < crate::js::MAX_SCRIPT {
                        script_buf.push_str(&s);
                    }
                } else if in_style {
                    if page_css_hides_cursor(&s) {
                        m.cursor_hidden.push("<style>".into());
                    }
                } else if hidden_depth == 0 {
                    push_text(&mut m.text, &s);
                    if !large.is_empty() {
                        push_text(&mut m.large_text, &s);
                        push_text(&mut m.large_text, " ");
                    }
                }
            }
            _ => {}
        }
    }
    if in_script == Some(true) && !script_buf.is_empty() && m.scripts.len() < MAX_SCRIPTS {
        // a page cut short inside a script: read what there is
        m.scripts.push(Script {
            source: ScriptSource::Inline(inline_count + 1),
            code: script_buf,
        });
    }
    m
}

fn push_text(out: &mut String, s: &str) {
    for c in s.chars() {
        if out.len() >= MAX_TEXT {
            return;
        }
        if c.is_whitespace() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Whether an inline style sets a font size of 24px, 18pt, 1.5em/rem or more.
fn large_style(style: &str) -> bool {
    let lower = style.to_ascii_lowercase();
    let Some(i) = lower.find("font-size") else {
        return false;
    };
    let rest = lower[i + 9..].trim_start_matches([' ', ':']);
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let Ok(v) = num.parse::<f32>() else {
        return rest.starts_with("xx-large") || rest.starts_with("x-large");
    };
    let unit = &rest[num.len()..];
    if unit.starts_with("px") {
        v >= 24.0
    } else if unit.starts_with("pt") {
        v >= 18.0
    } else if unit.starts_with("em") || unit.starts_with("rem") {
        v >= 1.5
    } else if unit.starts_with("vw") || unit.starts_with("vh") {
        v >= 3.0
    } else {
        false
    }
}

/// Whether a style sheet hides the cursor on the whole page (`body`, `html` or `*`).
fn page_css_hides_cursor(css: &str) -> bool {
    let lower = css.to_ascii_lowercase();
    let mut rest = lower.as_str();
    for _ in 0..10_000 {
        let Some(open) = rest.find('{') else {
            return false;
        };
        let selector = rest[..open].rsplit('}').next().unwrap_or("");
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        let block = &rest[open + 1..open + close];
        let page = selector.split(',').any(|s| {
            let s = s.trim();
            s == "*"
                || s == "html"
                || s == "body"
                || s == "html, body"
                || s == "html *"
                || s == "body *"
        });
        if page && crate::js::css_hides_cursor(block) {
            return true;
        }
        rest = &rest[open + close + 1..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scripts_text_and_media() {
        let m = read(
            "<html><head><title>Alert</title><style>body{cursor:none}</style></head>\
             <body onload=\"go()\"><h1>Call 1-800-555-0100</h1><p>Hello <b>there</b></p>\
             <script>var a = '<b>';</script><script src=x.js></script>\
             <audio autoplay loop src=a.mp3></audio><a href=\"https://anydesk.com\">x</a>",
        );
        assert_eq!(m.scripts.len(), 2);
        assert_eq!(m.external_scripts, ["x.js"]);
        assert!(m.text.contains("Hello there"), "{}", m.text);
        assert!(m.large_text.contains("1-800-555-0100"));
        assert!(!m.large_text.contains("Hello"));
        assert_eq!(m.audio_loops.len(), 1);
        assert_eq!(m.cursor_hidden.len(), 1);
        assert_eq!(m.links, ["https://anydesk.com"]);
    }

    #[test]
    fn malformed_markup_never_panics() {
        for html in [
            "",
            "<",
            "<script>",
            "<script>alert(1",
            "<<<>>><a href=",
            &"<div>".repeat(100_000),
            "<style>body{cursor:none",
            "\u{0}\u{fffd}<h1 style='font-size:'>",
        ] {
            let _ = read(html);
        }
    }
}
