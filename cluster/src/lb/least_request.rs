//! `LB_LEAST_REQUEST`: the least busy of a few random hosts.
//!
//! Asking every host for its load on every pick costs O(hosts) and sends a
//! burst of traffic to whichever host looked idle last; drawing
//! `choice_count` hosts at random (2 by default, "the power of two choices")
//! and keeping the least loaded gets almost all of the benefit at constant
//! cost, and is what MOSN and Envoy do with equal weights. Load is read from
//! the host's [`crate::HostStats`] counter, which the connection pool keeps.
//!
//! With unequal weights MOSN switches to an EDF scheduler (a heap under a
//! mutex) over `weight / (active + 1) ^ bias`. Here the candidates are drawn
//! in proportion to weight instead, and the one with the lowest
//! `active ^ bias / weight` wins, ties going to the first drawn: with no
//! load the split follows the weights exactly, under load each host's share
//! of active requests tends toward its share of weight, and no lock is taken.
//!
//! The same machinery, reading `active_connections`, is
//! `LB_LEAST_CONNECTION` (see `least_connection.rs`).

use super::{HostFilter, LbContext, LbOptions, LoadBalancer, WeightTable};
use crate::HostStats;
use crate::host::{Host, HostSet};
use rand::Rng;
use std::sync::Arc;

/// Which counter measures a host's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    ActiveRequests,
    ActiveConnections,
}

impl Load {
    fn of(self, host: &Host) -> u64 {
        let stats = host.stats();
        match self {
            Load::ActiveRequests => HostStats::get(&stats.active_requests),
            Load::ActiveConnections => HostStats::get(&stats.active_connections),
        }
    }
}

/// Least loaded among random choices, for one [`Load`] counter.
#[derive(Debug)]
pub(crate) struct LeastLoaded {
    hosts: HostSet,
    load: Load,
    choices: u32,
    bias: f64,
    /// `None` when all weights are equal: draw uniformly, compare raw load.
    weights: Option<WeightTable>,
}

/// `LB_LEAST_REQUEST`.
pub(crate) type LeastRequest = LeastLoaded;

impl LeastLoaded {
    pub(crate) fn new(hosts: HostSet, options: &LbOptions) -> LeastLoaded {
        LeastLoaded::with_load(hosts, Load::ActiveRequests, options)
    }

    pub(crate) fn with_load(hosts: HostSet, load: Load, options: &LbOptions) -> LeastLoaded {
        let weights = (!hosts.weights_are_equal()).then(|| WeightTable::new(&hosts));
        LeastLoaded {
            hosts,
            load,
            choices: options.choice_count.max(1),
            bias: options.active_request_bias,
            weights,
        }
    }

    /// Lower is better.
    fn key(&self, host: &Host) -> f64 {
        // Loads are far below 2^53, so the conversion is exact.
        let load = self.load.of(host) as f64;
        if self.weights.is_none() {
            return load;
        }
        let load = if self.bias == 1.0 {
            load
        } else {
            load.powf(self.bias)
        };
        load / f64::from(host.weight())
    }

    fn draw(&self, rng: &mut impl Rng) -> usize {
        match &self.weights {
            Some(table) => table.sample(rng),
            None => rng.random_range(0..self.hosts.len()),
        }
    }
}

impl LoadBalancer for LeastLoaded {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, _cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        let hosts = self.hosts.hosts();
        if hosts.is_empty() {
            return None;
        }
        let mut rng = rand::rng();
        let mut best: Option<(&Arc<Host>, f64)> = None;
        let mut candidates = 0;
        // Twice the draws needed leaves room for a few ineligible hosts;
        // when none of them was eligible, scan instead of drawing on.
        for _ in 0..self.choices * 2 {
            let host = &hosts[self.draw(&mut rng)];
            if !filter.accepts(host) {
                continue;
            }
            let key = self.key(host);
            if best.is_none_or(|(_, k)| key < k) {
                best = Some((host, key));
            }
            candidates += 1;
            if candidates == self.choices {
                break;
            }
        }
        if best.is_none() {
            let start = rng.random_range(0..hosts.len());
            for host in hosts[start..].iter().chain(&hosts[..start]) {
                if filter.accepts(host) {
                    let key = self.key(host);
                    if best.is_none_or(|(_, k)| key < k) {
                        best = Some((host, key));
                    }
                }
            }
        }
        best.map(|(host, _)| Arc::clone(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;

    fn set(weights: &[u32]) -> HostSet {
        HostSet::new(
            weights
                .iter()
                .zip(0u16..)
                .map(|(&w, i)| {
                    let h = Host::new(SocketAddr::from(([127, 0, 0, 1], i)));
                    Arc::new(h.with_weight(w))
                })
                .collect(),
        )
    }

    fn counts(lb: &LeastLoaded, picks: usize) -> Vec<usize> {
        let mut counts = vec![0; lb.hosts.len()];
        for _ in 0..picks {
            let h = lb.choose(&LbContext::default()).unwrap();
            counts[usize::from(h.address().port())] += 1;
        }
        counts
    }

    #[test]
    fn idle_weighted_hosts_split_by_weight() {
        let lb = LeastLoaded::new(set(&[1, 3]), &LbOptions::default());
        let c = counts(&lb, 20_000);
        assert!((4_000..6_000).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn load_is_compared_relative_to_weight() {
        let hosts = set(&[1, 4]);
        // 3 requests on weight 1 is busier than 8 on weight 4.
        hosts.hosts()[0]
            .stats()
            .active_requests
            .store(3, Ordering::Relaxed);
        hosts.hosts()[1]
            .stats()
            .active_requests
            .store(8, Ordering::Relaxed);
        let lb = LeastLoaded::new(hosts, &LbOptions::default());
        let c = counts(&lb, 10_000);
        // Host 0 wins only when drawn twice: (1/5)^2 of the picks.
        assert!(c[0] < 800, "{c:?}");
    }

    #[test]
    fn one_choice_is_weighted_random() {
        let options = LbOptions {
            choice_count: 1,
            ..LbOptions::default()
        };
        let hosts = set(&[1, 1]);
        hosts.hosts()[0]
            .stats()
            .active_requests
            .store(100, Ordering::Relaxed);
        let lb = LeastLoaded::new(hosts, &options);
        let c = counts(&lb, 10_000);
        assert!((4_000..6_000).contains(&c[0]), "{c:?}");
    }
}
