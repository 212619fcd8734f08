//! The HTTP/2 pool (cleartext, prior knowledge): requests are streams
//! multiplexed on one connection per host; a second opens only when every
//! open one is full (its streams reach the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, or the local cap) or going away.
//!
//! Life of a connection:
//!
//! ```text
//!  connect ─> open ─(GOAWAY received / closed / max_requests_per_conn)─> draining ─(streams done)─> closed
//! ```
//!
//! A draining connection takes no new stream; its streams finish (h2
//! keeps the connection alive until then). A GOAWAY is noticed when a new
//! stream cannot open, or, in the race where a request was already on its
//! way, by the stream's error: a graceful GOAWAY (or `REFUSED_STREAM`)
//! means "not processed" (RFC 9113 §8.7), so the pool sends the request
//! again on a fresh connection if its body is still whole (not yet sent,
//! or empty). Flow control is h2's: the request body is read only as the
//! window allows, the response body arrives as the caller reads it.
//!
//! The pool speaks h2 through the `h2` crate itself, not hyper's client:
//! a request's own task opens its stream, sends the body and awaits the
//! response ([`exchange`]), so a request costs no channel into a
//! connection task, no task of its own and no wake-ups across tasks. Only
//! the connection's I/O (and a body still uploading after its response
//! arrived) runs in the connection's task, which also sends the keep-alive
//! PINGs.

mod exchange;

pub(crate) use exchange::H2Body;

use crate::pool::http::body::UpstreamBody;
use crate::pool::http::counters::{HttpPoolCounters, InFlight, OpenConn};
use crate::pool::http::error::{Failure, classify, from_exchange};
use crate::pool::http::{ConnectGate, HttpBody, HttpPoolError, HttpPoolSettings, open_tcp};
use bytes::Bytes;
use exchange::{BodyPipe, Exchange};
use http::request::Parts;
use http::{Method, Request, Response};
use meshgate_tasks::{LocalExecutor, LocalTasks};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

pub(crate) struct H2Pool {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    settings: HttpPoolSettings,
    counters: Arc<HttpPoolCounters>,
    conns: Mutex<Conns>,
    /// One connect at a time: callers arriving while a connection is being
    /// opened wait for it instead of opening their own.
    connecting: tokio::sync::Mutex<()>,
    reaper: Mutex<bool>,
    gate: ConnectGate,
}

#[derive(Default)]
struct Conns {
    open: Vec<Arc<Conn>>,
    closed: bool,
}

type Connection = h2::client::Connection<tokio::net::TcpStream, Bytes>;

/// h2's settings as hyper's client set them: large windows (a proxy
/// should not be the one slowing a download), no server push.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER: usize = 1024 * 1024;
/// Streams opened before the server's SETTINGS say how many it takes
/// (RFC 9113's recommended minimum for what servers advertise).
const INITIAL_MAX_SEND_STREAMS: usize = 100;

struct Conn {
    sender: h2::client::SendRequest<Bytes>,
    /// h2's connection, shared with the driver task that polls it; the
    /// pool reads the server's current `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// through it. The driver drops it (`None`) when it ends.
    connection: Arc<Mutex<Option<Pin<Box<Connection>>>>>,
    /// Set by the driver when the connection ended.
    ended: Arc<AtomicBool>,
    /// Request bodies still uploading after their response arrived run
    /// in the connection's task.
    uploads: LocalExecutor,
    /// Streams whose exchange is not over.
    active: AtomicUsize,
    /// Streams ever started.
    uses: AtomicU64,
    /// No new streams (GOAWAY, closed, rotated).
    draining: AtomicBool,
    /// When `active` last dropped to 0.
    idle_since: Mutex<Instant>,
}

/// One stream's hold on its connection, kept by the response body.
struct Lease {
    conn: Arc<Conn>,
    _in_flight: InFlight,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.conn.idle_since) = Instant::now();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain reads and writes: a poisoned lock still holds a valid value.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    fn is_usable(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.ended.load(Ordering::Acquire)
    }

    /// Streams this connection may carry at once.
    fn capacity(&self, local_cap: Option<u32>) -> usize {
        // A connection whose driver ended has room for nothing.
        let server = lock(&self.connection).as_ref().map_or(0, |connection| {
            connection.as_ref().get_ref().max_concurrent_send_streams()
        });
        local_cap
            .map_or(server, |cap| server.min(cap as usize))
            .max(1)
    }
}

impl H2Pool {
    pub(crate) fn new(
        addr: SocketAddr,
        settings: HttpPoolSettings,
        counters: Arc<HttpPoolCounters>,
    ) -> H2Pool {
        H2Pool {
            shared: Arc::new(Shared {
                addr,
                settings,
                counters,
                conns: Mutex::new(Conns::default()),
                connecting: tokio::sync::Mutex::new(()),
                reaper: Mutex::new(false),
                gate: ConnectGate::default(),
            }),
        }
    }

