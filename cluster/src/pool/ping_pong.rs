//! The ping-pong pool: for codecs that carry one request at a time per
//! connection. Idle connections are kept (newest reused first, so old ones
//! age out) up to `idle_timeout`; at most `max_connections` are in use at
//! once, and at most `max_pending` callers wait for one.
//!
//! A connection is owned by the request using it, so cancellation is
//! simple: a caller that drops the future drops the connection with it
//! (its response would otherwise arrive to the next request), and only a
//! connection whose exchange finished goes back to the idle list.
//!
//! Before an idle connection is reused it is polled once without waiting:
//! if the upstream closed it (or sent anything unasked), it is discarded
//! and another is taken, which catches most stale keep-alive connections
//! before a request is lost on them. The rest of that race (closed while
//! the request is being written) is reported as
//! `UpstreamReset { written: false }` when nothing at all was read back, so
//! the proxy retries it once on a fresh connection.

use crate::HostStats;
use crate::pool::backoff::Reconnect;
use crate::pool::connect::connect;
use crate::pool::{FramedCodec, FramedError, PoolConfig, PoolCounters, PoolError};
use futures_util::{FutureExt, SinkExt, StreamExt};
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// A ping-pong pool for one host. See the module docs of [`crate::pool`].
pub struct PingPongPool {
    shared: Arc<Shared>,
}

impl fmt::Debug for PingPongPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingPongPool")
            .field("addr", &self.shared.addr)
            .field("codec", &self.shared.codec.name())
            .field("idle", &self.shared.state().idle.len())
            .finish_non_exhaustive()
    }
}

struct Shared {
    addr: SocketAddr,
    codec: Arc<dyn FrameCodec>,
    framed: FramedCodec,
    config: PoolConfig,
    stats: Arc<HostStats>,
    counters: Arc<PoolCounters>,
    /// One permit per connection that may be in use.
    permits: Semaphore,
    /// Callers waiting for a permit.
    pending: AtomicUsize,
    state: Mutex<State>,
    reaper_started: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Newest last.
    idle: Vec<Idle>,
    reconnect: Reconnect,
    closed: bool,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One open connection; closing it (dropping) keeps the counts right.
struct Conn {
    framed: Framed<TcpStream, FramedCodec>,
    uses: u64,
    /// False after a GoAway or an upstream error: close after this use.
    reusable: bool,
    stats: Arc<HostStats>,
    counters: Arc<PoolCounters>,
    /// The cluster's `max_connections` permit, given back on close.
    _breaker: Option<crate::breaker::BreakerPermit>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats
            .active_connections
            .fetch_sub(1, Ordering::Relaxed);
        PoolCounters::inc(&self.counters.connections_closed);
    }
}

impl Conn {
    /// True when the upstream closed the idle connection or sent something
    /// nobody asked for: it cannot carry a request.
    fn is_stale(&mut self) -> bool {
        self.framed.next().now_or_never().is_some()
    }
}

/// Counts one request as active (for the host and the pool) for its
/// lifetime.
struct Active<'a>(&'a HostStats, &'a PoolCounters);

