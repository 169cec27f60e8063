//! End-to-end call routing through the real binary: sipp callers and targets on loopback, the
//! SIP router, routing plans set up through the management API, call records read back through
//! it, and `kill -9` in the middle of a call.

#[path = "support/service.rs"]
mod service;
#[path = "../../sip/tests/support/mod.rs"]
mod sipp;

use serde_json::{json, Value};
use service::Service;
use sipp::Sipp;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callopt");
/// The default probing (every 10 s): the target sipps do not answer OPTIONS, and a probe
/// every second would mark them down before a slow test's call reaches them.
const ENV: &[(&str, &str)] = &[];

/// The tracking number the tests call.
const TRACKING: &str = "+12015550100";

/// A blocking API client for one account.
struct Api {
    http: reqwest::blocking::Client,
    base: String,
    key: String,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().unwrap();
        let status = r.status();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    fn post(&self, path: &str, body: Value) -> i64 {
        self.call("POST", path, Some(body))["id"].as_i64().unwrap()
    }

    /// Polls the calls listing until `pred` holds for it (the call writer is asynchronous).
    fn calls_until(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let calls = self.call("GET", "/v1/calls", None)["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if pred(&calls) {
                return calls;
            }
            assert!(Instant::now() < deadline, "{what}: calls are {calls:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One test's Callopt: a temp dir, a database with one account, the running binary, a client.
struct Fixture {
    dir: tempfile::TempDir,
    db: String,
    service: Service,
    api: Api,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = callopt_store::testing::scratch_database(dir.path());
        let key = account(&db);
        let service = Service::start(BIN, dir.path(), &db, ENV);
        let api = Api {
            http: reqwest::blocking::Client::new(),
            base: service.http.clone(),
            key,
        };
        Self {
            dir,
            db,
            service,
            api,
        }
    }

    /// `kill -9`, then a new process on the same database.
    fn restart(&mut self) {
        self.service.child.kill().unwrap();
        self.service.child.wait().unwrap();
        self.service = Service::start(BIN, self.dir.path(), &self.db, ENV);
        self.api.base = self.service.http.clone();
    }

    /// A sipp caller placing one call (or as `extra` says) to `called` through the router.
    fn dial(&self, called: &str, extra: &[&str]) -> Sipp {
        let called = called.trim_start_matches('+');
        let mut args = vec![self.service.sip.as_str(), "-s", called];
        if extra.is_empty() {
            args.extend(["-m", "1"]);
        }
        args.extend_from_slice(extra);
        Sipp::spawn(self.dir.path(), "uac.xml", sipp::free_port(), &args)
    }
}

fn account(db: &str) -> String {
    let out = Command::new(BIN)
        .args(["account", "create", "--name", "calls", "--db", db])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("api_key:"))
        .unwrap()
        .trim()
        .to_string()
}

/// A campaign whose one tracking number routes through a plan of `targets` (URI, priority).
fn campaign_with_plan(api: &Api, targets: &[(String, u32)], ring_timeout_secs: u32) -> Vec<i64> {
    campaign_on(api, targets, ring_timeout_secs, &[])
}

/// The same, with the campaign's pages on `domains`.
fn campaign_on(
    api: &Api,
    targets: &[(String, u32)],
    ring_timeout_secs: u32,
    domains: &[String],
) -> Vec<i64> {
    let ids: Vec<i64> = targets
        .iter()
        .enumerate()
        .map(|(i, (uri, priority))| {
            api.post(
                "/v1/targets",
                json!({"name": format!("t{i}"), "destination": uri, "priority": priority}),
            )
        })
        .collect();
    let plan = api.post(
        "/v1/routing-plans",
        json!({"name": "failover", "targets": ids, "ring_timeout_secs": ring_timeout_secs,
               "filters": {"open_now": true, "geography": false, "language": false}}),
    );
    let pool = api.post("/v1/pools", json!({"name": "p"}));
    api.post("/v1/numbers", json!({"e164": TRACKING, "pool_id": pool}));
    api.post(
        "/v1/campaigns",
        json!({"name": "c", "default_number": "+12015550199", "pool_id": pool,
               "routing_plan_id": plan, "domains": domains}),
    );
    ids
}

fn uri(s: &Sipp, user: &str) -> String {
    format!("sip:{user}@127.0.0.1:{}", s.port)
}

#[test]
fn a_busy_target_fails_over_and_the_call_is_recorded_with_both_attempts() {
    let f = Fixture::new();
    let busy = Sipp::start(f.dir.path(), "uas_busy.xml", &[]);
    let answer = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let targets = campaign_with_plan(
        &f.api,
        &[(uri(&busy, "busy"), 1), (uri(&answer, "answer"), 2)],
        20,
    );

    f.dial(TRACKING, &[]).expect_success();

    let calls = f.api.calls_until("one finished call", |c| {
        c.len() == 1 && !c[0]["ended_at"].is_null()
    });
    let call = &calls[0];
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["hung_up_by"], "caller", "{call}");
    assert_eq!(call["tracking_number"], TRACKING);
    assert_eq!(call["channel"], "sip");
    let attempts = call["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{call}");
    assert_eq!(attempts[0]["target_id"], targets[0]);
    assert_eq!(attempts[0]["outcome"], "busy");
    assert_eq!(attempts[0]["sip_status"], 486);
    assert_eq!(attempts[1]["target_id"], targets[1]);
    assert_eq!(attempts[1]["outcome"], "answered");
    assert_eq!(attempts[1]["sip_status"], 200);
    assert!(!attempts[1]["ended_at"].is_null(), "{call}");
    let one = f
        .api
        .call("GET", &format!("/v1/calls/{}", call["id"]), None);
    assert_eq!(one["attempts"], call["attempts"]);
    // Counted once, under its outcome; the other outcomes are on record at 0 from the start.
    let metrics = f
        .api
        .http
        .get(format!("{}/metrics", f.service.http))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let ended = |outcome: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("callopt_calls_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(ended("answered").as_deref(), Some("1"), "{metrics}");
    assert_eq!(ended("busy").as_deref(), Some("0"), "{metrics}");
}

#[test]
fn a_call_on_an_unknown_number_is_refused_and_not_recorded() {
    let f = Fixture::new();
    // The caller expects a 200 and gets a 404: sipp counts a failed call and exits non-zero.
    let code = f.dial("+12015550111", &[]).wait();
    assert_ne!(code, 0);
    let calls = f.api.call("GET", "/v1/calls", None);
    assert_eq!(calls["items"], json!([]));
}

#[test]
fn a_call_ringing_when_the_process_is_killed_is_recorded_as_interrupted() {
    let mut f = Fixture::new();
    let ringing = Sipp::start(f.dir.path(), "uas_noanswer.xml", &[]);
    campaign_with_plan(&f.api, &[(uri(&ringing, "ring"), 1)], 120);
    let _caller = f.dial(TRACKING, &[]);
    f.api.calls_until("a call in progress", |c| {
        c.len() == 1 && c[0]["outcome"] == "in_progress" && c[0]["attempts"][0].is_object()
    });
    f.restart();
    let calls = f.api.calls_until("the call closed", |c| c.len() == 1);
    let call = &calls[0];
    assert_eq!(call["outcome"], "interrupted", "{call}");
    assert_eq!(call["hung_up_by"], "system", "{call}");
    assert!(!call["ended_at"].is_null());
    assert!(!call["attempts"][0]["ended_at"].is_null(), "{call}");
}

#[test]
fn a_call_outside_business_hours_goes_to_the_overflow_target() {
    let f = Fixture::new();
    let closed = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let overflow = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let targets = campaign_with_plan(&f.api, &[(uri(&closed, "closed"), 1)], 20);
    // Closed every day of the week: no weekday has an opening interval.
    f.api.call(
        "PATCH",
        &format!("/v1/targets/{}", targets[0]),
        Some(json!({"hours": {"time_zone": "America/New_York", "weekly": {}}})),
    );
    let spare = f.api.post(
        "/v1/targets",
        json!({"name": "overflow", "destination": uri(&overflow, "overflow")}),
    );
    let plans = f.api.call("GET", "/v1/routing-plans", None);
    let plan = plans["items"][0]["id"].as_i64().unwrap();
    f.api.call(
        "PATCH",
        &format!("/v1/routing-plans/{plan}"),
        Some(json!({"overflow_target_id": spare})),
    );

    f.dial(TRACKING, &[]).expect_success();
    let calls = f.api.calls_until("one finished call", |c| {
        c.len() == 1 && !c[0]["ended_at"].is_null()
    });
    let attempts = calls[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{}", calls[0]);
    assert_eq!(attempts[0]["target_id"], spare);
    assert_eq!(attempts[0]["outcome"], "answered");
}

/// The most attempts of one target that overlapped in time, from the call records.
/// A burst larger than the targets' concurrency caps (`cap` each): no target ever over its cap,
/// every call answered or refused, some of each.
fn assert_burst_within_caps(db: &str, calls: &[Value], targets: &[i64], cap: usize) {
    for t in targets {
        let peak = peak_concurrency(db, *t);
        assert!(peak <= cap, "target {t} had {peak} calls at once");
    }
    let answered = calls.iter().filter(|c| c["outcome"] == "answered").count();
    let rejected = calls.iter().filter(|c| c["outcome"] == "rejected").count();
    assert_eq!(answered + rejected, calls.len(), "{calls:?}");
    assert!(
        answered >= cap * targets.len(),
        "the targets took calls: {answered}"
    );
    assert!(
        rejected >= 1,
        "the burst was larger than the caps: {rejected}"
    );
}

/// The most attempts `target` had at once, from the attempts' times in the database (to the
/// millisecond; the API gives seconds). Ends sort before starts at the same millisecond: a freed
/// slot may be taken at once.
fn peak_concurrency(db: &str, target: i64) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let calls = runtime.block_on(async {
        let store = callopt_store::open(db).await.unwrap();
        let page = callopt_store::PageRequest {
            after: None,
            limit: 1000,
        };
        let filter = callopt_store::CallFilter::default();
        let account = callopt_domain::AccountId(1);
        store.calls(account, &filter, page).await.unwrap().items
    });
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for a in calls.iter().flat_map(|c| &c.attempts) {
        if a.target_id == Some(target) {
            edges.push((a.started_at, 1));
            edges.push((a.ended_at.expect("every attempt ended"), -1));
        }
    }
    assert!(!edges.is_empty(), "no attempt on target {target}");
    edges.sort();
    let (mut live, mut peak) = (0i32, 0i32);
    for (_, step) in edges {
        live += step;
        peak = peak.max(live);
    }
    peak as usize
}

#[test]
fn a_burst_of_calls_never_exceeds_a_targets_concurrency_cap() {
    let f = Fixture::new();
    let a = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let b = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let targets = campaign_with_plan(&f.api, &[(uri(&a, "a"), 1), (uri(&b, "b"), 1)], 20);
    for t in &targets {
        f.api.call(
            "PATCH",
            &format!("/v1/targets/{t}"),
            Some(json!({"caps": {"concurrent": 2}})),
        );
    }
    // 40 calls at 200 per second, each held 50 ms, up to 12 at once: more than the 4 slots.
    // Calls refused for want of a slot are failures to sipp: its exit code is not asserted.
    f.dial(TRACKING, &["-m", "40", "-r", "200", "-l", "12"])
        .wait();
    let calls = f.api.calls_until("40 finished calls", |c| {
        c.len() == 40 && c.iter().all(|c| !c["ended_at"].is_null())
    });
    assert_burst_within_caps(&f.db, &calls, &targets, 2);
}

/// A loopback web server that answers every request with what is in `body` then (the domain
/// verification file); its `host:port`.
fn publish(body: Arc<Mutex<String>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = body.lock().unwrap().clone();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    host
}

/// A page domain of the account's, proved through its well-known file on a loopback server;
/// its `host:port`.
fn verified_domain(api: &Api) -> String {
    let token = Arc::new(Mutex::new(String::new()));
    let host = publish(token.clone());
    let domain = api.call("POST", "/v1/domains", Some(json!({"host": host})));
    *token.lock().unwrap() = domain["token"].as_str().unwrap().to_string();
    let path = format!("/v1/domains/{}/verify", domain["id"]);
    let verified = api.call("POST", &path, None);
    assert_eq!(verified["verified"], true, "{verified}");
    host
}

#[test]
fn a_call_is_attributed_to_the_visitor_session_that_holds_the_number() {
    let f = Fixture::new();
    let host = verified_domain(&f.api);
    let answer = Sipp::start(f.dir.path(), "uas.xml", &[]);
    campaign_on(
        &f.api,
        &[(uri(&answer, "a"), 1)],
        20,
        std::slice::from_ref(&host),
    );
    let campaigns = f.api.call("GET", "/v1/campaigns", None);
    let campaign = campaigns["items"][0]["key"].as_str().unwrap().to_string();

    // A visitor from an ad lands on the page; the tag gets the tracking number.
    let page = format!("http://{host}/landing?utm_source=news&gclid=abc");
    let r = f
        .api
        .http
        .post(format!("{}/v1/dni/sessions", f.api.base))
        .header("origin", format!("http://{host}"))
        .header("accept-language", "de-DE,de;q=0.9")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!({"campaign": campaign, "visitor": "visitor-1", "page_url": page}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().unwrap();
    assert_eq!(shown["number"], TRACKING);

    // The visitor calls it.
    f.dial(TRACKING, &[]).expect_success();
    let calls = f.api.calls_until("one finished call", |c| {
        c.len() == 1 && !c[0]["ended_at"].is_null()
    });
    assert_eq!(calls[0]["session_id"], shown["session"], "{}", calls[0]);
    let one = f
        .api
        .call("GET", &format!("/v1/calls/{}", calls[0]["id"]), None);
    assert_eq!(one["attribution"]["utm_source"], "news", "{one}");
    assert_eq!(one["attribution"]["gclid"], "abc");
    assert_eq!(one["attribution"]["language"], "de");
}

#[test]
fn readiness_names_the_node_its_store_and_its_sip_router() {
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let service = Service::start(BIN, dir.path(), &db, &[("CALLOPT_NODE_NAME", "node-7")]);
    let http = reqwest::blocking::Client::new();
    let ready = http.get(format!("{}/readyz", service.http)).send().unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["node"], "node-7", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "ok", "{body}");
    assert!(body["checks"]["store"]["latency_ms"].is_number(), "{body}");
    assert_eq!(body["checks"]["sip"]["status"], "ok", "{body}");
    let detail = body["checks"]["sip"]["detail"].as_str().unwrap();
    assert!(detail.contains(&service.sip), "{detail}");
    let metrics = http
        .get(format!("{}/metrics", service.http))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("node=\"node-7\""), "{metrics}");
    // Taken when the service starts, before any call: on record from the first scrape.
    assert!(
        metrics.contains("callopt_call_log_backlog{node=\"node-7\"} 0"),
        "{metrics}"
    );
}

