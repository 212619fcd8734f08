//! [`FutureSet`]: futures run concurrently inside one task, with the
//! memory of finished ones reused for the next.
//!
//! Why not `FuturesUnordered`: it allocates a node for every future pushed,
//! and a framed connection boxed each (large) request future before that,
//! so every request cost two allocations. Here a finished future's box is
//! kept and the next future is written into it in place, and each slot's
//! waker is made once, so a busy connection allocates nothing per request.
//! A set of arenas (`futures-buffered`) would also avoid the per-request
//! allocations, but it keeps its peak capacity for the connection's whole
//! life; this set gives all its memory back on [`FutureSet::release`],
//! which a connection calls once it has been quiet for a while, so an idle
//! connection does not keep what a past burst needed.

use futures_util::task::AtomicWaker;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// Futures run concurrently; their outputs come out in completion order.
pub struct FutureSet<F: Future> {
    slots: Vec<Slot<F>>,
    /// Slots whose future finished; their boxes are reused first.
    free: Vec<usize>,
    running: usize,
    /// Made with the first future, so a set never used allocates nothing.
    shared: Option<Arc<Shared>>,
    /// Slots to poll, in order: new futures, then those woken (taken from
    /// `Shared::woken` in one swap, which leaves this set's emptied list
    /// there, so neither side allocates in steady state).
    due: Vec<usize>,
    next_due: usize,
}

struct Slot<F> {
    /// `None` inside once the future finished; the box stays until the
    /// whole set is released.
    future: Pin<Box<Option<F>>>,
    waker: Waker,
    wake: Arc<SlotWake>,
}

/// What the wakers of every slot share with the set.
#[derive(Default)]
struct Shared {
    woken: Mutex<Vec<usize>>,
    /// The connection's task.
    owner: AtomicWaker,
}

/// One slot's waker: queues the slot (once until it is polled) and wakes
/// the connection's task.
struct SlotWake {
    index: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.shared.woken).push(self.index);
        }
        self.shared.owner.wake();
    }
}

/// A panic elsewhere while holding the lock leaves a list of indices that
/// is still valid.
fn lock(woken: &Mutex<Vec<usize>>) -> MutexGuard<'_, Vec<usize>> {
    woken.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F: Future> std::fmt::Debug for FutureSet<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureSet")
            .field("running", &self.running)
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Default for FutureSet<F> {
    fn default() -> FutureSet<F> {
        FutureSet::new()
    }
}

impl<F: Future> FutureSet<F> {
    /// An empty set; allocates nothing until the first push.
    pub fn new() -> FutureSet<F> {
        FutureSet {
            slots: Vec::new(),
            free: Vec::new(),
            running: 0,
            shared: None,
            due: Vec::new(),
            next_due: 0,
        }
    }

    /// Futures not finished yet.
    pub fn len(&self) -> usize {
        self.running
    }

    /// Whether no future is left to finish.
    pub fn is_empty(&self) -> bool {
        self.running == 0
    }

    /// Adds `future`; it is first polled by the next `poll_next`. The
    /// caller's task is not woken: it is the one that polls next.
    #[inline(always)]
    pub fn push(&mut self, future: F) {
        let index = if let Some(index) = self.free.pop() {
            self.slots[index].future.as_mut().set(Some(future));
            index
        } else {
            let index = self.slots.len();
            let shared = self.shared.get_or_insert_with(Arc::default);
            let wake = Arc::new(SlotWake {
                index,
                queued: AtomicBool::new(false),
                shared: Arc::clone(shared),
            });
            self.slots.push(Slot {
                future: Box::pin(Some(future)),
                waker: Waker::from(Arc::clone(&wake)),
                wake,
            });
            index
        };
        self.running += 1;
        // Queued here rather than through the waker: the owner's task is
        // the one polling next, waking it would only poll it twice.
        if !self.slots[index].wake.queued.swap(true, Ordering::AcqRel) {
            self.due.push(index);
        }
    }

