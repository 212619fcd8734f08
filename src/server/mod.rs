//! Listeners, protocol detection and the downstream connection drivers.
//!
//! ```text
//! accept ─► detect (bounded: DETECT_MAX_BYTES, listener's detect_timeout)
//!        ─► framed driver (any FrameCodec) ─► ProxyCore::serve per request
//! ```

mod detect;
mod framed;
mod listener;
mod tracker;

pub use crate::stats::{ListenerCounts, ListenerStats};
pub use detect::{DetectError, detect};
pub use listener::{ListenerHandle, bind_listener};
pub use tracker::Tracker;
