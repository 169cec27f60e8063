//! Callopt's HTTP face: the management API under `/v1`, the DNI endpoint and its tag, static
//! feeds, health, Prometheus metrics and the OpenAPI document. All serde DTOs live here.
//!
//! # Layout
//! - [`api`]: management resources (campaigns, pools, numbers, domains, sessions, targets,
//!   routing plans, calls, carrier connections, event webhooks, conversions).
//! - [`carrier`]: the carriers' voice webhooks (TwiML, TeXML, cXML, Plivo XML).
//! - [`dni`]: the in-memory DNI state the hot path reads; [`dni_api`]: its endpoints.
//! - [`tag`]: the embedded JavaScript tag.
//! - [`dashboard`]: the embedded dashboard's page and versioned assets.
//! - [`auth`]: bearer API keys → the account every query is scoped to.
//! - [`problem`]: errors as `application/problem+json`, and extractors that reject that way.
//! - [`pagination`]: cursor pagination of listings.
//! - [`geo`]: visitor country and language.
//! - [`guard`]: the page scan worker, re-verification of domains, the abuse report limiter.
//! - [`openapi`]: the OpenAPI document, generated from the handlers' annotations.
//!
//! [`serve`] takes a bound listener and a shutdown future, as the binary and the tests do.

pub mod api;
pub mod auth;
pub mod carrier;
pub mod dashboard;
pub mod dni;
pub mod dni_api;
pub mod geo;
pub mod guard;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod ready;
pub mod tag;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use callopt_store::{SessionWriter, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Pages the binary asks the server to serve besides the API (the demo).
#[derive(Default, Clone)]
pub struct ExtraPages {
    /// HTML served at `/` and `/demo`.
    pub landing: Option<String>,
    /// Body of `/.well-known/callopt-verification.txt` (the demo proves its own origin).
    pub verification: Option<String>,
}

/// What the binary's configuration sets in the HTTP face.
#[derive(Debug, Clone)]
pub struct Options {
    /// The base URL carriers reach this service at (`https://calls.example.com`): webhook
    /// signatures cover the full URL the carrier requested, which a proxy in front may change.
    /// Unset, the request's `Host` (and `X-Forwarded-Proto`) are used.
    pub public_url: Option<String>,
    /// How long a call may stay up before its record is ended (its hang-up never came).
    pub max_call: std::time::Duration,
    /// How often each pool's peak of leased numbers is written to its utilisation history.
    pub pool_sample: std::time::Duration,
    /// Whether event webhooks may name loopback and private addresses (tests, private
    /// deployments); otherwise such URLs are refused, so webhooks cannot probe our network.
    pub webhooks_allow_private: bool,
    /// The Guard's settings: verification, re-verification, scans, abuse reports.
    pub guard: guard::GuardSettings,
    /// This node's name, in readiness answers and on every metric; the host name when unset.
    /// Nodes sharing a database need names of their own.
    pub node: Option<String>,
    /// How long a node sharing the database may go unheard before its calls in progress are
    /// closed as interrupted.
    pub node_timeout: std::time::Duration,
    /// The Redis the nodes of a deployment share, when there are several: visitor-number leases
    /// are decided there (target caps are reserved there by the call paths).
    pub shared: Option<callopt_calls::SharedCounters>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: None,
            max_call: std::time::Duration::from_millis(callopt_calls::MAX_CALL_MS as u64),
            pool_sample: std::time::Duration::from_secs(60),
            webhooks_allow_private: false,
            guard: guard::GuardSettings::default(),
            node: None,
            node_timeout: std::time::Duration::from_secs(30),
            shared: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// DNI state.
    pub dni: Arc<dni::Dni>,
    /// Group-commit writer of visitor sessions.
    pub writer: SessionWriter,
    /// Visitor geo settings.
    pub geo: Arc<geo::GeoConfig>,
    /// Extra pages.
    pub pages: Arc<ExtraPages>,
    /// Call handling: the routing table the management API keeps current, and attribution.
    pub switchboard: Arc<callopt_calls::Switchboard>,
    /// What the carrier webhooks share: the cursor key, the public URL, Telnyx replay memory.
    pub carriers: Arc<carrier::Webhooks>,
    /// Whether event webhooks may name loopback and private addresses.
    pub webhooks_allow_private: bool,
    /// The Guard: domain verification, the scan queue's wake-up, the abuse report limiter.
    pub guard: Arc<guard::Guard>,
    /// This node's name and the parts that report their own readiness (the SIP router).
    pub readiness: Arc<ready::Readiness>,
    /// Visitor-number leases shared with the other nodes, when there are several.
    pub leases: Option<callopt_calls::SharedLeases>,
    /// Target counters shared with the other nodes, when there are several: the carrier
    /// webhooks reserve each attempt there.
    pub shared: Option<callopt_calls::SharedCounters>,
    /// The version of each account's objects this node has loaded (see [`AppState::announce`]).
    versions: Versions,
    /// Held while in-memory state is reloaded from the store: a reload reads the store and
    /// applies what it read before the next one reads, so an older read never lands last.
    reloading: Arc<tokio::sync::Mutex<()>>,
}

/// Account id → the version of its objects loaded.
type Versions = Arc<Mutex<HashMap<i64, i64>>>;

impl AppState {
    /// Builds the state: starts the session writer and loads DNI state from the store.
    pub async fn new(
        store: Arc<dyn Store>,
        geo: geo::GeoConfig,
        pages: ExtraPages,
    ) -> anyhow::Result<Self> {
        Self::with_options(store, geo, pages, Options::default()).await
    }

