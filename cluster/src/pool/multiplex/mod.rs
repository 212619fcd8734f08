//! The multiplexed pool: per host, up to `max_connections` connections,
//! each carrying many requests paired with their responses by request id.
//!
//! The request path takes no pool-wide lock: the ready connections are an
//! `ArcSwap` snapshot, the least loaded one (fewest requests in flight) is
//! picked by reading atomics, and the request is registered in that
//! connection's book and encoded into its write buffer (one short mutex,
//! in the sending task, when `send` is called), then the connection's
//! writer task writes the buffer whole. The
//! pool-wide mutex guards only the slow path: opening connections, back-off
//! after connect failures, and closing.

mod answer;
mod book;
mod conn;
mod outbox;
mod response;

pub use self::response::ResponseFuture;

use self::conn::{Conn, Refused, Started};
use self::response::Waiting;
use crate::HostStats;
use crate::pool::OnewayFuture;
use crate::pool::backoff::Reconnect;
use crate::pool::{PoolConfig, PoolCounters, PoolError};
use arc_swap::ArcSwap;
use meshgate_codecs::{Frame, FrameCodec};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use self::conn::ConnState;

/// A multiplexed pool for one host. See the module docs of
/// [`crate::pool`] for the contract.
pub struct MultiplexPool {
    shared: Arc<Shared>,
}

impl fmt::Debug for MultiplexPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiplexPool")
            .field("addr", &self.shared.addr)
            .field("codec", &self.shared.codec.name())
            .field("ready", &self.shared.ready.load().len())
            .finish_non_exhaustive()
    }
}

/// What the pool's connections share with it.
pub(super) struct Shared {
    addr: SocketAddr,
    codec: Arc<dyn FrameCodec>,
    config: Arc<PoolConfig>,
    stats: Arc<HostStats>,
    counters: Arc<PoolCounters>,
    /// Ready connections (not connecting, not draining): the request path
    /// reads this snapshot without locking.
    ready: ArcSwap<Vec<Arc<Conn>>>,
    /// Ready plus connecting: compared with `max_connections` before
    /// taking the lock to open another.
    live: AtomicUsize,
    host: Mutex<HostState>,
    /// Bumped on every change of `host` that a waiting request cares about.
    changed: watch::Sender<()>,
    next_conn: AtomicU64,
}

/// The pool's slow-path state.
#[derive(Debug, Default)]
struct HostState {
    /// The authoritative ready list; `Shared::ready` is its snapshot.
    ready: Vec<Arc<Conn>>,
    connecting: usize,
    reconnect: Reconnect,
    closed: bool,
}

