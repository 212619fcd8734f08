//! [`LocalExecutor`]: the futures hyper would spawn, queued instead for the
//! task that polls their connection ([`LocalTasks`]).
//!
//! hyper hands an executor every HTTP/2 server stream and, on the client
//! side, a task per request that waits for its response. A tokio spawn for
//! each cost an allocated task, the runtime's scheduling and a cross-task
//! wake per request; here the connection's own task polls them right after
//! the connection. The price: one connection's streams share one worker
//! thread, as a framed connection's requests do.

use crate::FutureSet;
use futures_util::task::AtomicWaker;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor a hyper connection is given: it queues each future for
/// the connection's [`LocalTasks`].
#[derive(Clone, Default)]
pub struct LocalExecutor(Arc<Queue>);

#[derive(Default)]
struct Queue {
    tasks: Mutex<Vec<Task>>,
    /// The connection's task, woken when a future is queued from outside
    /// its own poll.
    owner: AtomicWaker,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("queued", &lock(&self.0.tasks).len())
            .finish()
    }
}

impl std::fmt::Debug for LocalTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTasks")
            .field("running", &self.running.len())
            .finish_non_exhaustive()
    }
}

/// A poisoned lock still holds whole futures: taking them is sound.
fn lock(tasks: &Mutex<Vec<Task>>) -> MutexGuard<'_, Vec<Task>> {
    tasks.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, task: F) {
        lock(&self.0.tasks).push(Box::pin(task));
        self.0.owner.wake();
    }
}

/// The futures queued through one [`LocalExecutor`], polled by the task
/// that also polls their connection.
pub struct LocalTasks {
    queue: Arc<Queue>,
    running: FutureSet<Task>,
    /// Emptied each turn, kept for its capacity.
    arrived: Vec<Task>,
}

impl LocalTasks {
    /// The tasks `executor` queues.
    pub fn new(executor: &LocalExecutor) -> LocalTasks {
        LocalTasks {
            queue: Arc::clone(&executor.0),
            running: FutureSet::new(),
            arrived: Vec::new(),
        }
    }

    /// Takes in the futures queued since the last turn and polls every one
    /// that is due. Call it after polling the connection (which queues
    /// them), from the same task.
    pub fn poll_tasks(&mut self, cx: &mut Context<'_>) {
        self.queue.owner.register(cx.waker());
        std::mem::swap(&mut *lock(&self.queue.tasks), &mut self.arrived);
        for task in self.arrived.drain(..) {
            self.running.push(task);
        }
        while let Poll::Ready(Some(())) = self.running.poll_next(cx) {}
    }

    /// Whether every queued future has finished.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && lock(&self.queue.tasks).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn queued_futures_run_when_the_owner_polls() {
        let executor = LocalExecutor::default();
        let mut tasks = LocalTasks::new(&executor);
        let (done_tx, done_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        executor.execute(async move {
            let _ = go_rx.await;
            let _ = done_tx.send(7);
        });
        assert!(!tasks.is_empty(), "queued counts as not finished");
        let mut done_rx = std::pin::pin!(done_rx);
        // Polled by this task alongside what it waits for, as a connection
        // is polled alongside its streams.
        let waited = std::future::poll_fn(|cx| {
            tasks.poll_tasks(cx);
            done_rx.as_mut().poll(cx)
        });
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            go_tx.send(()).unwrap();
        });
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waited)
            .await
            .expect("woken, not hung");
        assert_eq!(got, Ok(7));
        sender.await.unwrap();
        std::future::poll_fn(|cx| {
            tasks.poll_tasks(cx);
            Poll::Ready(())
        })
        .await;
        assert!(tasks.is_empty());
    }
}
