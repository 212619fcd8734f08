//! The raw `route` action and what it carries: clusters, subset metadata,
//! retry and hash policies, rewrites; and the local answers
//! (`redirect`, `direct_response`) and mirroring.

use super::{HeaderValueOption, is_default, nullable};
use meshgate_gocompat::GoDuration;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// MOSN's `RouteAction` (`RouterActionConfig` in Go).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteActionConfig {
    /// The upstream cluster.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub cluster_name: String,
    /// Take the cluster name from this request header.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub cluster_header: String,
    /// Take the cluster name from this variable.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub cluster_variable: String,
    /// Protocol spoken to the upstream, when it differs from downstream.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub upstream_protocol: String,
    /// Split traffic between clusters by weight.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub weighted_clusters: Vec<WeightedClusterConfig>,
    /// Hash key for consistent-hash load balancers.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub hash_policy: Vec<HashPolicyConfig>,
    /// Subset selector: `{"filter_metadata": {"mosn.lb": {...}}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_match: Option<MetadataConfig>,
    /// Whole-request timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    /// Retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicyConfig>,
    /// Replace the matched path prefix (HTTP).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub prefix_rewrite: String,
    /// Rewrite the path by regex (HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex_rewrite: Option<RegexRewriteConfig>,
    /// Replace the `Host` header (HTTP).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub host_rewrite: String,
    /// Set `Host` to the chosen upstream host's name (HTTP).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub auto_host_rewrite: bool,
    /// Set `Host` from this request header (HTTP).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub auto_host_rewrite_header: String,
    /// Route-level header mutations.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// Route-level header mutations.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub request_headers_to_remove: Vec<String>,
    /// Route-level header mutations.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Route-level header mutations.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_headers_to_remove: Vec<String>,
}

/// One `weighted_clusters[]` entry: `{"cluster": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightedClusterConfig {
    /// The cluster and its weight.
    #[serde(deserialize_with = "nullable")]
    pub cluster: ClusterWeightConfig,
}

/// MOSN's `ClusterWeight`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterWeightConfig {
    /// Cluster name.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub name: String,
    /// Relative weight; the route's weights must not all be zero.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub weight: u32,
    /// Merged over the route's `metadata_match` for this cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_match: Option<MetadataConfig>,
}

/// MOSN's `MetadataConfig`: `{"filter_metadata": {"mosn.lb": {"k": "v"}}}`.
///
/// Kept as JSON values so the build can say which entry is not a string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataConfig {
    /// Only the `mosn.lb` key means anything to MOSN.
    #[serde(deserialize_with = "nullable")]
    pub filter_metadata: BTreeMap<String, Value>,
}

/// MOSN's `RetryPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicyConfig {
    /// MOSN: a bool. Also accepted: Envoy's comma list
    /// (`"5xx,connect-failure,reset"`).
    pub retry_on: RetryOnConfig,
    /// Per-try timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_timeout: Option<GoDuration>,
    /// Retries after the first try; see [`crate::RetryPolicy`] for defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Not MOSN's (Envoy): statuses retried under `retriable-status-codes`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub retryable_status_codes: Vec<u32>,
}

/// `retry_on` as written: MOSN's bool or Envoy's condition list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOnConfig {
    /// MOSN's form.
    Bool(bool),
    /// Envoy's form, unparsed.
    Conditions(String),
}

impl Default for RetryOnConfig {
    fn default() -> Self {
        RetryOnConfig::Bool(false)
    }
}

impl Serialize for RetryOnConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryOnConfig::Bool(b) => s.serialize_bool(*b),
            RetryOnConfig::Conditions(c) => s.serialize_str(c),
        }
    }
}

impl<'de> Deserialize<'de> for RetryOnConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RetryOnConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true/false, or conditions such as \"5xx,connect-failure,reset\"")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<RetryOnConfig, E> {
                Ok(RetryOnConfig::Bool(b))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RetryOnConfig, E> {
                Ok(RetryOnConfig::Conditions(s.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RetryOnConfig, E> {
                Ok(RetryOnConfig::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// MOSN's `HashPolicy`: one of `header`, `cookie`, `source_ip`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HashPolicyConfig {
    /// Hash a request header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderHashConfig>,
    /// Hash a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<CookieHashConfig>,
    /// Hash the downstream address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<SourceIpHashConfig>,
}

/// `{"key": "x-user"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeaderHashConfig {
    /// Header name.
    #[serde(deserialize_with = "nullable")]
    pub key: String,
}

/// `{"name": "session", "path": "/", "ttl": "1h"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CookieHashConfig {
    /// Cookie name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Cookie path (for generating the cookie; MOSN does not generate).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub path: String,
    /// Cookie lifetime (likewise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<GoDuration>,
}

/// `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceIpHashConfig {}

/// MOSN's `RegexRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegexRewriteConfig {
    /// `{"regex": "..."}` (MOSN also has an unused `google_re2`).
    #[serde(deserialize_with = "nullable")]
    pub pattern: PatternConfig,
    /// Replacement; `$1` / `${name}` refer to groups, as in Go.
    #[serde(deserialize_with = "nullable")]
    pub substitution: String,
}

/// MOSN's `PatternConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatternConfig {
    /// The pattern.
    #[serde(deserialize_with = "nullable")]
    pub regex: String,
}

/// MOSN's `RedirectAction`, plus Envoy's `prefix_rewrite`, `https_redirect`
/// and `strip_query`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RedirectConfig {
    /// 301 (default), 302, 303, 307 or 308.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub response_code: i64,
    /// Replace the whole path.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub path_redirect: String,
    /// Replace the host.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub host_redirect: String,
    /// Replace the scheme.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub scheme_redirect: String,
    /// Not MOSN's (Envoy): replace the matched prefix.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub prefix_rewrite: String,
    /// Not MOSN's (Envoy): scheme `https`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub https_redirect: bool,
    /// Not MOSN's (Envoy): drop the query string.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub strip_query: bool,
}

/// MOSN's `DirectResponseAction`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectResponseConfig {
    /// HTTP status (codecs map it to their own).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub status: i64,
    /// Response body.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub body: String,
}

/// MOSN's `RequestMirrorPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorPolicyConfig {
    /// Cluster receiving the copies.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub cluster: String,
    /// Share of requests copied, 0–100.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub percent: u32,
    /// Parsed; MOSN does not implement it either.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub trace_sampled: bool,
}
