//! The `callopt` binary: parses flags and configuration, opens the store, binds, and hands the
//! listener to `callopt_http::serve`. Subcommands: serve, demo, migrate, account, numbers, scan.
//!
//! # Layout
//! - [`config`]: layered configuration.
//! - [`demo`]: the demo account, campaign, pool and landing page.
//! - [`import`]: `callopt numbers import`, a client of the management API.
//! - [`scan`]: `callopt scan`, the landing page scanner on the command line.
//! - [`sip`]: the switchboard as the SIP router's `CallControl`.

mod config;
mod demo;
mod guard;
mod import;
mod scan;
mod sip;

use anyhow::Context;
use callopt_domain::ApiKey;
use callopt_http::{geo::GeoConfig, AppState, ExtraPages};
use callopt_store::Store;
use clap::{Args, Parser, Subcommand};
use config::{Config, Overrides};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Callopt: dynamic number insertion, call routing and call analytics.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags shared by the commands that open the store or listen.
#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML); default `callopt.toml` when present.
    #[arg(long, env = "CALLOPT_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    listen: Option<String>,
    /// Database file or URL (overrides the configuration).
    #[arg(long)]
    db: Option<String>,
    /// Address for the SIP router, UDP and TCP (overrides the configuration).
    #[arg(long)]
    sip_listen: Option<String>,
}

impl Common {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(
            self.config.as_deref(),
            Overrides {
                listen: self.listen.clone(),
                db: self.db.clone(),
                sip_listen: self.sip_listen.clone(),
            },
        )
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service.
    Serve(Common),
    /// Creates a demo account, campaign and pool, and serves a landing page that shows the tag.
    Demo(Common),
    /// Applies database migrations and exits.
    Migrate(Common),
    /// Manages accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manages tracking numbers through the API of a running service.
    #[command(subcommand)]
    Numbers(NumbersCommand),
    /// Scans landing pages (URLs or files) for tech-support scam behaviour. Exit status 1 when
    /// any is a scam, 2 when any could not be scanned, else 0.
    Scan(scan::ScanArgs),
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Creates an account and prints its API key (shown once; only its hash is stored).
    Create {
        /// Account name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum NumbersCommand {
    /// Imports tracking numbers from a CSV file (header `e164[,country][,languages][,kind]`,
    /// or one number per line).
    Import(import::ImportArgs),
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Reports Redis in `/readyz`, checked every five seconds: a node whose Redis does not answer
/// routes on its own counters and leases numbers from its own copy of the pools (degraded,
/// still ready: every node shares the one Redis).
fn watch_redis(
    shared: callopt_calls::SharedCounters,
    readiness: Arc<callopt_http::ready::Readiness>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            match shared.ping().await {
                Ok(took) => readiness.ok(
                    "redis",
                    format!("answered in {:.2} ms", took.as_secs_f64() * 1000.0),
                ),
                Err(e) => readiness.degraded(
                    "redis",
                    format!("{e}: caps and leases are kept on this node alone"),
                ),
            }
        }
    });
}

/// A database URL with its password, if any, replaced: for messages and logs.
fn redacted(db: &str) -> String {
    match url::Url::parse(db) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(_) => db.to_string(),
        // Not a URL we can read: keep nothing between the scheme and the last `@`.
        Err(_) => match (db.find("://"), db.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://redacted{}", &db[..scheme], &db[at..])
            }
            _ => db.to_string(),
        },
    }
}

async fn open_store(db: &str) -> anyhow::Result<Arc<dyn Store>> {
    callopt_store::open(db)
        .await
        .with_context(|| format!("opening the database {}", redacted(db)))
}

