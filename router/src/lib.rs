//! Routing for meshgate: answers "which cluster, with what subset metadata,
//! timeout and retry policy" for a request's header view.
//!
//! It will own MOSN's `routers[]` configuration (virtual hosts, domains,
//! ordered routes with header/path matchers, route actions such as
//! `cluster_name`, `weighted_clusters`, `metadata_match`,
//! `direct_response`, and the retry policy). It knows nothing of hosts or
//! connections: that is `meshgate-cluster`, and only the gateway joins the
//! two. It depends on `meshgate-codecs` only for the header view it matches.
//!
//! Empty for now: routing lands with the RPC gateway work.
