//! Host names in target URIs and routes, resolved off the message path (RFC 3263).
//!
//! The core task never waits on DNS. It reads names from [`Hosts`], a cache that
//! [`run_resolver`] fills in a task of its own: at start and on every refresh for the hosts of
//! the probe targets (every SIP target the router may be asked to call), and at once for a name
//! the core looked up and missed. A name with a port (`sip:agent@pbx.example.com:5070`) is
//! resolved to its A and AAAA records; one without is first looked up as an SRV record
//! (`_sip._udp.pbx.example.com`, or `_sip._tcp.` for `;transport=tcp`), whose targets are
//! resolved with their ports, and as A/AAAA on port 5060 when there is none. NAPTR is not
//! consulted: the transport comes from the URI.
//!
//! Each attempt takes one address: among those of the lowest SRV priority, at random in
//! proportion to their weights (RFC 2782), so that SRV records spread calls over a call
//! center's servers as their owner set; a name's plain A/AAAA addresses share calls evenly.
//!
//! A name that stops resolving keeps its last addresses until a lookup succeeds again (a DNS
//! outage must not take every named target down); a name neither probed nor looked up since
//! the last refresh is forgotten. An attempt whose address does not answer fails over to the
//! plan's next target, not to the name's next address.

use crate::{CallControl, Transport};
use hickory_resolver::TokioResolver;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What a name is resolved for: the host (lower case), the URI's port if it has one, and the
/// transport (which SRV name to ask).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostKey {
    /// The host name, lower case, without a final dot.
    pub host: String,
    /// The URI's port; `None` asks SRV first.
    pub port: Option<u16>,
    /// The transport the URI names.
    pub transport: Transport,
}

/// One address of a name, with the SRV record's priority and weight (0 and 1 for a plain
/// A/AAAA address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// Where to send.
    pub addr: SocketAddr,
    /// Lower is preferred; only the lowest present is used.
    pub priority: u16,
    /// Share of the calls among addresses of the same priority.
    pub weight: u16,
}

impl Address {
    /// A plain A/AAAA address.
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            addr,
            priority: 0,
            weight: 1,
        }
    }
}

/// Picks an address: among the lowest priority, at random in proportion to the weights (all
/// alike when they are all 0). `roll` is a random number in `[0, 1)`.
fn pick(addrs: &[Address], roll: f64) -> Option<SocketAddr> {
    let best = addrs.iter().map(|a| a.priority).min()?;
    let group: Vec<&Address> = addrs.iter().filter(|a| a.priority == best).collect();
    let total: u32 = group.iter().map(|a| u32::from(a.weight)).sum();
    if total == 0 {
        let i = ((roll * group.len() as f64) as usize).min(group.len() - 1);
        return Some(group[i].addr);
    }
    let mut point = roll * f64::from(total);
    for a in &group {
        point -= f64::from(a.weight);
        if point < 0.0 {
            return Some(a.addr);
        }
    }
    group.last().map(|a| a.addr)
}

/// One resolved name.
#[derive(Debug)]
struct Entry {
    /// Its addresses.
    addrs: Vec<Address>,
    /// Looked up since the last refresh.
    used: AtomicBool,
}

/// The cache of resolved names the core reads and the resolver task writes.
#[derive(Debug, Default)]
pub struct Hosts {
    /// Resolved names.
    entries: RwLock<HashMap<HostKey, Entry>>,
    /// Names the core missed, for the resolver's next round.
    missed: Mutex<HashSet<HostKey>>,
    /// Wakes the resolver when a name is missed.
    wake: tokio::sync::Notify,
}

impl Hosts {
    /// The address to send to for `key`, or `None` (and the resolver is asked) when the name
    /// has not been resolved.
    pub fn lookup(&self, key: &HostKey) -> Option<SocketAddr> {
        if let Some(e) = self.entries.read().ok()?.get(key) {
            e.used.store(true, Ordering::Relaxed);
            return pick(&e.addrs, rand::random::<f64>());
        }
        if let Ok(mut missed) = self.missed.lock() {
            if missed.insert(key.clone()) {
                self.wake.notify_one();
            }
        }
        None
    }

