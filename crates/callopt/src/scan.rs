//! `callopt scan URL|FILE…`: scans landing pages for tech-support scam behaviour and prints a
//! verdict with its reasons for each, or JSON lines with `--json`, then a summary.
//!
//! Exit status: 0 when no input is a scam and every input was scanned, 1 when any input is a
//! scam, 2 when some input could not be scanned (unreadable, unreachable, refused) and none is
//! a scam. So a script can gate on "no scam" with a plain status check.

use callopt_scan::dynamic::{self, Chromium};
use callopt_scan::fetch::{self, Limits};
use callopt_scan::{Report, Verdict};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// Flags of `callopt scan`.
#[derive(clap::Args)]
pub struct ScanArgs {
    /// URLs (http, https) or files to scan.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Print one JSON object per input (and a summary object) instead of text.
    #[arg(long)]
    json: bool,
    /// Let fetches reach loopback and private addresses (tests, private networks).
    #[arg(long)]
    allow_private: bool,
    /// Seconds for each page (with its redirects and scripts), per browser.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Inputs scanned at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Also run each page in headless Chromium and record the locking calls it makes (for
    /// obfuscated pages static analysis cannot read); about five seconds a page.
    #[arg(long)]
    dynamic: bool,
    /// The Chromium to run with `--dynamic` (default: the one found on the PATH).
    #[arg(long, value_name = "PATH")]
    chromium: Option<std::path::PathBuf>,
}

/// One input's outcome.
enum Outcome {
    Scanned(Report),
    Failed(String),
}

/// Runs the command; the process exit status.
pub async fn run(args: ScanArgs) -> anyhow::Result<i32> {
    let limits = Limits {
        allow_private: args.allow_private,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        ..Limits::default()
    };
    let client = fetch::client(&limits);
    let chromium = if args.dynamic {
        Some(Chromium::launch(args.chromium.clone(), &limits).await?)
    } else {
        None
    };
    let bar = if args.inputs.len() > 1 {
        ProgressBar::new(args.inputs.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} pages ({per_sec}, {eta} left)")
                .expect("valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut outcomes = futures_util::stream::iter(args.inputs.iter().cloned())
        .map(|input| {
            let (client, limits, chromium) = (client.clone(), limits.clone(), chromium.as_ref());
            async move {
                let mut outcome = scan_one(&client, &input, &limits).await;
                if let (Some(chromium), Outcome::Scanned(report)) = (chromium, &mut outcome) {
                    run_dynamic(chromium, &input, report).await;
                }
                (input, outcome)
            }
        })
        .buffered(args.concurrency.max(1));
    let (mut scam, mut review, mut clean, mut failed) = (0, 0, 0, 0);
    while let Some((input, outcome)) = outcomes.next().await {
        match &outcome {
            Outcome::Scanned(r) => match r.decision.verdict {
                Verdict::Scam => scam += 1,
                Verdict::Review => review += 1,
                Verdict::Clean => clean += 1,
            },
            Outcome::Failed(_) => failed += 1,
        }
        let text = if args.json {
            json_line(&input, &outcome)
        } else {
            human(&input, &outcome)
        };
        if bar.suspend(|| emit(&text)).is_err() {
            // stdout closed (`| head`): nobody reads on, stop quietly
            drop(outcomes);
            if let Some(chromium) = chromium {
                chromium.close().await;
            }
            return Ok(if scam > 0 { 1 } else { 0 });
        }
        bar.inc(1);
    }
    drop(outcomes);
    if let Some(chromium) = chromium {
        chromium.close().await;
    }
    bar.finish_and_clear();
    let total = args.inputs.len();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"summary": {"inputs": total, "scam": scam, "review": review,
                "clean": clean, "failed": failed}})
        );
    } else {
        println!("{total} scanned: {scam} scam, {review} review, {clean} clean, {failed} failed");
    }
    Ok(if scam > 0 {
        1
    } else if failed > 0 {
        2
    } else {
        0
    })
}

/// Runs the page in Chromium and completes its report with what the browser saw; a page the
/// browser could not run keeps its static verdict, with a note saying why.
async fn run_dynamic(chromium: &Chromium, input: &str, report: &mut Report) {
    let url = if input.starts_with("http://") || input.starts_with("https://") {
        input.to_string()
    } else {
        match std::fs::canonicalize(input)
            .ok()
            .and_then(|p| url::Url::from_file_path(p).ok())
        {
            Some(url) => url.to_string(),
            None => {
                report
                    .notes
                    .push("not run in Chromium: no file URL for it".into());
                return;
            }
        }
    };
    match chromium.observe(&url).await {
        Ok(observation) => *report = dynamic::combine(report.clone(), &observation),
        Err(e) => report.notes.push(format!("not run in Chromium: {e}")),
    }
}

/// Writes a line to stdout; an error when stdout is closed.
fn emit(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

async fn scan_one(client: &reqwest::Client, input: &str, limits: &Limits) -> Outcome {
    let is_url = input.starts_with("http://") || input.starts_with("https://");
    if is_url {
        return match fetch::scan_url(client, input, limits).await {
            Ok(r) => Outcome::Scanned(r),
            Err(e) => Outcome::Failed(e.to_string()),
        };
    }
    let path = Path::new(input).to_path_buf();
    let max = limits.max_body;
    let input = input.to_string();
    let task = tokio::task::spawn_blocking(move || scan_file(&input, &path, max));
    match task.await {
        Ok(Ok(r)) => Outcome::Scanned(r),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(e) => Outcome::Failed(format!("the scan stopped: {e}")),
    }
}

/// Scans a file; its external scripts are read beside it when they are relative paths in the
/// same folder or below (a saved page's `page_files/`), never fetched.
fn scan_file(input: &str, path: &Path, max: usize) -> Result<Report, String> {
    let html = read_bounded(path, max).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let markup = callopt_scan::html::read(&html);
    let mut scripts = Vec::new();
    let mut notes = Vec::new();
    for src in markup
        .external_scripts
        .iter()
        .take(Limits::default().max_scripts)
    {
        let local = !src.contains("://") && !src.starts_with("//") && !src.starts_with('/');
        let inside = !src.split(['/', '\\']).any(|part| part == "..");
        if !(local && inside) {
            notes.push(format!("script {src}: not read (not beside the file)"));
            continue;
        }
        let file = dir.join(src.split(['?', '#']).next().unwrap_or(src));
        match read_bounded(&file, Limits::default().max_script) {
            Ok(code) => scripts.push((src.clone(), code)),
            Err(e) => notes.push(format!("script {src}: {e}")),
        }
    }
    let mut report = callopt_scan::analyze(input, &html, &scripts);
    report.notes = notes;
    Ok(report)
}

fn read_bounded(path: &Path, max: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max as u64)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn human(input: &str, outcome: &Outcome) -> String {
    let r = match outcome {
        Outcome::Failed(e) => return format!("{input}: error: {e}"),
        Outcome::Scanned(r) => r,
    };
    let mut out = format!(
        "{input}: {} (score {}; {})",
        r.decision.verdict, r.decision.score, r.decision.rule
    );
    for f in r
        .findings
        .iter()
        .filter(|f| r.decision.verdict != Verdict::Clean || f.weight > 0.0)
    {
        out.push_str(&format!(
            "\n  {:>4} {:<24} {} [{}]",
            f.weight, f.code, f.detail, f.location
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("\n  note: {n}"));
    }
    out
}

fn json_line(input: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Scanned(r) => serde_json::to_string(r).unwrap_or_default(),
        Outcome::Failed(e) => serde_json::json!({"input": input, "error": e}).to_string(),
    }
}