impl<'a> Active<'a> {
    fn new(stats: &'a HostStats, counters: &'a PoolCounters) -> Active<'a> {
        stats.active_requests.fetch_add(1, Ordering::Relaxed);
        stats.total_requests.fetch_add(1, Ordering::Relaxed);
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Active(stats, counters)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active_requests.fetch_sub(1, Ordering::Relaxed);
        self.1.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one waiter for a permit for its lifetime.
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PingPongPool {
    /// A pool for `addr`. Opens nothing until the first request.
    pub fn new(
        addr: SocketAddr,
        codec: Arc<dyn FrameCodec>,
        config: PoolConfig,
        stats: Arc<HostStats>,
    ) -> PingPongPool {
        PingPongPool {
            shared: Arc::new(Shared {
                addr,
                framed: FramedCodec::new(Arc::clone(&codec), config.limits),
                codec,
                permits: Semaphore::new(config.max_connections.max(1)),
                config,
                stats,
                counters: Arc::default(),
                pending: AtomicUsize::new(0),
                state: Mutex::new(State::default()),
                reaper_started: AtomicBool::new(false),
            }),
        }
    }

    /// The host.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The pool's event counters.
    pub fn counters(&self) -> &PoolCounters {
        &self.shared.counters
    }

    /// Idle connections now.
    pub fn idle_connections(&self) -> usize {
        self.shared.state().idle.len()
    }

    /// Sends a two-way request on an idle (or new) connection and waits for
    /// its response, which comes back with the request's id. Cancel-safe:
    /// dropping the future closes the connection it was using.
    pub async fn send(&self, req: Frame) -> Result<Frame, PoolError> {
        let shared = &self.shared;
        let _permit = shared.permit().await?;
        let (mut conn, reused) = shared.checkout().await?;
        let _active = Active::new(&shared.stats, &shared.counters);
        let downstream_id = req.request_id;
        match shared.exchange(&mut conn, req, reused).await {
            Ok(mut resp) => {
                if resp.request_id != downstream_id {
                    shared.codec.set_request_id(&mut resp, downstream_id);
                }
                shared.checkin(conn);
                Ok(resp)
            }
            Err(err) => {
                if matches!(err, PoolError::UpstreamReset { .. }) {
                    PoolCounters::inc(&shared.counters.resets);
                }
                Err(err)
            }
        }
    }

    /// Writes a oneway request on an idle (or new) connection; `Ok` once it
    /// is flushed.
    pub async fn send_oneway(&self, req: Frame) -> Result<(), PoolError> {
        let shared = &self.shared;
        let _permit = shared.permit().await?;
        let (mut conn, _) = shared.checkout().await?;
        shared.stats.total_requests.fetch_add(1, Ordering::Relaxed);
        conn.uses += 1;
        match conn.framed.send(req).await {
            Ok(()) => {
                shared.checkin(conn);
                Ok(())
            }
            Err(FramedError::Codec(err)) => Err(PoolError::Encode(err)),
            Err(FramedError::Io(_)) => Err(PoolError::UpstreamReset { written: false }),
        }
    }

    /// Stops taking requests: idle connections close now, busy ones when
    /// their request is done; waiting callers get [`PoolError::Closed`].
    pub fn close(&self) {
        self.shared.close();
    }
}

impl Drop for PingPongPool {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Plain assignments only: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn permit(&self) -> Result<SemaphorePermit<'_>, PoolError> {
        match self.permits.try_acquire() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(PoolError::Closed { addr: self.addr }),
            Err(TryAcquireError::NoPermits) => {}
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.config.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            PoolCounters::inc(&self.counters.overflows);
            return Err(PoolError::Overflow {
                addr: self.addr,
                what: "callers waiting for a connection",
            });
        }
        let _waiter = Waiter(&self.pending);
        let _cluster_pending = crate::pool::admit_pending(&self.config, self.addr, &self.counters)?;
        self.permits
            .acquire()
            .await
            .map_err(|_| PoolError::Closed { addr: self.addr })
    }

    /// An idle connection that is still good (`true`: reused), or a new one.
    async fn checkout(self: &Arc<Self>) -> Result<(Conn, bool), PoolError> {
        loop {
            let idle = {
                let mut state = self.state();
                if state.closed {
                    return Err(PoolError::Closed { addr: self.addr });
                }
                state.idle.pop()
            };
            let Some(Idle { mut conn, since }) = idle else {
                break;
            };
            let expired = self
                .config
                .idle_timeout
                .is_some_and(|timeout| since.elapsed() >= timeout);
            if !expired && !conn.is_stale() {
                return Ok((conn, true));
            }
        }
        if let Some(err) = self.state().reconnect.blocked(Instant::now()) {
            return Err(err);
        }
        let breaker_permit = match &self.config.breaker {
            None => None,
            Some(breaker) => match breaker.try_connection() {
                Some(permit) => Some(permit),
                None => {
                    PoolCounters::inc(&self.counters.overflows);
                    return Err(PoolError::Overflow {
                        addr: self.addr,
                        what: "cluster max_connections",
                    });
                }
            },
        };
        self.counters.connect_attempt(self.config.max_connections);
        match connect(self.addr, self.config.connect_timeout).await {
            Ok(stream) => {
                self.state().reconnect.on_success();
                self.stats
                    .active_connections
                    .fetch_add(1, Ordering::Relaxed);
                PoolCounters::inc(&self.counters.connections_opened);
                Ok((
                    Conn {
                        framed: Framed::new(stream, self.framed.clone()),
                        uses: 0,
                        reusable: true,
                        stats: Arc::clone(&self.stats),
                        counters: Arc::clone(&self.counters),
                        _breaker: breaker_permit,
                    },
                    false,
                ))
            }
            Err(err) => {
                self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                self.state().reconnect.on_failure(
                    err.clone(),
                    &self.config.backoff,
                    Instant::now(),
                );
                Err(err)
            }
        }
    }

    /// Writes `req`, reads until its response (answering pings meanwhile).
    async fn exchange(
        &self,
        conn: &mut Conn,
        req: Frame,
        reused: bool,
    ) -> Result<Frame, PoolError> {
        conn.uses += 1;
        match conn.framed.send(req).await {
            Ok(()) => {}
            Err(FramedError::Codec(err)) => return Err(PoolError::Encode(err)),
            Err(FramedError::Io(_)) => return Err(PoolError::UpstreamReset { written: false }),
        }
        let mut read_any = false;
        loop {
            match conn.framed.next().await {
                Some(Ok(frame)) => {
                    read_any = true;
                    match frame.kind {
                        FrameKind::Response => return Ok(frame),
                        FrameKind::Heartbeat { reply: false } => {
                            if let Some(pong) = self.codec.heartbeat_reply(&frame) {
                                conn.framed
                                    .send(pong)
                                    .await
                                    .map_err(|_| PoolError::UpstreamReset { written: true })?;
                                PoolCounters::inc(&self.counters.pongs_sent);
                            }
                        }
                        FrameKind::GoAway => {
                            PoolCounters::inc(&self.counters.goaways);
                            conn.reusable = false;
                        }
                        FrameKind::Heartbeat { reply: true }
                        | FrameKind::Request
                        | FrameKind::Oneway => {}
                    }
                }
                Some(Err(FramedError::Codec(_))) => {
                    return Err(PoolError::UpstreamReset { written: true });
                }
                Some(Err(FramedError::Io(_))) | None => {
                    // The stale keep-alive case: a reused connection that
                    // ends before a single byte came back.
                    let nothing_read = !read_any && conn.framed.read_buffer().is_empty();
                    return Err(PoolError::UpstreamReset {
                        written: !(reused && nothing_read),
                    });
                }
            }
        }
    }

    /// Returns a connection after a finished exchange, or closes it.
    fn checkin(self: &Arc<Self>, conn: Conn) {
        let max_uses = self.config.max_requests_per_conn;
        if !conn.reusable || (max_uses > 0 && conn.uses >= max_uses) {
            if conn.reusable {
                PoolCounters::inc(&self.counters.drains);
            }
            return;
        }
        {
            let mut state = self.state();
            if state.closed {
                return;
            }
            state.idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
        self.start_reaper();
    }

    /// Closes idle connections past `idle_timeout` in the background (at
    /// most one task per pool, ending with the pool).
    fn start_reaper(self: &Arc<Self>) {
        let Some(timeout) = self.config.idle_timeout else {
            return;
        };
        if self.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool: Weak<Shared> = Arc::downgrade(self);
        let period = (timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = pool.upgrade() else {
                    return;
                };
                let expired: Vec<Idle> = {
                    let mut state = shared.state();
                    if state.closed {
                        return;
                    }
                    let (old, fresh) = std::mem::take(&mut state.idle)
                        .into_iter()
                        .partition(|idle| idle.since.elapsed() >= timeout);
                    state.idle = fresh;
                    old
                };
                drop(expired);
            }
        });
    }

    fn close(&self) {
        let idle = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        self.permits.close();
    }
}
