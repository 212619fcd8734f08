//! One multiplexed upstream connection: its state machine, its book of
//! in-flight requests, a writer task (queue → batch → one flush) and a
//! reader (frames → waiting callers, pings, GoAway, keep-alive).
//!
//! # States
//!
//! ```text
//!  Connecting ──connected──► Ready ──rotate / GoAway / close──► Draining
//!      │                       │                                   │
//!      └──connect failed──►  Closed ◄──error, EOF, pings unanswered,─┘
//!                                     drain timeout; or Draining and
//!                                     the last request answered
//! ```
//!
//! | state | event | next | effect |
//! |---|---|---|---|
//! | Connecting | TCP connect done, pool open | Ready | joins the pool's ready list; reader and writer start |
//! | Connecting | connect failed or timed out | Closed | the pool enters back-off; waiting requests get the error |
//! | Connecting | connected, but the pool closed | Closed | socket dropped |
//! | Ready | request started | Ready | fresh id, book entry, frame queued for the writer |
//! | Ready | `max_requests_per_conn` reached, GoAway read, pool closed | Draining | leaves the ready list; takes no new request |
//! | Draining | last in-flight request answered (or abandoned before written) | Closed | graceful close |
//! | Ready, Draining | EOF, read / decode / write error, `heartbeat_max_misses` pings unanswered, `drain_timeout` | Closed | every in-flight caller gets `UpstreamReset { written }` |
//!
//! The state lives in the book, under the book's mutex, so "is this
//! connection taking requests" and "register this request" are one atomic
//! step, and a closing connection can never gain an entry after it failed
//! its in-flight requests.

mod io;
mod keepalive;

pub(super) use self::io::run;

use super::Shared;
use super::book::{Book, Pending, Waiter, WriteCheck};
use crate::HostStats;
use crate::pool::{PoolConfig, PoolCounters, PoolError};
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Where a pooled connection is in its life (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// The TCP connect is under way.
    Connecting,
    /// Takes new requests.
    Ready,
    /// Finishes its in-flight requests, takes no new one.
    Draining,
    /// Gone; every caller has been answered.
    Closed,
}

/// What the writer task writes.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// `Some(upstream id)` for a two-way request, which is checked against
    /// the book before it is written; `None` for oneway requests, pings and
    /// pongs.
    id: Option<u64>,
    frame: Frame,
}

impl Outgoing {
    fn new(id: Option<u64>, frame: Frame) -> Outgoing {
        Outgoing { id, frame }
    }
}

/// A request registered on a connection.
#[derive(Debug)]
pub(super) enum Started {
    /// Wait on `rx`; `id` is the upstream id (to abandon it).
    TwoWay {
        conn: Arc<Conn>,
        id: u64,
        rx: oneshot::Receiver<Result<Frame, PoolError>>,
        rotated: bool,
    },
    /// Queued; nothing to wait for.
    Oneway { rotated: bool },
}

impl Started {
    /// This request used up the connection's `max_requests_per_conn`: the
    /// connection drains and must leave the ready list.
    pub(super) fn rotated(&self) -> bool {
        match self {
            Started::TwoWay { rotated, .. } | Started::Oneway { rotated } => *rotated,
        }
    }
}

/// A request the connection did not take, handed back (with its own id)
/// to be tried elsewhere. Boxed in `Err`: a `Frame` is large, and this
/// path is rare.
#[derive(Debug)]
pub(super) struct Refused {
    pub(super) frame: Frame,
    /// True: in-flight limit or write queue full. False: not ready.
    pub(super) full: bool,
}

/// One upstream connection, shared by the pool's ready list, the callers
/// waiting on it, and its reader and writer.
#[derive(Debug)]
pub(super) struct Conn {
    serial: u64,
    addr: SocketAddr,
    codec: Arc<dyn FrameCodec>,
    config: Arc<PoolConfig>,
    stats: Arc<HostStats>,
    counters: Arc<PoolCounters>,
    book: Mutex<Book>,
    /// Mirror of the book's request count, read without the lock to pick
    /// the least loaded connection.
    in_flight: AtomicUsize,
    tx: mpsc::Sender<Outgoing>,
    /// Pokes the reader to look at the state (draining, drained).
    wake: Notify,
    /// Stops the reader and the writer.
    cancel: CancellationToken,
}

