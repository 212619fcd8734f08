//! The slot a two-way request's answer is handed over in, from the
//! connection's reader to the waiting caller: a one-shot channel whose
//! allocation is reused. A `tokio::sync::oneshot` costs an allocation of
//! the size of a `Frame` per request, and with dozens in flight the
//! allocator's per-size cache cannot serve it; a connection keeps the
//! slots its callers are done with and hands them to the next requests.

use crate::pool::PoolError;
use meshgate_codecs::Frame;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Slots a connection keeps for reuse, at most.
pub(super) const SPARE_SLOTS: usize = 64;

/// What the caller gets.
type Answer = Result<Frame, PoolError>;

/// One answer's rendezvous.
#[derive(Debug, Default)]
pub(super) struct Slot {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    answer: Option<Answer>,
    waker: Option<Waker>,
    /// The caller gave up: an answer would be dropped.
    caller_gone: bool,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment: a poisoned lock is still
        // consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A channel over `slot` (a spare one, or a new one).
pub(super) fn channel(slot: Option<Arc<Slot>>) -> (AnswerTx, AnswerRx) {
    let slot = slot.unwrap_or_default();
    (AnswerTx(Some(Arc::clone(&slot))), AnswerRx(Some(slot)))
}

/// The reader's half. Dropped without sending, it answers
/// `UpstreamReset { written: true }` (the conservative answer).
#[derive(Debug)]
pub(super) struct AnswerTx(Option<Arc<Slot>>);

impl AnswerTx {
    /// Hands `answer` over; `Err` if the caller is gone.
    pub(super) fn send(mut self, answer: Answer) -> Result<(), ()> {
        match self.0.take() {
            Some(slot) => deliver(slot, answer),
            None => Err(()),
        }
    }
}

impl Drop for AnswerTx {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let _ = deliver(slot, Err(PoolError::UpstreamReset { written: true }));
        }
    }
}

fn deliver(slot: Arc<Slot>, answer: Answer) -> Result<(), ()> {
    let waker = {
        let mut state = slot.state();
        if state.caller_gone {
            return Err(());
        }
        state.answer = Some(answer);
        state.waker.take()
    };
    // Let go of the slot before waking, so the caller usually holds the
    // only handle when it is done and can give the slot back.
    drop(slot);
    if let Some(waker) = waker {
        waker.wake();
    }
    Ok(())
}

/// The caller's half.
#[derive(Debug)]
pub(super) struct AnswerRx(Option<Arc<Slot>>);

impl AnswerRx {
    /// The answer, once handed over. Not to be polled after it was ready.
    pub(super) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Answer> {
        let Some(slot) = &self.0 else {
            return Poll::Ready(Err(PoolError::UpstreamReset { written: true }));
        };
        let mut state = slot.state();
        if let Some(answer) = state.answer.take() {
            return Poll::Ready(answer);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// After the answer: the slot, cleared for reuse, if nobody else
    /// holds it any more.
    pub(super) fn into_spare(mut self) -> Option<Arc<Slot>> {
        let mut slot = self.0.take()?;
        let state = Arc::get_mut(&mut slot)?
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        *state = State::default();
        Some(slot)
    }
}

impl Drop for AnswerRx {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.state().caller_gone = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn answers_arrive_and_slots_are_reused() {
        let (tx, mut rx) = channel(None);
        let waiter = tokio::spawn(async move {
            let answer = poll_fn(|cx| rx.poll_answer(cx)).await;
            (answer, rx.into_spare())
        });
        tokio::task::yield_now().await;
        tx.send(Err(PoolError::UpstreamReset { written: false }))
            .expect("the caller waits");
        let (answer, spare) = waiter.await.expect("task");
        assert_eq!(
            answer.expect_err("sent an error"),
            PoolError::UpstreamReset { written: false }
        );
        let spare = spare.expect("the only handle left: reusable");

        // Reused: a fresh answer, nothing left from the last one.
        let (tx, mut rx) = channel(Some(spare));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(rx.poll_answer(&mut cx).is_pending());
        drop(tx);
        match rx.poll_answer(&mut cx) {
            Poll::Ready(Err(err)) => assert_eq!(err, PoolError::UpstreamReset { written: true }),
            other => panic!("a dropped sender answers a reset: {other:?}"),
        }
    }

    #[test]
    fn a_gone_caller_refuses_the_answer_and_its_slot_is_not_reused() {
        let (tx, rx) = channel(None);
        drop(rx);
        assert!(
            tx.send(Err(PoolError::UpstreamReset { written: true }))
                .is_err()
        );
        let (tx, rx) = channel(None);
        assert!(rx.into_spare().is_none(), "the sender still holds it");
        drop(tx);
    }
}
