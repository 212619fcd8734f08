//! Boxes of dropped frames, kept for the next frames built (see
//! [`crate::Frame`]): a proxied request builds two frames (its decode and
//! its response's) and drops two, so in steady state every box comes from
//! here and the allocator is not asked.
//!
//! Each thread keeps its own boxes. With several workers a frame is often
//! dropped on another thread than the one that built it (a response decoded
//! by an upstream connection's task, encoded by a downstream one's), so one
//! thread's store fills while another's runs dry: a full store hands half
//! its boxes to a shared one, and an empty store takes a batch from there,
//! one lock per batch.

use crate::frame::{FrameFields, FrameKind};
use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

/// Boxes one thread keeps at most (each about half a kilobyte).
const KEPT_PER_THREAD: usize = 256;
/// Boxes moved between a thread's store and the shared one at a time.
const BATCH: usize = KEPT_PER_THREAD / 2;
/// Boxes the shared store keeps at most; more go back to the allocator.
const KEPT_SHARED: usize = 8 * KEPT_PER_THREAD;

// The boxes themselves are what is kept: a `Vec<FrameFields>` would move
// the fields in and out instead of handing over a pointer.
#[allow(clippy::vec_box)]
type Boxes = Vec<Box<FrameFields>>;

thread_local! {
    static SPARE: RefCell<Boxes> = const { RefCell::new(Vec::new()) };
}

static SHARED: Mutex<Boxes> = Mutex::new(Vec::new());

fn shared() -> std::sync::MutexGuard<'static, Boxes> {
    // Only whole boxes are pushed and popped: a poisoned store is intact.
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fields of an empty request with id 0 (`FrameFields::new`) in a
/// box: a spare one, else a new one. Callers set the fields they need in
/// place.
#[inline(always)]
pub(crate) fn blank() -> Box<FrameFields> {
    SPARE
        .try_with(|spare| {
            let mut spare = spare.try_borrow_mut().ok()?;
            if spare.is_empty() {
                refill(&mut spare);
            }
            spare.pop()
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| Box::new(FrameFields::new(FrameKind::Request, 0)))
}

/// Takes a batch from the shared store, if it has any.
#[cold]
fn refill(spare: &mut Boxes) {
    let mut shared = shared();
    let from = shared.len().saturating_sub(BATCH);
    if spare.capacity() == 0 {
        spare.reserve_exact(KEPT_PER_THREAD);
    }
    spare.extend(shared.drain(from..));
}

/// Keeps `fields`' box for reuse, blank (what it held is dropped, so a
/// kept box holds no buffer alive).
#[inline]
pub(crate) fn give_back(mut fields: Box<FrameFields>) {
    *fields = FrameFields::new(FrameKind::Request, 0);
    let _ = SPARE.try_with(|spare| {
        let Ok(mut spare) = spare.try_borrow_mut() else {
            return;
        };
        if spare.capacity() == 0 {
            spare.reserve_exact(KEPT_PER_THREAD);
        }
        if spare.len() == KEPT_PER_THREAD {
            spill(&mut spare);
        }
        spare.push(fields);
    });
}

/// Hands half of a full store to the shared one (which drops what it has
/// no room for).
#[cold]
fn spill(spare: &mut Boxes) {
    let from = spare.len() - BATCH;
    {
        let mut shared = shared();
        let room = KEPT_SHARED.saturating_sub(shared.len()).min(BATCH);
        shared.extend(spare.drain(from..from + room));
    }
    // Freed outside the lock.
    spare.truncate(from);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_dropped_on_one_thread_serve_frames_built_on_another() {
        let built: Vec<_> = (0..4 * KEPT_PER_THREAD)
            .map(|_| blank())
            .collect::<Vec<_>>();
        let addresses: std::collections::HashSet<usize> = built
            .iter()
            .map(|b| &**b as *const FrameFields as usize)
            .collect();
        std::thread::spawn(move || built.into_iter().for_each(give_back))
            .join()
            .expect("the dropping thread");
        // This thread's store is empty: its next frames come from the
        // batches the other thread spilled (all of them, unless another
        // test's thread spilled boxes of its own meanwhile).
        let reused = (0..BATCH)
            .map(|_| blank())
            .filter(|b| addresses.contains(&(&**b as *const FrameFields as usize)))
            .count();
        assert!(reused >= BATCH / 2, "{reused} of {BATCH} reused");
    }
}
