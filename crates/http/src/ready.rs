//! Readiness: whether this node can serve, dependency by dependency (`GET /readyz`), under the
//! node's name, which also labels every metric it exports.
//!
//! The store is checked on each request (a query, timed). Parts that run beside the HTTP server
//! (the SIP router) report themselves through [`Readiness::ok`] and [`Readiness::failing`].
//! Any check failing makes the answer 503, so a load balancer or an orchestrator stops sending
//! traffic to this node while the others serve.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// The node's name and the state of the parts that report themselves.
#[derive(Debug)]
pub struct Readiness {
    /// This node's name.
    node: String,
    /// Self-reported parts by name: working, and what to say of them.
    parts: Mutex<BTreeMap<&'static str, (bool, String)>>,
}

impl Readiness {
    /// Readiness of the node `node`, with no part reported yet.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            parts: Mutex::default(),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `part` works; `detail` says how (an address, a mode).
    pub fn ok(&self, part: &'static str, detail: impl Into<String>) {
        self.set(part, true, detail.into());
    }

    /// `part` has stopped working; `detail` says why.
    pub fn failing(&self, part: &'static str, detail: impl Into<String>) {
        self.set(part, false, detail.into());
    }

    fn set(&self, part: &'static str, ok: bool, detail: String) {
        if let Ok(mut parts) = self.parts.lock() {
            parts.insert(part, (ok, detail));
        }
    }
}

/// The machine's host name, the default node name: the kernel's, else `$HOSTNAME`, else
/// `callopt`.
pub fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "callopt".to_string())
}

/// `GET /readyz`: 200 with every check when all pass, 503 naming the failing ones otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = Map::new();
    let started = Instant::now();
    let store = state
        .store
        .account_by_key(&callopt_domain::ApiKeyHash(String::new()))
        .await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let mut ready = true;
    match store {
        Ok(_) => {
            checks.insert(
                "store".into(),
                json!({"status": "ok", "latency_ms": latency_ms}),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "readiness: the store is failing");
            ready = false;
            checks.insert(
                "store".into(),
                json!({"status": "failing", "detail": "the database did not answer a query"}),
            );
        }
    }
    let parts = state
        .readiness
        .parts
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    for (name, (ok, detail)) in parts {
        ready &= ok;
        let status = if ok { "ok" } else { "failing" };
        checks.insert(name.into(), json!({"status": status, "detail": detail}));
    }
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "node": state.readiness.node(),
        "checks": Value::Object(checks),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
