//! The HTTP/1.1 pool: ping-pong keep-alive connections (one exchange at a
//! time each), idle ones in a LIFO stack so the warm connection is reused
//! and the cold ones age out.
//!
//! Life of a connection:
//!
//! ```text
//!  connect ──> busy ──(response body finished, hyper ready)──> idle ──(checkout)──> busy
//!               │  └─(body dropped half-read, error, 101, rotation)──> closed
//!               └─ idle: upstream closed it ─> discarded at checkout; too old ─> reaped
//! ```
//!
//! The socket carries the connection's [`OpenConn`] count
//! ([`CountedStream`]), so a connection handed over after a 101 stays
//! counted until its new owner closes it.
//!
//! A connection is lent with its response: the [`UpstreamBody`] holds the
//! lease, and when it ends the lease checks the connection in, once hyper
//! says it is ready for another request (the body was read to its end; a
//! half-read body makes hyper close the connection instead). The request
//! counts as in flight until then.

use crate::pool::http::body::{SendBody, UpstreamBody};
use crate::pool::http::counters::{CountedStream, HttpPoolCounters, InFlight, OpenConn};
use crate::pool::http::error::{Failure, classify};
use crate::pool::http::{ConnectGate, HttpBody, HttpPoolError, HttpPoolSettings, open_tcp};
use futures_util::FutureExt;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;

pub(crate) struct H1Pool {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    settings: HttpPoolSettings,
    counters: Arc<HttpPoolCounters>,
    state: Mutex<State>,
    reaper_started: AtomicBool,
    gate: ConnectGate,
}

#[derive(Default)]
struct State {
    /// Newest last.
    idle: Vec<Idle>,
    closed: bool,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

struct Conn {
    sender: http1::SendRequest<SendBody>,
    uses: u64,
}

/// One request's hold on its connection, kept by the response body.
struct Lease {
    shared: Arc<Shared>,
    conn: Option<Conn>,
    /// False after a `101 Switching Protocols` or a CONNECT tunnel: the
    /// connection now belongs to the upgrade.
    reusable: bool,
    _in_flight: InFlight,
}

impl H1Pool {
    pub(crate) fn new(
        addr: SocketAddr,
        settings: HttpPoolSettings,
        counters: Arc<HttpPoolCounters>,
    ) -> H1Pool {
        H1Pool {
            shared: Arc::new(Shared {
                addr,
                settings,
                counters,
                state: Mutex::new(State::default()),
                reaper_started: AtomicBool::new(false),
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
        let mut fresh_only = false;
        // At most two attempts: the second only on a fresh connection and
        // only when the first provably or very probably never reached the
        // upstream's application.
        for attempt in 0..2 {
            let (mut conn, reused) = shared.checkout(fresh_only).await?;
            conn.uses += 1;
            let in_flight = InFlight::new(&shared.counters, &shared.settings.host_stats);
            let req = origin_form(Request::from_parts(head(), send_body));
            let connect = req.method() == Method::CONNECT;
            let idempotent = is_idempotent(req.method());
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    let reusable = resp.status() != StatusCode::SWITCHING_PROTOCOLS
                        && !(connect && resp.status().is_success());
                    let lease = Lease {
                        shared: Arc::clone(shared),
                        conn: Some(conn),
                        reusable,
                        _in_flight: in_flight,
                    };
                    return Ok(resp.map(|body| UpstreamBody::new(body, Box::new(lease))));
                }
                Err(mut failed) => {
                    drop(conn);
                    // An unsent request comes back with its body unpolled,
                    // still in the slot: nothing reached the upstream.
                    let unsent = failed.take_message().is_some();
                    let err = failed.into_error();
                    let stale = reused && classify(&err) == Failure::ConnectionLost;
                    if !unsent && !stale {
                        return Err(shared.error(err, reused));
                    }
                    // The stale keep-alive race: the upstream closed the
                    // idle connection as the request went out. Replay it if
                    // it is idempotent (or was never sent) and its body is
                    // still whole.
                    let whole = slot.reclaim().or_else(|| was_empty.then(super::empty_body));
                    match whole {
                        Some(body) if attempt == 0 && (unsent || idempotent) => {
                            (send_body, slot) = SendBody::new(body);
                        }
                        _ if unsent => {
                            return Err(HttpPoolError::Refused {
                                addr: shared.addr,
                                source: err,
                            });
                        }
                        _ => {
                            return Err(HttpPoolError::StaleConnection {
                                addr: shared.addr,
                                source: err,
                            });
                        }
                    }
                    HttpPoolCounters::inc(&shared.counters.internal_retries);
                    fresh_only = true;
                }
            }
        }
        Err(HttpPoolError::Closed { addr: shared.addr })
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.shared.state().idle.len()
    }

    pub(crate) fn close(&self) {
        self.shared.close();
    }
}

impl Drop for H1Pool {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Pushes and pops only: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, err: hyper::Error, reused: bool) -> HttpPoolError {
        let addr = self.addr;
        match classify(&err) {
            Failure::Unprocessed => HttpPoolError::Refused { addr, source: err },
            Failure::ConnectionLost if reused => {
                HttpPoolError::StaleConnection { addr, source: err }
            }
            Failure::ConnectionLost | Failure::StreamReset => {
                HttpPoolError::Reset { addr, source: err }
            }
            Failure::Other => HttpPoolError::Protocol { addr, source: err },
        }
    }

    /// A live idle connection (`true`: reused) or a new one.
    async fn checkout(self: &Arc<Self>, fresh_only: bool) -> Result<(Conn, bool), HttpPoolError> {
        if !fresh_only && let Some(conn) = self.pop_live()? {
            return Ok((conn, true));
        }
        if self.state().closed {
            return Err(HttpPoolError::Closed { addr: self.addr });
        }
        Ok((self.connect().await?, false))
    }

