//! `spawn_app()` and typed helpers on `TestApp`.

use axum::http::HeaderName;
use callopt_domain::ApiKey;
use callopt_http::{geo::GeoConfig, AppState, ExtraPages};
use callopt_store::Store;
use serde_json::{json, Value};
use std::sync::Arc;

/// `callopt-scan` on loopback (private addresses allowed), as the binary wires it.
pub struct TestScanner;

#[async_trait::async_trait]
impl callopt_guard::scanner::PageScanner for TestScanner {
    async fn scan(&self, url: &str) -> Result<callopt_guard::scanner::PageVerdict, String> {
        use callopt_scan::fetch::{client, scan_url, Limits};
        let limits = Limits {
            allow_private: true,
            ..Limits::default()
        };
        let r = scan_url(&client(&limits), url, &limits)
            .await
            .map_err(|e| e.to_string())?;
        Ok(callopt_guard::scanner::PageVerdict {
            verdict: format!("{:?}", r.decision.verdict).to_lowercase(),
            score: f64::from(r.decision.score),
            rule: r.decision.rule.clone(),
            findings_json: serde_json::to_string(&r.findings).unwrap(),
        })
    }
}

/// A running server with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Client for the API.
    pub client: reqwest::Client,
    /// The store behind the server.
    pub store: Arc<dyn Store>,
    /// Keeps the database directory alive.
    pub dir: tempfile::TempDir,
    /// Stops the server when dropped.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// The server's state (its switchboard takes calls as the SIP router and webhooks do).
    pub state: AppState,
    /// The tokens `verified_host` serves, so a test can withdraw them.
    pub tokens: std::sync::Mutex<Vec<Arc<std::sync::Mutex<String>>>>,
}

/// The geo header tests set to choose a visitor's country.
pub const COUNTRY_HEADER: &str = "x-test-country";

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_in(dir).await
}

pub async fn spawn_app_in(dir: tempfile::TempDir) -> TestApp {
    let geo = GeoConfig {
        country_header: Some(HeaderName::from_static(COUNTRY_HEADER)),
        ..Default::default()
    };
    spawn_app_with(dir, geo).await
}

pub async fn spawn_app_with(dir: tempfile::TempDir, geo: GeoConfig) -> TestApp {
    spawn_app_full(dir, geo, callopt_http::Options::default()).await
}

/// A server with these options (and the test geo header).
pub async fn spawn_app_options(options: callopt_http::Options) -> TestApp {
    let geo = GeoConfig {
        country_header: Some(HeaderName::from_static(COUNTRY_HEADER)),
        ..Default::default()
    };
    spawn_app_full(tempfile::tempdir().unwrap(), geo, options).await
}

async fn spawn_app_full(
    dir: tempfile::TempDir,
    geo: GeoConfig,
    options: callopt_http::Options,
) -> TestApp {
    let url = callopt_store::testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    // Tests serve their pages and verification files on loopback.
    let mut options = options;
    // A node of its own per start: an earlier start's tasks may still beat under its name.
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    options.node.get_or_insert_with(|| format!("test-{start}"));
    options.guard.allow_private = true;
    options.guard.scan_poll = std::time::Duration::from_millis(50);
    let state = AppState::with_options(store.clone(), geo, ExtraPages::default(), options)
        .await
        .unwrap();
    callopt_http::guard::start(&state, Some(Arc::new(TestScanner)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(callopt_http::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        dir,
        stop,
        state,
        tokens: Default::default(),
    }
}

/// An HTTP answer: status, content type and JSON body (Null when not JSON).
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// A new account; returns its API key.
    pub async fn new_account(&self, name: &str) -> String {
        let key = ApiKey::from_random(rand::random());
        self.store
            .create_account(name, &key.hash(), callopt_http::now_ms())
            .await
            .unwrap();
        key.expose().to_string()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            body,
            text,
        }
    }

    pub async fn call(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Calls and asserts the status, returning the body.
    pub async fn ok(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let a = self.call(key, method, path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        a.body
    }

    /// A pool with `count` numbers from `start`; returns the pool id.
    pub async fn pool_with_block(
        &self,
        key: &str,
        start: &str,
        count: u32,
        languages: &[&str],
    ) -> i64 {
        let pool = self
            .ok(key, "POST", "/v1/pools", Some(json!({"name": "p"})), 201)
            .await;
        let id = pool["id"].as_i64().unwrap();
        let r = self
            .ok(
                key,
                "POST",
                "/v1/numbers/import",
                Some(json!({"pool_id": id, "block": {"start": start, "count": count}, "languages": languages})),
                200,
            )
            .await;
        assert_eq!(r["imported"], count);
        id
    }

    /// Adds `host` to the account and marks it verified through the real verify call, serving
    /// the token from a loopback server on that host. Returns the host (127.0.0.1:PORT).
    pub async fn verified_host(&self, key: &str) -> String {
        let token = Arc::new(std::sync::Mutex::new(String::new()));
        let served = token.clone();
        self.tokens.lock().unwrap().push(token.clone());
        let app = axum::Router::new().route(
            callopt_domain::VerificationToken::WELL_KNOWN_PATH,
            axum::routing::get(move || {
                let t = served.lock().unwrap().clone();
                async move { t }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let d = self
            .ok(key, "POST", "/v1/domains", Some(json!({"host": host})), 201)
            .await;
        *token.lock().unwrap() = d["token"].as_str().unwrap().to_string();
        let v = self
            .ok(
                key,
                "POST",
                &format!("/v1/domains/{}/verify", d["id"]),
                None,
                200,
            )
            .await;
        assert_eq!(v["verified"], true);
        host
    }

    /// Stops publishing every token `verified_host` served (the files answer empty).
    pub fn clear_verification_tokens(&self) {
        for t in self.tokens.lock().unwrap().iter() {
            t.lock().unwrap().clear();
        }
    }

    /// A campaign; returns (id, key).
    pub async fn campaign(&self, key: &str, fields: Value) -> (i64, String) {
        let c = self
            .ok(key, "POST", "/v1/campaigns", Some(fields), 201)
            .await;
        (
            c["id"].as_i64().unwrap(),
            c["key"].as_str().unwrap().to_string(),
        )
    }

    /// A DNI request as a page on `origin` would send it (text/plain, no API key).
    pub async fn dni(&self, origin: Option<&str>, body: Value, country: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(format!("{}/v1/dni/sessions", self.base))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_string());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = country {
            req = req.header(COUNTRY_HEADER, c);
        }
        self.send(req).await
    }
}
