//! The HTTP/1.1 pool: ping-pong keep-alive connections (one exchange at a
//! time each), idle ones in a LIFO stack so the warm connection is reused
//! and the cold ones age out.
//!
//! The pool speaks HTTP/1.1 itself ([`wire`]: request head out, response
//! head in with `httparse`, bodies by length, chunked or until close) and
//! the request's own task does the I/O ([`conn`]): no connection task, no
//! channel and no extra wake-up per request. A request that asks for a
//! protocol upgrade (or CONNECT) goes through hyper's client instead, on a
//! connection that then belongs to the upgrade.
//!
//! Life of a connection:
//!
//! ```text
//!  connect ──> busy ──(response body finished, request fully sent)──> idle ──(checkout)──> busy
//!               │  └─(body dropped half-read, error, close, rotation)──> closed
//!               └─ idle: upstream closed it ─> discarded at checkout or by the sweep; too old ─> reaped
//! ```
//!
//! The socket carries the connection's [`OpenConn`] count
//! ([`CountedStream`]), so a connection handed over after a 101 stays
//! counted until its new owner closes it.
//!
//! A connection is lent with its response: the [`UpstreamBody`] holds it,
//! and checks it in when the body ends. The request counts as in flight
//! until then.

mod conn;
mod wire;

pub(crate) use conn::WireBody;
pub use wire::parse_decimal as parse_content_length;

use crate::pool::http::body::UpstreamBody;
use crate::pool::http::counters::{CountedStream, HttpPoolCounters, InFlight, OpenConn};
use crate::pool::http::error::from_exchange;
use crate::pool::http::{
    ConnectGate, HttpBody, HttpPoolError, HttpPoolSettings, LentHead, open_tcp,
};
use conn::{Failed, WireConn};
use http::request::Parts;
use http::{Method, Request, Response, Uri};
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

pub(crate) struct Shared {
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
    /// Boxed, as everywhere in the pool and in `WireBody`: the connection
    /// with its buffers is moved at every checkout, response and checkin.
    conn: Box<WireConn>,
    since: Instant,
}

/// An upgrade's hold on hyper's client connection, kept by the response
/// body: the connection closes when both are done.
struct UpgradeLease {
    _sender: http1::SendRequest<HttpBody>,
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

    /// Sends the request `head` makes with `body`.
    pub(crate) async fn send(
        &self,
        mut head: impl FnMut() -> Parts,
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let parts = head();
        self.send_lent(LentHead::of(&parts), body).await
    }

    /// Sends `head` with `body`: written from the borrowed head, for each
    /// attempt.
    pub(crate) async fn send_lent(
        &self,
        head: LentHead<'_>,
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let shared = &self.shared;
        if *head.method == Method::CONNECT || head.headers.contains_key(http::header::UPGRADE) {
            // Boxed: rare, and its future (hyper's handshake) would double
            // the size of every request's.
            return Box::pin(shared.send_upgrade(head.to_parts(), body)).await;
        }
        let idempotent = is_idempotent(head.method);
        let mut body = body;
        let mut fresh_only = false;
        // At most two attempts: the second only on a fresh connection and
        // only when the first provably or very probably never reached the
        // upstream's application.
        for attempt in 0..2 {
            let (mut conn, reused) = shared.checkout(fresh_only).await?;
            let was_empty = http_body::Body::is_end_stream(&body);
            conn.uses += 1;
            let in_flight = InFlight::new(&shared.counters, &shared.settings.host_stats);
            let error = match conn.exchange(&head, body).await {
                Ok((response, sent_whole)) => {
                    let reusable = response.keep_alive && sent_whole;
                    let body = WireBody::new(
                        conn,
                        response.framing,
                        reusable,
                        Arc::clone(shared),
                        in_flight,
                    );
                    return Ok(response.response.map(|()| UpstreamBody::wire(body)));
                }
                Err(Failed::Unsent(error, whole)) => {
                    if attempt > 0 {
                        return Err(HttpPoolError::Refused {
                            addr: shared.addr,
                            source: error.into(),
                        });
                    }
                    body = whole;
                    error
                }
                Err(Failed::Lost {
                    error,
                    response_bytes,
                }) => {
                    // The stale keep-alive race: the upstream closed the
                    // idle connection as the request went out. Replay it if
                    // it is idempotent and its body was empty.
                    let stale = reused && !response_bytes && error.is_connection_lost();
                    if !(stale && attempt == 0 && idempotent && was_empty) {
                        return Err(shared.wire_error(error, reused));
                    }
                    body = super::empty_body();
                    error
                }
            };
            tracing::debug!(addr = %shared.addr, %error, "upstream HTTP/1 request sent again on a fresh connection");
            HttpPoolCounters::inc(&shared.counters.internal_retries);
            fresh_only = true;
        }
        Err(HttpPoolError::Closed { addr: shared.addr })
    }