    /// As [`AppState::new`], with the options the binary reads from its configuration.
    pub async fn with_options(
        store: Arc<dyn Store>,
        geo: geo::GeoConfig,
        pages: ExtraPages,
        options: Options,
    ) -> anyhow::Result<Self> {
        let dni = Arc::new(dni::Dni::default());
        dni.load(&store, now_ms()).await?;
        let node = options.node.unwrap_or_else(ready::default_node_name);
        // The recorder first: a metric's handle taken before it is installed records nothing,
        // and the call writer takes its handles when the switchboard starts.
        let _ = NODE.set(node.clone());
        metrics_handle();
        let settings = callopt_calls::NodeSettings {
            name: node.clone(),
            timeout: options.node_timeout,
            shared: options.shared.clone(),
        };
        let switchboard =
            callopt_calls::Switchboard::start_with(store.clone(), options.max_call, &settings)
                .await?;
        let carriers = Arc::new(carrier::Webhooks::load(&store, options.public_url).await?);
        sample_pools(Arc::downgrade(&dni), store.clone(), options.pool_sample);
        roll_reports(Arc::downgrade(&dni), store.clone(), options.max_call);
        let leases = options
            .shared
            .as_ref()
            .map(callopt_calls::SharedLeases::new);
        if let Some(leases) = &leases {
            follow_leases(leases, &dni, &switchboard);
        }
        let state = Self {
            leases,
            shared: options.shared.clone(),
            readiness: Arc::new(ready::Readiness::new(node)),
            guard: Arc::new(guard::Guard::new(options.guard)?),
            switchboard,
            carriers,
            webhooks_allow_private: options.webhooks_allow_private,
            writer: SessionWriter::spawn(store.clone()),
            store,
            dni,
            geo: Arc::new(geo),
            pages: Arc::new(pages),
            versions: Versions::default(),
            reloading: Arc::default(),
        };
        follow_changes(&state);
        Ok(state)
    }
}

/// Applies the leases other nodes announce (and this node's own, which change nothing) to the
/// pools' copies here and to attribution, until the state is dropped.
fn follow_leases(
    leases: &callopt_calls::SharedLeases,
    dni: &Arc<dni::Dni>,
    switchboard: &Arc<callopt_calls::Switchboard>,
) {
    let (dni, switchboard) = (Arc::downgrade(dni), Arc::downgrade(switchboard));
    leases.follow(move |hold| {
        let (Some(dni), Some(switchboard)) = (dni.upgrade(), switchboard.upgrade()) else {
            return false;
        };
        dni.apply_hold(&hold, now_ms());
        switchboard.hold(
            &hold.number,
            &hold.session,
            hold.language.as_deref(),
            hold.until + dni::RENEWAL_WRITE_INTERVAL_MS,
        );
        true
    });
}

/// Writes each pool's peak of leased numbers to its utilisation history every `every`, until
/// the DNI state is dropped. A failed write is logged and its peak carried to the next one.
fn sample_pools(dni: std::sync::Weak<dni::Dni>, store: Arc<dyn Store>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(std::time::Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut carried: Vec<callopt_store::PoolSample> = Vec::new();
        loop {
            tick.tick().await;
            let Some(dni) = dni.upgrade() else { return };
            let now = now_ms();
            let hour = now - now.rem_euclid(3_600_000);
            let mut samples: Vec<callopt_store::PoolSample> = dni
                .take_peaks(now)
                .into_iter()
                .map(|(pool_id, peak, size)| callopt_store::PoolSample {
                    pool_id,
                    hour,
                    peak_in_use: peak as i64,
                    size: size as i64,
                })
                .collect();
            drop(dni);
            samples.append(&mut carried);
            if let Err(e) = store.record_pool_usage(&samples).await {
                tracing::warn!(error = %e, "pool utilisation not recorded; retrying with the next");
                carried = samples;
                carried.truncate(10_000);
            }
        }
    });
}

