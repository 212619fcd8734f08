//! Upstream connection pools: one pool per host (`SocketAddr`), holding the
//! connections the proxy sends that host's requests over.
//!
//! - [`MultiplexPool`] for codecs whose [`PoolMode`] is `Multiplex` (bolt,
//!   Dubbo, generic): up to `max_connections` connections, each carrying
//!   many requests at once. Every request gets a fresh upstream id from its
//!   connection's counter; an in-flight map `upstream id → waiting caller +
//!   downstream id` pairs the response with its caller and restores the
//!   downstream id, by patching the wire bytes (never re-encoding).
//! - [`PingPongPool`] for codecs whose mode is `PingPong`: idle connections
//!   reused one request at a time.
//! - [`Pool`] picks one of the two from the codec.
//!
//! Both pools fail fast instead of queueing without bound: a host that
//! refuses or times out is in back-off ([`Backoff`]) and requests meanwhile
//! get the last connect error at once; full connections give
//! [`PoolError::Overflow`]. Every failure says whether the request may have
//! reached the upstream ([`PoolError::is_retryable`]), which is what the
//! proxy's retry policy asks. The pools keep the host's [`HostStats`]
//! current for the load balancers.
//!
//! What the pools deliberately do not do: pick hosts, retry, or time a
//! request out. The proxy wraps [`Pool::send`] in its per-try timeout;
//! dropping the future is safe (a late response is discarded and counted,
//! never handed to another request).
//!
//! ```no_run
//! # use std::{net::SocketAddr, sync::Arc, time::Duration};
//! # use meshgate_cluster::{HostStats, Pool, PoolConfig};
//! # use meshgate_codecs::{bolt::BoltCodec, Frame};
//! # async fn try_once(addr: SocketAddr, req: Frame) -> &'static str {
//! // One pool per host, built with the cluster; its stats feed the LB.
//! let stats = Arc::new(HostStats::default());
//! let pool = Pool::new(addr, Arc::new(BoltCodec::v1()), PoolConfig::default(), stats);
//! match tokio::time::timeout(Duration::from_secs(1), pool.send(req)).await {
//!     // The response carries the downstream id of `req`.
//!     Ok(Ok(_resp)) => "reply with it",
//!     // Never reached the upstream: safe to send to another host.
//!     Ok(Err(err)) if err.is_retryable() => "retry elsewhere",
//!     // May have reached it: retry only if the route says idempotent.
//!     Ok(Err(_err)) => "error reply (err.reply_status())",
//!     // Per-try timeout: the request is abandoned, its late answer dropped.
//!     Err(_) => "retry per policy or reply Timeout",
//! }
//! # }
//! ```

mod backoff;
mod connect;
mod counters;
mod error;
mod framed;
pub mod http;
mod multiplex;
mod ping_pong;

pub use backoff::Backoff;
pub use counters::PoolCounters;
pub use error::PoolError;
pub use framed::{FramedCodec, FramedError};
pub use multiplex::{MultiplexPool, ResponseFuture};
pub use ping_pong::PingPongPool;

