//! One multiplexed connection's in-flight book: the map `upstream id →
//! pending request`, the id counter, and the connection's state. It lives
//! behind a mutex that is only ever held for a map operation, never across
//! an await.
//!
//! Ids come from a counter over `1..=max_request_id` that skips ids still in
//! the map and never yields 0 (several protocols treat id 0 specially;
//! dubbo2.js pings with it). An id stays in the map until the upstream has
//! answered it or the connection is gone, even when the caller gave up
//! (the entry becomes `Abandoned`): freeing it earlier would let a new
//! request take the id and receive the old request's late response.

use super::ConnState;
use crate::pool::PoolError;
use meshgate_codecs::Frame;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use tokio::sync::oneshot;

/// The channel a caller waits on.
pub(super) type Reply = oneshot::Sender<Result<Frame, PoolError>>;

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
    /// The writer took the frame for the socket.
    pub(super) written: bool,
}

impl Pending {
    fn is_request(&self) -> bool {
        !matches!(self.waiter, Waiter::Ping)
    }
}

/// What the writer does with a queued request frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WriteCheck {
    /// Write it (now marked written).
    Write,
    /// Its caller gave up before it was written: the entry is removed and
    /// the frame is dropped, so the upstream never sees it.
    DropAbandoned,
    /// Its entry is gone (connection closed): drop the frame.
    DropGone,
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
}

impl Book {
    /// An empty book for ids `1..=max_id`, sized for `capacity` entries.
    pub(super) fn new(max_id: u64, capacity: usize) -> Book {
        Book {
            map: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()),
            next_id: 1,
            max_id: max_id.max(1),
            requests: 0,
            started: 0,
            state: ConnState::Connecting,
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

    /// Registers a two-way request under a fresh id.
    pub(super) fn insert_request(&mut self, reply: Reply, downstream_id: u64) -> Option<u64> {
        let id = self.alloc_id()?;
        self.map.insert(
            id,
            Pending {
                waiter: Waiter::Caller {
                    reply,
                    downstream_id,
                },
                written: false,
            },
        );
        self.requests += 1;
        self.started += 1;
        Some(id)
    }

    /// A fresh id for a oneway request (nothing waits, so nothing is kept).
    pub(super) fn oneway_id(&mut self) -> Option<u64> {
        let id = self.alloc_id()?;
        self.started += 1;
        Some(id)
    }

    /// Registers a ping of ours under a fresh id.
    pub(super) fn insert_ping(&mut self) -> Option<u64> {
        let id = self.alloc_id()?;
        self.map.insert(
            id,
            Pending {
                waiter: Waiter::Ping,
                written: false,
            },
        );
        Some(id)
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

    /// The caller of `id` gave up. Returns true if a waiting caller was
    /// abandoned (false: already answered or failed).
    pub(super) fn abandon(&mut self, id: u64) -> bool {
        match self.map.get_mut(&id) {
            Some(pending) if matches!(pending.waiter, Waiter::Caller { .. }) => {
                pending.waiter = Waiter::Abandoned;
                true
            }
            _ => false,
        }
    }

    /// The writer is about to write request `id`.
    pub(super) fn check_write(&mut self, id: u64) -> WriteCheck {
        match self.map.get_mut(&id) {
            None => WriteCheck::DropGone,
            Some(Pending {
                waiter: Waiter::Abandoned,
                written: false,
            }) => {
                self.map.remove(&id);
                self.requests -= 1;
                WriteCheck::DropAbandoned
            }
            Some(pending) => {
                pending.written = true;
                WriteCheck::Write
            }
        }
    }

    /// Closes the book: every entry is taken out; no id is given again.
    pub(super) fn close(&mut self) -> Vec<Pending> {
        self.state = ConnState::Closed;
        self.requests = 0;
        self.map.drain().map(|(_, pending)| pending).collect()
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

    fn reply() -> Reply {
        oneshot::channel().0
    }

    #[test]
    fn ids_start_at_one_wrap_and_skip_in_flight() {
        let mut book = Book::new(4, 4);
        assert_eq!(book.insert_request(reply(), 100), Some(1));
        assert_eq!(book.insert_request(reply(), 100), Some(2));
        assert_eq!(book.oneway_id(), Some(3));
        assert_eq!(book.insert_request(reply(), 100), Some(4));
        // Wraps to 1, which is still in flight, and 2, and takes 3.
        assert_eq!(book.insert_request(reply(), 100), Some(3));
        assert_eq!(book.alloc_id(), None, "all four ids in flight");
        assert!(book.take(2).is_some());
        assert_eq!(book.alloc_id(), Some(2));
        assert_eq!(book.requests(), 3);
        assert_eq!(book.started(), 5);
    }

    #[test]
    fn abandoned_ids_stay_taken_until_answered() {
        let mut book = Book::new(2, 2);
        let a = book.insert_request(reply(), 7).unwrap();
        let b = book.insert_request(reply(), 7).unwrap();
        assert_eq!(book.check_write(a), WriteCheck::Write);
        assert!(book.abandon(a));
        assert!(book.abandon(b));
        assert_eq!(book.alloc_id(), None, "the written abandoned id is kept");
        // The unwritten abandoned one is dropped by the writer, freeing it.
        assert_eq!(book.check_write(b), WriteCheck::DropAbandoned);
        assert_eq!(book.alloc_id(), Some(b));
        // The late answer to `a` frees it.
        assert!(matches!(
            book.take(a).map(|p| p.waiter),
            Some(Waiter::Abandoned)
        ));
        assert_eq!(book.requests(), 0);
    }

    #[test]
    fn stray_pongs_never_complete_requests() {
        let mut book = Book::new(10, 4);
        let req = book.insert_request(reply(), 1).unwrap();
        let ping = book.insert_ping().unwrap();
        assert!(!book.take_ping(req));
        assert!(book.take_ping(ping));
        assert_eq!(book.requests(), 1);
        assert_eq!(book.check_write(99), WriteCheck::DropGone);
        let left = book.close();
        assert_eq!(left.len(), 1);
        assert_eq!(book.state, ConnState::Closed);
    }
}
