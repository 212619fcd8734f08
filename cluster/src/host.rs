//! Upstream hosts and the immutable sets load balancers choose from.
//!
//! A [`Host`] is built once from config and shared (`Arc`) by its cluster,
//! every subset it belongs to, the load balancers and the connection pools.
//! Its identity, weight and metadata never change; what does change at run
//! time lives in atomics: the counters in [`HostStats`] (pools write them,
//! least-request/least-connection read them) and the [`HostHealth`] (flags
//! set by health checks and outlier detection; every balancer skips a host
//! with any flag set, see [`crate::lb`]). Reads on the request path are
//! single relaxed loads.
//!
//! Building hosts from `hosts[]` config (address parsing, weight clamping,
//! metadata) is here too, for the manager's build.

use crate::HostStats;
use crate::cluster::Cluster;
use crate::config::HostConfig;
use crate::error::{ConfigIssue, Issues};
use crate::health::HostHealth;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Why a host is considered unhealthy. A host is healthy when no flag is set,
/// so independent sources (active checks, passive outlier detection) can
/// mark and clear it without undoing each other, as MOSN's health flags do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthFlag {
    /// An active health check failed past its threshold.
    FailedActiveCheck,
    /// Passive outlier detection ejected the host.
    FailedOutlierCheck,
}

impl HealthFlag {
    pub(crate) const fn bit(self) -> u32 {
        match self {
            HealthFlag::FailedActiveCheck => 1,
            HealthFlag::FailedOutlierCheck => 1 << 1,
        }
    }
}

/// One upstream endpoint of a cluster.
pub struct Host {
    address: SocketAddr,
    address_text: String,
    hostname: String,
    weight: u32,
    metadata: BTreeMap<String, String>,
    tls_disable: bool,
    stats: Arc<HostStats>,
    health: Arc<HostHealth>,
}

impl Host {
    /// Weight MOSN gives a host that sets none (and the lowest it accepts).
    pub const MIN_WEIGHT: u32 = 1;
    /// Highest weight MOSN accepts; larger values are clamped to it.
    pub const MAX_WEIGHT: u32 = 128;

    /// A healthy host with weight 1, no metadata and fresh counters; the
    /// `with_*` methods fill in the rest. Config goes through
    /// [`crate::ClusterManager::build`]; this is for tests and tools.
    pub fn new(address: SocketAddr) -> Host {
        Host {
            address,
            address_text: address.to_string(),
            hostname: String::new(),
            weight: Self::MIN_WEIGHT,
            metadata: BTreeMap::new(),
            tls_disable: false,
            stats: Arc::default(),
            health: Arc::default(),
        }
    }

    /// Sets the weight, clamped into `MIN_WEIGHT..=MAX_WEIGHT` as MOSN does.
    pub fn with_weight(mut self, weight: u32) -> Host {
        self.weight = weight.clamp(Self::MIN_WEIGHT, Self::MAX_WEIGHT);
        self
    }

    /// Sets the metadata (`mosn.lb` labels).
    pub fn with_metadata(mut self, metadata: BTreeMap<String, String>) -> Host {
        self.metadata = metadata;
        self
    }

    /// Sets the label shown in logs.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Host {
        self.hostname = hostname.into();
        self
    }

    /// Keeps the address as the config wrote it (it may be a DNS name).
    pub(crate) fn with_address_text(mut self, text: String) -> Host {
        self.address_text = text;
        self
    }

    pub(crate) fn with_tls_disable(mut self, tls_disable: bool) -> Host {
        self.tls_disable = tls_disable;
        self
    }

    /// Shares counters and health with the same host of a previous build,
    /// so a reload does not reset what pools, balancers and health checks
    /// see.
    pub(crate) fn carry_over(mut self, previous: &Host) -> Host {
        self.stats = Arc::clone(&previous.stats);
        self.health = Arc::clone(&previous.health);
        self
    }

    /// Where to connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address as written in the config (`ip:port` or `name:port`).
    pub fn address_text(&self) -> &str {
        &self.address_text
    }

    /// The config's `hostname` label (may be empty).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Load balancing weight, in `MIN_WEIGHT..=MAX_WEIGHT`.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The host's `mosn.lb` labels.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The config's `tls_disable`.
    pub fn tls_disable(&self) -> bool {
        self.tls_disable
    }

    /// Live counters, shared with the connection pool of this host.
    pub fn stats(&self) -> &Arc<HostStats> {
        &self.stats
    }

    /// True when no health flag is set. Balancers skip unhealthy hosts
    /// unless the panic threshold says otherwise ([`crate::lb`]).
    pub fn is_healthy(&self) -> bool {
        self.health.is_healthy()
    }

    /// Whether `flag` is set.
    pub fn has_health_flag(&self, flag: HealthFlag) -> bool {
        self.health.has(flag.bit())
    }

    /// Marks the host unhealthy for `flag`'s reason.
    pub fn set_health_flag(&self, flag: HealthFlag) {
        self.health.set(flag.bit());
    }

    /// Clears `flag`; the host is healthy again once no flag is left.
    pub fn clear_health_flag(&self, flag: HealthFlag) {
        self.health.clear(flag.bit());
    }

    /// Health state and counters, shared with previous builds of the host.
    pub fn health(&self) -> &HostHealth {
        &self.health
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("address", &self.address_text)
            .field("weight", &self.weight)
            .field("metadata", &self.metadata)
            .field("healthy", &self.is_healthy())
            .finish_non_exhaustive()
    }
}

