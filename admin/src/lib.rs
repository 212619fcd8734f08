//! The admin HTTP API of meshgate, with MOSN's paths (`/api/v1/states`,
//! `/api/v1/config_dump`, `/api/v1/stats`, log level control), Prometheus
//! metrics at `/metrics` and a live dashboard at `/dashboard`.
//!
//! It serves whatever the process exposes through [`AdminSource`] and
//! imports no gateway crate: the gateway implements the trait, tests use a
//! fake. It does not choose its own address: [`bind`] takes the one the
//! gateway's config gives (`127.0.0.1` by default there), and it never
//! changes the gateway except through the trait's log-level methods.
//!
//! ```no_run
//! # async fn demo(source: std::sync::Arc<dyn meshgate_admin::AdminSource>) -> std::io::Result<()> {
//! let server = meshgate_admin::bind("127.0.0.1:34901".parse().unwrap(), source).await?;
//! println!("admin on http://{}", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod handlers;
mod redact;
mod reply;
mod routes;
mod server;
mod source;

pub use redact::{REDACTED, redact_secrets};
pub use server::{AdminServer, MAX_BODY_BYTES, bind};
pub use source::{
    AdminSource, ClusterView, HistogramView, HostView, ListenerView, Metric, MetricValue, StateView,
};
