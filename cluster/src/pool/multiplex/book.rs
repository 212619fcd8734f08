//! One multiplexed connection's in-flight book: the map `upstream id →
//! pending request`, the id counter, the connection's state and its write
//! buffer ([`Outbox`]). It lives behind a mutex that is only ever held for
//! a map operation (and the encoding of one frame), never across an await.
//!
//! Ids come from a counter over `1..=max_request_id` that skips ids still in
//! the map and never yields 0 (several protocols treat id 0 specially;
//! dubbo2.js pings with it). An id stays in the map until the upstream has
//! answered it or the connection is gone, even when the caller gave up
//! (the entry becomes `Abandoned`): freeing it earlier would let a new
//! request take the id and receive the old request's late response.

use super::ConnState;
use super::answer::{AnswerTx, SPARE_SLOTS, Slot};
use super::outbox::{Outbox, Queued};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// The channel a caller waits on.
pub(super) type Reply = AnswerTx;

/// Who waits for an id's answer.
#[derive(Debug)]
pub(super) enum Waiter {
    /// A caller, with the id its request had downstream.
    Caller { reply: Reply, downstream_id: u64 },
    /// The caller gave up; the answer will be discarded.
    Abandoned,
    /// A keep-alive ping of ours.
    Ping,
}

/// One in-flight id.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) waiter: Waiter,
    /// Where its bytes are (pings: always encoded).
    pub(super) queued: Queued,
}

impl Pending {
    fn is_request(&self) -> bool {
        !matches!(self.waiter, Waiter::Ping)
    }
}

/// What giving up on a request did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Abandoned {
    /// It was not written yet: its entry and its bytes are gone, so the
    /// upstream never sees it, and its id is free again.
    Withdrawn,
    /// It was written: the id stays taken until the late answer arrives.
    Kept,
    /// Nothing waited (already answered or failed).
    NotWaiting,
}

/// A request's entry taken out by [`Book::close`].
#[derive(Debug)]
pub(super) struct Closed {
    pub(super) waiter: Waiter,
    /// Its batch had been taken by the writer.
    pub(super) written: bool,
}

/// The in-flight book of one connection.
#[derive(Debug)]
pub(super) struct Book {
    map: HashMap<u64, Pending, BuildHasherDefault<IdHasher>>,
    next_id: u64,
    max_id: u64,
    /// Entries that are requests (callers and abandoned), not pings.
    requests: usize,
    /// Requests (two-way and oneway) ever started here.
    started: u64,
    pub(super) state: ConnState,
    /// The bytes waiting for the connection's writer.
    pub(super) out: Outbox,
    /// Answer slots callers are done with, for the next requests.
    spare_slots: Vec<Arc<Slot>>,
}

impl Book {
    /// An empty book for ids `1..=max_id`, sized for `capacity` entries,
    /// whose write buffer holds frames back past `high_water` bytes.
    pub(super) fn new(max_id: u64, capacity: usize, high_water: usize) -> Book {
        Book {
            map: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            next_id: 1,
            max_id: max_id.max(1),
            requests: 0,
            started: 0,
            state: ConnState::Connecting,
            out: Outbox::new(high_water),
            spare_slots: Vec::new(),
        }
    }

    /// A reusable answer slot, if one is spare.
    pub(super) fn spare_slot(&mut self) -> Option<Arc<Slot>> {
        self.spare_slots.pop()
    }

    /// Keeps `slot` for reuse (up to a bound).
    pub(super) fn keep_slot(&mut self, slot: Arc<Slot>) {
        if self.spare_slots.len() < SPARE_SLOTS {
            self.spare_slots.push(slot);
        }
    }

    /// Requests in flight (abandoned ones included: the upstream still
    /// works on them).
    pub(super) fn requests(&self) -> usize {
        self.requests
    }

    /// Requests ever started on this connection.
    pub(super) fn started(&self) -> u64 {
        self.started
    }

