//! Load balancers: which host of a set serves the next request.
//!
//! A balancer is built for one immutable [`HostSet`] (a cluster's or a
//! subset's) and is rebuilt with it, so anything derived from the hosts (a
//! weighted schedule, a maglev table) is computed once, off the request
//! path. Choosing takes no lock: counters are atomics, randomness is
//! thread-local, host health and load are relaxed atomic loads.
//!
//! The balancer sees an [`LbContext`] (hash key, subset metadata, hosts
//! already tried by this request) and nothing else: never the downstream
//! connection, never the route. That keeps it testable alone and keeps
//! `cluster` ignorant of routing (STYLE §1).
//!
//! # Which hosts are eligible
//!
//! [`LoadBalancer::choose`] first decides whether the set is in **panic**
//! (Envoy's healthy panic threshold): when fewer than
//! `healthy_panic_threshold` percent of its hosts are healthy (default 50),
//! health is ignored and traffic spreads over every host. Health checks and
//! outlier detection can be wrong, and a few healthy hosts taking the whole
//! load of a cluster is how an outage cascades; an upstream that answers is
//! better than a certain error. A threshold of 0 turns panic off: with no
//! healthy host left, there is no host ("no healthy upstream").
//!
//! It then asks the algorithm for a host in up to two passes, the second
//! accepting more than the first, and returns the first answer:
//!
//! - not in panic: (1) healthy and not yet tried by this request (a retry
//!   goes elsewhere), (2) healthy, even if tried (every healthy host failed
//!   once already: try one again);
//! - in panic: (1) not tried, health ignored, (2) any host.
//!
//! With no hosts tried, the two passes coincide and run once. Deciding panic
//! reads each host's health once (a relaxed load per host per pick).

mod least_connection;
mod least_request;
mod maglev;
mod random;
mod round_robin;
mod weighted_round_robin;

use crate::host::{Host, HostSet};
use rand::Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a balancer may know about the request it places.
#[derive(Debug, Clone, Copy, Default)]
pub struct LbContext<'a> {
    /// Consistent-hash key from the route's hash policy (`LB_MAGLEV`).
    pub hash_key: Option<u64>,
    /// The route's `metadata_match` (`mosn.lb` labels), used by subsets.
    pub metadata_match: Option<&'a BTreeMap<String, String>>,
    /// Hosts this request already went to; avoided while others are left.
    pub tried: &'a [Arc<Host>],
}

/// Which hosts one pass of [`LoadBalancer::choose`] accepts (see the module
/// docs for the passes).
#[derive(Debug, Clone, Copy)]
pub struct HostFilter<'a> {
    tried: &'a [Arc<Host>],
    healthy_only: bool,
    untried_only: bool,
}

impl<'a> HostFilter<'a> {
    /// Accepts every host.
    pub fn any() -> HostFilter<'static> {
        HostFilter {
            tried: &[],
            healthy_only: false,
            untried_only: false,
        }
    }

    /// Whether `host` may be picked in this pass.
    pub fn accepts(&self, host: &Arc<Host>) -> bool {
        (!self.healthy_only || host.is_healthy())
            && !(self.untried_only && self.tried.iter().any(|t| Arc::ptr_eq(t, host)))
    }

    /// The passes, strictest first; `panic` ignores health.
    fn passes(tried: &'a [Arc<Host>], panic: bool) -> impl Iterator<Item = HostFilter<'a>> {
        let pass = |untried_only| HostFilter {
            tried,
            healthy_only: !panic,
            untried_only,
        };
        // Without tried hosts, "untried" filters nothing: one pass does.
        let first = usize::from(tried.is_empty());
        [pass(true), pass(false)].into_iter().skip(first)
    }
}

/// Envoy's default `healthy_panic_threshold`, in percent.
pub const DEFAULT_PANIC_THRESHOLD: u32 = 50;

/// Whether `hosts` is in panic under `threshold_percent`: fewer than that
/// share of its hosts are healthy. Never with a threshold of 0.
pub fn in_panic(hosts: &HostSet, threshold_percent: u32) -> bool {
    if threshold_percent == 0 || hosts.is_empty() {
        return false;
    }
    let healthy = hosts.hosts().iter().filter(|h| h.is_healthy()).count() as u64;
    healthy * 100 < u64::from(threshold_percent.min(100)) * hosts.len() as u64
}

/// A load balancing algorithm over one fixed set of hosts.
pub trait LoadBalancer: Send + Sync + fmt::Debug {
    /// The hosts this balancer was built for.
    fn hosts(&self) -> &HostSet;