    /// Sends the request `head` makes (once per attempt) with `body`.
    pub(crate) async fn send(
        &self,
        mut head: impl FnMut() -> Parts,
        mut body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let shared = &self.shared;
        let mut avoid: Option<Arc<Conn>> = None;
        // At most two attempts: the second only when the first stream was
        // provably not processed and its body is whole, on another
        // connection.
        for attempt in 0..2 {
            let mut req = Request::from_parts(head(), ());
            if req.method() == Method::CONNECT {
                return Err(HttpPoolError::Protocol {
                    addr: shared.addr,
                    source: "CONNECT is not proxied to an HTTP/2 upstream".into(),
                });
            }
            exchange::prepare(&mut req, shared.addr, &body);
            let empty = http_body::Body::is_end_stream(&body);
            let conn = shared.pick(avoid.as_ref()).await?;
            let lease = Lease {
                conn: Arc::clone(&conn),
                _in_flight: InFlight::new(&shared.counters, &shared.settings.host_stats),
            };
            let mut sender = conn.sender.clone();
            // The stream opens only once the connection has room for it;
            // an error here (GOAWAY, closed) leaves the request unsent.
            let opened = match std::future::poll_fn(|cx| sender.poll_ready(cx)).await {
                Ok(()) => sender.send_request(req, empty),
                Err(err) => Err(err),
            };
            let (response, stream) = match opened {
                Ok(opened) => opened,
                // A request h2 itself refuses (a user error: no reason,
                // no I/O; stream ids never run out, `max_streams_per_conn`)
                // says nothing about the connection.
                Err(err) if !err.is_io() && err.reason().is_none() => {
                    return Err(HttpPoolError::Protocol {
                        addr: shared.addr,
                        source: err.into(),
                    });
                }
                Err(err) => {
                    drop(lease);
                    shared.retire(&conn);
                    if attempt == 1 {
                        return Err(HttpPoolError::Refused {
                            addr: shared.addr,
                            source: err.into(),
                        });
                    }
                    HttpPoolCounters::inc(&shared.counters.internal_retries);
                    avoid = Some(conn);
                    continue;
                }
            };
            let pipe = (!empty).then(|| BodyPipe::new(body, stream));
            match (Exchange { response, pipe }).await {
                Ok((response, uploading)) => {
                    if let Some(upload) = uploading {
                        // The rest of the body goes up beside the response,
                        // in the connection's task.
                        hyper::rt::Executor::execute(&conn.uploads, async move {
                            if let Err(err) = upload.await {
                                tracing::debug!(%err, "h2 request body not sent whole");
                            }
                        });
                    }
                    let (parts, stream) = response.into_parts();
                    let body = H2Body::new(stream, &parts.headers);
                    return Ok(Response::from_parts(
                        parts,
                        UpstreamBody::h2(body, Box::new(lease)),
                    ));
                }
                Err(err) => {
                    drop(lease);
                    if classify(&err) != Failure::Unprocessed || !empty || attempt == 1 {
                        return Err(from_exchange(shared.addr, err));
                    }
                    shared.retire(&conn);
                    HttpPoolCounters::inc(&shared.counters.internal_retries);
                    body = super::empty_body();
                    avoid = Some(conn);
                }
            }
        }
        Err(HttpPoolError::Closed { addr: shared.addr })
    }

    pub(crate) fn close(&self) {
        let open = {
            let mut conns = lock(&self.shared.conns);
            conns.closed = true;
            std::mem::take(&mut conns.open)
        };
        // Streams in flight keep their connection (through their lease)
        // until they finish; the rest close now.
        drop(open);
    }
}

impl Drop for H2Pool {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Streams a connection carries before it rotates: the configured
    /// `max_requests_per_conn`, and never more than h2's client stream ids
    /// allow (2^30 odd ids), so a stream that cannot open for want of an
    /// id never happens and a request h2 refuses is the request's fault.
    fn max_streams_per_conn(&self) -> u64 {
        const STREAM_IDS: u64 = 1 << 30;
        match self.settings.max_requests_per_conn {
            0 => STREAM_IDS,
            configured => configured.min(STREAM_IDS),
        }
    }

    /// Takes `conn` out of rotation: its streams finish, new ones go
    /// elsewhere.
    fn retire(&self, conn: &Arc<Conn>) {
        if !conn.draining.swap(true, Ordering::AcqRel) {
            HttpPoolCounters::inc(&self.counters.goaways);
        }
        lock(&self.conns)
            .open
            .retain(|open| !Arc::ptr_eq(open, conn));
    }

