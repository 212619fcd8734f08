//! One multiplexed upstream connection: its state machine, its book of
//! in-flight requests with its write buffer (each request is encoded into
//! it by the task that sends it), a writer task (takes the buffer whole,
//! one socket write per batch) and a reader (frames → waiting callers,
//! pings, GoAway, keep-alive).
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
//! | Ready | request started | Ready | fresh id, book entry, frame encoded into the write buffer (or, past its high-water mark, the caller waits for room) |
//! | Ready | `max_requests_per_conn` reached, GoAway read, pool closed | Draining | leaves the ready list; takes no new request |
//! | Draining | last in-flight request answered (or withdrawn before written) | Closed | graceful close |
//! | Ready, Draining | EOF, read / decode / write error, `heartbeat_max_misses` pings unanswered, `drain_timeout` | Closed | every in-flight caller gets `UpstreamReset { written }` |
//!
//! The state lives in the book, under the book's mutex, so "is this
//! connection taking requests" and "register this request" are one atomic
//! step, and a closing connection can never gain an entry after it failed
//! its in-flight requests.
//!
//! # Written or not
//!
//! Whether a failed request may be retried depends on whether the upstream
//! may have seen it. A request counts as written once the writer took the
//! batch its bytes are in (the write buffer's batch number passed the one
//! recorded in its book entry), even if the socket write then failed. A
//! request still in the open buffer, or waiting for room, is not written:
//! if its caller gives up, its bytes are cut out and the upstream never
//! sees it; if the connection dies, its caller gets `written: false`.

mod io;
mod keepalive;

pub(super) use self::io::run;

