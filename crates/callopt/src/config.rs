//! Layered configuration: defaults, then a TOML file, then `CALLOPT_` environment variables,
//! then command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything `callopt serve` and `callopt demo` can be told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    /// Address to listen on for HTTP.
    pub listen: String,
    /// The database: a SQLite file path or `sqlite://` URL (one node), or a
    /// `postgres://user:password@host:port/database` URL (several nodes sharing it).
    pub db: String,
    /// A header with the visitor's country set by a trusted CDN or load balancer.
    pub geo_country_header: Option<String>,
    /// A MaxMind-format (GeoIP2/GeoLite2 Country or City) database file.
    pub geoip_database: Option<PathBuf>,
    /// A header with the client address set by a trusted proxy (for the GeoIP lookup).
    pub client_ip_header: Option<String>,
    /// Log filter (`info`, `callopt_http=debug`, ...).
    pub log: String,
    /// This node's name, in readiness answers (`/readyz`) and as the `node` label of every
    /// metric; the host name when unset.
    pub node_name: Option<String>,
    /// Redis (`redis://host:port/db`) holding the counters several nodes share: each target's
    /// live calls and calendar caps. Unset, each node counts alone.
    pub redis_url: Option<String>,
    /// Seconds a node sharing the database may go unheard before another closes its calls in
    /// progress as interrupted.
    pub node_timeout_secs: u64,
    /// Address the SIP router listens on (UDP and TCP); no SIP router when unset.
    pub sip_listen: Option<String>,
    /// The IP address carriers and targets reach the SIP router at (Via, Record-Route), when
    /// `sip_listen` binds all interfaces.
    pub sip_advertise: Option<std::net::IpAddr>,
    /// Seconds between OPTIONS probes of each SIP target.
    pub sip_probe_interval_secs: u64,
    /// Nameservers (`ip:port`, UDP) asked for the addresses of targets named by host name
    /// (SRV, then A/AAAA); the system's if empty.
    pub sip_nameservers: Vec<std::net::SocketAddr>,
    /// Seconds between lookups of every target host name again.
    pub sip_dns_refresh_secs: u64,
    /// Milliseconds a finished SIP transaction stays on UDP to absorb retransmissions; unset,
    /// RFC 3261's 64×T1 (32 s). Kamailio keeps them 5,000 (`wt_timer`).
    pub sip_linger_ms: Option<u64>,
    /// The base URL carriers reach the HTTP service at (`https://calls.example.com`), when a
    /// proxy in front changes the scheme or host: carrier webhook signatures cover the URL the
    /// carrier requested. Unset, the request's `Host` and `X-Forwarded-Proto` are used.
    pub public_url: Option<String>,
    /// Seconds a call may stay up before its record is ended as hung up by the system (its
    /// hang-up or the carrier's callbacks never came), so that caps cannot leak.
    pub max_call_secs: u64,
    /// Seconds between writes of each pool's peak of leased numbers to its hourly history.
    pub pool_sample_secs: u64,
    /// Let event webhooks post to loopback and private addresses. Off, such URLs are refused
    /// and names that resolve only to them fail, so a webhook cannot reach our own network.
    pub webhooks_allow_private: bool,
    /// Milliseconds before the first retry of a failed webhook delivery; each retry doubles it
    /// (up to three hours), with jitter.
    pub webhooks_retry_base_ms: u64,
    /// Attempts before a webhook delivery is marked failed.
    pub webhooks_max_attempts: u32,
    /// Milliseconds between looks at the outbox for due deliveries.
    pub webhooks_poll_ms: u64,
    /// Milliseconds one delivery attempt may take. A claimed delivery is leased for three times
    /// this plus five seconds, which is also how long one in flight at a crash waits before the
    /// next process sends it again.
    pub webhooks_timeout_ms: u64,
    /// Let the Guard's domain verification and page scans reach loopback and private
    /// addresses (tests, private deployments). Off, they obey the same rule as webhooks.
    pub guard_allow_private: bool,
    /// Nameservers (`ip:port`, UDP) asked for verification TXT records; the system's if empty.
    pub guard_nameservers: Vec<std::net::SocketAddr>,
    /// Seconds between re-verifications of every verified domain.
    pub guard_reverify_secs: u64,
    /// Seconds a verified domain may fail its re-verification before it is unverified.
    pub guard_reverify_grace_secs: u64,
    /// Milliseconds between looks at the page scan queue.
    pub guard_scan_poll_ms: u64,
    /// Page scans run at once.
    pub guard_scan_concurrency: usize,
    /// Page scans a campaign may run per 24 hours; its other pages wait their turn.
    pub guard_scans_per_campaign_per_day: u32,
    /// Also run each scanned page in headless Chromium (`callopt scan --dynamic`).
    pub guard_scan_dynamic: bool,
    /// The Chromium for `guard_scan_dynamic` (default: the one on the PATH).
    pub guard_chromium: Option<std::path::PathBuf>,
    /// Abuse reports accepted per client address per minute.
    pub guard_abuse_reports_per_minute: u32,
    /// Distinct reporters of one number (within the window) that quarantine it.
    pub guard_abuse_threshold: u32,
    /// Hours in which reporters of a number are counted.
    pub guard_abuse_window_hours: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            db: "callopt.db".into(),
            geo_country_header: None,
            geoip_database: None,
            client_ip_header: None,
            log: "info".into(),
            node_name: None,
            node_timeout_secs: 30,
            redis_url: None,
            sip_listen: None,
            sip_advertise: None,
            sip_probe_interval_secs: 10,
            sip_nameservers: Vec::new(),
            sip_dns_refresh_secs: 30,
            sip_linger_ms: None,
            public_url: None,
            max_call_secs: 12 * 3600,
            pool_sample_secs: 60,
            webhooks_allow_private: false,
            webhooks_retry_base_ms: 30_000,
            webhooks_max_attempts: 15,
            webhooks_poll_ms: 1_000,
            webhooks_timeout_ms: 10_000,
            guard_allow_private: false,
            guard_nameservers: Vec::new(),
            guard_reverify_secs: 6 * 3600,
            guard_reverify_grace_secs: 72 * 3600,
            guard_scan_poll_ms: 1_000,
            guard_scan_concurrency: 2,
            guard_scans_per_campaign_per_day: 500,
            guard_scan_dynamic: false,
            guard_chromium: None,
            guard_abuse_reports_per_minute: 5,
            guard_abuse_threshold: 3,
            guard_abuse_window_hours: 7 * 24,
        }
    }
}