use crate::HostStats;
use crate::breaker::{BreakerPermit, CircuitBreaker};
use meshgate_codecs::{Frame, FrameCodec, Limits, PoolMode};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How a host's pool behaves. [`PoolConfig::default`] gives the values
/// listed on each field.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// Connections per host (multiplex: opened eagerly up to this number
    /// and shared, draining ones not counted, so a rotated connection is
    /// replaced at once; ping-pong: the most requests in flight). Default
    /// 1, as MOSN's multiplexed pools.
    pub max_connections: usize,
    /// How long a TCP connect may take. Default 3 s.
    pub connect_timeout: Duration,
    /// Requests a connection carries before it drains (no new requests,
    /// in-flight ones finish, then it closes) and a new one replaces it.
    /// 0 = unlimited (MOSN's `max_request_per_conn` default). Default 0.
    pub max_requests_per_conn: u64,
    /// Requests in flight on one multiplexed connection; past it the
    /// request fails with [`PoolError::Overflow`]. Default 8192.
    pub max_in_flight_per_conn: usize,
    /// A multiplexed connection that has read nothing for this long sends
    /// the codec's ping (`heartbeat_request`). `None` = no keep-alive.
    /// Default 15 s.
    pub heartbeat_interval: Option<Duration>,
    /// Pings left unanswered in a row before the connection is closed (its
    /// in-flight requests fail with `UpstreamReset { written: true }`).
    /// Default 3.
    pub heartbeat_max_misses: u32,
    /// Ping-pong: idle connections older than this are closed. `None` =
    /// kept until the upstream closes them. Default 90 s.
    pub idle_timeout: Option<Duration>,
    /// The longest a draining connection waits for its in-flight requests
    /// before it closes anyway. Default 30 s.
    pub drain_timeout: Duration,
    /// Ping-pong: callers waiting for a free connection beyond which a
    /// request fails with [`PoolError::Overflow`]. Default 1024.
    pub max_pending: usize,
    /// Reconnect back-off after connect failures.
    pub backoff: Backoff,
    /// Decode limits for upstream frames.
    pub limits: Limits,
    /// The cluster's circuit breaker: connections opened hold a
    /// `max_connections` permit for their lifetime, requests waiting for a
    /// connection a `max_pending_requests` one. `None`: no cluster limits.
    pub breaker: Option<Arc<CircuitBreaker>>,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            max_connections: 1,
            connect_timeout: Duration::from_secs(3),
            max_requests_per_conn: 0,
            max_in_flight_per_conn: 8192,
            heartbeat_interval: Some(Duration::from_secs(15)),
            heartbeat_max_misses: 3,
            idle_timeout: Some(Duration::from_secs(90)),
            drain_timeout: Duration::from_secs(30),
            max_pending: 1024,
            backoff: Backoff::default(),
            limits: Limits::default(),
            breaker: None,
        }
    }
}

/// A `max_pending_requests` permit for a request about to wait for a
/// connection: `Ok(None)` without a breaker, `Err(Overflow)` (counted by
/// the breaker and the pool) when the cluster has too many waiting.
fn admit_pending(
    config: &PoolConfig,
    addr: SocketAddr,
    counters: &PoolCounters,
) -> Result<Option<BreakerPermit>, PoolError> {
    let Some(breaker) = &config.breaker else {
        return Ok(None);
    };
    match breaker.try_pending() {
        Some(permit) => Ok(Some(permit)),
        None => {
            PoolCounters::inc(&counters.overflows);
            Err(PoolError::Overflow {
                addr,
                what: "cluster max_pending_requests",
            })
        }
    }
}

/// A host's pool, multiplexed or ping-pong as its codec declares.
#[derive(Debug)]
pub enum Pool {
    /// Many requests per connection.
    Multiplex(MultiplexPool),
    /// One request at a time per connection.
    PingPong(PingPongPool),
}

impl Pool {
    /// A pool for `addr` speaking `codec`, of the kind `codec.pool_mode()`
    /// names. Opens no connection yet; needs no runtime until the first
    /// request.
    pub fn new(
        addr: SocketAddr,
        codec: Arc<dyn FrameCodec>,
        config: PoolConfig,
        stats: Arc<HostStats>,
    ) -> Pool {
        match codec.pool_mode() {
            PoolMode::Multiplex => Pool::Multiplex(MultiplexPool::new(addr, codec, config, stats)),
            PoolMode::PingPong => Pool::PingPong(PingPongPool::new(addr, codec, config, stats)),
        }
    }

