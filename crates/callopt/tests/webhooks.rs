//! Event webhooks and conversions end to end: the real binary on a real SQLite file, sipp
//! callers and targets, the DNI endpoint, and a receiver on loopback that fails for a while,
//! across a `kill -9` and restart.

#[path = "support/service.rs"]
mod service;
#[path = "../../sip/tests/support/mod.rs"]
mod sipp;

use serde_json::{json, Value};
use service::Service;
use sipp::Sipp;
use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callopt");
/// Webhooks allowed to loopback, with short retries.
const ENV: &[(&str, &str)] = &[
    ("CALLOPT_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("CALLOPT_WEBHOOKS_RETRY_BASE_MS", "50"),
    ("CALLOPT_WEBHOOKS_POLL_MS", "50"),
];
/// For the test that kills the service mid-delivery: a delivery in flight at a `kill -9` is
/// leased for 3 × the attempt timeout + 5 s, 8 s with this one, inside the tests' 30 s waits
/// (the default's 35 s is not). The other tests keep the default, so that a slow answer on a
/// loaded machine is not an extra attempt.
const KILL_ENV: &[(&str, &str)] = &[
    ("CALLOPT_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("CALLOPT_WEBHOOKS_RETRY_BASE_MS", "50"),
    ("CALLOPT_WEBHOOKS_POLL_MS", "50"),
    ("CALLOPT_WEBHOOKS_TIMEOUT_MS", "1000"),
];
const TRACKING: &str = "+12015550100";
/// The caller id `tests/sip/uac.xml` presents.
const CALLER: &str = "+15550001111";

/// One test's Callopt: a temp dir, a database with one account, the binary, an API client.
struct Fixture {
    dir: tempfile::TempDir,
    db: String,
    service: Service,
    http: reqwest::blocking::Client,
    key: String,
    /// The service's environment, for restarts.
    env: &'static [(&'static str, &'static str)],
}

impl Fixture {
    fn new() -> Self {
        Self::with_env(ENV)
    }

    fn with_env(env: &'static [(&'static str, &'static str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = callopt_store::testing::scratch_database(dir.path());
        let out = Command::new(BIN)
            .args(["account", "create", "--name", "hooks", "--db", &db])
            .output()
            .unwrap();
        assert!(out.status.success());
        let key = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("api_key:"))
            .unwrap()
            .trim()
            .to_string();
        let service = Service::start(BIN, dir.path(), &db, env);
        Self {
            dir,
            db,
            service,
            http: reqwest::blocking::Client::new(),
            key,
            env,
        }
    }

    /// `kill -9`, then a new process on the same database.
    fn restart(&mut self) {
        self.service.child.kill().unwrap();
        self.service.child.wait().unwrap();
        self.service = Service::start(BIN, self.dir.path(), &self.db, self.env);
    }

    /// The status and JSON body of an API request.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.service.http))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.request(method, path, body);
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.ok("POST", path, Some(body))
    }

    /// Polls `path` until `pred` holds for its `items`.
    fn items_until(&self, path: &str, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let items = self.ok("GET", path, None)["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if pred(&items) {
                return items;
            }
            assert!(Instant::now() < deadline, "{what}: {items:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A campaign whose tracking number routes through `targets` in order, on `domains`.
    fn campaign(&self, targets: &[String], ring_timeout_secs: u32, domains: &[String]) -> String {
        let ids: Vec<i64> = targets
            .iter()
            .enumerate()
            .map(|(i, uri)| {
                self.post(
                    "/v1/targets",
                    json!({"name": format!("t{i}"), "destination": uri, "priority": i + 1}),
                )["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let plan = self.post(
            "/v1/routing-plans",
            json!({"name": "p", "targets": ids, "ring_timeout_secs": ring_timeout_secs,
                   "filters": {"open_now": false, "geography": false, "language": false}}),
        )["id"]
            .clone();
        let pool = self.post("/v1/pools", json!({"name": "p"}))["id"].clone();
        self.post("/v1/numbers", json!({"e164": TRACKING, "pool_id": pool}));
        self.post(
            "/v1/campaigns",
            json!({"name": "c", "default_number": "+12015550199", "pool_id": pool,
                   "routing_plan_id": plan, "domains": domains}),
        )["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A sipp caller placing one call to the tracking number.
    fn dial(&self) -> Sipp {
        let called = TRACKING.trim_start_matches('+');
        let args = [self.service.sip.as_str(), "-s", called, "-m", "1"];
        Sipp::spawn(self.dir.path(), "uac.xml", sipp::free_port(), &args)
    }
}

fn uri(s: &Sipp, user: &str) -> String {
    format!("sip:{user}@127.0.0.1:{}", s.port)
}

/// One request the receiver accepted.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    signed: bool,
}

/// A webhook receiver on loopback: answers nothing for a minute while `stall`, 500 to the
/// first `fail_first` requests and 503 while `down`, 200 otherwise; records what it accepted,
/// deduplicated by `Callopt-Delivery`.
#[derive(Clone, Default)]
struct Receiver {
    fail_first: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
    /// Requests held without an answer.
    stalled: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    /// Accepted requests per delivery id (a duplicate would count twice).
    accepted: Arc<Mutex<BTreeMap<String, Vec<Received>>>>,
    secret: Arc<Mutex<String>>,
}

impl Receiver {
    /// Starts it on a runtime of its own; its URL.
    fn start(&self) -> String {
        use axum::http::HeaderMap;
        let me = self.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move |headers: HeaderMap, body: String| {
                        let me = me.clone();
                        async move {
                            if me.stall.load(Ordering::SeqCst) {
                                me.stalled.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            me.receive(&headers, body)
                        }
                    }),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        format!("http://{addr}/hook")
    }

    fn receive(&self, headers: &axum::http::HeaderMap, body: String) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing || self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return if failing {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let now = chrono::Utc::now().timestamp();
        let secret = self.secret.lock().unwrap().clone();
        let signed = callopt_events::signature::verify(
            &secret,
            &header("callopt-signature"),
            body.as_bytes(),
            now,
            300,
        );
        let delivery = header("callopt-delivery");
        let received = Received {
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            signed,
        };
        self.accepted
            .lock()
            .unwrap()
            .entry(delivery)
            .or_default()
            .push(received);
        StatusCode::OK
    }

    /// Waits until `n` distinct deliveries were accepted; the first of each.
    fn until(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let accepted = self.accepted.lock().unwrap();
                if accepted.len() >= n {
                    return accepted.values().map(|v| v[0].clone()).collect();
                }
                assert!(Instant::now() < deadline, "{n} deliveries: {accepted:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every delivery was accepted exactly once, and every signature verified.
    fn assert_once_and_signed(&self) {
        for (delivery, got) in self.accepted.lock().unwrap().iter() {
            assert_eq!(got.len(), 1, "{delivery} accepted {} times", got.len());
            assert!(got[0].signed, "{delivery}: signature did not verify");
        }
    }
}

/// Event id → (delivery id, body) of what was received; panics if an event came twice under
/// different delivery ids.
fn by_event(received: &[Received]) -> HashMap<String, Received> {
    let mut out = HashMap::new();
    for r in received {
        let id = r.body["id"].as_str().unwrap().to_string();
        assert!(out.insert(id.clone(), r.clone()).is_none(), "{id} twice");
    }
    out
}

/// A loopback web server that answers every request with `body` (the domain's verification
/// file); its `host:port`.
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

#[test]
fn every_event_arrives_once_and_signed_after_the_receiver_fails_for_a_while() {
    let f = Fixture::new();
    let receiver = Receiver::default();
    receiver.fail_first.store(4, Ordering::SeqCst);
    let url = receiver.start();
    let hook = f.post(
        "/v1/webhooks",
        json!({"url": url, "events": ["call.started", "call.routed", "call.finished",
                                      "session.created"]}),
    );
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    *receiver.secret.lock().unwrap() = secret.clone();
    let shown = f.ok("GET", &format!("/v1/webhooks/{}", hook["id"]), None);
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(
        shown["secret_hint"].as_str().unwrap(),
        &format!("…{}", &secret[secret.len() - 4..])
    );

    // A verified page, a visitor, and a call that fails over from a busy target.
    let token = Arc::new(Mutex::new(String::new()));
    let host = publish(token.clone());
    let domain = f.post("/v1/domains", json!({"host": host}));
    *token.lock().unwrap() = domain["token"].as_str().unwrap().to_string();
    f.post(&format!("/v1/domains/{}/verify", domain["id"]), json!({}));
    let busy = Sipp::start(f.dir.path(), "uas_busy.xml", &[]);
    let answer = Sipp::start(f.dir.path(), "uas.xml", &[]);
    let campaign = f.campaign(
        &[uri(&busy, "busy"), uri(&answer, "a")],
        20,
        std::slice::from_ref(&host),
    );
    let r = f
        .http
        .post(format!("{}/v1/dni/sessions", f.service.http))
        .header("origin", format!("http://{host}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(
            json!({"campaign": campaign, "visitor": "visitor-1",
                   "page_url": format!("http://{host}/?utm_source=news")})
            .to_string(),
        )
        .send()
        .unwrap();
    let status = r.status();
    let session: Value = r.json().unwrap();
    assert_eq!(status, 200, "{session}");
    f.dial().expect_success();

    let received = by_event(&receiver.until(5));
    let types: BTreeMap<&str, &str> = received
        .iter()
        .map(|(id, r)| (id.as_str(), r.body["type"].as_str().unwrap()))
        .collect();
    let call = f.items_until("/v1/calls", "the call", |c| c.len() == 1)[0]["id"].clone();
    let want: BTreeMap<String, &str> = [
        (
            format!("evt_{}", session["session"].as_str().unwrap()),
            "session.created",
        ),
        (format!("evt_call_{call}_started"), "call.started"),
        (format!("evt_call_{call}_routed_1"), "call.routed"),
        (format!("evt_call_{call}_routed_2"), "call.routed"),
        (format!("evt_call_{call}_finished"), "call.finished"),
    ]
    .into_iter()
    .collect();
    let got: BTreeMap<String, &str> = types.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(got, want);
    let finished = &received[&format!("evt_call_{call}_finished")].body;
    assert_eq!(finished["data"]["outcome"], "answered", "{finished}");
    assert_eq!(finished["data"]["caller"], CALLER);
    assert_eq!(finished["data"]["session_id"], session["session"]);
    assert!(finished["account"].is_i64() && finished["created_at"].is_string());
    let created = &received[&format!("evt_{}", session["session"].as_str().unwrap())].body;
    assert_eq!(created["data"]["utm_source"], "news", "{created}");

    // The API lists them delivered, some after failed attempts.
    let path = format!("/v1/webhooks/{}/deliveries", hook["id"]);
    let listed = f.items_until(&path, "all delivered", |d| {
        d.len() == 5 && d.iter().all(|d| d["status"] == "delivered")
    });
    let attempts: u64 = listed.iter().map(|d| d["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts, 5 + 4, "{listed:?}");
    assert!(listed
        .iter()
        .all(|d| d["last_status"] == 200 && d["next_attempt_at"].is_null()));
    // Cursor pagination.
    let first = f.ok("GET", &format!("{path}?limit=2"), None);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = f.ok("GET", &format!("{path}?limit=10&cursor={cursor}"), None);
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert_eq!(receiver.refused.load(Ordering::SeqCst), 4);
    receiver.assert_once_and_signed();
}

#[test]
fn deliveries_pending_at_a_kill_are_sent_once_after_the_restart() {
    let mut f = Fixture::with_env(KILL_ENV);
    let receiver = Receiver::default();
    receiver.down.store(true, Ordering::SeqCst);
    let url = receiver.start();
    let hook = f.post(
        "/v1/webhooks",
        json!({"url": url, "events": ["call.started", "call.routed", "call.finished"]}),
    );
    *receiver.secret.lock().unwrap() = hook["secret"].as_str().unwrap().to_string();
    let ringing = Sipp::start(f.dir.path(), "uas_noanswer.xml", &[]);
    f.campaign(&[uri(&ringing, "ring")], 120, &[]);
    let _caller = f.dial();

    // The call rings; its two events have been tried and refused.
    let path = format!("/v1/webhooks/{}/deliveries", hook["id"]);
    f.items_until(&path, "two refused deliveries", |d| {
        d.len() == 2 && d.iter().all(|d| d["attempts"].as_u64() >= Some(1))
    });
    // Killed in the middle of an attempt: that delivery stays leased until its lease runs out.
    receiver.stall.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.stalled.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no attempt reached the stalled receiver"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    f.restart();
    receiver.stall.store(false, Ordering::SeqCst);
    // The restart closes the call as interrupted: a third event, from the new process.
    f.items_until(&path, "the call.finished delivery", |d| d.len() == 3);
    receiver.down.store(false, Ordering::SeqCst);

    let received = by_event(&receiver.until(3));
    let call = f.items_until("/v1/calls", "the call", |c| c.len() == 1)[0].clone();
    let id = &call["id"];
    for event in ["started", "routed_1", "finished"] {
        assert!(
            received.contains_key(&format!("evt_call_{id}_{event}")),
            "{event}: {received:?}"
        );
    }
    let finished = &received[&format!("evt_call_{id}_finished")].body;
    assert_eq!(finished["data"]["outcome"], "interrupted", "{finished}");
    f.items_until(&path, "all delivered", |d| {
        d.iter().all(|d| d["status"] == "delivered")
    });
    receiver.assert_once_and_signed();
    assert!(receiver.refused.load(Ordering::SeqCst) >= 2);
}

#[test]
fn conversions_are_recorded_by_call_and_by_caller_and_shown_on_calls() {
    let f = Fixture::new();
    let answer = Sipp::start(f.dir.path(), "uas.xml", &[]);
    f.campaign(&[uri(&answer, "a")], 20, &[]);
    f.dial().expect_success();
    f.dial().expect_success();
    let calls = f.items_until("/v1/calls", "two finished calls", |c| {
        c.len() == 2 && c.iter().all(|c| !c["ended_at"].is_null())
    });
    let (older, newer) = (
        calls[0]["id"].as_i64().unwrap(),
        calls[1]["id"].as_i64().unwrap(),
    );
    assert!(calls.iter().all(|c| c["conversion"].is_null()));

    let c = f.post(
        &format!("/v1/calls/{older}/conversion"),
        json!({"value": 120.5}),
    );
    assert_eq!(
        (c["call_id"].as_i64(), c["value"].as_f64()),
        (Some(older), Some(120.5))
    );
    assert_eq!(c["currency"], "USD");
    let one = f.ok("GET", &format!("/v1/calls/{older}"), None);
    assert_eq!(one["conversion"]["value"], 120.5, "{one}");

    // By caller: the latest call at or before `at`.
    let at = chrono::Utc::now().to_rfc3339();
    let c = f.post(
        "/v1/conversions",
        json!({"caller": CALLER, "at": at, "value": 80, "currency": "eur"}),
    );
    assert_eq!(c["call_id"].as_i64(), Some(newer), "{c}");
    assert_eq!(c["currency"], "EUR");
    let listed = f.ok("GET", "/v1/calls", None);
    assert_eq!(listed["items"][1]["conversion"]["value"], 80.0, "{listed}");
    assert_eq!(listed["items"][0]["conversion"]["value"], 120.5);

    // Refusals are problems.
    let before = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let cases = [
        (
            format!("/v1/calls/{older}/conversion"),
            json!({"value": -1}),
            400,
        ),
        (
            format!("/v1/calls/{older}/conversion"),
            json!({"value": 1, "currency": "US"}),
            400,
        ),
        (
            format!("/v1/calls/{older}/conversion"),
            json!({"price": 1}),
            400,
        ),
        (
            "/v1/calls/999999/conversion".to_string(),
            json!({"value": 1}),
            404,
        ),
        (
            "/v1/conversions".to_string(),
            json!({"caller": CALLER, "at": before, "value": 1}),
            404,
        ),
        (
            "/v1/conversions".to_string(),
            json!({"caller": "+15550002222", "at": at, "value": 1}),
            404,
        ),
        (
            "/v1/conversions".to_string(),
            json!({"caller": CALLER, "at": "yesterday", "value": 1}),
            400,
        ),
    ];
    for (path, body, want) in cases {
        let (status, problem) = f.request("POST", &path, Some(body.clone()));
        assert_eq!(status, want, "{path} {body}: {problem}");
        assert!(problem["title"].is_string(), "{problem}");
    }
}