use super::Shared;
use super::answer::{self, AnswerRx, Slot};
use super::book::{Abandoned, Book, Closed, Waiter};
use super::outbox::{HIGH_WATER, Queued};
use crate::HostStats;
use crate::pool::{PoolConfig, PoolCounters, PoolError};
use bytes::BytesMut;
use meshgate_codecs::{CodecError, Frame, FrameCodec, FrameKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;
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

/// The channel a two-way request's answer comes back on.
pub(super) type Answer = AnswerRx;

/// A request registered on a connection.
#[derive(Debug)]
pub(super) enum Started {
    /// Wait on `rx`; `id` is the upstream id (to abandon it).
    TwoWay {
        id: u64,
        rx: Answer,
        rotated: bool,
        /// Not encoded: the write buffer was full, the caller must wait
        /// for room ([`Conn::encode_when_room`]).
        waiting: bool,
    },
    /// Nothing to wait for once encoded.
    Oneway { rotated: bool, waiting: bool },
}

impl Started {
    /// This request used up the connection's `max_requests_per_conn`: the
    /// connection drains and must leave the ready list.
    pub(super) fn rotated(&self) -> bool {
        match self {
            Started::TwoWay { rotated, .. } | Started::Oneway { rotated, .. } => *rotated,
        }
    }

    /// The request waits for room in the write buffer.
    pub(super) fn waiting(&self) -> bool {
        match self {
            Started::TwoWay { waiting, .. } | Started::Oneway { waiting, .. } => *waiting,
        }
    }
}

/// Why a connection did not take a request (the frame is left as it was).
#[derive(Debug)]
pub(super) enum Refused {
    /// Not ready (connecting, draining or closed): try elsewhere.
    NotReady,
    /// In-flight limit or id space exhausted.
    Full,
    /// The codec cannot encode the frame; no connection can.
    Encode(CodecError),
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
    /// The in-flight book and the write buffer, under one lock: a request
    /// is registered and encoded in one step.
    book: Mutex<Book>,
    /// Mirror of the book's request count, read without the lock to pick
    /// the least loaded connection.
    in_flight: AtomicUsize,
    /// Wakes the writer: the write buffer got its first frame.
    writer: Notify,
    /// Wakes requests waiting for room in the write buffer (the writer
    /// took a full buffer, or the connection closed).
    room: Notify,
    /// Pokes the reader to look at the state (draining, drained).
    wake: Notify,
    /// Stops the reader and the writer.
    cancel: CancellationToken,
}

impl Conn {
    /// A connection in `Connecting`.
    pub(super) fn new(serial: u64, pool: &Shared) -> Arc<Conn> {
        let max_in_flight = pool.config.max_in_flight_per_conn.max(1);
        Arc::new(Conn {
            serial,
            addr: pool.addr,
            codec: Arc::clone(&pool.codec),
            config: Arc::clone(&pool.config),
            stats: Arc::clone(&pool.stats),
            counters: Arc::clone(&pool.counters),
            book: Mutex::new(Book::new(
                pool.codec.max_request_id(),
                max_in_flight.min(4096),
                HIGH_WATER,
            )),
            in_flight: AtomicUsize::new(0),
            writer: Notify::new(),
            room: Notify::new(),
            wake: Notify::new(),
            cancel: CancellationToken::new(),
        })
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
    /// upstream id in place, and encodes it into the write buffer, all
    /// under the book's lock. Past the buffer's high-water mark the request
    /// is registered but not encoded (`waiting`). Refused: `frame` is as
    /// it was.
    pub(super) fn start(&self, frame: &mut Frame, two_way: bool) -> Result<Started, Refused> {
        let downstream_id = frame.request_id;
        let mut book = self.book();
        if book.state != ConnState::Ready {
            return Err(Refused::NotReady);
        }
        if two_way && book.requests() >= self.config.max_in_flight_per_conn.max(1) {
            return Err(Refused::Full);
        }
        let Some(id) = book.alloc_id() else {
            return Err(Refused::Full);
        };
        // The zero-copy path: the id is patched in the wire bytes.
        self.codec.set_request_id(frame, id);
        let first_of_batch = book.out.is_empty();
        let queued = if book.out.has_room() {
            match book.out.encode(&*self.codec, frame) {
                Ok(queued) => queued,
                Err(err) => {
                    drop(book);
                    self.codec.set_request_id(frame, downstream_id);
                    return Err(Refused::Encode(err));
                }
            }
        } else {
            Queued::Waiting
        };
        let waiting = queued == Queued::Waiting;
        let rx = if two_way {
            let (reply, rx) = answer::channel(book.spare_slot());
            book.insert_request(id, reply, downstream_id, queued);
            Some(rx)
        } else {
            book.count_oneway();
            None
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
        if first_of_batch && !waiting {
            self.writer.notify_one();
        }
        if rotated {
            PoolCounters::inc(&self.counters.drains);
            self.wake.notify_one();
        }
        self.stats.total_requests.fetch_add(1, Ordering::Relaxed);
        Ok(match rx {
            Some(rx) => Started::TwoWay {
                id,
                rx,
                rotated,
                waiting,
            },
            None => Started::Oneway { rotated, waiting },
        })
    }

    /// Encodes a request started as `waiting` once the write buffer has
    /// room (`id`: a two-way request's upstream id; `None`: oneway). A
    /// two-way request's failures (connection closed, encode error) reach
    /// its caller through its answer channel, so it gets `Ok` then.
    pub(super) async fn encode_when_room(
        &self,
        id: Option<u64>,
        frame: &Frame,
    ) -> Result<(), PoolError> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so a writer taking the buffer
            // right after the look still wakes this request.
            room.as_mut().enable();
            if let Some(done) = self.try_encode_waiting(id, frame) {
                return done;
            }
            room.await;
        }
    }

    /// One look for room: `None` while the buffer is still full.
    fn try_encode_waiting(&self, id: Option<u64>, frame: &Frame) -> Option<Result<(), PoolError>> {
        let mut book = self.book();
        let gone = book.state == ConnState::Closed || id.is_some_and(|id| !book.contains(id));
        if gone {
            return Some(match id {
                Some(_) => Ok(()),
                None => Err(PoolError::UpstreamReset { written: false }),
            });
        }
        if !book.out.has_room() {
            return None;
        }
        let first_of_batch = book.out.is_empty();
        match book.out.encode(&*self.codec, frame) {
            Ok(queued) => {
                if let Some(id) = id {
                    book.set_queued(id, queued);
                }
                drop(book);
                if first_of_batch {
                    self.writer.notify_one();
                }
                Some(Ok(()))
            }
            Err(err) => {
                drop(book);
                match id {
                    Some(id) => {
                        self.fail_request(id, PoolError::Encode(err));
                        Some(Ok(()))
                    }
                    None => Some(Err(PoolError::Encode(err))),
                }
            }
        }
    }

    /// Keeps a caller's answer slot for the next requests.
    pub(super) fn keep_slot(&self, slot: Arc<Slot>) {
        self.book().keep_slot(slot);
    }

    /// The writer takes the open batch into `spare` (its emptied buffer).
    fn take_batch(&self, spare: &mut BytesMut) {
        let was_full = self.book().out.take(spare);
        if was_full {
            self.room.notify_waiters();
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
        let (abandoned, drained) = {
            let mut book = self.book();
            let abandoned = book.abandon(id);
            (abandoned, Self::drained(&book))
        };
        match abandoned {
            Abandoned::Withdrawn => {
                PoolCounters::inc(&self.counters.cancelled);
                self.released(1, drained);
            }
            Abandoned::Kept => PoolCounters::inc(&self.counters.cancelled),
            Abandoned::NotWaiting => {}
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
        let closed = self.book().close();
        let mut requests = 0;
        for Closed { waiter, written } in closed {
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
        // Requests waiting for room find their entries gone.
        self.room.notify_waiters();
        self.cancel.cancel();
    }

    // Inlined into the reader's loop: a `Frame` passed by value is otherwise
    // copied once more on its way to its caller.
    #[inline(always)]
    fn on_frame(self: &Arc<Self>, frame: Frame, pool: &Weak<Shared>) {
        match frame.kind {
            FrameKind::Response => self.on_response(frame),
            FrameKind::Heartbeat { reply: true } => {
                self.book().take_ping(frame.request_id);
            }
            FrameKind::Heartbeat { reply: false } => {
                if let Some(pong) = self.codec.heartbeat_reply(&frame)
                    && self.enqueue(&pong)
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

    /// Encodes a frame nothing waits for (a pong) if the write buffer has
    /// room; false if it has none or the connection closed.
    fn enqueue(&self, frame: &Frame) -> bool {
        let mut book = self.book();
        if book.state == ConnState::Closed || !book.out.has_room() {
            return false;
        }
        let first_of_batch = book.out.is_empty();
        let encoded = book.out.encode(&*self.codec, frame).is_ok();
        drop(book);
        if encoded && first_of_batch {
            self.writer.notify_one();
        }
        encoded
    }

    /// Sends a keep-alive ping under a fresh id. False if the codec has no
    /// ping or the connection cannot take one.
    fn send_ping(&self) -> bool {
        let mut book = self.book();
        if book.state == ConnState::Closed || !book.out.has_room() {
            return false;
        }
        let Some(id) = book.alloc_id() else {
            return false;
        };
        let Some(ping) = self.codec.heartbeat_request(id) else {
            return false;
        };
        let first_of_batch = book.out.is_empty();
        let Ok(queued) = book.out.encode(&*self.codec, &ping) else {
            return false;
        };
        book.insert_ping(id, queued);
        drop(book);
        if first_of_batch {
            self.writer.notify_one();
        }
        PoolCounters::inc(&self.counters.pings_sent);
        true
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