    /// The addresses resolved for `key`, without counting it as used or asking for it.
    pub fn resolved(&self, key: &HostKey) -> Option<Vec<Address>> {
        self.entries.read().ok()?.get(key).map(|e| e.addrs.clone())
    }

    /// Records the addresses of `key` (tests, and the resolver).
    pub fn insert(&self, key: HostKey, addrs: Vec<Address>) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(
                key,
                Entry {
                    addrs,
                    used: AtomicBool::new(false),
                },
            );
        }
    }

    /// The names to resolve this round: the probe targets', the missed ones, and those looked
    /// up since the last round; the rest are forgotten.
    fn round(&self, probed: HashSet<HostKey>) -> Vec<HostKey> {
        let missed: Vec<HostKey> = self
            .missed
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default();
        let mut keep = probed;
        keep.extend(missed);
        if let Ok(mut entries) = self.entries.write() {
            for (k, e) in entries.iter() {
                if e.used.swap(false, Ordering::Relaxed) {
                    keep.insert(k.clone());
                }
            }
            entries.retain(|k, _| keep.contains(k));
        }
        keep.into_iter().collect()
    }
}

/// How the resolver task behaves.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// Nameservers to ask (UDP); the system's when empty.
    pub nameservers: Vec<SocketAddr>,
    /// How often every known name is resolved again.
    pub refresh: Duration,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            refresh: Duration::from_secs(30),
        }
    }
}