impl MultiplexPool {
    /// A pool for `addr`. Opens nothing until the first request.
    pub fn new(
        addr: SocketAddr,
        codec: Arc<dyn FrameCodec>,
        config: PoolConfig,
        stats: Arc<HostStats>,
    ) -> MultiplexPool {
        let (changed, _) = watch::channel(());
        MultiplexPool {
            shared: Arc::new(Shared {
                addr,
                codec,
                config: Arc::new(config),
                stats,
                counters: Arc::default(),
                ready: ArcSwap::from_pointee(Vec::new()),
                live: AtomicUsize::new(0),
                host: Mutex::new(HostState::default()),
                changed,
                next_conn: AtomicU64::new(1),
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

    /// Ready connections now (draining and connecting ones excluded).
    pub fn ready_connections(&self) -> usize {
        self.shared.ready.load().len()
    }

    /// Sends a two-way request; the future answers with its response,
    /// which comes back with the request's downstream id.
    ///
    /// The request is registered on a connection and encoded into its
    /// write buffer here, when `send` is called, if a ready connection has
    /// room; the returned future then holds only the answer channel.
    /// Otherwise (no connection yet, all full, buffer past its high-water
    /// mark) the future waits for one.
    ///
    /// Cancel-safe: dropping the future abandons the request. If it was not
    /// written yet it never will be; if it was, its id stays reserved until
    /// the late response arrives, which is then discarded and counted in
    /// [`PoolCounters::late_responses`].
    pub fn send(&self, mut req: Frame) -> ResponseFuture<'_> {
        self.dispatch(&mut req, |req| {
            std::mem::replace(req, Frame::new(req.kind, 0))
        })
    }

    /// [`MultiplexPool::send`], leaving `req` with the caller as it was
    /// (its id restored after the encode): a request kept for a retry
    /// needs no copy. Only a request that has to wait for a connection or
    /// for room is copied, into the waiting future.
    pub fn send_keep(&self, req: &mut Frame) -> ResponseFuture<'_> {
        let downstream_id = req.request_id;
        let sent = self.dispatch(req, |req| req.clone());
        if req.request_id != downstream_id {
            self.shared.codec.set_request_id(req, downstream_id);
        }
        sent
    }

    /// The two `send`s: `take` gives the slow path its own frame.
    fn dispatch(
        &self,
        req: &mut Frame,
        take: impl FnOnce(&mut Frame) -> Frame,
    ) -> ResponseFuture<'_> {
        match self.shared.attempt(req, true) {
            Attempt::Started(
                conn,
                Started::TwoWay {
                    id,
                    rx,
                    waiting: false,
                    ..
                },
            ) => ResponseFuture::waiting(conn, id, rx),
            Attempt::Failed(err) => ResponseFuture::failed(err),
            first => ResponseFuture::boxed(Box::pin(self.send_slow(take(req), first))),
        }
    }

    /// `send` when the first attempt did not end it.
    async fn send_slow(&self, mut req: Frame, first: Attempt) -> Result<Frame, PoolError> {
        let (conn, started) = self.start(&mut req, true, first).await?;
        let Started::TwoWay {
            id, rx, waiting, ..
        } = started
        else {
            debug_assert!(false, "a two-way start returns a receiver");
            return Err(PoolError::UpstreamReset { written: false });
        };
        // Armed from here: dropped while waiting for room, the request is
        // withdrawn.
        let answer = Waiting::new(conn, id, rx);
        if waiting {
            answer.conn().encode_when_room(Some(id), &req).await?;
        }
        drop(req);
        answer.await
    }

    /// Sends a oneway request: `Ok` once it is in a connection's write
    /// buffer (nothing answers a oneway request, so nothing more is known).
    pub async fn send_oneway(&self, mut req: Frame) -> Result<(), PoolError> {
        let first = self.shared.attempt(&mut req, false);
        self.send_oneway_slow(req, first).await
    }

    /// [`MultiplexPool::send_oneway`], leaving `req` with the caller as it
    /// was (its id restored after the encode). A request queued at once
    /// needs no future of its own; only one that has to wait for a
    /// connection or for room is copied, into a boxed future (so the
    /// caller's state machine, which every request moves around, does not
    /// carry the waiting one inline).
    pub fn send_oneway_keep(&self, req: &mut Frame) -> OnewayFuture<'_> {
        let downstream_id = req.request_id;
        let sent = match self.shared.attempt(req, false) {
            Attempt::Started(_, started) if !started.waiting() => OnewayFuture::done(Ok(())),
            Attempt::Failed(err) => OnewayFuture::done(Err(err)),
            first => OnewayFuture::boxed(Box::pin(self.send_oneway_slow(req.clone(), first))),
        };
        if req.request_id != downstream_id {
            self.shared.codec.set_request_id(req, downstream_id);
        }
        sent
    }

    /// `send_oneway` when the first attempt did not end it.
    async fn send_oneway_slow(&self, mut req: Frame, first: Attempt) -> Result<(), PoolError> {
        let (conn, started) = self.start(&mut req, false, first).await?;
        if started.waiting() {
            conn.encode_when_room(None, &req).await?;
        }
        Ok(())
    }