/// For tests of several nodes: a temp dir, a database in it with one account (its URL and the
/// account's key), and a directory of each of `N` nodes' own for their logs.
fn shared_database<const N: usize>() -> (tempfile::TempDir, String, String, [std::path::PathBuf; N])
{
    let dir = tempfile::tempdir().unwrap();
    let db = callopt_store::testing::scratch_database(dir.path());
    let key = account(&db);
    let nodes = std::array::from_fn(|i| dir.path().join(format!("node-{i}")));
    for d in &nodes {
        std::fs::create_dir_all(d).unwrap();
    }
    (dir, db, key, nodes)
}

#[test]
fn a_node_killed_mid_call_has_its_call_closed_by_another_and_its_restart_closes_only_its_own() {
    const A: &[(&str, &str)] = &[
        ("CALLOPT_NODE_NAME", "node-a"),
        ("CALLOPT_NODE_TIMEOUT_SECS", "2"),
    ];
    const B: &[(&str, &str)] = &[
        ("CALLOPT_NODE_NAME", "node-b"),
        ("CALLOPT_NODE_TIMEOUT_SECS", "2"),
    ];
    let (dir, db, key, [dir_a, dir_b]) = shared_database();
    let mut a = Service::start(BIN, &dir_a, &db, A);
    let mut api = Api {
        http: reqwest::blocking::Client::new(),
        base: a.http.clone(),
        key,
    };
    let ringing = Sipp::start(dir.path(), "uas_noanswer.xml", &[]);
    campaign_with_plan(&api, &[(uri(&ringing, "ring"), 1)], 120);
    let b = Service::start(BIN, &dir_b, &db, B);
    let dial = |sip: &str| {
        let called = TRACKING.trim_start_matches('+');
        let args = [sip, "-s", called, "-m", "1"];
        Sipp::spawn(dir.path(), "uac.xml", sipp::free_port(), &args)
    };
    let ringing_calls = |c: &[Value], n: usize| {
        c.len() == n
            && c.iter()
                .all(|c| c["outcome"] == "in_progress" && c["attempts"][0].is_object())
    };

    // One call through each node, both ringing; a's is the older.
    let _on_a = dial(&a.sip);
    let calls = api.calls_until("the call on node a ringing", |c| ringing_calls(c, 1));
    let on_a = calls[0]["id"].clone();
    let _on_b = dial(&b.sip);
    let calls = api.calls_until("both calls ringing", |c| ringing_calls(c, 2));
    let on_b = calls.iter().find(|c| c["id"] != on_a).unwrap()["id"].clone();

    // Node a dies; node b notices within the timeout and closes a's call, and only that one.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    api.base = b.http.clone();
    let calls = api.calls_until("a's call closed by b", |c| {
        c.iter()
            .any(|c| c["id"] == on_a && c["outcome"] == "interrupted")
    });
    let still = calls.iter().find(|c| c["id"] == on_b).unwrap();
    assert_eq!(still["outcome"], "in_progress", "{still}");
    let closed = calls.iter().find(|c| c["id"] == on_a).unwrap();
    assert_eq!(closed["hung_up_by"], "system", "{closed}");
    assert!(!closed["attempts"][0]["ended_at"].is_null(), "{closed}");

    // Node a comes back under its name: it closes nothing of b's.
    a = Service::start(BIN, &dir_a, &db, A);
    api.base = a.http.clone();
    let one = api.call("GET", &format!("/v1/calls/{on_b}"), None);
    assert_eq!(one["outcome"], "in_progress", "{one}");
}

