//! The handlers, one module per concern; `routes.rs` maps paths to them.

pub(crate) mod config_dump;
pub(crate) mod dashboard;
pub(crate) mod mosn;
pub(crate) mod prometheus;
pub(crate) mod stats;
pub(crate) mod views;
