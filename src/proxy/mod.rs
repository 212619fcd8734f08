//! The proxy: one async function per request through MOSN's phases.

mod breaker;
pub mod context;
pub mod error;
pub mod filter;
pub mod filters;
pub mod http;
mod outcome;
pub mod phase;
pub mod reply;
mod serve;
mod steps;
mod variables;

pub use context::{Downstream, RequestCx};
pub use error::ProxyError;
pub use filter::{FilterCx, FilterHeaders, Flow, LocalReply, Stage, StreamFilter};
pub use phase::Phase;
pub use serve::{DEFAULT_TIMEOUT, ProxyCore};
