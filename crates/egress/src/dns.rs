//! The DNS resolver Callopt's lookups share (verification TXT records, SIP target names).

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

/// A resolver asking `nameservers` over UDP (the system's when empty), 2 tries of `timeout`
/// each, caching answers at most `max_ttl` and failures at most `negative_ttl`.
pub fn resolver(
    nameservers: &[SocketAddr],
    timeout: Duration,
    max_ttl: Duration,
    negative_ttl: Duration,
) -> std::io::Result<TokioResolver> {
    let provider = TokioConnectionProvider::default();
    let mut builder = if nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(std::io::Error::other)?
    } else {
        let mut config = ResolverConfig::new();
        for addr in nameservers {
            config.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
        }
        TokioResolver::builder_with_config(config, provider)
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 2;
    opts.positive_max_ttl = Some(max_ttl);
    opts.negative_max_ttl = Some(negative_ttl);
    Ok(builder.build())
}
