//! meshgate, the gateway: configuration (`config`), listeners with protocol
//! detection and the connection drivers (`server`), the proxy phases
//! (`proxy`), upstream pools (`upstream`), statistics (`stats`),
//! start/stop/reload (`control`), access logs (`accesslog`), the byte
//! relay the TCP proxy and HTTP upgrade tunnels share (`relay`), and the
//! capture inspector behind `meshgate decode` (`inspect`).

pub mod accesslog;
pub mod config;
pub mod control;
pub mod generic;
pub mod inspect;
pub mod logging;
pub mod proxy;
mod relay;
pub mod server;
pub mod stats;
pub mod upstream;
