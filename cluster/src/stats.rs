//! Per-host counters shared by load balancers (which read them) and
//! connection pools (which update them). Plain atomics: the request path
//! never takes a lock to count.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one upstream host.
#[derive(Debug, Default)]
pub struct HostStats {
    /// Requests sent and not yet answered (least-request LB reads this).
    pub active_requests: AtomicU64,
    /// Open upstream connections (least-connection LB reads this).
    pub active_connections: AtomicU64,
    /// Requests ever sent.
    pub total_requests: AtomicU64,
    /// Connection attempts that failed or timed out.
    pub connect_failures: AtomicU64,
}

impl HostStats {
    /// Reads a counter (relaxed: counters are advisory, never used to
    /// synchronise memory).
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