    /// Sends a two-way request; the future answers with its response
    /// carrying the request's own (downstream) id. A multiplexed pool
    /// encodes the request when `send` is called (see
    /// [`MultiplexPool::send`]). Cancel-safe: dropping the future abandons
    /// the request, and its late response is discarded.
    pub fn send(&self, req: Frame) -> ResponseFuture<'_> {
        match self {
            Pool::Multiplex(pool) => pool.send(req),
            // Boxed: its future is twice the multiplexed one's, and every
            // request's future would otherwise be sized for it.
            Pool::PingPong(pool) => ResponseFuture::boxed(Box::pin(pool.send(req))),
        }
    }

    /// [`Pool::send`], leaving `req` with the caller as it was: what a
    /// proxy that may retry the request calls, instead of copying it for
    /// every try. (A multiplexed pool encodes the request at once and
    /// copies it only when it must wait; a ping-pong pool copies it.)
    pub fn send_keep(&self, req: &mut Frame) -> ResponseFuture<'_> {
        match self {
            Pool::Multiplex(pool) => pool.send_keep(req),
            Pool::PingPong(pool) => ResponseFuture::boxed(Box::pin(pool.send(req.clone()))),
        }
    }

    /// Sends a oneway request: `Ok` once it is queued for the socket.
    pub async fn send_oneway(&self, req: Frame) -> Result<(), PoolError> {
        match self {
            Pool::Multiplex(pool) => pool.send_oneway(req).await,
            Pool::PingPong(pool) => pool.send_oneway(req).await,
        }
    }

    /// [`Pool::send_oneway`], leaving `req` with the caller as it was:
    /// a multiplexed pool that queues it at once costs no future of its
    /// own; anything that waits (a connection, room, a ping-pong
    /// exchange) waits in a boxed future on a copy.
    pub fn send_oneway_keep(&self, req: &mut Frame) -> OnewayFuture<'_> {
        match self {
            Pool::Multiplex(pool) => pool.send_oneway_keep(req),
            Pool::PingPong(pool) => OnewayFuture::boxed(Box::pin(pool.send_oneway(req.clone()))),
        }
    }

    /// Stops taking requests and drains: in-flight requests finish (up to
    /// `drain_timeout`), then the connections close. For reload and
    /// shutdown; dropping the pool does the same.
    pub fn close(&self) {
        match self {
            Pool::Multiplex(pool) => pool.close(),
            Pool::PingPong(pool) => pool.close(),
        }
    }

    /// The host this pool connects to.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Pool::Multiplex(pool) => pool.addr(),
            Pool::PingPong(pool) => pool.addr(),
        }
    }

    /// The pool's own event counters.
    pub fn counters(&self) -> &PoolCounters {
        match self {
            Pool::Multiplex(pool) => pool.counters(),
            Pool::PingPong(pool) => pool.counters(),
        }
    }
}

/// What [`Pool::send_oneway_keep`] gives: the outcome at once, or a boxed
/// future for a request that has to wait.
pub struct OnewayFuture<'a> {
    state: OnewayState<'a>,
}

enum OnewayState<'a> {
    Done(Option<Result<(), PoolError>>),
    Boxed(Pin<Box<dyn Future<Output = Result<(), PoolError>> + Send + 'a>>),
}

impl<'a> OnewayFuture<'a> {
    pub(crate) fn done(outcome: Result<(), PoolError>) -> OnewayFuture<'a> {
        OnewayFuture {
            state: OnewayState::Done(Some(outcome)),
        }
    }

    pub(crate) fn boxed(
        fut: Pin<Box<dyn Future<Output = Result<(), PoolError>> + Send + 'a>>,
    ) -> OnewayFuture<'a> {
        OnewayFuture {
            state: OnewayState::Boxed(fut),
        }
    }
}

impl std::fmt::Debug for OnewayFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            OnewayState::Done(_) => "done",
            OnewayState::Boxed(_) => "boxed",
        };
        f.debug_struct("OnewayFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for OnewayFuture<'_> {
    type Output = Result<(), PoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            // Polled again after it answered: nothing more to report.
            OnewayState::Done(outcome) => Poll::Ready(outcome.take().unwrap_or(Ok(()))),
            OnewayState::Boxed(fut) => fut.as_mut().poll(cx),
        }
    }
}