    /// One pick among the hosts `filter` accepts, by this algorithm; `None`
    /// when it accepts none. Must not loop more than a few times over the
    /// hosts when few or none are accepted.
    fn pick(&self, cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>>;

    /// The host for this request under the default panic threshold.
    fn choose(&self, cx: &LbContext<'_>) -> Option<Arc<Host>> {
        self.choose_with_panic_threshold(cx, DEFAULT_PANIC_THRESHOLD)
    }

    /// The host for this request: [`pick`](Self::pick) over the passes of
    /// the module docs, in panic when fewer than `threshold_percent` of the
    /// hosts are healthy. `None` when there is no host at all, or none
    /// healthy with panic off (threshold 0).
    fn choose_with_panic_threshold(
        &self,
        cx: &LbContext<'_>,
        threshold_percent: u32,
    ) -> Option<Arc<Host>> {
        if self.hosts().is_empty() {
            return None;
        }
        let panic = in_panic(self.hosts(), threshold_percent);
        HostFilter::passes(cx.tried, panic).find_map(|filter| self.pick(cx, filter))
    }
}

/// The balancers, by their MOSN `lb_type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbType {
    /// `LB_ROUNDROBIN`: hosts in turn, weights ignored (MOSN's default).
    RoundRobin,
    /// `LB_WEIGHTED_ROUNDROBIN`: in turn, in proportion to weights.
    WeightedRoundRobin,
    /// `LB_RANDOM`: uniformly at random, weights ignored.
    Random,
    /// `LB_LEAST_REQUEST`: fewest active requests among random choices.
    LeastRequest,
    /// `LB_LEAST_CONNECTION`: fewest active connections among random choices.
    LeastConnection,
    /// `LB_MAGLEV`: consistent hashing on the request's hash key.
    Maglev,
    /// `LB_REQUEST_ROUNDROBIN`: each request walks the hosts from the first,
    /// each retry taking the next.
    RequestRoundRobin,
}

impl LbType {
    /// Every balancer, in the order error messages list them.
    pub const ALL: [LbType; 7] = [
        LbType::RoundRobin,
        LbType::WeightedRoundRobin,
        LbType::Random,
        LbType::LeastRequest,
        LbType::LeastConnection,
        LbType::Maglev,
        LbType::RequestRoundRobin,
    ];

    /// True when the balancer places requests by [`LbContext::hash_key`]:
    /// the proxy computes the key only then.
    pub fn uses_hash_key(self) -> bool {
        matches!(self, LbType::Maglev)
    }

    /// The config name.
    pub const fn mosn_name(self) -> &'static str {
        match self {
            LbType::RoundRobin => "LB_ROUNDROBIN",
            LbType::WeightedRoundRobin => "LB_WEIGHTED_ROUNDROBIN",
            LbType::Random => "LB_RANDOM",
            LbType::LeastRequest => "LB_LEAST_REQUEST",
            LbType::LeastConnection => "LB_LEAST_CONNECTION",
            LbType::Maglev => "LB_MAGLEV",
            LbType::RequestRoundRobin => "LB_REQUEST_ROUNDROBIN",
        }
    }

    /// Reads a config name; an empty one is MOSN's default, round robin.
    pub fn from_mosn_name(name: &str) -> Option<LbType> {
        if name.is_empty() {
            return Some(LbType::RoundRobin);
        }
        LbType::ALL.into_iter().find(|t| t.mosn_name() == name)
    }

    /// A balancer of this type over `hosts`.
    pub fn build(self, hosts: HostSet, options: &LbOptions) -> Box<dyn LoadBalancer> {
        match self {
            LbType::RoundRobin => Box::new(round_robin::RoundRobin::new(hosts)),
            LbType::RequestRoundRobin => Box::new(round_robin::RequestRoundRobin::new(hosts)),
            LbType::WeightedRoundRobin => {
                Box::new(weighted_round_robin::WeightedRoundRobin::new(hosts))
            }
            LbType::Random => Box::new(random::Random::new(hosts)),
            LbType::LeastRequest => Box::new(least_request::LeastRequest::new(hosts, options)),
            LbType::LeastConnection => Box::new(least_connection::least_connection(hosts, options)),
            LbType::Maglev => Box::new(maglev::Maglev::new(hosts)),
        }
    }
}

impl fmt::Display for LbType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mosn_name())
    }
}

/// Tuning of the least-request and least-connection balancers (MOSN
/// `lbconfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbOptions {
    /// Random candidates compared per pick (2: "power of two choices").
    pub choice_count: u32,
    /// How hard load lowers a weight: `weight / (load + 1) ^ bias`.
    pub active_request_bias: f64,
}

impl Default for LbOptions {
    fn default() -> Self {
        LbOptions {
            choice_count: 2,
            active_request_bias: 1.0,
        }
    }
}