    /// A connection with room for one more stream, counted in; opens one
    /// if none has room.
    async fn pick(self: &Arc<Self>, avoid: Option<&Arc<Conn>>) -> Result<Arc<Conn>, HttpPoolError> {
        if let Some(conn) = self.try_pick(avoid)? {
            return Ok(conn);
        }
        let waiting_since = Instant::now();
        let _connecting = self.connecting.lock().await;
        // Someone else may have opened one meanwhile, or failed to: then
        // this caller fails at once with the same error instead of trying
        // again in turn (a host that times out would otherwise cost every
        // waiter a full connect timeout, one after the other).
        if let Some(conn) = self.try_pick(avoid)? {
            return Ok(conn);
        }
        if let Some(err) = self
            .gate
            .failed_since(waiting_since, &self.settings, self.addr)
        {
            return Err(err);
        }
        // Boxed: a connect (handshake) is rare, and its future would
        // otherwise make every stream's future larger.
        let conn = match Box::pin(self.connect()).await {
            Ok(conn) => conn,
            // The breaker allows no more connections: share a full one
            // (the stream waits in h2 for a slot) rather than fail.
            Err(err @ HttpPoolError::Overflow { .. }) => {
                return self.try_pick_any(avoid)?.ok_or(err);
            }
            Err(err) => return Err(err),
        };
        conn.active.fetch_add(1, Ordering::AcqRel);
        conn.uses.fetch_add(1, Ordering::Relaxed);
        let max_uses = self.max_streams_per_conn();
        if max_uses == 1 {
            // Its one stream is this one.
            conn.draining.store(true, Ordering::Release);
            HttpPoolCounters::inc(&self.counters.rotations);
        } else {
            let mut conns = lock(&self.conns);
            if conns.closed {
                return Err(HttpPoolError::Closed { addr: self.addr });
            }
            conns.open.push(Arc::clone(&conn));
        }
        self.start_reaper();
        Ok(conn)
    }

    fn try_pick(&self, avoid: Option<&Arc<Conn>>) -> Result<Option<Arc<Conn>>, HttpPoolError> {
        self.choose(avoid, false)
    }

    /// The least loaded usable connection, full or not.
    fn try_pick_any(&self, avoid: Option<&Arc<Conn>>) -> Result<Option<Arc<Conn>>, HttpPoolError> {
        self.choose(avoid, true)
    }

    /// A usable connection other than `avoid`, counted in: the first with
    /// room, else (when `even_full`, or no more connections may open) the
    /// least loaded.
    fn choose(
        &self,
        avoid: Option<&Arc<Conn>>,
        even_full: bool,
    ) -> Result<Option<Arc<Conn>>, HttpPoolError> {
        let mut conns = lock(&self.conns);
        if conns.closed {
            return Err(HttpPoolError::Closed { addr: self.addr });
        }
        conns.open.retain(|conn| {
            let usable = conn.is_usable();
            if !usable && !conn.draining.swap(true, Ordering::AcqRel) {
                HttpPoolCounters::inc(&self.counters.goaways);
            }
            usable
        });
        let candidates = || {
            conns
                .open
                .iter()
                .filter(|conn| avoid.is_none_or(|avoid| !Arc::ptr_eq(conn, avoid)))
        };
        let local_cap = self.settings.h2_max_concurrent_streams;
        let with_room = candidates()
            .find(|conn| conn.active.load(Ordering::Acquire) < conn.capacity(local_cap));
        let chosen = match with_room {
            Some(conn) => Some(conn),
            // Every connection is full and no more may open: the stream
            // waits in h2 for a free slot on the least loaded one.
            None if even_full || conns.open.len() >= self.settings.h2_max_connections.max(1) => {
                candidates().min_by_key(|conn| conn.active.load(Ordering::Acquire))
            }
            None => None,
        };
        let Some(conn) = chosen.map(Arc::clone) else {
            return Ok(None);
        };
        conn.active.fetch_add(1, Ordering::AcqRel);
        let uses = conn.uses.fetch_add(1, Ordering::Relaxed) + 1;
        let max_uses = self.max_streams_per_conn();
        if uses >= max_uses {
            // This is its last stream: rotate.
            conn.draining.store(true, Ordering::Release);
            conns.open.retain(|open| !Arc::ptr_eq(open, &conn));
            HttpPoolCounters::inc(&self.counters.rotations);
        }
        Ok(Some(conn))
    }

