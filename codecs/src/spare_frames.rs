//! Boxes of dropped frames, kept per thread for the next frames built on
//! that thread (see [`crate::Frame`]): a proxied request builds two frames
//! (its decode and its response's) and drops two, so in steady state every
//! box comes from here and the allocator is not asked. A frame dropped on
//! another thread than the one that built it leaves its box there; the
//! bound keeps what a thread holds small either way.

use crate::frame::{FrameFields, FrameKind};
use std::cell::RefCell;

/// Boxes one thread keeps at most (each about half a kilobyte).
const KEPT_PER_THREAD: usize = 256;

thread_local! {
    // The boxes themselves are what is kept: a `Vec<FrameFields>` would
    // move the fields in and out instead of handing over a pointer.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<FrameFields>>> = const { RefCell::new(Vec::new()) };
}

/// The fields of an empty request with id 0 (`FrameFields::new`) in a
/// box: a spare one of this thread's, else a new one. Callers set the
/// fields they need in place.
#[inline(always)]
pub(crate) fn blank() -> Box<FrameFields> {
    SPARE
        .try_with(|spare| {
            spare
                .try_borrow_mut()
                .ok()
                .and_then(|mut spare| spare.pop())
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| Box::new(FrameFields::new(FrameKind::Request, 0)))
}

/// Keeps `fields`' box for reuse, blank (what it held is dropped, so a
/// kept box holds no buffer alive), unless this thread keeps enough
/// already.
#[inline]
pub(crate) fn give_back(mut fields: Box<FrameFields>) {
    *fields = FrameFields::new(FrameKind::Request, 0);
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare.len() < KEPT_PER_THREAD
        {
            if spare.capacity() == 0 {
                spare.reserve_exact(KEPT_PER_THREAD);
            }
            spare.push(fields);
        }
    });
}