#[test]
fn a_campaign_set_up_through_one_node_routes_calls_on_another() {
    let (dir, db, key, [dir_a, dir_b]) = shared_database();
    let a = Service::start(BIN, &dir_a, &db, &[("CALLOPT_NODE_NAME", "node-a")]);
    let b = Service::start(BIN, &dir_b, &db, &[("CALLOPT_NODE_NAME", "node-b")]);
    let api = Api {
        http: reqwest::blocking::Client::new(),
        base: a.http.clone(),
        key,
    };
    // Both nodes run before the campaign exists; it is set up through node a only.
    let answer = Sipp::start(dir.path(), "uas.xml", &[]);
    let targets = campaign_with_plan(&api, &[(uri(&answer, "answer"), 1)], 20);

    // Node b routes a call on it once it has loaded the change (within a poll).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let called = TRACKING.trim_start_matches('+');
        let args = [b.sip.as_str(), "-s", called, "-m", "1"];
        let caller = Sipp::spawn(dir.path(), "uac.xml", sipp::free_port(), &args);
        if caller.wait() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node b never routed the campaign"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let calls = api.calls_until("the call through node b", |c| {
        c.iter().any(|c| c["outcome"] == "answered")
    });
    let call = calls.iter().find(|c| c["outcome"] == "answered").unwrap();
    assert_eq!(call["attempts"][0]["target_id"], targets[0], "{call}");
}

