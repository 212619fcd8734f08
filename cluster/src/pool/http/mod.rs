//! Upstream HTTP connection pools, one per (host, version). HTTP/1.1 is
//! spoken by the pool itself (`h1/wire.rs`, with `httparse`) and h2 through
//! the `h2` crate, both in the calling task; upgrades go through hyper's
//! client connection API (`hyper::client::conn::http1`).
//!
//! - [`HttpVersion::Http1`]: keep-alive, one exchange per connection at a
//!   time. Idle connections wait in a LIFO stack (bounded, closed after
//!   `idle_timeout`); a connection goes back to it only once its response
//!   body was read to the end; `max_requests_per_conn` rotates it. A
//!   reused connection the upstream had closed is detected at checkout, or,
//!   in the race where the request was already on its way, the request is
//!   sent again once on a fresh connection (always if none of it had been
//!   written, else only idempotent requests without a body).
//! - [`HttpVersion::Http2`] (cleartext, prior knowledge): one multiplexed
//!   connection per host; another opens when every open one is full (the
//!   server's `SETTINGS_MAX_CONCURRENT_STREAMS`, or
//!   [`HttpPoolSettings::h2_max_concurrent_streams`]) or going away. After
//!   a GOAWAY new streams go to a fresh connection while in-flight ones
//!   finish. A dead connection fails its streams; the next send reconnects.
//!
//! Bodies stream both ways, trailers included: the request body is read
//! as the upstream (and h2's flow-control window) takes it, the response
//! body ([`UpstreamBody`]) as the caller reads it. Neither is ever held
//! whole.
//!
//! Like the framed pools, these do not pick hosts, time requests out or
//! retry beyond the one safe internal retry: the proxy wraps
//! [`HttpPool::send`] in its per-try timeout and asks the error
//! ([`HttpPoolError::is_retriable_before_write`]) whether to retry.
//! Connections hold the cluster breaker's `max_connections` permit while
//! open, and keep the host's [`HostStats`] current for the balancers.
//!
//! ```no_run
//! # use std::net::SocketAddr;
//! # use meshgate_cluster::pool::http::{empty_body, HttpPool, HttpPoolSettings, HttpVersion};
//! # async fn demo(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use http_body_util::BodyExt;
//! let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
//! let req = http::Request::get("/health").header("host", "svc").body(empty_body())?;
//! let resp = pool.send(req).await?;
//! // Reading the body to its end puts the connection back for reuse.
//! let body = resp.into_body().collect().await?.to_bytes();
//! # let _ = body; Ok(()) }
//! ```

mod body;
mod connect;
mod counters;
mod error;
mod h1;
mod h2;
mod head;
mod hop_by_hop;
mod spare_maps;

pub use body::{HttpBody, HttpBodyError, UpstreamBody, empty_body};
pub use counters::{HttpPoolCounters, HttpPoolStats};
pub use error::HttpPoolError;
pub use h1::parse_content_length;
pub use head::LentHead;
pub use hop_by_hop::{is_stripped, strip_hop_by_hop};
pub use spare_maps::give_back_header_map;

use connect::{ConnectGate, open_tcp};

use crate::HostStats;
use crate::breaker::CircuitBreaker;
use crate::pool::Backoff;
use http::{Request, Response};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP version a pool speaks to its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 over cleartext TCP with prior knowledge (h2c, no upgrade).
    Http2,
}

/// How an HTTP pool behaves. [`HttpPoolSettings::default`] gives the
/// values listed on each field.
#[derive(Clone)]
pub struct HttpPoolSettings {
    /// How long a TCP connect may take. Default 3 s (as the framed pools).
    pub connect_timeout: Duration,
    /// Connections with nothing in flight for this long are closed (HTTP/1
    /// idle ones, h2 ones without streams). `None` = kept until the
    /// upstream closes them. Default 90 s, like the rest of the gateway.
    pub idle_timeout: Option<Duration>,
    /// Requests a connection carries before it is retired (HTTP/1: closed
    /// after that exchange; h2: no new streams, in-flight ones finish).
    /// 0 = unlimited (MOSN's `max_request_per_conn` default). Default 0.
    pub max_requests_per_conn: u64,
    /// HTTP/1: idle connections kept per host; one more closes the oldest.
    /// Default 256.
    pub max_idle_per_host: usize,
    /// HTTP/1: the read buffer limit per connection, which bounds a
    /// response head (and a chunked body's trailers) and the size of the
    /// body chunks read. Default 64 KiB (hyper's is 400 KiB): each chunk
    /// keeps its read buffer alive until the downstream has taken it, so
    /// with a slow client every response in flight held over 1.5 MiB at
    /// hyper's default.
    pub h1_max_buf_size: usize,
    /// h2: a local cap on streams per connection, on top of the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` (the lower wins). `None` = the
    /// server's only. Default `None`.
    pub h2_max_concurrent_streams: Option<u32>,
    /// h2: connections per host at most; when all are full, new streams
    /// wait inside h2 for a free slot on the least loaded one. Default 8.
    pub h2_max_connections: usize,
    /// h2: PING the upstream this often to detect a dead peer. `None` =
    /// no pings. Default `None`.
    pub h2_keep_alive_interval: Option<Duration>,
    /// h2: a PING unanswered this long closes the connection. Default 20 s.
    pub h2_keep_alive_timeout: Duration,
    /// Reconnect back-off after connect failures: while it lasts, requests
    /// fail at once with the last connect error instead of each waiting
    /// for a connect of their own (as the framed pools).
    pub backoff: Backoff,
    /// The cluster's circuit breaker: each open connection holds a
    /// `max_connections` permit. `None`: no cluster limit.
    pub breaker: Option<Arc<CircuitBreaker>>,
    /// The host's live counters, kept current for the load balancers
    /// (`active_requests`, `active_connections`, ...). `None`: not kept.
    pub host_stats: Option<Arc<HostStats>>,
}

