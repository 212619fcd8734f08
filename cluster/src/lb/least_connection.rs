//! `LB_LEAST_CONNECTION`: the host with the fewest open connections among
//! a few random ones.
//!
//! MOSN implements it exactly like least request with the connection gauge
//! in place of the request gauge (`lb_leastconnection.go`), and so does this
//! module: it is [`LeastLoaded`] reading `HostStats::active_connections`.
//! With multiplexed pools the connection count per host is small and moves
//! rarely, so this balancer mostly spreads *new connections*; least request
//! is the better choice for spreading requests over them.

use super::LbOptions;
use super::least_request::{LeastLoaded, Load};
use crate::host::HostSet;

/// `LB_LEAST_CONNECTION`.
pub(crate) fn least_connection(hosts: HostSet, options: &LbOptions) -> LeastLoaded {
    LeastLoaded::with_load(hosts, Load::ActiveConnections, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;
    use crate::lb::{LbContext, LoadBalancer};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn reads_connections_not_requests() {
        let hosts = HostSet::new(
            (0..2u16)
                .map(|i| Arc::new(Host::new(SocketAddr::from(([127, 0, 0, 1], i)))))
                .collect(),
        );
        let busy = &hosts.hosts()[0];
        busy.stats().active_connections.store(5, Ordering::Relaxed);
        hosts.hosts()[1]
            .stats()
            .active_requests
            .store(50, Ordering::Relaxed);
        let lb = least_connection(hosts.clone(), &LbOptions::default());
        let picks_of_busy = (0..1_000)
            .filter(|_| {
                let h = lb.choose(&LbContext::default()).unwrap();
                Arc::ptr_eq(&h, busy)
            })
            .count();
        // The busy host wins only when it is drawn twice: about a quarter.
        assert!(picks_of_busy < 350, "{picks_of_busy}");
    }
}