    /// Idle connections, once those the upstream closed are gone.
    pub(crate) fn idle_connections(&self) -> usize {
        self.shared.sweep_stale();
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

    fn wire_error(&self, error: wire::WireError, reused: bool) -> HttpPoolError {
        let addr = self.addr;
        let lost = error.is_connection_lost();
        let source = error.into();
        match (lost, reused) {
            (true, true) => HttpPoolError::StaleConnection { addr, source },
            (true, false) => HttpPoolError::Reset { addr, source },
            (false, _) => HttpPoolError::Protocol { addr, source },
        }
    }

    fn hyper_error(&self, err: hyper::Error) -> HttpPoolError {
        from_exchange(self.addr, err)
    }

    /// A live idle connection (`true`: reused) or a new one.
    async fn checkout(
        self: &Arc<Self>,
        fresh_only: bool,
    ) -> Result<(Box<WireConn>, bool), HttpPoolError> {
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
    fn pop_live(&self) -> Result<Option<Box<WireConn>>, HttpPoolError> {
        // Each turn pops one: bounded by the stack's size.
        loop {
            let idle = {
                let mut state = self.state();
                if state.closed {
                    return Err(HttpPoolError::Closed { addr: self.addr });
                }
                state.idle.pop()
            };
            let Some(Idle { mut conn, since }) = idle else {
                return Ok(None);
            };
            HttpPoolCounters::dec(&self.counters.idle);
            if self.expired(since) {
                HttpPoolCounters::inc(&self.counters.idle_expired);
            } else if conn.is_stale() {
                // The upstream closed it while it sat idle.
                HttpPoolCounters::inc(&self.counters.stale_discarded);
            } else {
                return Ok(Some(conn));
            }
        }
    }

    /// Closes the idle connections the upstream has closed (nothing reads
    /// an idle connection, so this is when the pool notices).
    fn sweep_stale(&self) {
        let stale: Vec<Idle> = {
            let mut state = self.state();
            let mut stale = Vec::new();
            let mut index = 0;
            while index < state.idle.len() {
                if state.idle[index].conn.is_stale() {
                    stale.push(state.idle.remove(index));
                } else {
                    index += 1;
                }
            }
            stale
        };
        for _ in &stale {
            HttpPoolCounters::dec(&self.counters.idle);
            HttpPoolCounters::inc(&self.counters.stale_discarded);
        }
    }

    fn expired(&self, since: Instant) -> bool {
        self.settings
            .idle_timeout
            .is_some_and(|timeout| since.elapsed() >= timeout)
    }

    async fn open(&self) -> Result<CountedStream, HttpPoolError> {
        let (stream, permit) =
            open_tcp(self.addr, &self.settings, &self.counters, &self.gate).await?;
        let open = OpenConn::new(
            Arc::clone(&self.counters),
            self.settings.host_stats.clone(),
            permit,
        );
        Ok(CountedStream::new(stream, open))
    }

    async fn connect(&self) -> Result<Box<WireConn>, HttpPoolError> {
        Ok(Box::new(WireConn::new(
            self.open().await?,
            self.settings.h1_max_buf_size,
        )))
    }

    /// An upgrade request (or CONNECT) through hyper's client, on a
    /// connection of its own from then on: after a 101 (or a CONNECT's
    /// 2xx) the caller takes it with `hyper::upgrade::on`; after any other
    /// answer it closes with the body.
    async fn send_upgrade(
        self: &Arc<Self>,
        head: Parts,
        body: HttpBody,
    ) -> Result<Response<UpstreamBody>, HttpPoolError> {
        let (conn, _) = self.checkout(false).await?;
        let mut builder = http1::Builder::new();
        builder.max_buf_size(self.settings.h1_max_buf_size.max(8192));
        let (mut sender, connection) = builder
            .handshake(TokioIo::new(conn.into_stream()))
            .await
            .map_err(|source| HttpPoolError::Handshake {
                addr: self.addr,
                source: source.into(),
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(%addr, %err, "upstream HTTP/1 upgrade connection ended");
            }
        });
        let in_flight = InFlight::new(&self.counters, &self.settings.host_stats);
        let request = origin_form(Request::from_parts(head, body));
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| self.hyper_error(err))?;
        let lease = UpgradeLease {
            _sender: sender,
            _in_flight: in_flight,
        };
        Ok(response.map(|body| UpstreamBody::new(body, Box::new(lease))))
    }

    /// Puts a connection whose exchange is over back on the stack, or
    /// closes it.
    fn checkin(self: &Arc<Self>, conn: Box<WireConn>) {
        let max_uses = self.settings.max_requests_per_conn;
        if max_uses > 0 && conn.uses >= max_uses {
            HttpPoolCounters::inc(&self.counters.rotations);
            return;
        }
        let evicted = {
            let mut state = self.state();
            if state.closed {
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

    /// Closes idle connections past `idle_timeout`, and those the upstream
    /// closed, in the background (one task per pool, ending with it).
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let timeout = self.settings.idle_timeout;
        let pool: Weak<Shared> = Arc::downgrade(self);
        let period = timeout
            .map_or(SWEEP_PERIOD, |timeout| (timeout / 2).min(SWEEP_PERIOD))
            .max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(shared) = pool.upgrade() else {
                    return;
                };
                if shared.state().closed {
                    return;
                }
                shared.sweep_stale();
                let Some(timeout) = timeout else {
                    continue;
                };
                let expired: Vec<Idle> = {
                    let mut state = shared.state();
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

/// How often idle connections are checked for a close by the upstream.
const SWEEP_PERIOD: Duration = Duration::from_secs(5);

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
