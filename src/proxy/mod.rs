//! The proxy: one async function per request through MOSN's phases.

pub mod context;
pub mod filter;
pub mod filters;
pub mod phase;
pub mod reply;
mod variables;

pub use context::{Downstream, RequestCx};
pub use filter::{Flow, LocalReply, Stage, StreamFilter};
pub use phase::Phase;