    /// The next free id, or `None` when every id is in flight.
    pub(super) fn alloc_id(&mut self) -> Option<u64> {
        if self.map.len() as u64 >= self.max_id {
            return None;
        }
        // Terminates: at least one id in 1..=max_id is free.
        loop {
            let id = self.next_id;
            self.next_id = if id >= self.max_id { 1 } else { id + 1 };
            if !self.map.contains_key(&id) {
                return Some(id);
            }
        }
    }

    /// Registers a two-way request under `id` (from [`Book::alloc_id`]).
    pub(super) fn insert_request(
        &mut self,
        id: u64,
        reply: Reply,
        downstream_id: u64,
        queued: Queued,
    ) {
        self.map.insert(
            id,
            Pending {
                waiter: Waiter::Caller {
                    reply,
                    downstream_id,
                },
                queued,
            },
        );
        self.requests += 1;
        self.started += 1;
    }

    /// Counts a oneway request started (nothing waits, so nothing is
    /// kept).
    pub(super) fn count_oneway(&mut self) {
        self.started += 1;
    }

    /// Registers a ping of ours under `id` (from [`Book::alloc_id`]).
    pub(super) fn insert_ping(&mut self, id: u64, queued: Queued) {
        self.map.insert(
            id,
            Pending {
                waiter: Waiter::Ping,
                queued,
            },
        );
    }

    /// True while `id` has an entry.
    pub(super) fn contains(&self, id: u64) -> bool {
        self.map.contains_key(&id)
    }

    /// A request that waited for room was encoded as `queued`; false if
    /// its entry is gone (the connection closed).
    pub(super) fn set_queued(&mut self, id: u64, queued: Queued) -> bool {
        match self.map.get_mut(&id) {
            Some(pending) => {
                pending.queued = queued;
                true
            }
            None => false,
        }
    }

    /// Removes the entry a response answers. Pings answered by a response
    /// frame are removed too.
    pub(super) fn take(&mut self, id: u64) -> Option<Pending> {
        let pending = self.map.remove(&id)?;
        if pending.is_request() {
            self.requests -= 1;
        }
        Some(pending)
    }

    /// Removes a ping entry answered by a pong; an id that is not one of
    /// our pings is left alone (a stray pong must never complete a
    /// request). Returns whether it was a ping.
    pub(super) fn take_ping(&mut self, id: u64) -> bool {
        if matches!(
            self.map.get(&id),
            Some(Pending {
                waiter: Waiter::Ping,
                ..
            })
        ) {
            self.map.remove(&id);
            true
        } else {
            false
        }
    }

    /// The caller of `id` gave up: a request not written yet is withdrawn
    /// (entry removed, bytes cut out of the open batch), a written one is
    /// kept as `Abandoned` until its late answer.
    pub(super) fn abandon(&mut self, id: u64) -> Abandoned {
        let Some(pending) = self.map.get_mut(&id) else {
            return Abandoned::NotWaiting;
        };
        if !matches!(pending.waiter, Waiter::Caller { .. }) {
            return Abandoned::NotWaiting;
        }
        if self.out.withdraw(&pending.queued) {
            self.map.remove(&id);
            self.requests -= 1;
            Abandoned::Withdrawn
        } else {
            pending.waiter = Waiter::Abandoned;
            Abandoned::Kept
        }
    }

    /// Closes the book: every entry is taken out, with whether the writer
    /// had taken it; no id is given again.
    pub(super) fn close(&mut self) -> Vec<Closed> {
        self.state = ConnState::Closed;
        self.requests = 0;
        self.spare_slots = Vec::new();
        let out = &self.out;
        self.map
            .drain()
            .map(|(_, pending)| Closed {
                written: out.written(&pending.queued),
                waiter: pending.waiter,
            })
            .collect()
    }
}