/// The HTTP face's options from the configuration.
fn http_options(config: &Config) -> anyhow::Result<callopt_http::Options> {
    if let Some(url) = &config.public_url {
        let parsed = url::Url::parse(url).with_context(|| format!("public_url {url:?}"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https") && parsed.path() == "/",
            "public_url must be http(s)://host[:port] with no path, not {url:?}"
        );
    }
    anyhow::ensure!(config.max_call_secs > 0, "max_call_secs must be at least 1");
    anyhow::ensure!(
        config.sip_linger_ms != Some(0),
        "sip_linger_ms must be at least 1 (unset is RFC 3261's 32 s)"
    );
    Ok(callopt_http::Options {
        public_url: config.public_url.clone(),
        max_call: std::time::Duration::from_secs(config.max_call_secs),
        webhooks_allow_private: config.webhooks_allow_private,
        guard: guard_settings(config),
        pool_sample: std::time::Duration::from_secs(config.pool_sample_secs.max(1)),
        node: config.node_name.clone(),
        node_timeout: std::time::Duration::from_secs(config.node_timeout_secs.max(1)),
        shared: None,
    })
}

/// The Guard's settings from the configuration.
fn guard_settings(config: &Config) -> callopt_http::guard::GuardSettings {
    use std::time::Duration;
    callopt_http::guard::GuardSettings {
        allow_private: config.guard_allow_private,
        nameservers: config.guard_nameservers.clone(),
        reverify_interval: Duration::from_secs(config.guard_reverify_secs.max(60)),
        reverify_grace: Duration::from_secs(config.guard_reverify_grace_secs),
        scan_poll: Duration::from_millis(config.guard_scan_poll_ms.max(10)),
        scan_concurrency: config.guard_scan_concurrency.max(1),
        scans_per_campaign_per_day: config.guard_scans_per_campaign_per_day.max(1),
        abuse_reports_per_minute: config.guard_abuse_reports_per_minute.max(1),
        abuse_threshold: config.guard_abuse_threshold.max(1),
        abuse_window: Duration::from_secs(config.guard_abuse_window_hours.max(1) * 3600),
    }
}

/// Starts the worker that delivers the outbox's events to the accounts' webhooks.
fn start_webhooks(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.webhooks_max_attempts > 0,
        "webhooks_max_attempts must be at least 1"
    );
    let settings = callopt_events::Settings {
        allow_private: config.webhooks_allow_private,
        retry_base: std::time::Duration::from_millis(config.webhooks_retry_base_ms.max(1)),
        max_attempts: config.webhooks_max_attempts,
        poll: std::time::Duration::from_millis(config.webhooks_poll_ms.max(10)),
        timeout: std::time::Duration::from_millis(config.webhooks_timeout_ms.max(100)),
        ..Default::default()
    };
    callopt_events::Worker::spawn(store, settings).context("starting the webhook worker")?;
    Ok(())
}

fn geo_config(config: &Config) -> anyhow::Result<GeoConfig> {
    let header = |h: &Option<String>| -> anyhow::Result<_> {
        h.as_deref()
            .map(|h| {
                h.to_ascii_lowercase()
                    .parse()
                    .context("invalid header name")
            })
            .transpose()
    };
    let database = match &config.geoip_database {
        Some(path) => Some(
            maxminddb::Reader::open_readfile(path)
                .with_context(|| format!("opening the GeoIP database {}", path.display()))?,
        ),
        None => None,
    };
    Ok(GeoConfig {
        country_header: header(&config.geo_country_header)?,
        database,
        client_ip_header: header(&config.client_ip_header)?,
    })
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Prints a line to stdout at once (tests and scripts read it).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn serve(common: Common) -> anyhow::Result<()> {
    let config = common.load()?;
    init_logging(&config.log);
    let store = open_store(&config.db).await?;
    start_webhooks(&config, store.clone())?;
    let shared = match &config.redis_url {
        Some(url) => Some(
            callopt_calls::SharedCounters::connect(url)
                .await
                .with_context(|| format!("connecting to Redis at {}", redacted(url)))?,
        ),
        None => None,
    };
    let mut options = http_options(&config)?;
    options.shared = shared.clone();
    let state =
        AppState::with_options(store, geo_config(&config)?, ExtraPages::default(), options).await?;
    if let Some(shared) = &shared {
        watch_redis(shared.clone(), state.readiness.clone());
    }
    let scanner = guard::Scanner::new(
        config.guard_allow_private,
        config
            .guard_scan_dynamic
            .then(|| config.guard_chromium.clone()),
    );
    callopt_http::guard::start(&state, Some(std::sync::Arc::new(scanner)));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, db = %redacted(&config.db), "serving");
    let sip = start_sip(&config, &state, shared).await?;
    say(&format!("listening on http://{addr}"));
    callopt_http::serve(listener, state, shutdown_signal()).await?;
    if let Some(sip) = sip {
        sip.abort();
    }
    Ok(())
}

/// The UDP receive buffer the SIP router asks for, bytes.
const SIP_RECEIVE_BUFFER: usize = 4 << 20;

/// A UDP socket and a TCP listener on the same address. With port 0 the UDP socket picks the
/// port, and the TCP port of that number may be taken: then another port is tried.
async fn bind_sip(
    listen: &str,
) -> anyhow::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let mut tries = 0;
    loop {
        let udp = tokio::net::UdpSocket::bind(listen)
            .await
            .with_context(|| format!("binding SIP UDP {listen}"))?;
        let local = udp.local_addr()?;
        // Room for bursts while the router's task is off the CPU (the kernel caps it at
        // net.core.rmem_max): a datagram dropped here is a retransmission later.
        if let Err(e) = socket2::SockRef::from(&udp).set_recv_buffer_size(SIP_RECEIVE_BUFFER) {
            tracing::warn!(error = %e, "could not enlarge the SIP receive buffer");
        }
        match tokio::net::TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(_) if local.port() != 0 && listen.ends_with(":0") && tries < 20 => tries += 1,
            Err(e) => return Err(e).with_context(|| format!("binding SIP TCP {local}")),
        }
    }
}