/// An ordered, immutable list of hosts: a cluster's, or one subset's.
/// Cloning is a reference-count increment.
#[derive(Clone, Default)]
pub struct HostSet {
    hosts: Arc<[Arc<Host>]>,
}

impl HostSet {
    /// A set of these hosts, in this order.
    pub fn new(hosts: Vec<Arc<Host>>) -> HostSet {
        HostSet {
            hosts: hosts.into(),
        }
    }

    /// The hosts, in config order.
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when there is no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The hosts for which `keep` is true, in the same order.
    pub fn filter(&self, mut keep: impl FnMut(&Host) -> bool) -> HostSet {
        HostSet::new(self.hosts.iter().filter(|h| keep(h)).cloned().collect())
    }

    /// True when every host has the same weight (balancers then skip the
    /// weighted machinery, as MOSN's EDF balancer does).
    pub fn weights_are_equal(&self) -> bool {
        self.hosts.windows(2).all(|w| w[0].weight == w[1].weight)
    }
}

impl fmt::Debug for HostSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.hosts.iter().map(|h| &h.address_text))
            .finish()
    }
}

/// The hosts of one cluster config; problems go to `issues` with paths
/// under `path`. Hosts of `previous` with the same address lend their
/// counters and health ([`Host::carry_over`]).
pub(crate) fn build_hosts(
    configs: &[HostConfig],
    path: &str,
    previous: Option<&Cluster>,
    issues: &mut Issues,
) -> Vec<Arc<Host>> {
    if configs.is_empty() {
        issues.warn(
            ConfigIssue::new(format!("{path}.hosts"), "the cluster has no hosts")
                .hint("every request routed to it will fail with \"no healthy upstream\""),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut hosts = Vec::with_capacity(configs.len());
    for (j, hc) in configs.iter().enumerate() {
        let hpath = format!("{path}.hosts[{j}]");
        let repeated = seen
            .insert(&hc.address, j)
            .filter(|_| !hc.address.is_empty());
        if let Some(first) = repeated {
            issues.warn(ConfigIssue::new(
                format!("{hpath}.address"),
                format!("same address as hosts[{first}]: the host gets a double share"),
            ));
        }
        let address = match parse_address(&hc.address) {
            Ok(a) => a,
            Err(issue) => {
                issues.error(ConfigIssue {
                    path: format!("{hpath}.address"),
                    ..issue
                });
                continue;
            }
        };
        if hc.weight > Host::MAX_WEIGHT {
            issues.warn(ConfigIssue::new(
                format!("{hpath}.weight"),
                format!(
                    "weight {} is above MOSN's maximum; using {}",
                    hc.weight,
                    Host::MAX_WEIGHT
                ),
            ));
        }
        let mut host = Host::new(address)
            .with_address_text(hc.address.clone())
            .with_hostname(hc.hostname.clone())
            .with_weight(hc.weight)
            .with_metadata(host_metadata(hc, &hpath, issues))
            .with_tls_disable(hc.tls_disable);
        let old = previous.and_then(|p| {
            p.hosts()
                .hosts()
                .iter()
                .find(|h| h.address_text() == hc.address)
        });
        if let Some(old) = old {
            host = host.carry_over(old);
        }
        hosts.push(Arc::new(host));
    }
    hosts
}

/// `ip:port`, `[v6]:port`, or `name:port` resolved now (as MOSN's
/// `net.ResolveTCPAddr` does).
fn parse_address(text: &str) -> Result<SocketAddr, ConfigIssue> {
    let example = "write ip:port, such as 127.0.0.1:12200 ([::1]:12200 for IPv6)";
    let fail = |message: String| Err(ConfigIssue::new("", message).hint(example));
    if text.is_empty() {
        return fail("a host needs an address".into());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return fail(format!("port 0 in {text:?} cannot be connected to"));
        }
        return Ok(addr);
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        // "::1:8080" is a whole IPv6 address; the port may have been meant.
        let hint = match text.rsplit_once(':') {
            Some((ip, port)) if ip.parse::<Ipv6Addr>().is_ok() && !port.is_empty() => {
                format!("if {port} is the port, write [{ip}]:{port}")
            }
            _ => "write [address]:port, such as [::1]:12200".to_owned(),
        };
        return Err(ConfigIssue::new(
            "",
            format!("no port in {text:?}: an IPv6 address with a port needs brackets"),
        )
        .hint(hint));
    }
    let Some((name, port)) = text
        .rsplit_once(':')
        .filter(|_| text.parse::<IpAddr>().is_err())
    else {
        return fail(format!("no port in {text:?}"));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return fail(format!("{port:?} is not a port (1 to 65535)"));
    }
    match text.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => fail(format!("{name:?} resolves to no address")),
        Err(e) => Err(
            ConfigIssue::new("", format!("cannot resolve {name:?}: {e}"))
                .hint("use an IP address, or a name this machine can resolve"),
        ),
    }
}

