//! Listeners, protocol detection and the downstream connection drivers.
//!
//! ```text
//! accept ─► detect (bounded: DETECT_MAX_BYTES, listener's detect_timeout)
//!        ─► framed driver (any FrameCodec) ─► ProxyCore::serve per request
//!        └► no protocol + fallback_for_unknown_protocol, or a tcp_proxy
//!           listener ─► tcp_proxy (bytes both ways to a cluster's host)
//! ```

mod detect;
mod framed;
mod http;
mod limits;
mod listener;
mod tcp_proxy;
mod tracker;

pub use crate::stats::{ListenerCounts, ListenerStats};
pub use detect::{DetectError, detect, detect_into};
pub use listener::{ListenerHandle, bind_listener};
pub use tcp_proxy::{TcpProxyCounts, TcpProxyStats};
pub use tracker::Tracker;
