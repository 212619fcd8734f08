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
//! # Use
//!
//! ```
//! use meshgate_router::{MapRequest, RouteTable, RouterConfig};
//!
//! let cfg: RouterConfig = serde_json::from_str(r#"{
//!   "router_config_name": "server_router",
//!   "virtual_hosts": [{"name": "rpc", "domains": ["*"], "routers": [
//!     {"match": {"headers": [{"name": "service", "value": ".*"}]},
//!      "route": {"cluster_name": "server_cluster", "timeout": "3s"}}]}]
//! }"#).unwrap();
//! let table = RouteTable::build(&cfg).unwrap();
//! let req = MapRequest::new().header("service", "com.alipay.HelloService:1.0");
//! let route = table.route(&req).unwrap();
//! let (cluster, subset) = route.forward().unwrap().pick_cluster(&req, 0).unwrap();
//! assert_eq!(cluster, "server_cluster");
//! assert!(subset.is_empty());
//! ```
//!
//! # Files
//!
//! - `config/`: the raw serde structs, MOSN's JSON field for field.
//! - `build.rs`, `error.rs`: config → [`RouteTable`], collecting every
//!   error with its JSON path and a hint ([`RouterConfigErrors`]).
//! - `table.rs`, `domain.rs`, `virtual_host.rs`: lookup by authority, then
//!   the first matching route.
//! - `matchers/`: path, header and variable matchers.
//! - `route.rs`, `action.rs`, `redirect.rs`, `rewrite.rs`: what a route
//!   does.
//! - `metadata.rs`, `retry_policy.rs`, `hash_policy.rs`,
//!   `header_mutation.rs`: the policies a forward carries.
//! - `request.rs`: the [`RouteRequest`] view the router matches on.
//!
//! # MOSN compatibility
//!
//! Mirrored, with the MOSN source each comes from: domain priorities and
//! port rules (`pkg/router/routers_impl.go`), route kind precedence
//! `prefix` > `path` > `regex` (`virtualhost.go`), `".*"` meaning any
//! service for a lone `service` matcher (`rpc_rule.go`), unanchored Go
//! regexes and case-insensitive exact paths (`matcher.go`, `http_rule.go`),
//! the variable `and`/`or` chain (`variable_rule.go`), `mosn.lb` metadata
//! with non-strings dropped (`config/v2/common.go`), redirect codes and
//! scheme check, header formatter rules and application order
//! (`base_rule.go`, `headerformatter.go`), action precedence
//! `direct_response` > `redirect` > forward (`proxy/downstream.go`), what
//! `retry_on` true/false retries (`proxy/retry_state.go`), and hash inputs
//! with the source-IP default (`router/types.go`).
//!
//! Deliberately different (each also reported as a build warning where
//! a config could notice):
//!
//! - A request without an authority goes to the default host (MOSN: no
//!   host unless the default is the only one).
//! - Headers and variables are checked on every route that sets them (MOSN
//!   ignores headers on variable routes and variables on path routes);
//!   DSL-only routes are disabled, as DSL is not supported.
//! - A lone-`service` matcher with `"regex": true` is a regex (MOSN's fast
//!   path ignores the flag).
//! - An unset variable never matches (MOSN reads it as `""`).
//! - Weighted clusters: choice is exactly proportional in config order
//!   (MOSN iterates a Go map and is off by one); a weighted cluster's
//!   `metadata_match` is merged over the route's (MOSN replaces it); zero
//!   total weight and duplicate names are errors.
//! - `num_retries` is honoured as written (MOSN retries at least 3 times).
//! - Hash policies are tried in order, missing input gives no key (MOSN
//!   uses only the first entry and hashes a missing header to 0); the hash
//!   function is FNV-1a, not MOSN's siphash.
//! - A one-character `prefix_rewrite` or rewrite regex is honoured.
//! - A route with no action, an invalid domain or an unknown variable
//!   `model` is an error (MOSN accepts, then fails or panics at request
//!   time).

mod action;
mod build;
mod config;
mod domain;
mod error;
mod hash_policy;
mod header_mutation;
mod matchers;
mod metadata;
mod redirect;
mod request;
mod retry_policy;
mod rewrite;
mod route;
mod table;
mod virtual_host;

pub use action::{ClusterSpec, DynamicSource, Forward, RouteAction, WeightedCluster};
pub use config::{
    ClusterWeightConfig, CookieHashConfig, DirectResponseConfig, HashPolicyConfig,
    HeaderHashConfig, HeaderMatcherConfig, HeaderValueConfig, HeaderValueOption, MetadataConfig,
    MirrorPolicyConfig, PatternConfig, RedirectConfig, RegexRewriteConfig, RetryOnConfig,
    RetryPolicyConfig, RouteActionConfig, RouteConfig, RouteMatchConfig, RouterConfig,
    SourceIpHashConfig, VariableMatcherConfig, VirtualHostConfig, WeightedClusterConfig,
};
pub use error::{RouterConfigError, RouterConfigErrors, RouterConfigWarning};
pub use hash_policy::{HashPolicy, stable_hash};
pub use header_mutation::{HeaderMutations, HeaderToAdd, HeaderValueSource};
pub use matchers::{HeaderMatcher, PathMatcher, RouteMatch, ValueMatch, VariableMatcher};
pub use metadata::{MOSN_LB, MetadataMatch};
pub use redirect::{DirectResponse, Redirect, RedirectPath};
pub use request::{MapRequest, RouteRequest};
pub use retry_policy::{FailureKind, RetryOn, RetryPolicy};
pub use rewrite::{HostRewrite, PathRewrite};
pub use route::{MirrorPolicy, Route};
pub use table::{MatchedRoute, RouteTable};
pub use virtual_host::VirtualHost;
