//! Per-listener counters: connections accepted and what detection made of
//! them. Atomics only, so counting costs no lock. (The admin API and the
//! Prometheus exposition build on these in their own milestone.)

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    accepted: AtomicU64,
    detected: AtomicU64,
    no_match: AtomicU64,
    timeout: AtomicU64,
    closed: AtomicU64,
    io_error: AtomicU64,
    unsupported: AtomicU64,
    /// The `tcp_proxy` filter's counters.
    tcp_proxy: super::TcpProxyStats,
    over_limit: AtomicU64,
}

/// A copy of a listener's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections whose protocol was detected (or named).
    pub detected: u64,
    /// Detection failures: first bytes matching no protocol of the listener.
    pub detect_no_match: u64,
    /// Detection failures: not enough bytes within the detect timeout.
    pub detect_timeout: u64,
    /// Detection failures: the peer closed first.
    pub detect_closed: u64,
    /// Detection failures: socket errors.
    pub detect_io_error: u64,
    /// Connections of a detected protocol this build does not serve (HTTP).
    pub unsupported: u64,
    /// Connections closed on accept because the listener held
    /// `max_connections` already.
    pub refused_over_limit: u64,
}

impl ListenerStats {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn detected(&self) {
        self.detected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn unsupported(&self) {
        self.unsupported.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn over_limit(&self) {
        self.over_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a detection failure under its reason (`DetectError::reason`).
    pub(crate) fn detect_failed(&self, reason: &str) {
        let counter = match reason {
            "no_match" => &self.no_match,
            "timeout" => &self.timeout,
            "closed" => &self.closed,
            _ => &self.io_error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The `tcp_proxy` filter's counters (zero without one).
    pub fn tcp_proxy(&self) -> &super::TcpProxyStats {
        &self.tcp_proxy
    }

    /// The counters now.
    pub fn snapshot(&self) -> ListenerCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerCounts {
            accepted: get(&self.accepted),
            detected: get(&self.detected),
            detect_no_match: get(&self.no_match),
            detect_timeout: get(&self.timeout),
            detect_closed: get(&self.closed),
            detect_io_error: get(&self.io_error),
            unsupported: get(&self.unsupported),
            refused_over_limit: get(&self.over_limit),
        }
    }
}