/// Binds the SIP router's UDP socket and TCP listener on `sip_listen` (the same port for both)
/// and runs it beside the HTTP server, reserving targets in `shared` when there are several
/// nodes.
async fn start_sip(
    config: &Config,
    state: &AppState,
    shared: Option<callopt_calls::SharedCounters>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = &config.sip_listen else {
        return Ok(None);
    };
    let (udp, tcp) = bind_sip(listen).await?;
    let local = udp.local_addr()?;
    let mut sip = callopt_sip::SipConfig::new(udp);
    sip.tcp = Some(tcp);
    sip.advertised = config.sip_advertise;
    sip.probing.interval = Some(std::time::Duration::from_secs(
        config.sip_probe_interval_secs.max(1),
    ));
    // A dialog whose BYE never comes is hung up (a BYE to each side) when its call record is
    // ended.
    sip.max_dialog = std::time::Duration::from_secs(config.max_call_secs.max(1));
    sip.timers.linger = config
        .sip_linger_ms
        .map(|ms| std::time::Duration::from_millis(ms.max(1)));
    sip.dns = Some(callopt_sip::dns::ResolverSettings {
        nameservers: config.sip_nameservers.clone(),
        refresh: std::time::Duration::from_secs(config.sip_dns_refresh_secs.max(1)),
    });
    let control = Arc::new(sip::SipControl::new(state.switchboard.clone(), shared));
    say(&format!("sip on udp:{local} tcp:{local}"));
    tracing::info!(%local, "SIP router listening");
    let readiness = state.readiness.clone();
    readiness.ok("sip", format!("udp and tcp on {local}"));
    Ok(Some(tokio::spawn(async move {
        let stopped = match callopt_sip::serve(sip, control, std::future::pending::<()>()).await {
            Ok(()) => "stopped".to_string(),
            Err(e) => format!("stopped: {e}"),
        };
        tracing::error!(reason = %stopped, "SIP router stopped");
        readiness.failing("sip", stopped);
    })))
}

async fn create_account(name: &str, common: Common) -> anyhow::Result<()> {
    let config = common.load()?;
    let store = open_store(&config.db).await?;
    let key = ApiKey::from_random(rand::random());
    let id = store
        .create_account(name, &key.hash(), callopt_http::now_ms())
        .await?;
    say(&format!("account: {}", id.0));
    say(&format!("api_key: {}", key.expose()));
    Ok(())
}

/// The allocator: a call allocates and frees many small buffers on the router's one task and
/// the writer's, where the system allocator's locking and consolidation cost a tenth of the
/// CPU of a call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_t` of mimalloc 3, which the
/// locked `libmimalloc-sys` builds (its bindings do not name it; a test checks its default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the memory the allocator has freed instead of handing it back to the kernel a second
/// later (mimalloc's purge). A router's heap is steady under load but churns: a transaction's
/// buffers live for its linger, so whole pages empty out and fill again all the time, and each
/// page given back was faulted in and cleared again on the router's one task. Held, a call
/// cost 2-5% less CPU in interleaved `bench/sip.sh` runs at 4,000 and 5,000 calls/s; the
/// process keeps its peak heap, as Kamailio keeps its shared memory pool.
fn keep_freed_memory() {
    // SAFETY: one plain option store, made before the runtime starts any other thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> anyhow::Result<()> {
    keep_freed_memory();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(common) => serve(common).await,
        Command::Demo(common) => demo::run(common).await,
        Command::Migrate(common) => {
            let config = common.load()?;
            open_store(&config.db).await?;
            say(&format!("migrations applied to {}", redacted(&config.db)));
            Ok(())
        }
        Command::Account(AccountCommand::Create { name, common }) => {
            create_account(&name, common).await
        }
        Command::Numbers(NumbersCommand::Import(args)) => import::run(args).await,
        Command::Scan(args) => {
            let status = scan::run(args).await?;
            std::process::exit(status)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_mimallocs_and_is_set_to_never() {
        use libmimalloc_sys::mi_option_get;
        // SAFETY: reads and a store of one allocator option.
        unsafe {
            // mimalloc 3's default purge delay: the constant names that option.
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), 1000);
            super::keep_freed_memory();
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), -1);
        }
    }

    #[test]
    fn database_passwords_are_redacted_even_in_urls_that_do_not_parse() {
        let url = "postgres://callopt:s3cret@db:5432/callopt";
        assert_eq!(
            super::redacted(url),
            "postgres://callopt:redacted@db:5432/callopt"
        );
        // An unencoded `/` in the password makes the port unreadable.
        let bad = "postgres://callopt:se/cr#et@db:5432/callopt";
        let shown = super::redacted(bad);
        assert!(!shown.contains("se/cr"), "{shown}");
        assert_eq!(shown, "postgres://redacted@db:5432/callopt");
        assert_eq!(
            super::redacted("/var/lib/callopt.db"),
            "/var/lib/callopt.db"
        );
    }

    #[test]
    fn a_linger_of_zero_is_refused_and_any_other_is_taken() {
        let with = |ms| super::Config {
            sip_linger_ms: ms,
            ..super::Config::default()
        };
        let refused = super::http_options(&with(Some(0))).unwrap_err().to_string();
        assert!(refused.contains("sip_linger_ms"), "{refused}");
        assert!(super::http_options(&with(Some(5000))).is_ok());
        assert!(super::http_options(&with(None)).is_ok());
    }
}
