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
//! A draining connection takes no new stream; its streams finish (hyper
//! and h2 keep the connection alive until then). A GOAWAY is noticed when
//! hyper's sender reports the connection closed, or, in the race where a
//! request was already on its way, by the stream's error: a graceful
//! GOAWAY (or `REFUSED_STREAM`) means "not processed" (RFC 9113 §8.7), so
//! the pool sends the request again on a fresh connection if its body is
//! still whole. Flow control is h2's: the request body is read only as
//! the window allows, the response body arrives as the caller reads it.

use crate::pool::http::body::{SendBody, UpstreamBody};
use crate::pool::http::counters::{HttpPoolCounters, InFlight, OpenConn};
use crate::pool::http::error::{Failure, classify, from_hyper};
use crate::pool::http::{ConnectGate, HttpBody, HttpPoolError, HttpPoolSettings, open_tcp};
use http::request::Parts;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioIo, TokioTimer};
use meshgate_tasks::{LocalExecutor, LocalTasks};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::time::Instant;

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

type Connection = http2::Connection<TokioIo<tokio::net::TcpStream>, SendBody, LocalExecutor>;

struct Conn {
    sender: http2::SendRequest<SendBody>,
    /// hyper's connection future, shared with the driver task that polls
    /// it; the pool reads the server's current
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` through it. The driver drops it
    /// (`None`) when it ends, which closes hyper's request channel: the
    /// sender then reports closed, and a request still queued in it comes
    /// back unsent.
    connection: Arc<Mutex<Option<Pin<Box<Connection>>>>>,
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
        !self.draining.load(Ordering::Acquire) && !self.sender.is_closed()
    }

    /// Streams this connection may carry at once.
    fn capacity(&self, local_cap: Option<u32>) -> usize {
        // A connection whose driver ended has room for nothing.
        let server = lock(&self.connection).as_ref().map_or(0, |connection| {
            connection.as_ref().get_ref().current_max_send_streams()
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
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let shared = &self.shared;
        let was_empty = http_body::Body::is_end_stream(&body);
        let (mut send_body, mut slot) = SendBody::new(body);
        let mut avoid: Option<Arc<Conn>> = None;
        // At most two attempts: the second only when the first stream was
        // provably not processed, on another connection.
        for attempt in 0..2 {
            let conn = shared.pick(avoid.as_ref()).await?;
            let lease = Lease {
                conn: Arc::clone(&conn),
                _in_flight: InFlight::new(&shared.counters, &shared.settings.host_stats),
            };
            let mut sender = conn.sender.clone();
            let req = absolute_form(Request::from_parts(head(), send_body), shared.addr);
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp.map(|body| UpstreamBody::new(body, Box::new(lease)))),
                Err(mut failed) => {
                    drop(lease);
                    // An unsent request comes back with its body unpolled,
                    // still in the slot.
                    let unsent = failed.take_message().is_some();
                    let err = failed.into_error();
                    if !unsent && classify(&err) != Failure::Unprocessed {
                        return Err(shared.error(err));
                    }
                    shared.retire(&conn);
                    let whole = slot.reclaim().or_else(|| was_empty.then(super::empty_body));
                    match whole {
                        Some(body) if attempt == 0 => (send_body, slot) = SendBody::new(body),
                        _ => {
                            return Err(HttpPoolError::Refused {
                                addr: shared.addr,
                                source: err.into(),
                            });
                        }
                    }
                    HttpPoolCounters::inc(&shared.counters.internal_retries);
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
    fn error(&self, err: hyper::Error) -> HttpPoolError {
        from_hyper(self.addr, err)
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
        let conn = match self.connect().await {
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
        let max_uses = self.settings.max_requests_per_conn;
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
        let max_uses = self.settings.max_requests_per_conn;
        if max_uses > 0 && uses >= max_uses {
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
        // hyper's client spawns a task per request (it waits for the
        // response, and pipes a request body); they run inside the
        // connection's task instead, polled after the connection.
        let executor = LocalExecutor::default();
        let mut tasks = LocalTasks::new(&executor);
        let mut builder = http2::Builder::new(executor);
        builder.timer(TokioTimer::new());
        if let Some(interval) = self.settings.h2_keep_alive_interval {
            builder
                .keep_alive_interval(interval)
                .keep_alive_timeout(self.settings.h2_keep_alive_timeout)
                .keep_alive_while_idle(true);
        }
        let (sender, connection) =
            builder
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|source| HttpPoolError::Handshake {
                    addr: self.addr,
                    source: source.into(),
                })?;
        let driver = Arc::new(Mutex::new(Some(Box::pin(connection))));
        let addr = self.addr;
        let polled = Arc::clone(&driver);
        tokio::spawn(async move {
            let _open = open;
            let mut ended = None;
            std::future::poll_fn(|cx| {
                if ended.is_none() {
                    let mut slot = lock(&polled);
                    match slot.as_mut().map(|connection| connection.as_mut().poll(cx)) {
                        None => ended = Some(Ok(())),
                        Some(std::task::Poll::Ready(result)) => {
                            *slot = None;
                            ended = Some(result);
                        }
                        Some(std::task::Poll::Pending) => {}
                    }
                }
                tasks.poll_tasks(cx);
                // Once the connection ended, its requests' tasks still
                // finish: they report each stream's own error (a refused
                // stream is retried elsewhere), not a dropped request.
                if ended.is_some() && tasks.is_empty() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            })
            .await;
            if let Some(Err(err)) = ended {
                tracing::debug!(%addr, %err, "upstream HTTP/2 connection ended");
            }
        });
        Ok(Arc::new(Conn {
            sender,
            connection: driver,
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

/// h2 requests carry `:scheme` and `:authority` (RFC 9113 §8.3.1): the
/// scheme is `http` (cleartext), the authority the request's own, else its
/// `Host`, else the upstream address.
fn absolute_form<B>(mut req: Request<B>, addr: SocketAddr) -> Request<B> {
    let uri = req.uri();
    if uri.scheme().is_some() && uri.authority().is_some() {
        return req;
    }
    let authority = uri
        .authority()
        .cloned()
        .or_else(|| {
            req.headers()
                .get(http::header::HOST)
                .and_then(|host| Authority::try_from(host.as_bytes()).ok())
        })
        .or_else(|| Authority::try_from(addr.to_string()).ok());
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_gets_scheme_and_the_host_as_authority() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let req = Request::post("/svc/Method?x=1")
            .header(http::header::HOST, "api.example:81")
            .body(super::super::empty_body())
            .expect("request");
        assert_eq!(
            absolute_form(req, addr).uri(),
            "http://api.example:81/svc/Method?x=1"
        );
        let bare = Request::get("/")
            .body(super::super::empty_body())
            .expect("request");
        assert_eq!(absolute_form(bare, addr).uri(), "http://127.0.0.1:9/");
        let kept = Request::get("http://a.b/c")
            .body(super::super::empty_body())
            .expect("request");
        assert_eq!(absolute_form(kept, addr).uri(), "http://a.b/c");
    }
}
