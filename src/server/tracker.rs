//! Live downstream connections and the drain and close signals, for
//! graceful stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Notify, watch};

/// Counts live connections and tells them when to drain, and when to
/// close at once (the grace period is over).
#[derive(Debug)]
pub struct Tracker {
    connections: AtomicUsize,
    all_closed: Notify,
    drain: watch::Sender<bool>,
    close: watch::Sender<bool>,
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            connections: AtomicUsize::new(0),
            all_closed: Notify::new(),
            drain: watch::Sender::new(false),
            close: watch::Sender::new(false),
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

    /// Tells every connection to close now, requests in flight or not.
    pub fn close_all(&self) {
        self.close.send_replace(true);
    }

    /// A receiver that turns `true` when connections must close now.
    pub fn close_signal(&self) -> watch::Receiver<bool> {
        self.close.subscribe()
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

/// Resolves once `signal` is `true`; never if its sender is gone.
pub(crate) async fn raised(mut signal: watch::Receiver<bool>) {
    if signal.wait_for(|up| *up).await.is_err() {
        std::future::pending::<()>().await;
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