/// A Redis server of the test's own on a free loopback port, stopped when dropped.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Redis {
    fn start(dir: &std::path::Path) -> Self {
        let port = sipp::free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two nodes sharing a database and a Redis: node a running, with a campaign routed to two
/// answering targets set up through it; node b started by the test when it is ready for it.
struct RedisPair {
    dir: tempfile::TempDir,
    db: String,
    dir_b: std::path::PathBuf,
    redis: Redis,
    a: Service,
    api: Api,
    targets: Vec<i64>,
    _answering: [Sipp; 2],
}

impl RedisPair {
    fn start() -> Self {
        let (dir, db, key, [dir_a, dir_b]) = shared_database();
        let redis = Redis::start(dir.path());
        let a = Service::start(BIN, &dir_a, &db, &Self::env(&redis, "node-a"));
        let api = Api {
            http: reqwest::blocking::Client::new(),
            base: a.http.clone(),
            key,
        };
        let one = Sipp::start(dir.path(), "uas.xml", &[]);
        let two = Sipp::start(dir.path(), "uas.xml", &[]);
        let routes = [(uri(&one, "one"), 1), (uri(&two, "two"), 1)];
        let targets = campaign_with_plan(&api, &routes, 20);
        Self {
            dir,
            db,
            dir_b,
            redis,
            a,
            api,
            targets,
            _answering: [one, two],
        }
    }

    fn env<'a>(redis: &'a Redis, name: &'static str) -> [(&'static str, &'a str); 2] {
        [
            ("CALLOPT_NODE_NAME", name),
            ("CALLOPT_REDIS_URL", &redis.url),
        ]
    }

    fn start_b(&self) -> Service {
        Service::start(
            BIN,
            &self.dir_b,
            &self.db,
            &Self::env(&self.redis, "node-b"),
        )
    }
}