impl Conn {
    /// A connection in `Connecting`, and the writer queue's receiver.
    pub(super) fn new(serial: u64, pool: &Shared) -> (Arc<Conn>, mpsc::Receiver<Outgoing>) {
        let max_in_flight = pool.config.max_in_flight_per_conn.max(1);
        let (tx, rx) = mpsc::channel(max_in_flight.saturating_add(64));
        let conn = Conn {
            serial,
            addr: pool.addr,
            codec: Arc::clone(&pool.codec),
            config: Arc::clone(&pool.config),
            stats: Arc::clone(&pool.stats),
            counters: Arc::clone(&pool.counters),
            book: Mutex::new(Book::new(
                pool.codec.max_request_id(),
                max_in_flight.min(4096),
            )),
            in_flight: AtomicUsize::new(0),
            tx,
            wake: Notify::new(),
            cancel: CancellationToken::new(),
        };
        (Arc::new(conn), rx)
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Book updates are plain assignments that cannot be torn by a
        // panic elsewhere, so a poisoned lock is still consistent.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests in flight (lock-free read).
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Registers `frame` (two-way: with a waiting caller), gives it a fresh
    /// upstream id in place, and queues it for the writer.
    pub(super) fn start(
        self: &Arc<Self>,
        mut frame: Frame,
        two_way: bool,
    ) -> Result<Started, Box<Refused>> {
        let downstream_id = frame.request_id;
        let (reply, rx) = if two_way {
            let (reply, rx) = oneshot::channel();
            (Some(reply), Some(rx))
        } else {
            (None, None)
        };
        let mut book = self.book();
        if book.state != ConnState::Ready {
            return Err(Box::new(Refused { frame, full: false }));
        }
        let id = match reply {
            Some(_) if book.requests() >= self.config.max_in_flight_per_conn.max(1) => None,
            Some(reply) => book.insert_request(reply, downstream_id),
            None => book.oneway_id(),
        };
        let Some(id) = id else {
            return Err(Box::new(Refused { frame, full: true }));
        };
        let max_requests = self.config.max_requests_per_conn;
        let rotated = max_requests > 0 && book.started() >= max_requests;
        if rotated {
            book.state = ConnState::Draining;
        }
        if two_way {
            // Counted under the lock, so a concurrent close, which
            // subtracts what it finds in the book, never runs first.
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            self.stats.active_requests.fetch_add(1, Ordering::Relaxed);
            self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        drop(book);
        if rotated {
            PoolCounters::inc(&self.counters.drains);
            self.wake.notify_one();
        }

        // The zero-copy path: the id is patched in the wire bytes.
        self.codec.set_request_id(&mut frame, id);
        let item = Outgoing::new(two_way.then_some(id), frame);
        if let Err(err) = self.tx.try_send(item) {
            let full = matches!(err, mpsc::error::TrySendError::Full(_));
            let mut frame = err.into_inner().frame;
            if two_way {
                self.forget(id);
            }
            self.codec.set_request_id(&mut frame, downstream_id);
            return Err(Box::new(Refused { frame, full }));
        }
        self.stats.total_requests.fetch_add(1, Ordering::Relaxed);
        Ok(match rx {
            Some(rx) => Started::TwoWay {
                conn: Arc::clone(self),
                id,
                rx,
                rotated,
            },
            None => Started::Oneway { rotated },
        })
    }

    /// Undoes a registration whose frame never reached the queue.
    fn forget(&self, id: u64) {
        let (gone, drained) = {
            let mut book = self.book();
            let gone = book.take(id).is_some();
            (gone, Self::drained(&book))
        };
        if gone {
            self.released(1, drained);
        }
    }

    fn drained(book: &Book) -> bool {
        book.state == ConnState::Draining && book.requests() == 0
    }

    /// Accounts for `n` request entries leaving the book.
    fn released(&self, n: usize, drained: bool) {
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
        self.stats
            .active_requests
            .fetch_sub(n as u64, Ordering::Relaxed);
        self.counters
            .in_flight
            .fetch_sub(n as u64, Ordering::Relaxed);
        if drained {
            self.wake.notify_one();
        }
    }

    /// The caller of `id` dropped its `send` future.
    pub(super) fn abandon(&self, id: u64) {
        if self.book().abandon(id) {
            PoolCounters::inc(&self.counters.cancelled);
        }
    }

    /// Stops taking requests; in-flight ones finish.
    pub(super) fn drain(&self) {
        let mut book = self.book();
        if book.state != ConnState::Ready {
            return;
        }
        book.state = ConnState::Draining;
        drop(book);
        PoolCounters::inc(&self.counters.drains);
        self.wake.notify_one();
    }

    /// Closes the book and answers every waiting caller with
    /// `UpstreamReset { written }`.
    fn close(&self) {
        let pending = self.book().close();
        let mut requests = 0;
        for Pending { waiter, written } in pending {
            match waiter {
                Waiter::Caller { reply, .. } => {
                    requests += 1;
                    PoolCounters::inc(&self.counters.resets);
                    // The caller may be gone too; nothing to tell then.
                    let _ = reply.send(Err(PoolError::UpstreamReset { written }));
                }
                Waiter::Abandoned => requests += 1,
                Waiter::Ping => {}
            }
        }
        self.released(requests, false);
        self.cancel.cancel();
    }

    fn on_frame(self: &Arc<Self>, frame: Frame, pool: &Weak<Shared>) {
        match frame.kind {
            FrameKind::Response => self.on_response(frame),
            FrameKind::Heartbeat { reply: true } => {
                self.book().take_ping(frame.request_id);
            }
            FrameKind::Heartbeat { reply: false } => {
                if let Some(pong) = self.codec.heartbeat_reply(&frame)
                    && self.tx.try_send(Outgoing::new(None, pong)).is_ok()
                {
                    PoolCounters::inc(&self.counters.pongs_sent);
                }
            }
            FrameKind::GoAway => {
                PoolCounters::inc(&self.counters.goaways);
                self.drain();
                if let Some(pool) = pool.upgrade() {
                    pool.retire(self);
                }
            }
            FrameKind::Request | FrameKind::Oneway => {
                tracing::debug!(
                    upstream = %self.addr,
                    conn = self.serial,
                    "ignoring a request sent by the upstream"
                );
            }
        }
    }

    /// Hands a response to its caller with the downstream id restored.
    fn on_response(&self, mut frame: Frame) {
        let (pending, drained) = {
            let mut book = self.book();
            let pending = book.take(frame.request_id);
            (pending, Self::drained(&book))
        };
        let Some(pending) = pending else {
            PoolCounters::inc(&self.counters.unknown_responses);
            return;
        };
        match pending.waiter {
            Waiter::Caller {
                reply,
                downstream_id,
            } => {
                self.released(1, drained);
                self.codec.set_request_id(&mut frame, downstream_id);
                if reply.send(Ok(frame)).is_err() {
                    // The caller gave up between our lookup and now: it
                    // counts as cancelled, and its answer as late.
                    PoolCounters::inc(&self.counters.cancelled);
                    PoolCounters::inc(&self.counters.late_responses);
                }
            }
            Waiter::Abandoned => {
                self.released(1, drained);
                PoolCounters::inc(&self.counters.late_responses);
            }
            Waiter::Ping => {}
        }
    }

    /// Sends a keep-alive ping under a fresh id. False if the codec has no
    /// ping or the connection cannot take one.
    fn send_ping(&self) -> bool {
        let Some(id) = self.book().insert_ping() else {
            return false;
        };
        let sent = self
            .codec
            .heartbeat_request(id)
            .is_some_and(|ping| self.tx.try_send(Outgoing::new(None, ping)).is_ok());
        if sent {
            PoolCounters::inc(&self.counters.pings_sent);
        } else {
            self.book().take_ping(id);
        }
        sent
    }

    /// The writer is about to hand request `id` to the socket: marks it
    /// written, or says to drop it (its caller gave up before it was
    /// written, so the upstream never sees it; or the connection closed).
    /// Checked frame by frame, right before each write, so `written` is
    /// exact even when the socket pushes back in the middle of a batch.
    fn check_write(&self, id: u64) -> bool {
        let (check, drained) = {
            let mut book = self.book();
            let check = book.check_write(id);
            (check, Self::drained(&book))
        };
        match check {
            WriteCheck::Write => true,
            WriteCheck::DropAbandoned => {
                self.released(1, drained);
                false
            }
            WriteCheck::DropGone => false,
        }
    }

    /// A request the codec could not encode: only that caller fails.
    fn fail_request(&self, id: u64, err: PoolError) {
        let (pending, drained) = {
            let mut book = self.book();
            let pending = book.take(id);
            (pending, Self::drained(&book))
        };
        if let Some(pending) = pending {
            self.released(1, drained);
            if let Waiter::Caller { reply, .. } = pending.waiter {
                let _ = reply.send(Err(err));
            }
        }
    }
}
