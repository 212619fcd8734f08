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
//! This step adds the matchers and the policies a route carries; the
//! route table and its build follow.

mod config;
mod error;
mod hash_policy;
mod header_mutation;
mod matchers;
mod metadata;
mod redirect;
mod request;
mod retry_policy;
mod rewrite;

pub use config::*;
pub use error::{RouterConfigError, RouterConfigErrors, RouterConfigWarning};
pub use hash_policy::{HashPolicy, stable_hash};
pub use header_mutation::{HeaderMutations, HeaderToAdd, HeaderValueSource};
pub use matchers::{HeaderMatcher, PathMatcher, RouteMatch, ValueMatch, VariableMatcher};
pub use metadata::{MOSN_LB, MetadataMatch};
pub use redirect::{DirectResponse, Redirect, RedirectPath};
pub use request::{MapRequest, RouteRequest};
pub use retry_policy::{FailureKind, RetryOn, RetryPolicy};
pub use rewrite::{HostRewrite, PathRewrite};
