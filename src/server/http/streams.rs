//! HTTP/2 streams served inside their connection's task, not a task each.
//!
//! hyper hands every new stream's future to its executor. A tokio spawn
//! per stream cost a task (allocated, scheduled, woken through the
//! runtime's queues) on top of the request itself; here the connection's
//! task polls its streams right after the connection, through the same
//! in-flight set the framed driver uses, as Envoy and MOSN serve a
//! connection's streams on its worker. The price is the framed driver's:
//! one connection's streams share one worker thread.

use crate::server::in_flight::InFlight;
use futures_util::task::AtomicWaker;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor hyper's HTTP/2 connection is given: it queues each stream
/// for the connection's [`StreamSet`].
#[derive(Clone, Default)]
pub(super) struct StreamQueue(Arc<Queued>);

#[derive(Default)]
struct Queued {
    streams: Mutex<Vec<Stream>>,
    /// The connection's task, woken when hyper queues a stream from
    /// anywhere but the connection's own poll.
    owner: AtomicWaker,
}

/// A poisoned lock still holds whole streams: taking them is sound.
fn lock(streams: &Mutex<Vec<Stream>>) -> MutexGuard<'_, Vec<Stream>> {
    streams.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F> hyper::rt::Executor<F> for StreamQueue
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        lock(&self.0.streams).push(Box::pin(stream));
        self.0.owner.wake();
    }
}

/// The streams of one connection, polled by its task.
pub(super) struct StreamSet {
    queue: Arc<Queued>,
    running: InFlight<Stream>,
    /// Emptied each turn, kept for its capacity.
    arrived: Vec<Stream>,
}

impl StreamSet {
    /// The set that serves what `queue` receives.
    pub(super) fn new(queue: &StreamQueue) -> StreamSet {
        StreamSet {
            queue: Arc::clone(&queue.0),
            running: InFlight::new(),
            arrived: Vec::new(),
        }
    }

    /// Takes in the streams queued since the last turn and polls every
    /// stream that is due. Never ready: the streams end with their
    /// connection.
    pub(super) fn poll_streams(&mut self, cx: &mut Context<'_>) {
        self.queue.owner.register(cx.waker());
        std::mem::swap(&mut *lock(&self.queue.streams), &mut self.arrived);
        for stream in self.arrived.drain(..) {
            self.running.push(stream);
        }
        while let Poll::Ready(Some(())) = self.running.poll_next(cx) {}
    }
}