/// The name of `uri`'s host when it is a name rather than an IP address.
pub fn host_key(uri: &str) -> Option<HostKey> {
    let (host, port, transport) = crate::core::uri_parts(uri)?;
    if crate::core::parse_ip(host).is_some() {
        return None;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then_some(HostKey {
        host,
        port,
        transport,
    })
}

/// The addresses of one name, RFC 3263 style; empty when it has none.
async fn resolve(resolver: &TokioResolver, key: &HostKey) -> Result<Vec<Address>, String> {
    let name = format!("{}.", key.host);
    let plain = |found: Vec<SocketAddr>| found.into_iter().map(Address::plain).collect();
    if let Some(port) = key.port {
        return addresses(resolver, &name, port).await.map(plain);
    }
    let service = match key.transport {
        Transport::Udp => "_sip._udp.",
        Transport::Tcp => "_sip._tcp.",
    };
    let srv: Vec<(u16, u16, String, u16)> =
        match resolver.srv_lookup(format!("{service}{name}")).await {
            Ok(found) => found
                .iter()
                .map(|r| (r.priority(), r.weight(), r.target().to_ascii(), r.port()))
                .collect(),
            Err(_) => Vec::new(),
        };
    if srv.is_empty() {
        return addresses(resolver, &name, 5060).await.map(plain);
    }
    let mut all = Vec::new();
    let mut last_error = None;
    for (priority, weight, target, port) in srv {
        match addresses(resolver, &target, port).await {
            Ok(found) => all.extend(found.into_iter().map(|addr| Address {
                addr,
                priority,
                weight,
            })),
            Err(e) => last_error = Some(e),
        }
    }
    match (all.is_empty(), last_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(all),
    }
}

/// A and AAAA records of `name`, at `port`.
async fn addresses(
    resolver: &TokioResolver,
    name: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, String> {
    let found = resolver.lookup_ip(name).await.map_err(|e| e.to_string())?;
    Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

/// Resolves names into `hosts` until the runtime stops: a round at start, then one every
/// `settings.refresh` and whenever the core misses a name.
pub async fn run_resolver(
    hosts: Arc<Hosts>,
    control: Arc<dyn CallControl>,
    settings: ResolverSettings,
) {
    // Our own refresh decides how stale a name may get.
    let resolver = match callopt_egress::dns::resolver(
        &settings.nameservers,
        Duration::from_secs(2),
        settings.refresh,
        Duration::from_secs(5),
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "no DNS resolver: targets named by host name are unreachable");
            return;
        }
    };
    loop {
        let probed: HashSet<HostKey> = control
            .probe_targets()
            .iter()
            .filter_map(|(_, uri)| host_key(uri.as_str()))
            .collect();
        for key in hosts.round(probed) {
            match resolve(&resolver, &key).await {
                Ok(addrs) if !addrs.is_empty() => hosts.insert(key, addrs),
                Ok(_) => tracing::warn!(host = %key.host, "target host has no address"),
                Err(e) => {
                    tracing::warn!(host = %key.host, error = %e, "target host did not resolve")
                }
            }
        }
        tokio::select! {
            _ = hosts.wake.notified() => {}
            _ = tokio::time::sleep(settings.refresh) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str) -> HostKey {
        HostKey {
            host: host.into(),
            port: None,
            transport: Transport::Udp,
        }
    }

    #[test]
    fn names_are_keys_and_addresses_are_not() {
        assert_eq!(
            host_key("sip:a@PBX.Example.com."),
            Some(key("pbx.example.com"))
        );
        let k = host_key("sip:pbx.example.com:5070;transport=tcp").unwrap();
        assert_eq!((k.port, k.transport), (Some(5070), Transport::Tcp));
        assert_eq!(host_key("sip:a@10.0.0.5:5070"), None);
        assert_eq!(host_key("sip:a@[::1]"), None);
        assert_eq!(host_key("sip:a@bad_name"), None);
        assert_eq!(host_key("tel:+15550001111"), None);
    }

    #[test]
    fn a_miss_wakes_the_resolver_once_and_a_round_forgets_the_unused() {
        let hosts = Hosts::default();
        assert_eq!(hosts.lookup(&key("a.test")), None);
        assert_eq!(hosts.lookup(&key("a.test")), None);
        assert_eq!(hosts.missed.lock().unwrap().len(), 1);
        let round = hosts.round(HashSet::new());
        assert_eq!(round, vec![key("a.test")]);
        let addr: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        hosts.insert(key("a.test"), vec![Address::plain(addr)]);
        hosts.insert(key("b.test"), vec![Address::plain(addr)]);
        assert_eq!(hosts.lookup(&key("a.test")), Some(addr));
        // a.test was used, c.test is probed, b.test is neither: forgotten.
        let mut round = hosts.round([key("c.test")].into_iter().collect());
        round.sort_by(|x, y| x.host.cmp(&y.host));
        assert_eq!(round, vec![key("a.test"), key("c.test")]);
        assert_eq!(hosts.entries.read().unwrap().len(), 1);
        // Unused through a whole round: forgotten too.
        assert!(hosts.round(HashSet::new()).is_empty());
        assert!(hosts.entries.read().unwrap().is_empty());
    }

    #[test]
    fn the_lowest_priority_is_used_and_shared_by_weight() {
        let at = |port: u16, priority, weight| Address {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            priority,
            weight,
        };
        let addrs = [at(1, 10, 90), at(2, 10, 10), at(3, 5, 0), at(4, 5, 0)];
        // Priority 5 wins; its weights are all 0, so it is split evenly.
        assert_eq!(pick(&addrs, 0.0).unwrap().port(), 3);
        assert_eq!(pick(&addrs, 0.99).unwrap().port(), 4);
        let weighted = [at(1, 10, 90), at(2, 10, 10)];
        assert_eq!(pick(&weighted, 0.0).unwrap().port(), 1);
        assert_eq!(pick(&weighted, 0.899).unwrap().port(), 1);
        assert_eq!(pick(&weighted, 0.9).unwrap().port(), 2);
        assert_eq!(pick(&weighted, 0.999_999).unwrap().port(), 2);
        assert_eq!(pick(&[], 0.5), None);
        // Over many calls the shares follow the weights.
        let firsts = (0..10_000)
            .filter(|i| pick(&weighted, f64::from(*i) / 10_000.0).unwrap().port() == 1)
            .count();
        assert_eq!(firsts, 9_000);
    }
}