/// Prefix sums of host weights, for picking an index in proportion to
/// weight with one random number and a binary search.
#[derive(Debug)]
pub(crate) struct WeightTable {
    cumulative: Box<[u64]>,
}

impl WeightTable {
    pub(crate) fn new(hosts: &HostSet) -> WeightTable {
        let mut sum = 0;
        let cumulative = hosts
            .hosts()
            .iter()
            .map(|h| {
                sum += u64::from(h.weight());
                sum
            })
            .collect();
        WeightTable { cumulative }
    }

    /// A host index drawn in proportion to weight.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let r = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// A uniformly random host among those `filter` accepts.
pub(crate) fn random_accepted(hosts: &[Arc<Host>], filter: HostFilter<'_>) -> Option<Arc<Host>> {
    let count = hosts.iter().filter(|h| filter.accepts(h)).count();
    if count == 0 {
        return None;
    }
    let k = rand::rng().random_range(0..count);
    hosts.iter().filter(|h| filter.accepts(h)).nth(k).cloned()
}

/// A random host among those `filter` accepts, in proportion to weight.
pub(crate) fn weighted_random_accepted(
    hosts: &[Arc<Host>],
    filter: HostFilter<'_>,
) -> Option<Arc<Host>> {
    let total: u64 = hosts
        .iter()
        .filter(|h| filter.accepts(h))
        .map(|h| u64::from(h.weight()))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rand::rng().random_range(0..total);
    for host in hosts.iter().filter(|h| filter.accepts(h)) {
        let w = u64::from(host.weight());
        if r < w {
            return Some(Arc::clone(host));
        }
        r -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn hosts(n: u16) -> Vec<Arc<Host>> {
        (0..n)
            .map(|i| Arc::new(Host::new(SocketAddr::from(([127, 0, 0, 1], 1000 + i)))))
            .collect()
    }

    #[test]
    fn passes_skip_untried_filters_when_nothing_was_tried() {
        let flags: Vec<_> = HostFilter::passes(&[], false)
            .map(|f| (f.healthy_only, f.untried_only))
            .collect();
        assert_eq!(flags, [(true, false)]);
        let tried = hosts(1);
        let flags: Vec<_> = HostFilter::passes(&tried, true)
            .map(|f| (f.healthy_only, f.untried_only))
            .collect();
        assert_eq!(flags, [(false, true), (false, false)]);
    }

    #[test]
    fn panic_starts_below_the_threshold_share_of_healthy_hosts() {
        let set = HostSet::new(hosts(4));
        assert!(!in_panic(&set, 50));
        set.hosts()[0].set_health_flag(crate::HealthFlag::FailedActiveCheck);
        set.hosts()[1].set_health_flag(crate::HealthFlag::FailedOutlierCheck);
        assert!(!in_panic(&set, 50), "2 of 4 healthy is exactly 50%");
        assert!(in_panic(&set, 51));
        set.hosts()[2].set_health_flag(crate::HealthFlag::FailedActiveCheck);
        assert!(in_panic(&set, 50));
        assert!(!in_panic(&set, 0), "0 turns panic off");
        assert!(in_panic(&set, 500), "over 100 reads as 100");
    }

    #[test]
    fn filter_compares_tried_hosts_by_identity() {
        let hs = hosts(2);
        let twin = Arc::new(Host::new(hs[0].address()));
        let tried = [twin];
        let f = HostFilter::passes(&tried, false).next().unwrap();
        assert!(f.accepts(&hs[0]), "an equal address is not the same host");
        let tried = [Arc::clone(&hs[0])];
        let f = HostFilter::passes(&tried, false).next().unwrap();
        assert!(!f.accepts(&hs[0]));
        assert!(f.accepts(&hs[1]));
    }

    #[test]
    fn lb_type_names_round_trip() {
        for t in LbType::ALL {
            assert_eq!(LbType::from_mosn_name(t.mosn_name()), Some(t));
        }
        assert_eq!(LbType::from_mosn_name(""), Some(LbType::RoundRobin));
        assert_eq!(LbType::from_mosn_name("LB_ORIGINAL_DST"), None);
    }

    #[test]
    fn weight_table_samples_in_proportion() {
        let set = HostSet::new(
            (0..3u16)
                .map(|i| {
                    let h = Host::new(SocketAddr::from(([127, 0, 0, 1], i)));
                    Arc::new(h.with_weight(u32::from(i) + 1))
                })
                .collect(),
        );
        let table = WeightTable::new(&set);
        let mut counts = [0u32; 3];
        let mut rng = rand::rng();
        for _ in 0..60_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        for (i, c) in counts.iter().enumerate() {
            let expected = 10_000.0 * (i as f64 + 1.0);
            assert!(
                (f64::from(*c) - expected).abs() < expected * 0.1,
                "{counts:?}"
            );
        }
    }
}
