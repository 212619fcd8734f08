//! Per-listener counters: connections (open now and ever accepted), bytes
//! read and written, and what protocol detection made of each connection.
//! Relaxed atomics only, so counting costs no lock; the byte counters sit
//! on cache lines of their own because a connection's reader and writer
//! tasks update them from different threads.

use super::Padded;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counters of one listener. Kept by name in [`super::GatewayStats`],
/// so a listener rebound by a reload keeps counting where it was.
#[derive(Debug, Default)]
pub struct ListenerStats {
    accepted: AtomicU64,
    active: AtomicI64,
    detected: AtomicU64,
    no_match: AtomicU64,
    timeout: AtomicU64,
    closed: AtomicU64,
    io_error: AtomicU64,
    /// The `tcp_proxy` filter's counters.
    tcp_proxy: crate::server::TcpProxyStats,
    over_limit: AtomicU64,
    bytes_in: Padded<AtomicU64>,
    bytes_out: Padded<AtomicU64>,
}

/// A copy of a listener's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub active: i64,
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
    /// Connections closed on accept because the listener held
    /// `max_connections` already.
    pub refused_over_limit: u64,
    /// Bytes read from downstream connections (detection included).
    pub bytes_in: u64,
    /// Bytes written to downstream connections.
    pub bytes_out: u64,
}

impl ListenerStats {
    /// Counts an accepted connection, open until the guard drops.
    pub(crate) fn accepted(self: &std::sync::Arc<Self>) -> OpenConnection {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        OpenConnection(std::sync::Arc::clone(self))
    }

    pub(crate) fn detected(&self) {
        self.detected.fetch_add(1, Ordering::Relaxed);
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
    pub fn tcp_proxy(&self) -> &crate::server::TcpProxyStats {
        &self.tcp_proxy
    }

    /// Counts bytes read from a downstream connection.
    pub(crate) fn read(&self, bytes: usize) {
        self.bytes_in.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counter of bytes written, for [`super::CountingWriter`].
    pub(crate) fn written_counter(&self) -> &AtomicU64 {
        &self.bytes_out.0
    }

    /// The counters now.
    pub fn snapshot(&self) -> ListenerCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerCounts {
            accepted: get(&self.accepted),
            active: self.active.load(Ordering::Relaxed),
            detected: get(&self.detected),
            detect_no_match: get(&self.no_match),
            detect_timeout: get(&self.timeout),
            detect_closed: get(&self.closed),
            detect_io_error: get(&self.io_error),
            refused_over_limit: get(&self.over_limit),
            bytes_in: get(&self.bytes_in.0),
            bytes_out: get(&self.bytes_out.0),
        }
    }
}

/// One open downstream connection of a listener; dropping it counts the
/// connection closed.
#[derive(Debug)]
pub(crate) struct OpenConnection(std::sync::Arc<ListenerStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}