/// Flags that override the layers below them.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// `--sip-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_listen: Option<String>,
}

impl Config {
    /// Reads the layers. `file` is the `--config` path; without one, `callopt.toml` in the
    /// working directory is read when it exists.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("callopt.toml")),
        }
        let config = figment
            .merge(Env::prefixed("CALLOPT_").ignore(&["config"]))
            .merge(Serialized::defaults(overrides))
            .extract()?;
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail returns its own large error type
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"0.0.0.0:9000\"\ndb = \"file.db\"\nlog = \"debug\"",
            )?;
            jail.set_env("CALLOPT_DB", "env.db");
            let c = Config::load(Some(Path::new("c.toml")), Overrides::default()).unwrap();
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!(c.db, "env.db");
            assert_eq!(c.log, "debug");
            let flags = Overrides {
                listen: Some("127.0.0.1:1".into()),
                db: None,
                sip_listen: Some("127.0.0.1:5062".into()),
            };
            let c = Config::load(Some(Path::new("c.toml")), flags).unwrap();
            assert_eq!(c.listen, "127.0.0.1:1");
            assert_eq!(c.sip_listen.as_deref(), Some("127.0.0.1:5062"));
            assert_eq!(c.db, "env.db");
            Ok(())
        });
    }

    #[test]
    fn defaults_without_file() {
        figment::Jail::expect_with(|_| {
            let c = Config::load(None, Overrides::default()).unwrap();
            assert_eq!(c, Config::default());
            Ok(())
        });
    }

    #[test]
    fn missing_named_file_is_an_error() {
        assert!(Config::load(
            Some(Path::new("/nonexistent/callopt.toml")),
            Overrides::default()
        )
        .is_err());
    }
}