    /// Stops taking requests; every connection drains (in-flight requests
    /// finish, up to `drain_timeout`) and closes.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Registers `req` on a ready connection, opening or waiting for one
    /// when needed; `last` is the outcome of the attempt made already.
    async fn start(
        &self,
        req: &mut Frame,
        two_way: bool,
        mut last: Attempt,
    ) -> Result<(Arc<Conn>, Started), PoolError> {
        let shared = &self.shared;
        let mut races = 0;
        // Held while this request waits for a connection.
        let mut pending = None;
        loop {
            match last {
                Attempt::Started(conn, started) => return Ok((conn, started)),
                Attempt::Failed(err) => return Err(err),
                Attempt::Refused { full } => {
                    // Another request took the last slot, or the
                    // connection started draining: look again, a few
                    // times, then report the overflow.
                    races += 1;
                    if races > 8 || (full && races > 2) {
                        return Err(shared.overflow("in-flight limit"));
                    }
                }
                Attempt::NoConnection => {
                    if pending.is_none() {
                        pending = Some(crate::pool::admit_pending(
                            &shared.config,
                            shared.addr,
                            &shared.counters,
                        )?);
                    }
                    let mut changed = shared.wait_for_connection()?;
                    // Bounded: the connect it waits for times out by itself.
                    let bound = shared.config.connect_timeout + std::time::Duration::from_secs(1);
                    let _ = tokio::time::timeout(bound, changed.changed()).await;
                }
            }
            last = shared.attempt(req, two_way);
        }
    }
}

impl Drop for MultiplexPool {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// What one try to place a request on a ready connection gave.
enum Attempt {
    /// Registered (and encoded unless `waiting`).
    Started(Arc<Conn>, Started),
    /// The request cannot be sent at all.
    Failed(PoolError),
    /// The chosen connection did not take it; `full`: at its limit (else
    /// not ready, now retired).
    Refused { full: bool },
    /// No ready connection with room.
    NoConnection,
}

impl Shared {
    /// One try: the least loaded ready connection takes the request.
    fn attempt(self: &Arc<Self>, req: &mut Frame, two_way: bool) -> Attempt {
        self.maybe_grow();
        let Some(conn) = self.least_loaded() else {
            return Attempt::NoConnection;
        };
        match conn.start(req, two_way) {
            Ok(started) => {
                if started.rotated() {
                    self.retire(&conn);
                }
                Attempt::Started(conn, started)
            }
            Err(Refused::Encode(err)) => Attempt::Failed(PoolError::Encode(err)),
            Err(Refused::Full) => Attempt::Refused { full: true },
            Err(Refused::NotReady) => {
                self.retire(&conn);
                Attempt::Refused { full: false }
            }
        }
    }

    fn host(&self) -> MutexGuard<'_, HostState> {
        // The state stays consistent across a panic elsewhere (every update
        // is a few plain assignments), so a poisoned lock is still usable.
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn overflow(&self, what: &'static str) -> PoolError {
        PoolCounters::inc(&self.counters.overflows);
        PoolError::Overflow {
            addr: self.addr,
            what,
        }
    }

    /// The ready connection with the fewest requests in flight that still
    /// has room.
    fn least_loaded(&self) -> Option<Arc<Conn>> {
        let ready = self.ready.load();
        let max = self.config.max_in_flight_per_conn;
        ready
            .iter()
            .map(|conn| (conn.in_flight(), conn))
            .filter(|(load, _)| *load < max)
            .min_by_key(|(load, _)| *load)
            .map(|(_, conn)| Arc::clone(conn))
    }

    /// Opens another connection when fewer than `max_connections` are
    /// ready or connecting, none is connecting, and the host is not in
    /// back-off. Connections are opened eagerly, so requests spread over
    /// all of them.
    fn maybe_grow(self: &Arc<Self>) {
        if self.live.load(Ordering::Acquire) >= self.config.max_connections.max(1) {
            return;
        }
        let mut host = self.host();
        if host.closed || host.connecting > 0 || host.reconnect.blocked(Instant::now()).is_some() {
            return;
        }
        if self.live.load(Ordering::Acquire) < self.config.max_connections.max(1) {
            // At the cluster's max_connections this just does not grow; a
            // request that finds no room says so in wait_for_connection.
            match &self.config.breaker {
                None => self.spawn_connect(&mut host, None),
                Some(breaker) => {
                    if let Some(permit) = breaker.try_spare_connection() {
                        self.spawn_connect(&mut host, Some(permit));
                    }
                }
            }
        }
    }

