//! `callopt numbers import FILE`: sends a CSV file to a running service's import endpoint in
//! chunks, with a progress bar, so that the service's DNI state learns the numbers at once.

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Rows sent per request.
const CHUNK: usize = 1000;

/// Flags of `callopt numbers import`.
#[derive(Args)]
pub struct ImportArgs {
    /// CSV file: header `e164[,country][,languages][,kind]`, or one number per line.
    file: PathBuf,
    /// Base URL of the running service.
    #[arg(long, env = "CALLOPT_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The account's API key.
    #[arg(long, env = "CALLOPT_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Pool the numbers join.
    #[arg(long)]
    pool: Option<i64>,
    /// Languages for rows that give none (comma-separated).
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
    /// Country for national-form numbers in rows that give none.
    #[arg(long)]
    country: Option<String>,
}

/// A data line of the file with its line number.
struct Line<'a> {
    number: usize,
    text: &'a str,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, text)| Line {
            number: i + 1,
            text,
        })
        .filter(|l| !l.text.trim().is_empty())
        .peekable();
    let header = match lines.peek() {
        Some(first) if first.text.to_ascii_lowercase().contains("e164") => {
            lines.next().map(|l| l.text)
        }
        _ => None,
    };
    let rows: Vec<Line> = lines.collect();
    let bar = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} numbers ({per_sec}, {eta} left)")
            .expect("valid template"),
    );
    let client = reqwest::Client::new();
    let endpoint = format!("{}/v1/numbers/import", args.url.trim_end_matches('/'));
    let (mut imported, mut failed) = (0u64, Vec::<String>::new());
    for chunk in rows.chunks(CHUNK) {
        let mut csv = String::new();
        if let Some(h) = header {
            csv.push_str(h);
            csv.push('\n');
        }
        for line in chunk {
            csv.push_str(line.text);
            csv.push('\n');
        }
        let body = json!({
            "pool_id": args.pool,
            "languages": args.languages,
            "country": args.country,
            "csv": csv,
        });
        let response = client
            .post(&endpoint)
            .bearer_auth(&args.api_key)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("sending to {endpoint}"))?;
        let status = response.status();
        let answer: Value = response.json().await.context("reading the answer")?;
        if !status.is_success() {
            bar.abandon();
            bail!(
                "the service refused the import ({status}): {}",
                answer["detail"].as_str().unwrap_or("no detail")
            );
        }
        imported += answer["imported"].as_u64().unwrap_or(0);
        let offset = usize::from(header.is_some()) + 1;
        for f in answer["failed"].as_array().into_iter().flatten() {
            let row = f["row"].as_u64().unwrap_or(0) as usize;
            let line = row
                .checked_sub(offset)
                .and_then(|i| chunk.get(i))
                .map_or(0, |l| l.number);
            failed.push(format!(
                "line {line}: {} ({}: {})",
                f["input"].as_str().unwrap_or(""),
                f["field"].as_str().unwrap_or(""),
                f["detail"].as_str().unwrap_or("")
            ));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    for f in failed.iter().take(50) {
        eprintln!("{f}");
    }
    if failed.len() > 50 {
        eprintln!("… and {} more", failed.len() - 50);
    }
    println!("imported: {imported}");
    println!("failed: {}", failed.len());
    Ok(())
}