/// The string values of `filter_metadata."mosn.lb"`; MOSN drops the others
/// silently, we drop them with a warning.
fn host_metadata(hc: &HostConfig, hpath: &str, issues: &mut Issues) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let Some(md) = &hc.metadata else {
        return labels;
    };
    for (key, value) in &md.filter_metadata.mosn_lb {
        match value.as_str() {
            Some(s) => {
                labels.insert(key.clone(), s.to_owned());
            }
            None => issues.warn(
                ConfigIssue::new(
                    format!("{hpath}.metadata.filter_metadata[\"mosn.lb\"].{key}"),
                    format!("metadata value {value} is not a string; ignored, as MOSN does"),
                )
                .hint(format!(
                    "quote it: \"{key}\": \"{}\"",
                    value.to_string().trim_matches('"')
                )),
            ),
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(port: u16) -> Host {
        Host::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn health_flags_are_independent() {
        let h = host(1);
        assert!(h.is_healthy());
        h.set_health_flag(HealthFlag::FailedActiveCheck);
        h.set_health_flag(HealthFlag::FailedOutlierCheck);
        h.clear_health_flag(HealthFlag::FailedActiveCheck);
        assert!(!h.is_healthy());
        assert!(h.has_health_flag(HealthFlag::FailedOutlierCheck));
        h.clear_health_flag(HealthFlag::FailedOutlierCheck);
        assert!(h.is_healthy());
    }

    #[test]
    fn weight_is_clamped_like_mosn() {
        assert_eq!(host(1).with_weight(0).weight(), 1);
        assert_eq!(host(1).with_weight(500).weight(), 128);
        assert_eq!(host(1).with_weight(7).weight(), 7);
    }

    #[test]
    fn carry_over_shares_stats_and_health() {
        let old = host(1);
        old.set_health_flag(HealthFlag::FailedActiveCheck);
        let new = host(1).carry_over(&old);
        assert!(Arc::ptr_eq(new.stats(), old.stats()));
        assert!(!new.is_healthy());
        old.clear_health_flag(HealthFlag::FailedActiveCheck);
        assert!(new.is_healthy(), "one health state for every build");
    }

    #[test]
    fn addresses_parse_the_way_hosts_are_written() {
        assert_eq!(parse_address("127.0.0.1:80").unwrap().port(), 80);
        assert!(parse_address("[::1]:8080").unwrap().is_ipv6());
        assert!(parse_address("localhost:8080").is_ok());
        for bad in [
            "",
            "127.0.0.1",
            "::1",
            "::1:80",
            "127.0.0.1:0",
            "host:http",
            "1.2.3.4:70000",
        ] {
            let issue = parse_address(bad).unwrap_err();
            assert!(issue.hint.is_some(), "{bad:?}: {issue}");
        }
    }
}
