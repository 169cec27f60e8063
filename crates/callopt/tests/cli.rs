//! End-to-end tests of the `callopt` binary: real processes, real SQLite files, real HTTP on
//! loopback, and `kill -9`.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_callopt");

/// The fewest calls the demo seeds: at least 9 on a weekday and 4 on a weekend day (UTC) for
/// each day it covers in full. Today's and yesterday's calls stop ten minutes before the demo
/// starts (a day's calls run to 03:00 UTC the day after), and the oldest day is left out so
/// that a midnight passing between the demo's count and this one changes nothing.
fn least_demo_calls() -> i64 {
    const DAY: i64 = 86_400_000;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / DAY;
    (2..29)
        .map(|ago| match (today - ago + 4).rem_euclid(7) {
            0 | 6 => 4,
            _ => 9,
        })
        .sum()
}

/// A running `callopt` process and the lines it printed on stdout.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn start(args: &[&str]) -> Self {
        Self::start_with(args, &[])
    }

    /// Starts with extra environment variables.
    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env("CALLOPT_LOG", "warn")
            .env("CALLOPT_GUARD_ALLOW_PRIVATE", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start callopt");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits (bounded) for a stdout line starting with `prefix` and returns the rest.
    fn wait_for(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line starting with {prefix:?} within 30 s"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run callopt");
    assert!(
        out.status.success(),
        "callopt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn field(output: &str, prefix: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {output}"))
        .trim()
        .to_string()
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn dni(
    client: &reqwest::Client,
    base: &str,
    origin: &str,
    campaign: &str,
    visitor: &str,
    page: &str,
) -> Value {
    let body =
        json!({"campaign": campaign, "visitor": visitor, "page_url": page, "referrer": null});
    let r = client
        .post(format!("{base}/v1/dni/sessions"))
        .header("origin", origin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A loopback server that publishes whatever verification token is put in the returned slot.
async fn token_host() -> (String, Arc<Mutex<String>>) {
    let token = Arc::new(Mutex::new(String::new()));
    let served = token.clone();
    let app = axum::Router::new().route(
        "/.well-known/callopt-verification.txt",
        axum::routing::get(move || {
            let t = served.lock().unwrap().clone();
            async move { t }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (host, token)
}

/// A pool of `count` numbers and a campaign on `host`, verified through its well-known file
/// (served from `token`); the campaign's key.
async fn verified_campaign(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    host: &str,
    token: &Mutex<String>,
    count: u32,
) -> String {
    let pool = call(client, base, key, "POST", "/v1/pools", json!({"name": "p"})).await;
    let block = json!({"start": "+14155550101", "count": count});
    let import = json!({"pool_id": pool["id"], "block": block});
    call(client, base, key, "POST", "/v1/numbers/import", import).await;
    let d = call(
        client,
        base,
        key,
        "POST",
        "/v1/domains",
        json!({"host": host}),
    )
    .await;
    *token.lock().unwrap() = d["token"].as_str().unwrap().to_string();
    let path = format!("/v1/domains/{}/verify", d["id"]);
    call(client, base, key, "POST", &path, Value::Null).await;
    let campaign = json!({"name": "c", "default_number": "+14155550100",
        "pool_id": pool["id"], "domains": [host]});
    let c = call(client, base, key, "POST", "/v1/campaigns", campaign).await;
    c["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn demo_prints_its_keys_and_serves_a_page_the_tag_can_swap() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let demo = Proc::start(&["demo", "--listen", "127.0.0.1:0", "--db", &db]);
    let seeded = demo.wait_for("demo calls:");
    let page_url = demo.wait_for("demo page:");
    let api_key = demo.wait_for("api_key:");
    let campaign = demo.wait_for("campaign:");
    assert!(api_key.starts_with("ck_"));
    assert!(campaign.starts_with("cmp_"));
    let base = page_url.split("/demo").next().unwrap().to_string();
    let client = reqwest::Client::new();
    let html = client
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&campaign),
        "the page carries the campaign key"
    );
    assert!(html.contains(&format!("{base}/dni.js")));
    // The page's own origin is verified: the tag gets a pool number there.
    let answer = dni(
        &client,
        &base,
        &base,
        &campaign,
        "demo-visitor-1",
        &page_url,
    )
    .await;
    assert_eq!(answer["swap"], true);
    assert_eq!(answer["attributed"], true);
    assert_ne!(answer["number"], "+14155550100");
    // The pool spans several countries and languages.
    let numbers = call(
        &client,
        &base,
        &api_key,
        "GET",
        "/v1/numbers?limit=500",
        Value::Null,
    )
    .await;
    let mut countries: Vec<&str> = numbers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["country"].as_str().unwrap())
        .collect();
    countries.sort();
    countries.dedup();
    assert!(countries.len() >= 3, "{countries:?}");
    let domains = call(&client, &base, &api_key, "GET", "/v1/domains", Value::Null).await;
    assert_eq!(domains["items"][0]["verified"], true);
    // The dashboard has a month to show: calls on most days of the last 30, through the
    // report the overview draws (a little of the oldest day may fall before its range).
    let seeded: i64 = seeded.split_whitespace().next().unwrap().parse().unwrap();
    assert!(seeded >= least_demo_calls(), "{seeded}");
    // The demo plays its calls through the switchboard, whose writer stores them a moment
    // later: wait for them (on a loaded machine that takes a few seconds).
    let path = "/v1/reports/calls?group_by=day&time_zone=UTC";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (report, shown) = loop {
        let report = call(&client, &base, &api_key, "GET", path, Value::Null).await;
        let shown = report["totals"]["calls"].as_i64().unwrap();
        if shown > seeded * 9 / 10 || std::time::Instant::now() > deadline {
            break (report, shown);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        shown > seeded * 9 / 10 && shown <= seeded,
        "{shown} of {seeded}"
    );
    assert!(
        report["totals"]["answered"].as_i64().unwrap() > 0,
        "{report}"
    );
    let busy_days = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["calls"].as_i64().unwrap() > 0)
        .count();
    assert!(busy_days >= 25, "{report}");
    demo.kill();
}

#[tokio::test]
async fn answered_sessions_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let db = db.as_str();
    let key = field(
        &run(&["account", "create", "--name", "k9", "--db", db]),
        "api_key:",
    );
    let server = Proc::start(&["serve", "--listen", "127.0.0.1:0", "--db", db]);
    let base = server.wait_for("listening on");
    let client = reqwest::Client::new();
    let (host, token) = token_host().await;
    let origin = format!("http://{host}");
    let campaign = verified_campaign(&client, &base, &key, &host, &token, 60).await;

    // Fifty visitors at once, then kill -9 the moment the last answer arrived.
    let page = format!("{origin}/landing?utm_source=google");
    let asks = (0..50).map(|i| {
        let (client, base, origin, campaign, page) = (
            client.clone(),
            base.clone(),
            origin.clone(),
            campaign.clone(),
            page.clone(),
        );
        tokio::spawn(async move {
            dni(
                &client,
                &base,
                &origin,
                &campaign,
                &format!("visitor-{i:04}"),
                &page,
            )
            .await
        })
    });
    let mut before = Vec::new();
    for a in asks {
        before.push(a.await.unwrap());
    }
    server.kill();

    let server = Proc::start(&["serve", "--listen", "127.0.0.1:0", "--db", db]);
    let base = server.wait_for("listening on");
    for (i, b) in before.iter().enumerate() {
        let after = dni(
            &client,
            &base,
            &origin,
            &campaign,
            &format!("visitor-{i:04}"),
            &page,
        )
        .await;
        assert_eq!(after["number"], b["number"], "visitor {i} keeps its number");
        assert_eq!(
            after["session"], b["session"],
            "visitor {i} keeps its session"
        );
        let s = call(
            &client,
            &base,
            &key,
            "GET",
            &format!("/v1/sessions/{}", b["session"].as_str().unwrap()),
            Value::Null,
        )
        .await;
        assert_eq!(s["utm_source"], "google");
    }
    let distinct: std::collections::HashSet<_> = before
        .iter()
        .map(|b| b["number"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len(), 50);
    server.kill();
}

#[tokio::test]
async fn numbers_import_sends_a_csv_file_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let db = db.as_str();
    let key = field(
        &run(&["account", "create", "--name", "imp", "--db", db]),
        "api_key:",
    );
    let server = Proc::start(&["serve", "--listen", "127.0.0.1:0", "--db", db]);
    let base = server.wait_for("listening on");
    let client = reqwest::Client::new();
    let pool = call(
        &client,
        &base,
        &key,
        "POST",
        "/v1/pools",
        json!({"name": "p"}),
    )
    .await;
    let mut csv = String::from("e164,languages\n");
    for i in 0..2500 {
        csv.push_str(&format!("+1202555{:04},en\n", 1000 + i));
    }
    csv.push_str("not-a-number,en\n");
    let file = dir.path().join("numbers.csv");
    std::fs::write(&file, csv).unwrap();
    let pool_id = pool["id"].to_string();
    let out = Command::new(BIN)
        .args([
            "numbers",
            "import",
            file.to_str().unwrap(),
            "--url",
            &base,
            "--pool",
            &pool_id,
        ])
        .env("CALLOPT_API_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(field(&stdout, "imported:"), "2500", "{stdout}");
    assert_eq!(field(&stdout, "failed:"), "1");
    assert!(
        stderr.contains("line 2502"),
        "the bad row is named by its line: {stderr}"
    );
    assert!(!stderr.contains(&key), "the API key is never printed");
    let p = call(
        &client,
        &base,
        &key,
        "GET",
        &format!("/v1/pools/{pool_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(p["size"], 2500);
    server.kill();
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let db = db.as_str();
    assert!(run(&["migrate", "--db", db]).contains("migrations applied"));
    assert!(run(&["migrate", "--db", db]).contains("migrations applied"));
}

#[tokio::test]
async fn the_service_runs_scanned_pages_in_chromium_and_quarantines_a_packed_locker() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let db = db.as_str();
    let key = field(
        &run(&["account", "create", "--name", "dyn", "--db", db]),
        "api_key:",
    );
    let server = Proc::start_with(
        &["serve", "--listen", "127.0.0.1:0", "--db", db],
        &[
            ("CALLOPT_GUARD_SCAN_DYNAMIC", "true"),
            ("CALLOPT_GUARD_SCAN_POLL_MS", "50"),
        ],
    );
    let base = server.wait_for("listening on");
    let client = reqwest::Client::new();
    // One loopback host: the verification file and a locker whose code is packed.
    let token = Arc::new(Mutex::new(String::new()));
    let served = token.clone();
    let locker = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scan/tests/dynamic/packed_locker.html"),
    )
    .unwrap();
    let app = axum::Router::new()
        .route(
            "/.well-known/callopt-verification.txt",
            axum::routing::get(move || {
                let t = served.lock().unwrap().clone();
                async move { t }
            }),
        )
        .route(
            "/support",
            axum::routing::get(move || async move { axum::response::Html(locker) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let origin = format!("http://{host}");
    let campaign = verified_campaign(&client, &base, &key, &host, &token, 5).await;
    let page = format!("{origin}/support");
    let first = dni(&client, &base, &origin, &campaign, "victim-1", &page).await;
    assert_eq!(first["attributed"], true, "{first}");

    // The scan runs in the background: static reading finds nothing, Chromium finds the locker.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let scan = loop {
        let scans = call(&client, &base, &key, "GET", "/v1/guard/scans", Value::Null).await;
        let done = scans["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == "done")
            .cloned();
        if let Some(scan) = done {
            break scan;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scan done: {scans}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scan["verdict"], "scam", "{scan}");
    assert!(scan.to_string().contains("in Chromium"), "{scan}");
    let q = call(
        &client,
        &base,
        &key,
        "GET",
        "/v1/guard/quarantines",
        Value::Null,
    )
    .await;
    assert_eq!(q["items"][0]["status"], "active", "{q}");
    let body = json!({"campaign": campaign, "visitor": "victim-2", "page_url": page});
    let refused = client
        .post(format!("{base}/v1/dni/sessions"))
        .header("origin", &origin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = refused.json().await.unwrap();
    assert_ne!(answer["attributed"], true, "{answer}");
    server.kill();
}
