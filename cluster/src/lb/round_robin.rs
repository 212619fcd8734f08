//! `LB_ROUNDROBIN` and `LB_REQUEST_ROUNDROBIN`.
//!
//! Round robin is one shared atomic counter: each pick takes the next index,
//! skipping hosts the pass does not accept, so the hosts it does accept keep
//! an exact rotation. Like MOSN's, the counter starts at a random offset so
//! that many gateways started together do not all send their first request
//! to the same host. Weights are ignored (`LB_WEIGHTED_ROUNDROBIN` uses them).
//!
//! Request round robin keeps no state at all: every request starts at the
//! first host and each retry takes the next one (MOSN keeps the position in
//! a per-request variable; here the request's `tried` list says the same).
//! It suits primary/backup setups: the first host takes all the traffic
//! while it is healthy.

use super::{HostFilter, LbContext, LoadBalancer};
use crate::host::{Host, HostSet};
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `LB_ROUNDROBIN`.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    hosts: HostSet,
    next: AtomicUsize,
}

impl RoundRobin {
    pub(crate) fn new(hosts: HostSet) -> RoundRobin {
        let start = rand::rng().random_range(0..hosts.len().max(1));
        RoundRobin {
            hosts,
            next: AtomicUsize::new(start),
        }
    }
}

impl LoadBalancer for RoundRobin {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, _cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        let hosts = self.hosts.hosts();
        // At most one lap: past that, no host is accepted.
        for _ in 0..hosts.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % hosts.len();
            if filter.accepts(&hosts[i]) {
                return Some(Arc::clone(&hosts[i]));
            }
        }
        None
    }
}

/// `LB_REQUEST_ROUNDROBIN`.
#[derive(Debug)]
pub(crate) struct RequestRoundRobin {
    hosts: HostSet,
}

impl RequestRoundRobin {
    pub(crate) fn new(hosts: HostSet) -> RequestRoundRobin {
        RequestRoundRobin { hosts }
    }
}

impl LoadBalancer for RequestRoundRobin {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, _cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        self.hosts
            .hosts()
            .iter()
            .find(|h| filter.accepts(h))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn set(n: u16) -> HostSet {
        HostSet::new(
            (0..n)
                .map(|i| Arc::new(Host::new(SocketAddr::from(([127, 0, 0, 1], i)))))
                .collect(),
        )
    }

    #[test]
    fn rotation_is_exact_from_a_random_start() {
        let lb = RoundRobin::new(set(3));
        let cx = LbContext::default();
        let ports: Vec<u16> = (0..9)
            .map(|_| lb.choose(&cx).unwrap().address().port())
            .collect();
        for w in ports.windows(2) {
            assert_eq!(w[1], (w[0] + 1) % 3, "{ports:?}");
        }
    }

    #[test]
    fn request_round_robin_walks_from_the_first_host() {
        let lb = RequestRoundRobin::new(set(3));
        let first = lb.choose(&LbContext::default()).unwrap();
        assert_eq!(first.address().port(), 0);
        let tried = [first];
        let cx = LbContext {
            tried: &tried,
            ..LbContext::default()
        };
        assert_eq!(lb.choose(&cx).unwrap().address().port(), 1);
    }
}