/// Hashes the (mostly sequential) ids by Fibonacci multiplication: cheaper
/// than SipHash, and unlike the identity it spreads sequential ids over
/// the table's control bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::multiplex::outbox::HIGH_WATER;
    use bytes::BytesMut;

    fn reply() -> Reply {
        crate::pool::multiplex::answer::channel(None).0
    }

    /// Registers a two-way request queued as `queued`; its id.
    fn request(book: &mut Book, queued: Queued) -> Option<u64> {
        let id = book.alloc_id()?;
        book.insert_request(id, reply(), 100, queued);
        Some(id)
    }

    /// Queued in the open batch (the bytes do not matter here).
    fn encoded(book: &Book) -> Queued {
        Queued::Encoded {
            batch: book.out.open_batch(),
            at: 0..0,
        }
    }

    #[test]
    fn ids_start_at_one_wrap_and_skip_in_flight() {
        let mut book = Book::new(4, 4, HIGH_WATER);
        assert_eq!(request(&mut book, Queued::Waiting), Some(1));
        assert_eq!(request(&mut book, Queued::Waiting), Some(2));
        assert_eq!(book.alloc_id(), Some(3));
        book.count_oneway();
        assert_eq!(request(&mut book, Queued::Waiting), Some(4));
        // Wraps to 1, which is still in flight, and 2, and takes 3.
        assert_eq!(request(&mut book, Queued::Waiting), Some(3));
        assert_eq!(book.alloc_id(), None, "all four ids in flight");
        assert!(book.take(2).is_some());
        assert_eq!(book.alloc_id(), Some(2));
        assert_eq!(book.requests(), 3);
        assert_eq!(book.started(), 5);
    }

    #[test]
    fn abandoned_ids_stay_taken_until_answered() {
        let mut book = Book::new(3, 3, HIGH_WATER);
        let queued = encoded(&book);
        let a = request(&mut book, queued.clone()).unwrap();
        // The writer takes the batch `a` is in: `a` is written.
        book.out.take(&mut BytesMut::new());
        let queued = encoded(&book);
        let b = request(&mut book, queued).unwrap();
        let c = request(&mut book, Queued::Waiting).unwrap();
        assert_eq!(book.abandon(a), Abandoned::Kept);
        assert_eq!(book.abandon(a), Abandoned::NotWaiting);
        // Not written yet: withdrawn at once, freeing their ids.
        assert_eq!(book.abandon(b), Abandoned::Withdrawn);
        assert_eq!(book.abandon(c), Abandoned::Withdrawn);
        assert_eq!(book.requests(), 1);
        assert_eq!(book.alloc_id(), Some(b));
        assert_eq!(book.alloc_id(), Some(c));
        // The late answer to `a` frees it.
        assert!(matches!(
            book.take(a).map(|p| p.waiter),
            Some(Waiter::Abandoned)
        ));
        assert_eq!(book.requests(), 0);
    }

    #[test]
    fn close_says_which_requests_were_written() {
        let mut book = Book::new(10, 4, HIGH_WATER);
        let queued = encoded(&book);
        let sent = request(&mut book, queued).unwrap();
        book.out.take(&mut BytesMut::new());
        let queued = encoded(&book);
        let buffered = request(&mut book, queued).unwrap();
        let waiting = request(&mut book, Queued::Waiting).unwrap();
        let mut written: Vec<bool> = book.close().into_iter().map(|c| c.written).collect();
        written.sort_unstable();
        assert_eq!(written, vec![false, false, true], "only the taken batch");
        assert_eq!(book.state, ConnState::Closed);
        assert!(!book.set_queued(waiting, Queued::Waiting), "gone");
        let _ = (sent, buffered);
    }

    #[test]
    fn stray_pongs_never_complete_requests() {
        let mut book = Book::new(10, 4, HIGH_WATER);
        let req = request(&mut book, Queued::Waiting).unwrap();
        let ping = book.alloc_id().unwrap();
        book.insert_ping(ping, Queued::Waiting);
        assert!(!book.take_ping(req));
        assert!(book.take_ping(ping));
        assert_eq!(book.requests(), 1);
        assert!(book.set_queued(req, Queued::Waiting));
        let left = book.close();
        assert_eq!(left.len(), 1);
        assert_eq!(book.state, ConnState::Closed);
    }
}