impl Default for HttpPoolSettings {
    fn default() -> HttpPoolSettings {
        HttpPoolSettings {
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Some(Duration::from_secs(90)),
            max_requests_per_conn: 0,
            max_idle_per_host: 256,
            h1_max_buf_size: 64 * 1024,
            h2_max_concurrent_streams: None,
            h2_max_connections: 8,
            h2_keep_alive_interval: None,
            h2_keep_alive_timeout: Duration::from_secs(20),
            backoff: Backoff::default(),
            breaker: None,
            host_stats: None,
        }
    }
}

impl fmt::Debug for HttpPoolSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPoolSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_requests_per_conn", &self.max_requests_per_conn)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("h1_max_buf_size", &self.h1_max_buf_size)
            .field("h2_max_concurrent_streams", &self.h2_max_concurrent_streams)
            .field("h2_max_connections", &self.h2_max_connections)
            .field("h2_keep_alive_interval", &self.h2_keep_alive_interval)
            .field("h2_keep_alive_timeout", &self.h2_keep_alive_timeout)
            .field("backoff", &self.backoff)
            .field("breaker", &self.breaker.is_some())
            .finish_non_exhaustive()
    }
}

/// One host's HTTP pool. Cheap to clone (clones share the connections).
/// Opens nothing until the first request; needs a tokio runtime from then
/// on.
#[derive(Clone)]
pub struct HttpPool {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    version: HttpVersion,
    counters: Arc<HttpPoolCounters>,
    pool: Versioned,
}

enum Versioned {
    Http1(h1::H1Pool),
    Http2(h2::H2Pool),
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool")
            .field("addr", &self.inner.addr)
            .field("version", &self.inner.version)
            .field("stats", &self.stats())
            .finish()
    }
}

impl HttpPool {
    /// A pool for `addr` speaking `version`.
    pub fn new(addr: SocketAddr, version: HttpVersion, settings: HttpPoolSettings) -> HttpPool {
        let counters = Arc::new(HttpPoolCounters::default());
        let pool = match version {
            HttpVersion::Http1 => {
                Versioned::Http1(h1::H1Pool::new(addr, settings, Arc::clone(&counters)))
            }
            HttpVersion::Http2 => {
                Versioned::Http2(h2::H2Pool::new(addr, settings, Arc::clone(&counters)))
            }
        };
        HttpPool {
            inner: Arc::new(Inner {
                addr,
                version,
                counters,
                pool,
            }),
        }
    }

    /// Sends `req` and returns the response once its head arrived; its
    /// body streams from the upstream as it is read.
    ///
    /// The request's URI may be in origin form (`/path?query`, with a
    /// `Host` header) or absolute: HTTP/1 sends the origin form (an
    /// absolute URI's authority becomes `Host` if there is none); h2 sends
    /// scheme `http` and the request's authority (else its `Host`, else
    /// the host address). Hop-by-hop headers are the caller's business.
    ///
    /// Cancel-safe: dropping the future abandons the request (HTTP/1
    /// closes that connection, h2 resets the stream).
    pub async fn send(
        &self,
        req: Request<HttpBody>,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let (head, body) = req.into_parts();
        self.send_with(|| head.clone(), body).await
    }

    /// [`HttpPool::send`] with the request head made by `head`, once per
    /// attempt (a second one only for the internal retry), instead of
    /// cloned from a request the pool keeps: a caller that keeps its own
    /// head for retries of its own saves a copy per request.
    pub async fn send_with(
        &self,
        head: impl FnMut() -> http::request::Parts + Send,
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        match &self.inner.pool {
            Versioned::Http1(pool) => pool.send(head, body).await,
            Versioned::Http2(pool) => pool.send(head, body).await,
        }
    }

    /// [`HttpPool::send`] with a borrowed head: HTTP/1 writes it straight
    /// from the caller's request (no copy of its headers, for each attempt
    /// too); h2 copies it once per attempt.
    pub async fn send_lent(
        &self,
        head: LentHead<'_>,
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        match &self.inner.pool {
            Versioned::Http1(pool) => pool.send_lent(head, body).await,
            Versioned::Http2(pool) => pool.send(|| head.to_parts(), body).await,
        }
    }

    /// Stops taking requests and drains: idle connections close now,
    /// requests in flight finish on theirs, which then close; later sends
    /// get [`HttpPoolError::Closed`]. For reload and shutdown; dropping the
    /// last clone does the same.
    pub fn close(&self) {
        match &self.inner.pool {
            Versioned::Http1(pool) => pool.close(),
            Versioned::Http2(pool) => pool.close(),
        }
    }

    /// The host.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The version spoken.
    pub fn version(&self) -> HttpVersion {
        self.inner.version
    }

    /// The pool's counters.
    pub fn counters(&self) -> &HttpPoolCounters {
        &self.inner.counters
    }

    /// A snapshot for the admin page: connections open and idle, requests
    /// in flight, reconnects.
    pub fn stats(&self) -> HttpPoolStats {
        let mut stats = HttpPoolStats::read(&self.inner.counters);
        if let Versioned::Http1(pool) = &self.inner.pool {
            stats.idle = pool.idle_connections() as u64;
        }
        stats
    }
}
