//! An HTTP pool's counters (what the admin page and the tests read) and the
//! guards that keep them, the host's [`HostStats`] and the circuit
//! breaker's connection count right on every exit path.

use crate::HostStats;
use crate::breaker::BreakerPermit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Events and gauges of one host's HTTP pool. Plain relaxed atomics.
#[derive(Debug, Default)]
pub struct HttpPoolCounters {
    /// Connect attempts, successful or not.
    pub connect_attempts: AtomicU64,
    /// Connections established (TCP connected and, for h2, handshaken).
    pub connections_opened: AtomicU64,
    /// Connections whose driver ended (closed by either side, failed,
    /// rotated, upgraded away).
    pub connections_closed: AtomicU64,
    /// Connects made after the first successful one: each replaces a
    /// connection that closed, went stale, rotated or drained.
    pub reconnects: AtomicU64,
    /// Connect attempts that failed or timed out.
    pub connect_failures: AtomicU64,
    /// Requests handed to a connection (retries included).
    pub requests: AtomicU64,
    /// Requests whose exchange is not over (response body not finished or
    /// dropped). A gauge.
    pub in_flight: AtomicU64,
    /// HTTP/1 connections waiting in the idle stack. A gauge.
    pub idle: AtomicU64,
    /// Requests the pool sent again on a fresh connection by itself (stale
    /// keep-alive connection, request handed back unsent, refused stream).
    pub internal_retries: AtomicU64,
    /// Idle HTTP/1 connections found closed by the upstream at checkout.
    pub stale_discarded: AtomicU64,
    /// Idle HTTP/1 connections closed by the idle timeout.
    pub idle_expired: AtomicU64,
    /// Connections retired by `max_requests_per_conn`.
    pub rotations: AtomicU64,
    /// h2 connections found going away (GOAWAY or closed) with new streams
    /// sent elsewhere.
    pub goaways: AtomicU64,
    /// Requests refused because the breaker's `max_connections` was
    /// reached.
    pub overflows: AtomicU64,
}

impl HttpPoolCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        Self::get(&self.connections_opened).saturating_sub(Self::get(&self.connections_closed))
    }
}

/// A snapshot of a pool for the admin stats page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpPoolStats {
    /// Connections open.
    pub open: u64,
    /// HTTP/1 connections idle in the stack (0 for h2).
    pub idle: u64,
    /// Requests in flight.
    pub in_flight: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Requests sent (internal retries included).
    pub requests: u64,
}

impl HttpPoolStats {
    pub(crate) fn read(counters: &HttpPoolCounters) -> HttpPoolStats {
        let get = HttpPoolCounters::get;
        HttpPoolStats {
            open: counters.open_connections(),
            idle: get(&counters.idle),
            in_flight: get(&counters.in_flight),
            reconnects: get(&counters.reconnects),
            connect_failures: get(&counters.connect_failures),
            requests: get(&counters.requests),
        }
    }
}

/// Held by a connection's driver task for the connection's life: counts
/// it open for the pool and the host, and holds the breaker's
/// `max_connections` permit.
pub(crate) struct OpenConn {
    counters: Arc<HttpPoolCounters>,
    host: Option<Arc<HostStats>>,
    _permit: Option<BreakerPermit>,
}

impl OpenConn {
    pub(crate) fn new(
        counters: Arc<HttpPoolCounters>,
        host: Option<Arc<HostStats>>,
        permit: Option<BreakerPermit>,
    ) -> OpenConn {
        HttpPoolCounters::inc(&counters.connections_opened);
        if let Some(host) = &host {
            host.active_connections.fetch_add(1, Ordering::Relaxed);
        }
        OpenConn {
            counters,
            host,
            _permit: permit,
        }
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        HttpPoolCounters::inc(&self.counters.connections_closed);
        if let Some(host) = &self.host {
            host.active_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An upstream socket that keeps its [`OpenConn`] for as long as it
/// exists: until hyper's connection task drops it, or, after a
/// `101 Switching Protocols`, until whoever took the upgraded connection
/// (a tunnel) closes it. So a tunnel stays counted against the host and
/// the breaker's `max_connections`.
pub(crate) struct CountedStream {
    stream: tokio::net::TcpStream,
    _open: OpenConn,
}

impl CountedStream {
    pub(crate) fn new(stream: tokio::net::TcpStream, open: OpenConn) -> CountedStream {
        CountedStream {
            stream,
            _open: open,
        }
    }

    /// The socket, for readiness checks on an idle connection.
    pub(crate) fn tcp(&self) -> &tokio::net::TcpStream {
        &self.stream
    }
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Counts one request in flight (pool and host) for its life.
pub(crate) struct InFlight {
    counters: Arc<HttpPoolCounters>,
    host: Option<Arc<HostStats>>,
}

impl InFlight {
    pub(crate) fn new(counters: &Arc<HttpPoolCounters>, host: &Option<Arc<HostStats>>) -> InFlight {
        HttpPoolCounters::inc(&counters.requests);
        HttpPoolCounters::inc(&counters.in_flight);
        if let Some(host) = host {
            host.active_requests.fetch_add(1, Ordering::Relaxed);
            host.total_requests.fetch_add(1, Ordering::Relaxed);
        }
        InFlight {
            counters: Arc::clone(counters),
            host: host.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        HttpPoolCounters::dec(&self.counters.in_flight);
        if let Some(host) = &self.host {
            host.active_requests.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
