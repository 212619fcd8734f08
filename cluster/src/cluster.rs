//! One upstream cluster, as built from config: its settings as plain values,
//! its hosts, its balancer and, when configured, its subsets.
//!
//! A `Cluster` never changes after it is built. Host health and load change
//! through the hosts' atomics; anything else (hosts added or removed, new
//! settings) means a new `Cluster` in a new [`crate::ClusterManager`], which
//! the gateway swaps in whole on reload while in-flight requests keep their
//! `Arc`s to the old one.

use crate::breaker::{CircuitBreaker, RetryBudget};
use crate::health::HealthCheckSettings;
use crate::host::{Host, HostSet};
use crate::lb::{DEFAULT_PANIC_THRESHOLD, LbContext, LbOptions, LbType, LoadBalancer};
use crate::outlier::{AttemptOutcome, OutlierDetector, OutlierSettings};
use crate::subset::{SubsetSettings, Subsets};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a cluster finds its hosts (MOSN `type`). Only static host lists are
/// served today; the discovery types that need a resolver or a control
/// plane (`EDS`, `STRICT_DNS`, `ORIGINAL_DST`) are refused at build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClusterType {
    /// `SIMPLE`: MOSN's basic cluster, hosts from config (the default).
    Simple,
    /// `STATIC`: the same as `SIMPLE` in MOSN.
    Static,
    /// `DYNAMIC`: in MOSN, hosts pushed by a service registry; here only
    /// the configured hosts are used.
    Dynamic,
}

impl ClusterType {
    /// The config name.
    pub const fn mosn_name(self) -> &'static str {
        match self {
            ClusterType::Simple => "SIMPLE",
            ClusterType::Static => "STATIC",
            ClusterType::Dynamic => "DYNAMIC",
        }
    }
}

/// Circuit-breaker limits (MOSN's first `circuit_breakers` entry); `None`
/// is "not set" (MOSN's 0), which takes MOSN's default (see
/// [`crate::CircuitBreaker`]). Enforced by the cluster's breaker.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CircuitBreakerLimits {
    /// Open connections to the cluster's hosts.
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection.
    pub max_pending_requests: Option<u32>,
    /// Requests in flight to the cluster.
    pub max_requests: Option<u32>,
    /// Retries in flight to the cluster; unset: only the retry budget
    /// bounds them.
    pub max_retries: Option<u32>,
    /// The retry budget; unset: [`RetryBudget::DEFAULT`].
    pub retry_budget: Option<RetryBudget>,
}

/// A cluster's validated settings, MOSN defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// Discovery type.
    pub cluster_type: ClusterType,
    /// Balancer used for the cluster and each of its subsets.
    pub lb_type: LbType,
    /// Least-request/least-connection tuning.
    pub lb_options: LbOptions,
    /// Upstream connect timeout (MOSN's default: 10 s).
    pub connect_timeout: Duration,
    /// Close upstream connections idle this long; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Requests per upstream connection before it is replaced (default 1024).
    pub max_request_per_conn: u32,
    /// Per-connection buffer limit in bytes (default 16 KiB).
    pub conn_buffer_limit_bytes: u32,
    /// Circuit-breaker limits.
    pub circuit_breakers: CircuitBreakerLimits,
    /// Subset load balancing, when `subset_selectors` is not empty.
    pub subset: Option<SubsetSettings>,
    /// Active health checking, when configured ([`crate::health`]).
    pub health_check: Option<HealthCheckSettings>,
    /// Passive outlier detection, when configured ([`crate::outlier`]).
    pub outlier_detection: Option<OutlierSettings>,
    /// Below this share of healthy hosts (percent) a set's balancer
    /// ignores health (Envoy's panic threshold; default 50, 0 = never).
    pub healthy_panic_threshold: u32,
    /// MOSN's `cluster_pool_enable`: pools of its own for this cluster.
    pub cluster_pool_enable: bool,
    /// Connections a multiplexed pool keeps per host (meshgate extension,
    /// `connections_per_host`; default 1).
    pub connections_per_host: u32,
}

impl ClusterSettings {
    /// MOSN's connect timeout when none is set (`network.DefaultConnectTimeout`).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// MOSN's `max_request_per_conn` when 0.
    pub const DEFAULT_MAX_REQUEST_PER_CONN: u32 = 1024;
    /// MOSN's `conn_buffer_limit_bytes` when 0.
    pub const DEFAULT_CONN_BUFFER_LIMIT_BYTES: u32 = 16 * 1024;
}