/// Keeps the report rollups up to date: a day is rolled once its calls are settled (every one
/// started more than `max_call` and a margin ago, none in progress), a few days at a time so the
/// database is never held long. Stops with the state (`dni` gone).
fn roll_reports(
    dni: std::sync::Weak<dni::Dni>,
    store: Arc<dyn Store>,
    max_call: std::time::Duration,
) {
    const DAYS_PER_STEP: u32 = 4;
    const IDLE: std::time::Duration = std::time::Duration::from_secs(60);
    let settle = max_call.as_millis() as i64 + 5 * 60_000;
    tokio::spawn(async move {
        loop {
            if dni.strong_count() == 0 {
                return;
            }
            let pause = match store.roll_reports(now_ms() - settle, DAYS_PER_STEP).await {
                Ok(status) => {
                    metrics::gauge!("callopt_report_rolled_until_seconds")
                        .set((status.rolled_until / 1000) as f64);
                    metrics::gauge!("callopt_report_pending_days").set(status.pending_days as f64);
                    if status.pending_days > 0 {
                        std::time::Duration::from_millis(10)
                    } else {
                        IDLE
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "report rollups not updated; retrying");
                    IDLE
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

impl AppState {
    /// Brings the in-memory state (DNI campaigns and pools, the routing table) in step with the
    /// store after a change to one account's objects, here and, within a poll, on the other
    /// nodes sharing the database.
    pub async fn refresh(
        &self,
        account: callopt_domain::AccountId,
    ) -> Result<(), problem::ApiError> {
        // Announced before the reload, which reads everything up to the announced version: the
        // version counts as loaded from then on, so that the poll does not load it a second
        // time while the reload runs (a pool of 200,000 numbers takes a second or more). A
        // change another node makes meanwhile has a later version, which the poll picks up; a
        // reload that fails forgets the version, for the poll to load it.
        let version = self.note_change(account).await?;
        self.loaded(account, version);
        if let Err(e) = self.reload(account).await {
            self.versions.lock().expect("lock").remove(&account.0);
            return Err(e);
        }
        Ok(())
    }

    /// Reloads this node's in-memory state of one account's objects.
    async fn reload(&self, account: callopt_domain::AccountId) -> Result<(), problem::ApiError> {
        let _one_at_a_time = self.reloading.lock().await;
        self.dni.refresh_account(&self.store, account).await?;
        self.switchboard
            .refresh()
            .await
            .map_err(|e| problem::ApiError::Unexpected(e.into()))
    }

    /// Tells the other nodes sharing the database that one account's objects changed (objects
    /// this node keeps nothing of in memory: it reloads nothing).
    pub async fn announce(
        &self,
        account: callopt_domain::AccountId,
    ) -> Result<(), problem::ApiError> {
        let version = self.note_change(account).await?;
        self.loaded(account, version);
        Ok(())
    }

    async fn note_change(
        &self,
        account: callopt_domain::AccountId,
    ) -> Result<i64, problem::ApiError> {
        self.store
            .note_change(account, now_ms())
            .await
            .map_err(|e| problem::ApiError::Unexpected(e.into()))
    }

    /// This node has loaded the account's objects as of `version` (or later).
    fn loaded(&self, account: callopt_domain::AccountId, version: i64) {
        let mut known = self.versions.lock().expect("lock");
        let entry = known.entry(account.0).or_insert(version);
        *entry = (*entry).max(version);
    }
}

/// How often a node looks for changes other nodes made.
const CHANGES_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// How far back each look reaches before the last one: commits that land late and clocks a
/// little apart between nodes.
const CHANGES_SLACK_MS: i64 = 5_000;

/// Reloads, about once a second, the accounts whose objects another node changed: their DNI
/// state, the routing table and the store's own caches. Stops when the state is dropped.
fn follow_changes(state: &AppState) {
    let store = state.store.clone();
    let versions = Arc::downgrade(&state.versions);
    let (dni, switchboard) = (
        Arc::downgrade(&state.dni),
        Arc::downgrade(&state.switchboard),
    );
    let reloading = Arc::downgrade(&state.reloading);
    tokio::spawn(async move {
        let mut since = now_ms() - CHANGES_SLACK_MS;
        let mut tick = tokio::time::interval(CHANGES_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = now_ms();
            let changed = match store.changes_since(since).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "changes of other nodes not read");
                    continue;
                }
            };
            let (Some(versions), Some(dni), Some(switchboard), Some(reloading)) = (
                versions.upgrade(),
                dni.upgrade(),
                switchboard.upgrade(),
                reloading.upgrade(),
            ) else {
                return;
            };
            let moved: Vec<callopt_domain::AccountId> = {
                let mut known = versions.lock().expect("lock");
                changed
                    .into_iter()
                    .filter(|(account, version)| {
                        known.insert(account.0, *version) != Some(*version)
                    })
                    .map(|(account, _)| account)
                    .collect()
            };
            if moved.is_empty() {
                since = started - CHANGES_SLACK_MS;
                continue;
            }
            let one_at_a_time = reloading.lock().await;
            let mut done = store.refresh_caches().await.is_ok();
            for account in &moved {
                done &= dni.refresh_account(&store, *account).await.is_ok();
            }
            done &= switchboard.refresh().await.is_ok();
            drop(one_at_a_time);
            if done {
                since = started - CHANGES_SLACK_MS;
                tracing::info!(
                    accounts = moved.len(),
                    "changes made on another node loaded"
                );
            } else {
                // Look at the same window again; the versions are forgotten so it reloads.
                let mut known = versions.lock().expect("lock");
                for account in &moved {
                    known.remove(&account.0);
                }
                tracing::warn!("changes made on another node not loaded; retrying");
            }
        }
    });
}

/// The name of the process's first node: the `node` label of every metric.
static NODE: OnceLock<String> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use), every metric labelled with
/// the node's name so that a fleet's series stay apart.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let node = NODE.get().cloned().unwrap_or_else(ready::default_node_name);
        let recorder = PrometheusBuilder::new()
            .add_global_label("node", node)
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (in tests); then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    metrics_handle();
    let v1 = Router::new()
        .route(
            "/campaigns",
            get(api::campaigns::list).post(api::campaigns::create),
        )
        .route(
            "/campaigns/{id}",
            get(api::campaigns::get)
                .patch(api::campaigns::update)
                .delete(api::campaigns::delete),
        )
        .route("/pools", get(api::pools::list).post(api::pools::create))
        .route("/pools/utilisation", get(api::pools::utilisation))
        .route(
            "/pools/{id}",
            get(api::pools::get)
                .patch(api::pools::update)
                .delete(api::pools::delete),
        )
        .route(
            "/numbers",
            get(api::numbers::list).post(api::numbers::create),
        )
        .route(
            "/numbers/import",
            post(api::numbers::import).layer(DefaultBodyLimit::max(32 * 1024 * 1024)),
        )
        .route(
            "/numbers/{id}",
            get(api::numbers::get)
                .patch(api::numbers::update)
                .delete(api::numbers::delete),
        )
        .route(
            "/domains",
            get(api::domains::list).post(api::domains::create),
        )
        .route(
            "/domains/{id}",
            get(api::domains::get).delete(api::domains::delete),
        )
        .route("/domains/{id}/verify", post(api::domains::verify))
        .route(
            "/targets",
            get(api::targets::list).post(api::targets::create),
        )
        .route(
            "/targets/{id}",
            get(api::targets::get)
                .patch(api::targets::update)
                .delete(api::targets::delete),
        )
        .route(
            "/routing-plans",
            get(api::plans::list).post(api::plans::create),
        )
        .route(
            "/routing-plans/{id}",
            get(api::plans::get)
                .patch(api::plans::update)
                .delete(api::plans::delete),
        )
        .route(
            "/carrier-connections",
            get(api::carriers::list).post(api::carriers::create),
        )
        .route(
            "/carrier-connections/{id}",
            get(api::carriers::get)
                .patch(api::carriers::update)
                .delete(api::carriers::delete),
        )
        .route("/reports/calls", get(api::reports::calls))
        .route("/reports/pools", get(api::reports::pools))
        .route("/calls", get(api::calls::list))
        .route("/calls/live", get(api::live::live))
        .route("/calls/export", get(api::calls::export))
        .route("/calls/{id}", get(api::calls::get))
        .route(
            "/calls/{id}/conversion",
            post(api::conversions::convert_call),
        )
        .route("/conversions", post(api::conversions::convert_by_caller))
        .route(
            "/webhooks",
            get(api::webhooks::list).post(api::webhooks::create),
        )
        .route(
            "/webhooks/{id}",
            get(api::webhooks::get)
                .patch(api::webhooks::update)
                .delete(api::webhooks::delete),
        )
        .route("/webhooks/{id}/deliveries", get(api::webhooks::deliveries))
        .route("/sessions/{id}", get(api::sessions::get))
        .route("/dni/refusals", get(api::sessions::refusals))
        .route("/guard/scans", get(api::guard::scans))
        .route(
            "/guard/scans/{id}/override",
            post(api::guard::override_scan),
        )
        .route(
            "/guard/quarantines",
            get(api::guard::quarantines).post(api::guard::quarantine_page),
        )
        .route("/guard/quarantines/{id}", get(api::guard::quarantine))
        .route("/guard/quarantines/{id}/lift", post(api::guard::lift))
        .route("/guard/audit", get(api::guard::audit))
        .route("/guard/abuse-reports", get(api::guard::abuse_reports))
        .route(
            "/abuse-reports",
            post(api::guard::report_abuse)
                .layer(DefaultBodyLimit::max(api::guard::MAX_REPORT_BODY)),
        )
        .route(
            "/dni/sessions",
            post(dni_api::sessions)
                .options(dni_api::preflight)
                .layer(DefaultBodyLimit::max(dni_api::MAX_BODY)),
        )
        .route(
            "/dni/feeds/{campaign}/{format}",
            get(dni_api::feed).options(dni_api::preflight),
        );
    let carriers = Router::new()
        .route("/{key}/voice", post(carrier::voice))
        .route("/{key}/dial", post(carrier::dial))
        .route("/{key}/status", post(carrier::status))
        .layer(DefaultBodyLimit::max(carrier::MAX_BODY));
    Router::new()
        .nest("/v1", v1)
        .nest("/carriers", carriers)
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready::readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/dni.js", get(tag::current))
        .route("/dni/{file}", get(tag::versioned))
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/{version}/{*file}", get(dashboard::asset))
        .route("/", get(landing))
        .route("/demo", get(landing))
        .route(
            callopt_domain::VerificationToken::WELL_KNOWN_PATH,
            get(verification_file),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state
        .store
        .account_by_key(&callopt_domain::ApiKeyHash(String::new()))
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable", "store": "failing"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    // One series that is always there, carrying the build and (as every metric) the node.
    metrics::gauge!("callopt_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for (pool, used, size) in state.dni.utilisation(now_ms()) {
        let pool = pool.to_string();
        metrics::gauge!("callopt_pool_numbers_in_use", "pool" => pool.clone()).set(used as f64);
        metrics::gauge!("callopt_pool_size", "pool" => pool.clone()).set(size as f64);
        let ratio = if size == 0 {
            1.0
        } else {
            used as f64 / size as f64
        };
        metrics::gauge!("callopt_pool_utilisation", "pool" => pool).set(ratio);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
        .into_response()
}

async fn landing(State(state): State<AppState>) -> Response {
    match &state.pages.landing {
        Some(html) => Html(html.clone()).into_response(),
        None => axum::Json(serde_json::json!({
            "service": "callopt",
            "version": env!("CARGO_PKG_VERSION"),
            "openapi": "/openapi.json",
        }))
        .into_response(),
    }
}

async fn verification_file(State(state): State<AppState>) -> Response {
    match &state.pages.verification {
        Some(token) => format!("{token}\n").into_response(),
        None => problem::ApiError::NotFound("file").into_response(),
    }
}

async fn not_found() -> problem::ApiError {
    problem::ApiError::NotFound("route")
}

async fn method_not_allowed() -> Response {
    let mut r = problem::ApiError::Unprocessable {
        detail: "method not allowed on this route".into(),
        field: None,
    }
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