    /// A `max_connections` permit for the connection a request waits for
    /// (`Ok(None)` without a breaker); a refusal fails the request and is
    /// counted.
    fn connection_permit(&self) -> Result<Option<crate::breaker::BreakerPermit>, PoolError> {
        let Some(breaker) = &self.config.breaker else {
            return Ok(None);
        };
        match breaker.try_connection() {
            Some(permit) => Ok(Some(permit)),
            None => Err(self.overflow("cluster max_connections")),
        }
    }

    /// Called with no usable ready connection: a receiver to wait on while
    /// a connect is under way, or the error to fail with.
    fn wait_for_connection(self: &Arc<Self>) -> Result<watch::Receiver<()>, PoolError> {
        let mut host = self.host();
        if host.closed {
            return Err(PoolError::Closed { addr: self.addr });
        }
        let max = self.config.max_in_flight_per_conn;
        if host.ready.iter().any(|conn| conn.in_flight() < max) {
            // Room appeared since the snapshot was read: try again at once.
            let mut rx = self.changed.subscribe();
            rx.mark_changed();
            return Ok(rx);
        }
        if host.connecting == 0 {
            if let Some(err) = host.reconnect.blocked(Instant::now()) {
                return Err(err);
            }
            if self.live.load(Ordering::Acquire) >= self.config.max_connections.max(1) {
                return Err(self.overflow("every connection at max in-flight"));
            }
            let permit = self.connection_permit()?;
            self.spawn_connect(&mut host, permit);
        }
        Ok(self.changed.subscribe())
    }

    /// Starts connecting; `permit` (the cluster's `max_connections`) is
    /// held until the connection's task ends.
    fn spawn_connect(
        self: &Arc<Self>,
        host: &mut HostState,
        permit: Option<crate::breaker::BreakerPermit>,
    ) {
        host.connecting += 1;
        self.live.fetch_add(1, Ordering::AcqRel);
        self.counters.connect_attempt(self.config.max_connections);
        let serial = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let conn = Conn::new(serial, self);
        let run = conn::run(conn, Arc::downgrade(self));
        tokio::spawn(async move {
            let _permit = permit;
            run.await;
        });
    }

    /// A connection finished connecting. False if the pool closed
    /// meanwhile (the connection must close).
    fn on_connected(&self, conn: &Arc<Conn>) -> bool {
        let mut host = self.host();
        host.connecting -= 1;
        host.reconnect.on_success();
        if host.closed {
            self.live.fetch_sub(1, Ordering::AcqRel);
            drop(host);
            self.changed.send_replace(());
            return false;
        }
        host.ready.push(Arc::clone(conn));
        self.ready.store(Arc::new(host.ready.clone()));
        drop(host);
        self.changed.send_replace(());
        true
    }

    /// A connect failed: back-off starts (or grows).
    fn on_connect_failed(&self, err: PoolError) {
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        let mut host = self.host();
        host.connecting -= 1;
        self.live.fetch_sub(1, Ordering::AcqRel);
        host.reconnect
            .on_failure(err, &self.config.backoff, Instant::now());
        drop(host);
        self.changed.send_replace(());
    }

    /// Takes a connection out of the ready list (it drains or closed).
    fn retire(&self, conn: &Arc<Conn>) {
        let mut host = self.host();
        let before = host.ready.len();
        host.ready.retain(|c| !Arc::ptr_eq(c, conn));
        if host.ready.len() == before {
            return;
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.ready.store(Arc::new(host.ready.clone()));
        drop(host);
        self.changed.send_replace(());
    }

    fn close(&self) {
        let mut host = self.host();
        host.closed = true;
        let conns = std::mem::take(&mut host.ready);
        self.live.fetch_sub(conns.len(), Ordering::AcqRel);
        self.ready.store(Arc::new(Vec::new()));
        drop(host);
        for conn in conns {
            conn.drain();
        }
        self.changed.send_replace(());
    }
}