    /// The newest idle connection still usable; stale and expired ones
    /// met on the way are closed.
    fn pop_live(&self) -> Result<Option<Conn>, HttpPoolError> {
        // Each turn pops one: bounded by the stack's size.
        loop {
            let idle = {
                let mut state = self.state();
                if state.closed {
                    return Err(HttpPoolError::Closed { addr: self.addr });
                }
                state.idle.pop()
            };
            let Some(Idle { conn, since }) = idle else {
                return Ok(None);
            };
            HttpPoolCounters::dec(&self.counters.idle);
            if self.expired(since) {
                HttpPoolCounters::inc(&self.counters.idle_expired);
            } else if conn.sender.is_closed() || !conn.sender.is_ready() {
                // The upstream closed it while it sat idle.
                HttpPoolCounters::inc(&self.counters.stale_discarded);
            } else {
                return Ok(Some(conn));
            }
        }
    }

    fn expired(&self, since: Instant) -> bool {
        self.settings
            .idle_timeout
            .is_some_and(|timeout| since.elapsed() >= timeout)
    }

    async fn connect(&self) -> Result<Conn, HttpPoolError> {
        let (stream, permit) =
            open_tcp(self.addr, &self.settings, &self.counters, &self.gate).await?;
        let open = OpenConn::new(
            Arc::clone(&self.counters),
            self.settings.host_stats.clone(),
            permit,
        );
        let mut builder = http1::Builder::new();
        builder.max_buf_size(self.settings.h1_max_buf_size.max(8192));
        let (sender, connection) = builder
            .handshake(TokioIo::new(CountedStream::new(stream, open)))
            .await
            .map_err(|source| HttpPoolError::Handshake {
                addr: self.addr,
                source,
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(%addr, %err, "upstream HTTP/1 connection ended");
            }
        });
        Ok(Conn { sender, uses: 0 })
    }

    /// Puts a connection whose exchange is over back on the stack, or
    /// closes it.
    fn checkin(self: &Arc<Self>, conn: Conn) {
        let max_uses = self.settings.max_requests_per_conn;
        if max_uses > 0 && conn.uses >= max_uses {
            HttpPoolCounters::inc(&self.counters.rotations);
            return;
        }
        let evicted = {
            let mut state = self.state();
            if state.closed || conn.sender.is_closed() {
                return;
            }
            state.idle.push(Idle {
                conn,
                since: Instant::now(),
            });
            HttpPoolCounters::inc(&self.counters.idle);
            // Bounded: the oldest idle connection makes room.
            (state.idle.len() > self.settings.max_idle_per_host.max(1))
                .then(|| state.idle.remove(0))
        };
        if evicted.is_some() {
            HttpPoolCounters::dec(&self.counters.idle);
        }
        drop(evicted);
        self.start_reaper();
    }

    /// Closes idle connections past `idle_timeout` in the background (one
    /// task per pool, ending with it).
    fn start_reaper(self: &Arc<Self>) {
        let Some(timeout) = self.settings.idle_timeout else {
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
                for _ in &expired {
                    HttpPoolCounters::dec(&shared.counters.idle);
                    HttpPoolCounters::inc(&shared.counters.idle_expired);
                }
            }
        });
    }

    fn close(&self) {
        let idle = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for _ in &idle {
            HttpPoolCounters::dec(&self.counters.idle);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.reusable {
            return;
        }
        // hyper is ready again once it has read the response to its end;
        // usually already so when the body yields its last frame.
        match std::future::poll_fn(|cx| conn.sender.poll_ready(cx)).now_or_never() {
            Some(Ok(())) => self.shared.checkin(conn),
            Some(Err(_)) => {}
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let shared = Arc::clone(&self.shared);
                // Bounded: a connection not ready within the idle timeout
                // would have been closed as idle anyway.
                let wait = shared
                    .settings
                    .idle_timeout
                    .unwrap_or(Duration::from_secs(90));
                runtime.spawn(async move {
                    if let Ok(Ok(())) = tokio::time::timeout(wait, conn.sender.ready()).await {
                        shared.checkin(conn);
                    }
                });
            }
        }
    }
}

/// RFC 9110 §9.2.2: methods whose intended effect of several identical
/// requests is that of one.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// HTTP/1 requests to an origin server carry the origin form (`/path?q`,
/// RFC 9112 §3.2.1): an absolute URI's authority moves to `Host` if the
/// request has none. CONNECT keeps its authority form and `OPTIONS *` its
/// asterisk.
fn origin_form<B>(mut req: Request<B>) -> Request<B> {
    if req.method() == Method::CONNECT {
        return req;
    }
    if req.uri().scheme().is_none() && req.uri().authority().is_none() {
        return req;
    }
    let uri = req.uri().clone();
    if !req.headers().contains_key(http::header::HOST)
        && let Some(authority) = uri.authority()
        && let Ok(host) = http::HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(http::header::HOST, host);
    }
    let path = uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let path = if path.is_empty() { "/" } else { path };
    if let Ok(origin) = Uri::try_from(path) {
        *req.uri_mut() = origin;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris_become_origin_form_with_host() {
        let req = Request::get("http://example.com:8080/a/b?c=d")
            .body(super::super::empty_body())
            .expect("request");
        let req = origin_form(req);
        assert_eq!(req.uri(), "/a/b?c=d");
        assert_eq!(req.headers()[http::header::HOST], "example.com:8080");
        let kept = Request::get("http://other/")
            .header(http::header::HOST, "mine")
            .body(super::super::empty_body())
            .expect("request");
        let kept = origin_form(kept);
        assert_eq!(kept.uri(), "/");
        assert_eq!(kept.headers()[http::header::HOST], "mine");
    }
}
