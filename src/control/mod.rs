//! Start, stop and reload: the lifecycle state machine, the running
//! gateway, and the pid file the CLI finds it by.

pub mod admin;
mod gateway;
pub mod lifecycle;
pub mod pidfile;

pub use admin::GatewaySource;
pub use gateway::{ControlError, Gateway, GatewayOptions};
pub use lifecycle::{Lifecycle, State};