#[test]
fn nodes_sharing_redis_never_put_a_target_over_its_concurrency_cap_together() {
    let pair = RedisPair::start();
    let (dir, db, a, api, targets) = (&pair.dir, &pair.db, &pair.a, &pair.api, &pair.targets);
    for t in targets {
        let caps = json!({"caps": {"concurrent": 2}});
        api.call("PATCH", &format!("/v1/targets/{t}"), Some(caps));
    }
    let b = pair.start_b();
    // Each node reports its Redis among the parts it is ready with.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready: Value = api
            .http
            .get(format!("{}/readyz", b.http))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if ready["checks"]["redis"]["status"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "no Redis in readiness: {ready}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Through each node, 20 calls at 150 per second, up to 8 at once: 16 at once in all, for
    // 4 slots. Each node alone would let 4 calls on the two targets at once, both 8.
    let called = TRACKING.trim_start_matches('+');
    let burst = |sip: &str| {
        let args = [sip, "-s", called, "-m", "20", "-r", "150", "-l", "8"];
        Sipp::spawn(dir.path(), "uac.xml", sipp::free_port(), &args)
    };
    let (on_a, on_b) = (burst(&a.sip), burst(&b.sip));
    on_a.wait();
    on_b.wait();
    let calls = api.calls_until("40 finished calls", |c| {
        c.len() == 40 && c.iter().all(|c| !c["ended_at"].is_null())
    });
    assert_burst_within_caps(db, &calls, targets, 2);
}

#[test]
fn a_second_node_under_a_running_nodes_name_refuses_to_start() {
    let (dir, db, _key, [dir_a, _]) = shared_database();
    let env = [
        ("CALLOPT_NODE_NAME", "same"),
        ("CALLOPT_NODE_TIMEOUT_SECS", "2"),
    ];
    let _first = Service::start(BIN, &dir_a, &db, &env);
    let second = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .envs(env)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("a running node named \"same\""), "{said}");
}

