//! Live downstream connections and the drain signal, for graceful stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};

/// Counts live connections and tells them when to drain.
#[derive(Debug)]
pub struct Tracker {
    connections: AtomicUsize,
    all_closed: Notify,
    drain: watch::Sender<bool>,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            connections: AtomicUsize::new(0),
            all_closed: Notify::new(),
            drain: watch::Sender::new(false),
        }
    }
}

impl Tracker {
    /// Registers a connection until the guard drops.
    pub fn open(self: &std::sync::Arc<Tracker>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard {
            tracker: std::sync::Arc::clone(self),
        }
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Tells every connection to finish its in-flight requests and close.
    pub fn start_draining(&self) {
        self.drain.send_replace(true);
    }

    /// A receiver that turns `true` when draining starts.
    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain.subscribe()
    }

    /// Resolves once no connection is left.
    pub async fn all_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.connections() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Keeps a connection counted while alive.
#[derive(Debug)]
pub struct ConnectionGuard {
    tracker: std::sync::Arc<Tracker>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.tracker.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.all_closed.notify_waiters();
        }
    }
}
