//! Readiness: whether this node can serve, dependency by dependency (`GET /readyz`), under the
//! node's name, which also labels every metric it exports.
//!
//! The store is checked on each request (a query, timed). Parts that run beside the HTTP server
//! (the SIP router, Redis) report themselves through [`Readiness::ok`], [`Readiness::degraded`]
//! and [`Readiness::failing`]. Any check failing makes the answer 503, so a load balancer or an
//! orchestrator stops sending traffic to this node while the others serve; a degraded one is
//! shown but keeps the node ready (every node shares it: taking them all out would help none).

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// How a self-reported part stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartState {
    /// Working.
    Ok,
    /// Not working, but the node serves without it (in a lesser way): still ready.
    Degraded,
    /// Not working: the node is not ready.
    Failing,
}

/// The node's name and the state of the parts that report themselves.
#[derive(Debug)]
pub struct Readiness {
    /// This node's name.
    node: String,
    /// Self-reported parts by name: their state, and what to say of them.
    parts: Mutex<BTreeMap<&'static str, (PartState, String)>>,
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
        self.set(part, PartState::Ok, detail.into());
    }

    /// `part` has stopped working, but the node serves without it; `detail` says why.
    pub fn degraded(&self, part: &'static str, detail: impl Into<String>) {
        self.set(part, PartState::Degraded, detail.into());
    }

    /// `part` has stopped working; `detail` says why.
    pub fn failing(&self, part: &'static str, detail: impl Into<String>) {
        self.set(part, PartState::Failing, detail.into());
    }

    fn set(&self, part: &'static str, state: PartState, detail: String) {
        if let Ok(mut parts) = self.parts.lock() {
            parts.insert(part, (state, detail));
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
    for (name, (state, detail)) in parts {
        ready &= state != PartState::Failing;
        let status = match state {
            PartState::Ok => "ok",
            PartState::Degraded => "degraded",
            PartState::Failing => "failing",
        };
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
