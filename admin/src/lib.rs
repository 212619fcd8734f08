//! The admin HTTP API of meshgate, with MOSN's paths (`/api/v1/states`,
//! `/api/v1/config_dump`, `/api/v1/stats`, log level control), Prometheus
//! metrics and a live dashboard.
//!
//! It serves whatever the process exposes through [`AdminSource`] and
//! imports no gateway crate: the gateway implements the trait, tests use a
//! fake.

mod source;

pub use source::{
    AdminSource, ClusterView, HistogramView, HostView, ListenerView, Metric, MetricValue,
    StateView,
};
