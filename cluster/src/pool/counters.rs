//! A pool's own event counters, beside the host's [`crate::HostStats`]:
//! what the admin stats page and the tests read to see what the pool did.

use std::sync::atomic::{AtomicU64, Ordering};

/// Events of one host's pool. Plain relaxed atomics.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Connections established.
    pub connections_opened: AtomicU64,
    /// Connect attempts beyond the pool's first `max_connections`: each
    /// replaces a connection that closed, failed to connect, or rotated.
    pub reconnects: AtomicU64,
    /// Connect attempts, successful or not.
    pub connect_attempts: AtomicU64,
    /// Two-way requests sent and not yet answered (a gauge).
    pub in_flight: AtomicU64,
    /// Established connections closed (for any reason).
    pub connections_closed: AtomicU64,
    /// Requests whose caller gave up (dropped the `send` future) before
    /// the response.
    pub cancelled: AtomicU64,
    /// Responses that arrived after their caller gave up: discarded.
    pub late_responses: AtomicU64,
    /// Responses with an id nothing waits for (an upstream bug): discarded.
    pub unknown_responses: AtomicU64,
    /// Requests failed with `UpstreamReset` because their connection died.
    pub resets: AtomicU64,
    /// Requests refused with `Overflow`.
    pub overflows: AtomicU64,
    /// Keep-alive pings sent.
    pub pings_sent: AtomicU64,
    /// Connections closed because their pings went unanswered.
    pub heartbeat_timeouts: AtomicU64,
    /// Upstream pings answered.
    pub pongs_sent: AtomicU64,
    /// GoAway frames received (each drains its connection).
    pub goaways: AtomicU64,
    /// Connections that started draining (GoAway, `max_requests_per_conn`,
    /// close).
    pub drains: AtomicU64,
}

impl PoolCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        Self::get(&self.connections_opened).saturating_sub(Self::get(&self.connections_closed))
    }

    /// Counts a connect attempt, and a reconnect when the pool already
    /// made its first `max_connections` attempts.
    pub(crate) fn connect_attempt(&self, max_connections: usize) {
        let before = self.connect_attempts.fetch_add(1, Ordering::Relaxed);
        if before >= max_connections.max(1) as u64 {
            Self::inc(&self.reconnects);
        }
    }
}
