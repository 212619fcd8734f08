//! meshgate, the gateway: configuration, listeners with protocol detection,
//! connection drivers, the proxy phases and the control plane. For now it
//! holds the capture inspector behind `meshgate decode`.

pub mod config;
pub mod control;
pub mod generic;
pub mod inspect;
pub mod proxy;