    /// The next output of a finished future; `Ready(None)` when the set is
    /// empty.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let Some(shared) = self.shared.as_ref().filter(|_| self.running > 0) else {
            return Poll::Ready(None);
        };
        shared.owner.register(cx.waker());
        if self.next_due == self.due.len() {
            self.due.clear();
            self.next_due = 0;
            std::mem::swap(&mut *lock(&shared.woken), &mut self.due);
        }
        // Only the slots due when this call began: one woken meanwhile has
        // woken the owner, which polls again.
        while let Some(&index) = self.due.get(self.next_due) {
            self.next_due += 1;
            // Indices come from this set's own slots (a `release` gives
            // its wakers a fresh `Shared`); checked rather than trusted.
            let Some(Slot {
                future,
                waker,
                wake,
            }) = self.slots.get_mut(index)
            else {
                continue;
            };
            wake.queued.store(false, Ordering::Release);
            // A slot woken after its future finished: nothing to poll.
            let Some(pinned) = future.as_mut().as_pin_mut() else {
                continue;
            };
            if let Poll::Ready(output) = pinned.poll(&mut Context::from_waker(waker)) {
                self.finished(index);
                return Poll::Ready(Some(output));
            }
        }
        Poll::Pending
    }

    /// The next output, as a future.
    pub fn next_finished(&mut self) -> impl Future<Output = Option<F::Output>> + '_ {
        std::future::poll_fn(move |cx| self.poll_next(cx))
    }

    /// Drops the finished future in place and keeps its box for the next.
    fn finished(&mut self, index: usize) {
        self.slots[index].future.as_mut().set(None);
        self.free.push(index);
        self.running -= 1;
    }

    /// Whether finished futures' memory is kept for reuse.
    pub fn keeps_memory(&self) -> bool {
        !self.free.is_empty()
    }

    /// Gives back all the memory kept for reuse, once nothing is in
    /// flight: the set is then as small as one never used. (A set busy
    /// again regrows; the driver calls this only after a quiet spell.)
    pub fn release(&mut self) {
        if self.running == 0 {
            // Wakers still held elsewhere keep only their own small
            // allocation and a `Shared` no longer read.
            *self = FutureSet::new();
        }
    }

    /// Boxes kept for reuse (finished futures' memory not given back).
    #[cfg(test)]
    fn kept_boxes(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.future.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::oneshot;

    fn poll_once<F: Future>(set: &mut FutureSet<F>) -> Poll<Option<F::Output>> {
        set.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn outputs_come_in_completion_order() {
        let mut set = FutureSet::new();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..3).map(|_| oneshot::channel()).unzip();
        for (n, receiver) in receivers.into_iter().enumerate() {
            set.push(async move { (n, receiver.await.ok()) });
        }
        assert!(poll_once(&mut set).is_pending());
        let mut senders: Vec<_> = senders.into_iter().map(Some).collect();
        for n in [2, 0, 1] {
            if let Some(sender) = senders[n].take() {
                sender.send(n * 10).unwrap();
            }
            assert_eq!(set.next_finished().await, Some((n, Some(n * 10))));
        }
        assert!(set.is_empty());
        assert_eq!(set.next_finished().await, None);
    }

    #[tokio::test]
    async fn a_finished_slot_is_reused_with_its_box() {
        let mut set = FutureSet::new();
        for round in 0..5 {
            set.push(async move { round });
            assert_eq!(set.next_finished().await, Some(round));
            assert_eq!((set.slots.len(), set.kept_boxes()), (1, 1));
        }
    }

    async fn waits_then(receiver: oneshot::Receiver<()>, n: usize) -> usize {
        let _ = receiver.await;
        n
    }

    #[tokio::test]
    async fn boxes_are_kept_until_released_while_quiet() {
        let mut set = FutureSet::new();
        let mut senders = Vec::new();
        for n in 0..8 {
            let (sender, receiver) = oneshot::channel::<()>();
            senders.push(sender);
            set.push(waits_then(receiver, n));
        }
        assert!(poll_once(&mut set).is_pending());
        for sender in senders.drain(..4) {
            sender.send(()).unwrap();
        }
        for _ in 0..4 {
            assert!(set.next_finished().await.is_some());
        }
        assert_eq!((set.len(), set.kept_boxes()), (4, 4));
        set.release();
        assert_eq!(set.kept_boxes(), 4, "not while futures still run");
        for sender in senders.drain(..) {
            sender.send(()).unwrap();
        }
        for _ in 0..4 {
            assert!(set.next_finished().await.is_some());
        }
        assert_eq!((set.len(), set.kept_boxes()), (0, 8));
        // Growing again reuses the slots and their boxes.
        for n in 0..8 {
            // A dropped sender ends the wait at once.
            set.push(waits_then(oneshot::channel().1, n));
        }
        assert_eq!((set.slots.len(), set.kept_boxes()), (8, 0));
        let mut outputs = Vec::new();
        while let Some(n) = set.next_finished().await {
            outputs.push(n);
        }
        outputs.sort_unstable();
        assert_eq!(outputs, (0..8).collect::<Vec<_>>());
        assert!(set.keeps_memory());
        set.release();
        assert!(!set.keeps_memory());
        assert_eq!((set.slots.len(), set.slots.capacity()), (0, 0));
        set.push(waits_then(oneshot::channel().1, 9));
        assert_eq!(set.next_finished().await, Some(9), "usable after a release");
    }

    #[tokio::test]
    async fn a_future_finished_is_dropped_at_once() {
        struct CountsDrop(Arc<AtomicUsize>);
        impl Drop for CountsDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let mut set = FutureSet::new();
        let guard = CountsDrop(Arc::clone(&drops));
        set.push(async move {
            let _guard = guard;
        });
        assert_eq!(set.next_finished().await, Some(()));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "not kept in the reused box"
        );
    }

    #[tokio::test]
    async fn a_wake_from_another_thread_reaches_the_owner() {
        let mut set = FutureSet::new();
        let (sender, receiver) = oneshot::channel();
        set.push(receiver);
        assert!(poll_once(&mut set).is_pending());
        let sending = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            sender.send(7u8).unwrap();
        });
        let output = tokio::time::timeout(std::time::Duration::from_secs(5), set.next_finished())
            .await
            .expect("woken, not hung");
        assert_eq!(output, Some(Ok(7)));
        sending.join().unwrap();
    }

    #[tokio::test]
    async fn dropping_the_set_drops_running_futures() {
        let (sender, receiver) = oneshot::channel::<()>();
        let mut set = FutureSet::new();
        set.push(async move {
            let _ = receiver.await;
        });
        assert!(poll_once(&mut set).is_pending());
        drop(set);
        assert!(sender.is_closed());
    }
}
