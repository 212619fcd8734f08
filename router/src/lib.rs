//! Routing for meshgate: answers "which cluster, with what subset metadata,
//! timeout, retry and hash policy" for a request's header view.
//!
//! It owns MOSN's `routers[]` configuration: virtual hosts and their
//! domains, ordered routes with path, header and variable matchers, and the
//! route actions (`cluster_name`, `weighted_clusters`, `cluster_header`,
//! `metadata_match`, `timeout`, `retry_policy`, `hash_policy`, rewrites,
//! header mutations, `direct_response`, `redirect`, mirroring).
//!
//! It deliberately knows nothing of hosts, connections or protocols: the
//! cluster crate chooses hosts, and only the gateway joins the two (the
//! subset metadata crosses as a plain `&BTreeMap<String, String>`). It
//! applies nothing either: header mutations, rewrites and redirects are
//! built here and applied by the proxy. It depends on `meshgate-codecs`
//! only for the RPC header view it matches ([`RouteRequest`] is implemented
//! for [`meshgate_codecs::Headers`]).
//!
//! This first step holds the raw configuration, the error types and the
//! request view; matching and the built route table follow.

mod config;
mod error;
mod request;

pub use config::*;
pub use error::{RouterConfigError, RouterConfigErrors, RouterConfigWarning};
pub use request::{MapRequest, RouteRequest};
