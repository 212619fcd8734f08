//! `LB_RANDOM`: a uniformly random host, weights ignored (as in MOSN).
//!
//! Randomness comes from `rand`'s thread-local generator, so concurrent
//! picks share nothing. When the drawn host is not eligible, MOSN falls back
//! to round robin; here the pick is redrawn among the eligible hosts, which
//! keeps the distribution uniform over them.

use super::{HostFilter, LbContext, LoadBalancer, random_accepted};
use crate::host::{Host, HostSet};
use rand::Rng;
use std::sync::Arc;

/// `LB_RANDOM`.
#[derive(Debug)]
pub(crate) struct Random {
    hosts: HostSet,
}

impl Random {
    pub(crate) fn new(hosts: HostSet) -> Random {
        Random { hosts }
    }
}

impl LoadBalancer for Random {
    fn hosts(&self) -> &HostSet {
        &self.hosts
    }

    fn pick(&self, _cx: &LbContext<'_>, filter: HostFilter<'_>) -> Option<Arc<Host>> {
        pick_uniform(self.hosts.hosts(), filter)
    }
}

/// One draw, then a redraw among eligible hosts if the first one is not.
pub(crate) fn pick_uniform(hosts: &[Arc<Host>], filter: HostFilter<'_>) -> Option<Arc<Host>> {
    if hosts.is_empty() {
        return None;
    }
    let host = &hosts[rand::rng().random_range(0..hosts.len())];
    if filter.accepts(host) {
        return Some(Arc::clone(host));
    }
    random_accepted(hosts, filter)
}