/// Posts a DNI request for `visitor` on `page` to the node at `base`; its answer.
fn dni(
    http: &reqwest::blocking::Client,
    base: &str,
    campaign: &str,
    visitor: &str,
    page: &str,
) -> Value {
    let origin = page.split("/landing").next().unwrap();
    let r = http
        .post(format!("{base}/v1/dni/sessions"))
        .header("origin", origin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(json!({"campaign": campaign, "visitor": visitor, "page_url": page}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{visitor} on {base}");
    r.json().unwrap()
}

/// How many members a Redis sorted set has (`redis-cli`, from the redis-tools package).
fn zcard(redis: &Redis, key: &str) -> i64 {
    let out = Command::new("redis-cli")
        .args(["-u", &redis.url, "ZCARD", key])
        .output()
        .expect("redis-cli");
    let said = String::from_utf8_lossy(&out.stdout);
    said.trim()
        .parse()
        .unwrap_or_else(|_| panic!("ZCARD {key}: {said}"))
}

#[test]
fn three_nodes_share_numbers_and_caps_and_survive_one_killed_mid_burst() {
    let (dir, db, key, [dir_a, dir_b, dir_c]) = shared_database();
    let redis = Redis::start(dir.path());
    let node = |name: &'static str| {
        [
            ("CALLOPT_NODE_NAME", name),
            ("CALLOPT_REDIS_URL", redis.url.as_str()),
            ("CALLOPT_NODE_TIMEOUT_SECS", "2"),
        ]
    };
    let a = Service::start(BIN, &dir_a, &db, &node("node-a"));
    let api = Api {
        http: reqwest::blocking::Client::new(),
        base: a.http.clone(),
        key,
    };
    let host = verified_domain(&api);
    let one = Sipp::start(dir.path(), "uas.xml", &[]);
    let two = Sipp::start(dir.path(), "uas.xml", &[]);
    let routes = [(uri(&one, "one"), 1), (uri(&two, "two"), 1)];
    let targets = campaign_on(&api, &routes, 20, std::slice::from_ref(&host));
    for t in &targets {
        let caps = json!({"caps": {"concurrent": 2, "hourly": 3}});
        api.call("PATCH", &format!("/v1/targets/{t}"), Some(caps));
    }
    // Six numbers in the pool: the one calls reach, and five more.
    let pool = api.call("GET", "/v1/pools", None)["items"][0]["id"].clone();
    for n in 1..=5 {
        let number = json!({"e164": format!("+1201555010{n}"), "pool_id": pool});
        api.post("/v1/numbers", number);
    }
    let campaigns = api.call("GET", "/v1/campaigns", None);
    let campaign = campaigns["items"][0]["key"].as_str().unwrap().to_string();
    let b = Service::start(BIN, &dir_b, &db, &node("node-b"));
    let mut c = Service::start(BIN, &dir_c, &db, &node("node-c"));
    let nodes = [a.http.clone(), b.http.clone(), c.http.clone()];

    // Sixteen visitors at once, each asking the three nodes in turn, starting at a different
    // one: six of them get the six numbers, each keeping its number and session from node to
    // node; the others get the default number, unattributed.
    let page = format!("http://{host}/landing?utm_source=news");
    let answers: Vec<(String, Vec<Value>)> = std::thread::scope(|s| {
        let visits: Vec<_> = (0..16)
            .map(|i| {
                let (nodes, page, campaign) = (&nodes, &page, &campaign);
                s.spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    let visitor = format!("visitor-{i:02}");
                    let answers = (0..3)
                        .map(|hop| dni(&http, &nodes[(i + hop) % 3], campaign, &visitor, page))
                        .collect();
                    (visitor, answers)
                })
            })
            .collect();
        visits.into_iter().map(|v| v.join().unwrap()).collect()
    });
    let mut held: Vec<(String, String, String)> = Vec::new();
    for (visitor, seen) in &answers {
        if seen[0]["attributed"] == true {
            for later in &seen[1..] {
                assert_eq!(later["number"], seen[0]["number"], "{visitor}: {seen:?}");
                assert_eq!(later["session"], seen[0]["session"], "{visitor}: {seen:?}");
                assert_eq!(later["attributed"], true, "{visitor}: {seen:?}");
            }
            let number = seen[0]["number"].as_str().unwrap().to_string();
            let session = seen[0]["session"].as_str().unwrap().to_string();
            held.push((number, session, visitor.clone()));
        } else {
            for answer in seen {
                assert_eq!(answer["attributed"], false, "{visitor}: {seen:?}");
                assert_eq!(answer["number"], "+12015550199", "{visitor}: {seen:?}");
            }
        }
    }
    held.sort();
    let numbers: std::collections::BTreeSet<&str> = held.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(numbers.len(), held.len(), "a number leased twice: {held:?}");
    assert_eq!(held.len(), 6, "every number leased once: {held:?}");

    // The visitor holding the number calls reach is attributed on whichever node takes the
    // call: here node c, whatever node leased it.
    let (_, session, _) = held.iter().find(|h| h.0 == TRACKING).unwrap().clone();
    let called = TRACKING.trim_start_matches('+');
    let args = [c.sip.as_str(), "-s", called, "-m", "1"];
    Sipp::spawn(dir.path(), "uac.xml", sipp::free_port(), &args).expect_success();
    let calls = api.calls_until("the attributed call", |c| {
        c.len() == 1 && !c[0]["ended_at"].is_null()
    });
    assert_eq!(calls[0]["session_id"], session.as_str(), "{}", calls[0]);

    // Then a burst of calls held a second each through every node, and node c killed while
    // one of its calls is up. Five per second per node, up to 3 at once each: 9 at once in
    // all, for 4 slots; and more answers than the hourly caps (3 per target) allow. Node c's
    // burst starts first, so that it has a call up.
    let burst = |sip: &str| {
        let args = [
            sip, "-s", called, "-m", "15", "-r", "5", "-l", "3", "-d", "1000",
        ];
        Sipp::spawn(dir.path(), "uac_hold.xml", sipp::free_port(), &args)
    };
    let on_c = burst(&c.sip);
    let c_in_call = "SELECT COUNT(*) FROM calls JOIN nodes ON nodes.id = calls.node_id \
         JOIN call_attempts ON call_attempts.call_id = calls.id \
         WHERE nodes.name = 'node-c' AND call_attempts.ended_at IS NULL";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while runtime.block_on(callopt_store::testing::raw(&db, c_in_call)) == Some(0) {
        assert!(Instant::now() < deadline, "node c never had a call up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (on_a, on_b) = (burst(&a.sip), burst(&b.sip));
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    drop(on_c);
    let killed = Instant::now();
    on_a.wait();
    on_b.wait();

    // The survivors close node c's calls (a connected one stays answered, a ringing one is
    // interrupted) and let go of what they held: every record ends, and the targets' live
    // calls in Redis drain to none.
    let calls = api.calls_until("every call ended", |c| {
        c.len() > 1 && c.iter().all(|c| !c["ended_at"].is_null())
    });
    let closed = calls
        .iter()
        .filter(|c| c["reason"] == "the service stopped during the call")
        .count();
    assert!(closed >= 1, "node c's calls: {calls:?}");
    for t in &targets {
        let live = || {
            zcard(&redis, &format!("callopt:{{t:{t}}}:ring"))
                + zcard(&redis, &format!("callopt:{{t:{t}}}:conn"))
        };
        while live() > 0 {
            assert!(
                killed.elapsed() < Duration::from_secs(20),
                "target {t} still held in Redis"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // No target was ever over its concurrency cap, nor answered more than its hourly cap.
    for t in &targets {
        let peak = peak_concurrency(&db, *t);
        assert!(peak <= 2, "target {t} had {peak} calls at once");
        let answered = calls
            .iter()
            .flat_map(|c| c["attempts"].as_array().unwrap())
            .filter(|a| a["target_id"] == *t && !a["answered_at"].is_null())
            .count();
        assert!(
            answered <= 3,
            "target {t} answered {answered} calls this hour"
        );
    }
    let answered = calls.iter().filter(|c| c["outcome"] == "answered").count();
    assert!(answered >= 2, "the burst was served: {calls:?}");

    // The survivors still serve: a leased visitor keeps its number on each.
    let (number, session, visitor) = &held[0];
    for base in [&a.http, &b.http] {
        let again = dni(&api.http, base, &campaign, visitor, &page);
        assert_eq!(again["number"], number.as_str(), "{again}");
        assert_eq!(again["session"], session.as_str(), "{again}");
    }
}

#[test]
fn nodes_sharing_redis_know_the_callers_each_other_answered() {
    let pair = RedisPair::start();
    let (dir, a, api) = (&pair.dir, &pair.a, &pair.api);
    let plan = api.call("GET", "/v1/routing-plans", None)["items"][0]["id"].clone();
    let rules = json!({"duplicate_caller": {"window_hours": 1, "action": "reject"}});
    api.call("PATCH", &format!("/v1/routing-plans/{plan}"), Some(rules));
    let b = pair.start_b();
    let called = TRACKING.trim_start_matches('+');
    let dial = |sip: &str| {
        let args = [sip, "-s", called, "-m", "1"];
        Sipp::spawn(dir.path(), "uac.xml", sipp::free_port(), &args).wait()
    };

    // The first call, through node a, is answered.
    assert_eq!(dial(&a.sip), 0);
    let calls = api.calls_until("the first call", |c| {
        c.len() == 1 && !c[0]["ended_at"].is_null()
    });
    assert_eq!(calls[0]["outcome"], "answered", "{}", calls[0]);
    // The same caller through node b is a duplicate: node a told node b it answered them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        dial(&b.sip);
        let calls = api.calls_until("the second call", |c| {
            c.len() >= 2 && c.iter().all(|c| !c["ended_at"].is_null())
        });
        // The listing is oldest first.
        let last = calls[calls.len() - 1].clone();
        if last["reason"] == "Duplicate Caller" || Instant::now() > deadline {
            break last;
        }
        // Node b had not loaded the plan's change yet: its call went through; try again.
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(second["outcome"], "rejected", "{second}");
    assert_eq!(second["reason"], "Duplicate Caller", "{second}");
    assert!(
        second["attempts"].as_array().unwrap().is_empty(),
        "{second}"
    );
}