impl Default for ClusterSettings {
    /// What an empty MOSN cluster config means.
    fn default() -> Self {
        ClusterSettings {
            cluster_type: ClusterType::Simple,
            lb_type: LbType::RoundRobin,
            lb_options: LbOptions::default(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: None,
            max_request_per_conn: Self::DEFAULT_MAX_REQUEST_PER_CONN,
            conn_buffer_limit_bytes: Self::DEFAULT_CONN_BUFFER_LIMIT_BYTES,
            circuit_breakers: CircuitBreakerLimits::default(),
            subset: None,
            health_check: None,
            outlier_detection: None,
            healthy_panic_threshold: DEFAULT_PANIC_THRESHOLD,
            cluster_pool_enable: false,
            connections_per_host: 1,
        }
    }
}

/// One upstream cluster.
pub struct Cluster {
    name: String,
    settings: ClusterSettings,
    lb: Box<dyn LoadBalancer>,
    subsets: Option<Subsets>,
    outlier: Option<OutlierDetector>,
    breaker: Arc<CircuitBreaker>,
}

impl Cluster {
    /// Builds the balancer (and subsets) for `hosts` under `settings`.
    /// Config goes through [`crate::ClusterManager::build`], which validates
    /// first; this is the direct way for tests and tools.
    pub fn new(name: impl Into<String>, settings: ClusterSettings, hosts: HostSet) -> Cluster {
        let subsets = settings
            .subset
            .as_ref()
            .map(|s| Subsets::build(&hosts, s, settings.lb_type, &settings.lb_options));
        let lb = settings.lb_type.build(hosts, &settings.lb_options);
        let outlier = settings.outlier_detection.map(OutlierDetector::new);
        let breaker = CircuitBreaker::new(&settings.circuit_breakers);
        Cluster {
            name: name.into(),
            settings,
            lb,
            subsets,
            outlier,
            breaker,
        }
    }

    /// Takes over `previous`'s circuit breaker (the same cluster before a
    /// reload) with this cluster's limits, so requests and connections
    /// counted before the reload stay counted.
    pub(crate) fn keep_breaker_of(&mut self, previous: &Cluster) {
        previous.breaker.set_limits(&self.settings.circuit_breakers);
        self.breaker = Arc::clone(&previous.breaker);
    }

    /// The cluster's circuit breaker: the proxy takes a request permit per
    /// request and a retry permit per retry; the pools take connection and
    /// pending-request permits.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// True when its balancer places requests by [`LbContext::hash_key`],
    /// so a caller computes the key only then.
    pub fn uses_hash_key(&self) -> bool {
        self.settings.lb_type.uses_hash_key()
    }

    /// All its hosts, in config order.
    pub fn hosts(&self) -> &HostSet {
        self.lb.hosts()
    }

    /// The host for one request (or one retry of it), by the cluster's
    /// balancer and subsets; `None` when no host can serve it (an empty
    /// cluster, or no subset match under `NoFallback`): answer with "no
    /// healthy upstream". Lock-free. See [`crate::lb`] for how unhealthy and
    /// already-tried hosts are avoided.
    pub fn choose_host(&self, cx: &LbContext<'_>) -> Option<Arc<Host>> {
        let panic_threshold = self.settings.healthy_panic_threshold;
        match &self.subsets {
            Some(subsets) => subsets.choose(cx, &*self.lb, panic_threshold),
            None => self.lb.choose_with_panic_threshold(cx, panic_threshold),
        }
    }

    /// Tells outlier detection how one attempt on `host` ended (a no-op
    /// when the cluster has none). Lock-free unless it ejects the host.
    pub fn report_outcome(&self, host: &Host, outcome: AttemptOutcome) {
        if let Some(detector) = &self.outlier {
            detector.report(&self.name, self.hosts(), host, outcome);
        }
    }

    pub(crate) fn outlier_detector(&self) -> Option<&OutlierDetector> {
        self.outlier.as_ref()
    }

    /// The hosts of the subset whose labels are exactly `metadata`, when
    /// subsets are enabled and one matches.
    pub fn subset_hosts(&self, metadata: &BTreeMap<String, String>) -> Option<&HostSet> {
        self.subsets.as_ref()?.hosts_for(metadata)
    }

    /// Every subset's labels and hosts (none when subsets are off).
    pub fn subsets(&self) -> impl Iterator<Item = (&[(String, String)], &HostSet)> {
        self.subsets.iter().flat_map(Subsets::iter)
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("lb_type", &self.settings.lb_type)
            .field("hosts", self.hosts())
            .field("subsets", &self.subsets().count())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subset::FallbackPolicy;
    use std::net::SocketAddr;

    #[test]
    fn a_cluster_without_hosts_chooses_nothing() {
        let c = Cluster::new("empty", ClusterSettings::default(), HostSet::default());
        assert!(c.choose_host(&LbContext::default()).is_none());
    }

    #[test]
    fn subsets_are_built_with_the_cluster() {
        let labels = BTreeMap::from([("v".to_string(), "1".to_string())]);
        let host = Host::new(SocketAddr::from(([127, 0, 0, 1], 1))).with_metadata(labels.clone());
        let settings = ClusterSettings {
            subset: Some(SubsetSettings {
                fallback_policy: FallbackPolicy::NoFallback,
                default_subset: BTreeMap::new(),
                selectors: vec![vec!["v".into()]],
            }),
            ..ClusterSettings::default()
        };
        let c = Cluster::new("c", settings, HostSet::new(vec![Arc::new(host)]));
        assert_eq!(c.subsets().count(), 1);
        assert_eq!(c.subset_hosts(&labels).map(HostSet::len), Some(1));
        let cx = LbContext {
            metadata_match: Some(&labels),
            ..LbContext::default()
        };
        assert!(c.choose_host(&cx).is_some());
        assert!(c.choose_host(&LbContext::default()).is_none());
    }
}