    async fn connect(&self) -> Result<Arc<Conn>, HttpPoolError> {
        let (stream, permit) =
            open_tcp(self.addr, &self.settings, &self.counters, &self.gate).await?;
        let open = OpenConn::new(
            Arc::clone(&self.counters),
            self.settings.host_stats.clone(),
            permit,
        );
        let mut builder = h2::client::Builder::new();
        builder
            .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME_SIZE)
            .max_header_list_size(MAX_HEADER_LIST_SIZE)
            .max_send_buffer_size(MAX_SEND_BUFFER)
            .enable_push(false);
        let (sender, mut connection) =
            builder
                .handshake(stream)
                .await
                .map_err(|source| HttpPoolError::Handshake {
                    addr: self.addr,
                    source: source.into(),
                })?;
        let mut keep_alive = self.settings.h2_keep_alive_interval.and_then(|interval| {
            let pings = connection.ping_pong()?;
            Some(KeepAlive::new(
                pings,
                interval,
                self.settings.h2_keep_alive_timeout,
            ))
        });
        let driver = Arc::new(Mutex::new(Some(Box::pin(connection))));
        let ended = Arc::new(AtomicBool::new(false));
        let uploads = LocalExecutor::default();
        let mut tasks = LocalTasks::new(&uploads);
        let addr = self.addr;
        let (polled, ended_flag) = (Arc::clone(&driver), Arc::clone(&ended));
        tokio::spawn(async move {
            let _open = open;
            let mut outcome: Option<Result<(), String>> = None;
            std::future::poll_fn(|cx| {
                if outcome.is_none() {
                    let mut slot = lock(&polled);
                    outcome = match slot.as_mut().map(|connection| connection.as_mut().poll(cx)) {
                        None => Some(Ok(())),
                        Some(Poll::Ready(result)) => Some(result.map_err(|err| err.to_string())),
                        Some(Poll::Pending) => match keep_alive.as_mut().map(|k| k.poll(cx)) {
                            Some(Poll::Ready(dead)) => Some(Err(dead)),
                            _ => None,
                        },
                    };
                    if outcome.is_some() {
                        // Dropping h2's connection fails its open streams.
                        *slot = None;
                        ended_flag.store(true, Ordering::Release);
                    }
                }
                tasks.poll_tasks(cx);
                // Uploads of a connection that ended fail on their own
                // (their stream is gone); the task ends after them.
                if outcome.is_some() && tasks.is_empty() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            if let Some(Err(err)) = outcome {
                tracing::debug!(%addr, %err, "upstream HTTP/2 connection ended");
            }
        });
        Ok(Arc::new(Conn {
            sender,
            connection: driver,
            ended,
            uploads,
            active: AtomicUsize::new(0),
            uses: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
        }))
    }

    /// Closes connections without streams past `idle_timeout` (one task
    /// per pool, ending with it).
    fn start_reaper(self: &Arc<Self>) {
        let Some(timeout) = self.settings.idle_timeout else {
            return;
        };
        let mut started = lock(&self.reaper);
        if *started {
            return;
        }
        *started = true;
        let pool = Arc::downgrade(self);
        let period = (timeout / 2).max(std::time::Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = pool.upgrade() else {
                    return;
                };
                let idle: Vec<Arc<Conn>> = {
                    let mut conns = lock(&shared.conns);
                    if conns.closed {
                        return;
                    }
                    let (idle, busy) =
                        std::mem::take(&mut conns.open)
                            .into_iter()
                            .partition(|conn| {
                                conn.active.load(Ordering::Acquire) == 0
                                    && lock(&conn.idle_since).elapsed() >= timeout
                            });
                    conns.open = busy;
                    idle
                };
                drop(idle);
            }
        });
    }
}

/// PINGs every `interval`, each to be answered within `timeout`, with or
/// without streams open: a peer that stops answering is taken for dead
/// and the connection closes.
struct KeepAlive {
    pings: h2::PingPong,
    interval: Duration,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
}

impl KeepAlive {
    fn new(pings: h2::PingPong, interval: Duration, timeout: Duration) -> KeepAlive {
        KeepAlive {
            pings,
            interval,
            timeout,
            timer: Box::pin(tokio::time::sleep(interval)),
            awaiting_pong: false,
        }
    }

    /// `Ready` with why the connection is dead; `Pending` while it lives.
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> Poll<String> {
        loop {
            if self.awaiting_pong {
                match self.pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        self.awaiting_pong = false;
                        self.timer.as_mut().reset(Instant::now() + self.interval);
                        continue;
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(err.to_string()),
                    Poll::Pending => {}
                }
                std::task::ready!(self.timer.as_mut().poll(cx));
                return Poll::Ready(format!("PING unanswered for {:?}", self.timeout));
            }
            std::task::ready!(self.timer.as_mut().poll(cx));
            if let Err(err) = self.pings.send_ping(h2::Ping::opaque()) {
                return Poll::Ready(err.to_string());
            }
            self.awaiting_pong = true;
            self.timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}
