//! The raw router configuration: serde structs that mirror MOSN's JSON
//! (`pkg/config/v2/route.go`, `loadbalancer.go`, `common.go`) field for
//! field, so a user's MOSN file reads unchanged.
//!
//! Nothing here is validated; [`RouteTable::build`](crate::RouteTable::build)
//! turns these into runtime types and reports every problem with its JSON
//! path. Unknown keys are accepted (the gateway's loader warns about them),
//! and `null` means "leave the default", as Go's `encoding/json` reads it.
//!
//! A few fields are not MOSN's: they come from Envoy's route API and are
//! accepted for the HTTP work (`redirect.prefix_rewrite`,
//! `redirect.https_redirect`, `redirect.strip_query`,
//! `retry_policy.retryable_status_codes`, a string `retry_on`, and an
//! optional route `name`). Each is marked below.

mod action;

pub use action::*;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Go's `encoding/json` leaves a field at its zero value when the JSON says
/// `null`; serde would reject the `null`. Every non-`Option` field uses this.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// One entry of `servers[].routers[]`: MOSN's `RouterConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouterConfig {
    /// The name a proxy filter's `router_config_name` refers to.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub router_config_name: String,
    /// MOSN's dynamic mode: a directory with one virtual host per JSON file.
    /// This crate does not read files; the gateway's loader fills
    /// `virtual_hosts` from it before building. Both at once is an error.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub router_configs: String,
    /// Virtual hosts, each with its domains and ordered routes.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub virtual_hosts: Vec<VirtualHostConfig>,
    /// Headers added to every routed request.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// Headers removed from every routed request.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_remove: Vec<String>,
    /// Headers added to every response.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Headers removed from every response.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_remove: Vec<String>,
}

/// MOSN's `VirtualHost`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VirtualHostConfig {
    /// Used in logs and stats only.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub name: String,
    /// `www.foo.com`, `*.foo.com`, `*-bar.foo.com`, `*`, each optionally
    /// with `:port` or `:*`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub domains: Vec<String>,
    /// Routes, tried in order; the first that matches wins.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub routers: Vec<RouteConfig>,
    /// Parsed and ignored, as MOSN does ("not used yet").
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub require_tls: String,
    /// Headers added to requests routed through this host.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// Headers removed from requests routed through this host.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_remove: Vec<String>,
    /// Headers added to responses.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Headers removed from responses.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_remove: Vec<String>,
    /// Stream filter type → that filter's config, overriding it for this host.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub per_filter_config: BTreeMap<String, Value>,
}

/// One route: MOSN's `Router` (`RouterConfig` in Go).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteConfig {
    /// Not MOSN's (Envoy's `name`): a label for logs and stats. When empty
    /// the built route is named after its position.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub name: String,
    /// Which requests this route takes.
    #[serde(deserialize_with = "nullable")]
    pub r#match: RouteMatchConfig,
    /// Forward to a cluster.
    #[serde(deserialize_with = "nullable")]
    pub route: RouteActionConfig,
    /// Answer with an HTTP redirect instead of forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
    /// Answer locally instead of forwarding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponseConfig>,
    /// The route's own metadata (same shape as `metadata_match`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataConfig>,
    /// Stream filter type → config overriding that filter for this route.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub per_filter_config: BTreeMap<String, Value>,
    /// Copy a share of the traffic to another cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_mirror_policies: Option<MirrorPolicyConfig>,
}

/// MOSN's `RouterMatch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteMatchConfig {
    /// Path prefix (HTTP).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub prefix: String,
    /// Exact path (HTTP; compared ignoring ASCII case, as MOSN does).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub path: String,
    /// Path regex (Go RE2 syntax, unanchored like Go's `MatchString`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub regex: String,
    /// All must match.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub headers: Vec<HeaderMatcherConfig>,
    /// Chained with each entry's `model` (`and`/`or`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub variables: Vec<VariableMatcherConfig>,
    /// MOSN's DSL matcher: parsed, not supported (build warns).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub dsl_expressions: Vec<Value>,
}

/// MOSN's `HeaderMatcher`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderMatcherConfig {
    /// Header key as the protocol spells it (`service` for RPC routing).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub name: String,
    /// Exact value, or a pattern when `regex` is true.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub value: String,
    /// Treat `value` as a regex.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub regex: bool,
}

/// MOSN's `VariableMatcher` (`pkg/router/variable_rule.go`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VariableMatcherConfig {
    /// Variable name, answered by the gateway.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub name: String,
    /// Exact value.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub value: String,
    /// A pattern (a string here, unlike the header matcher's flag); when set
    /// it replaces the `value` comparison.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub regex: String,
    /// `and` (default) or `or`: how this entry joins the next.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub model: String,
}

/// MOSN's `HeaderValueOption`: `{"header": {"key": k, "value": v}, "append": b}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderValueOption {
    /// The pair; required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderValueConfig>,
    /// Append to an existing value (default) or replace it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// MOSN's `HeaderValue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderValueConfig {
    /// Header name (lowercased when built).
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    /// A literal, or `%variable_name%`.
    #[serde(deserialize_with = "nullable")]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_reads_as_default_like_go() {
        let cfg: RouterConfig = serde_json::from_str(
            r#"{"router_config_name": null, "virtual_hosts": [{"name": "a", "domains": null,
                "routers": [{"match": null, "route": {"cluster_name": "c", "timeout": null}}]}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.router_config_name, "");
        let route = &cfg.virtual_hosts[0].routers[0];
        assert_eq!(route.route.cluster_name, "c");
        assert_eq!(route.route.timeout, None);
        assert_eq!(route.r#match, RouteMatchConfig::default());
    }

    #[test]
    fn retry_on_bool_or_conditions() {
        let p: RetryPolicyConfig = serde_json::from_str(r#"{"retry_on": true}"#).unwrap();
        assert_eq!(p.retry_on, RetryOnConfig::Bool(true));
        let p: RetryPolicyConfig =
            serde_json::from_str(r#"{"retry_on": "5xx,reset", "num_retries": 2}"#).unwrap();
        assert_eq!(p.retry_on, RetryOnConfig::Conditions("5xx,reset".into()));
        assert_eq!(p.num_retries, Some(2));
        assert!(serde_json::from_str::<RetryPolicyConfig>(r#"{"retry_on": 3}"#).is_err());
    }

    #[test]
    fn serializes_like_go_omitempty() {
        let cfg: RouteConfig =
            serde_json::from_str(r#"{"route": {"cluster_name": "c", "timeout": "1s"}}"#).unwrap();
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"match": {}, "route": {"cluster_name": "c", "timeout": "1s"}})
        );
    }

    #[test]
    fn unknown_keys_are_accepted() {
        let cfg: VirtualHostConfig =
            serde_json::from_str(r#"{"name": "x", "virtual_clusters": [], "cors": {}}"#).unwrap();
        assert_eq!(cfg.name, "x");
    }
}
