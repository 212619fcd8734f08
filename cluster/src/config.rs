//! MOSN's `cluster_manager.clusters[]` JSON, field for field.
//!
//! These are the raw serde types (STYLE §5, first layer): they mirror MOSN's
//! `pkg/config/v2/upstream.go` and `loadbalancer.go` names exactly and hold
//! whatever the file says, valid or not. Every struct takes
//! `#[serde(default)]` because Go fills absent fields with zero values, and
//! none denies unknown fields: the gateway's loader warns about those with
//! their path. Checking and defaulting happen in [`crate::ClusterManager::build`],
//! which turns these into runtime types and reports every problem at once.
//!
//! `type` and `lb_type` stay strings here on purpose: an unknown value must
//! become a build error with its path and the list of valid values, next to
//! every other problem, rather than abort deserialisation at the first one.

pub use crate::health::{HttpCheckConfig, StatusRangeConfig};
pub use crate::outlier::OutlierDetectionConfig;
use meshgate_gocompat::GoDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One upstream cluster (MOSN `v2.Cluster`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// Unique name routes refer to. Required.
    pub name: String,
    /// Discovery type: `SIMPLE` (MOSN's default), `STATIC`, `DYNAMIC`, `EDS`,
    /// `ORIGINAL_DST`, `STRICT_DNS`. Only static host lists are served today.
    #[serde(rename = "type")]
    pub cluster_type: String,
    /// Declared by MOSN, marked "not used yet" there; accepted and ignored.
    pub sub_type: String,
    /// Load balancer name, such as `LB_ROUNDROBIN` (the default when empty).
    pub lb_type: String,
    /// Requests one upstream connection carries before it is replaced;
    /// 0 means MOSN's default, 1024.
    pub max_request_per_conn: u32,
    /// Per-connection buffer limit in bytes; 0 means MOSN's default, 16 KiB.
    pub conn_buffer_limit_bytes: u32,
    /// MOSN reads a bare JSON array here and uses only its first entry.
    pub circuit_breakers: Vec<ThresholdsConfig>,
    /// Active health checking ([`crate::health`]).
    pub health_check: HealthCheckConfig,
    /// Passive outlier detection, Envoy's field names (a meshgate
    /// extension; MOSN has none under the cluster). See [`crate::outlier`].
    pub outlier_detection: Option<OutlierDetectionConfig>,
    /// Envoy's healthy panic threshold in percent (a meshgate extension;
    /// default 50, 0 turns panic off). See [`crate::lb`].
    pub healthy_panic_threshold: Option<f64>,
    /// Service subscription info (`subscribe[]`); accepted and unused, as in MOSN.
    pub spec: ClusterSpecConfig,
    /// Subset load balancing over host metadata.
    pub lb_subset_config: LbSubsetConfig,
    /// Options of `LB_ORIGINAL_DST` (not supported yet).
    pub original_dst_lb_config: OriginalDstLbConfig,
    /// Use the cluster manager's shared TLS context instead of `tls_context`.
    pub cluster_manager_tls: bool,
    /// Upstream TLS settings, kept as JSON until TLS lands (a config that
    /// turns TLS on is refused rather than silently sent in clear).
    pub tls_context: serde_json::Value,
    /// Static hosts.
    pub hosts: Vec<HostConfig>,
    /// Upstream connect timeout; MOSN's default is 10 s.
    pub connect_timeout: Option<GoDuration>,
    /// Idle upstream connections are closed after this; none by default.
    pub idle_timeout: Option<GoDuration>,
    /// Tuning of the least-request and least-connection balancers.
    pub lbconfig: Option<LbConfig>,
    /// `STRICT_DNS` refresh interval (DNS clusters are not supported yet).
    pub dns_refresh_rate: Option<GoDuration>,
    /// `STRICT_DNS`: follow record TTLs.
    pub respect_dns_ttl: bool,
    /// `STRICT_DNS`: `V4_ONLY` or `V6_ONLY`.
    pub dns_lookup_family: String,
    /// `STRICT_DNS` resolver settings.
    pub dns_resolvers: DnsResolverConfig,
    /// `STRICT_DNS`: resolv.conf-style file.
    pub dns_resolver_file: String,
    /// `STRICT_DNS`: resolver port.
    pub dns_resolver_port: String,
    /// MOSN: give this cluster connection pools of its own.
    pub cluster_pool_enable: bool,
    /// meshgate extension: connections a multiplexed pool keeps open per
    /// host (0 = 1, MOSN's single multiplexed connection).
    pub connections_per_host: u32,
}

/// One circuit-breaker threshold set (MOSN `v2.Thresholds`). A 0 limit means
/// MOSN's default, as in MOSN's resource manager (see
/// [`crate::CircuitBreaker`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThresholdsConfig {
    /// Envoy's routing priority (`DEFAULT`/`HIGH`); older MOSN versions carried
    /// it, current ones ignore it, and so do we.
    pub priority: String,
    /// Connections per host.
    pub max_connections: u32,
    /// Requests waiting for a connection.
    pub max_pending_requests: u32,
    /// Requests in flight to the cluster.
    pub max_requests: u32,
    /// Retries in flight to the cluster.
    pub max_retries: u32,
    /// meshgate extension (Envoy's `retry_budget`): retries in flight
    /// bounded as a share of requests in flight.
    pub retry_budget: Option<RetryBudgetConfig>,
}

/// Envoy's `retry_budget` (`circuit_breakers[0].retry_budget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryBudgetConfig {
    /// Retries in flight allowed as a percentage of requests in flight
    /// (default 20).
    pub budget_percent: Option<f64>,
    /// Retries in flight always allowed (default 3).
    pub min_retry_concurrency: Option<u32>,
}

/// Active health checking (MOSN `v2.HealthCheckConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckConfig {
    /// Checker: `tcp`, `Http1`, or a framed codec's name for its heartbeat.
    pub protocol: String,
    /// Time to wait for a check's answer.
    pub timeout: GoDuration,
    /// Time between checks.
    pub interval: GoDuration,
    /// Random extra delay added to each interval.
    pub interval_jitter: GoDuration,
    /// Delay before the first check (a duration, despite the name).
    pub initial_delay_seconds: GoDuration,
    /// Successes needed to mark a host healthy.
    pub healthy_threshold: u32,
    /// Failures needed to mark a host unhealthy.
    pub unhealthy_threshold: u32,
    /// Service to check, for protocols that name one.
    pub service_name: String,
    /// Checker-specific settings (`http_check_config`, ...), parsed by the
    /// checker that owns them.
    pub check_config: serde_json::Map<String, serde_json::Value>,
    /// Where MOSN logs health events.
    pub event_log_path: String,
    /// Names of callbacks run on every check result.
    pub common_callbacks: Vec<String>,
}

/// MOSN `v2.ClusterSpecInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSpecConfig {
    /// Registry subscriptions.
    pub subscribe: Vec<SubscribeSpecConfig>,
}

/// MOSN `v2.SubscribeSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscribeSpecConfig {
    /// Who subscribes.
    pub subscriber: String,
    /// The service subscribed to.
    pub service_name: String,
}

/// Subset load balancing (MOSN `v2.LBSubsetConfig`). Subsets are on when
/// `subset_selectors` is not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LbSubsetConfig {
    /// What to do when a request's metadata matches no subset:
    /// 0 no host, 1 any host of the cluster, 2 the `default_subset` hosts.
    pub fall_back_policy: u8,
    /// Metadata the fallback hosts must carry under policy 2.
    pub default_subset: BTreeMap<String, String>,
    /// Each entry is a set of metadata keys; hosts carrying all of them are
    /// grouped by their values into subsets.
    pub subset_selectors: Vec<Vec<String>>,
}

/// MOSN `v2.LBOriDstConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OriginalDstLbConfig {
    /// Take the destination from a request header.
    pub use_header: bool,
    /// That header's name (MOSN's default is `host`).
    pub header_name: String,
}

/// MOSN `v2.LbConfig` (`lbconfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LbConfig {
    /// Random hosts compared per pick by least request/connection; 0 means 2.
    pub choice_count: u32,
    /// With unequal weights, a host's effective weight is
    /// `weight / (active + 1) ^ active_request_bias`; 0 means 1.0.
    pub active_request_bias: f64,
    /// Declared by MOSN for future balancers; accepted and unused.
    pub client_error_bias: f64,
    /// Declared by MOSN for future balancers; accepted and unused.
    pub server_error_bias: f64,
}

/// MOSN `v2.DnsResolverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsResolverConfig {
    /// Resolver addresses.
    pub servers: Vec<String>,
    /// Search suffixes.
    pub search: Vec<String>,
    /// Resolver port.
    pub port: String,
    /// resolv.conf `ndots`.
    pub ndots: i64,
    /// Seconds per query.
    pub timeout: i64,
    /// Servers tried per query.
    pub attempts: i64,
}

/// One static host (MOSN `v2.HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    /// `ip:port` (`[v6]:port` for IPv6); `name:port` is resolved once, at build.
    pub address: String,
    /// A label for logs and admin output.
    pub hostname: String,
    /// Load balancing weight; MOSN clamps it into 1..=128, and 0 means 1.
    pub weight: u32,
    /// Host metadata; only `filter_metadata."mosn.lb"` is read.
    pub metadata: Option<MetadataConfig>,
    /// Skip TLS for this host even when the cluster uses it.
    pub tls_disable: bool,
}

/// MOSN `v2.MetadataConfig`: `{"filter_metadata": {"mosn.lb": {...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataConfig {
    /// The filter namespaces; MOSN reads `mosn.lb` only.
    pub filter_metadata: FilterMetadataConfig,
}

/// MOSN `v2.LbMeta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterMetadataConfig {
    /// Key/value labels used by subset load balancing. Values are JSON
    /// because MOSN accepts any; it keeps only the strings, and so do we.
    #[serde(rename = "mosn.lb")]
    pub mosn_lb: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn absent_fields_take_go_zero_values() {
        let c: ClusterConfig = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(c.lb_type, "");
        assert!(c.hosts.is_empty());
        assert_eq!(c.connect_timeout, None);
        assert_eq!(c.tls_context, serde_json::Value::Null);
    }

    #[test]
    fn durations_and_metadata_read_as_mosn_writes_them() {
        let c: ClusterConfig = serde_json::from_str(
            r#"{"name":"a","type":"SIMPLE","connect_timeout":"1.5s",
                "health_check":{"interval":"15s","interval_jitter":0},
                "circuit_breakers":[{"max_connections":7}],
                "hosts":[{"address":"127.0.0.1:1","metadata":
                    {"filter_metadata":{"mosn.lb":{"zone":"a","n":1}}}}]}"#,
        )
        .unwrap();
        assert_eq!(c.cluster_type, "SIMPLE");
        assert_eq!(
            c.connect_timeout,
            Some(GoDuration(Duration::from_millis(1500)))
        );
        assert_eq!(c.health_check.interval.get(), Duration::from_secs(15));
        assert_eq!(c.circuit_breakers[0].max_connections, 7);
        let md = &c.hosts[0]
            .metadata
            .as_ref()
            .unwrap()
            .filter_metadata
            .mosn_lb;
        assert_eq!(md["zone"], "a");
        assert_eq!(md["n"], 1);
    }

    #[test]
    fn unknown_keys_are_left_to_the_loader() {
        let c: ClusterConfig =
            serde_json::from_str(r#"{"name":"a","check_path":"","x":{"y":1}}"#).unwrap();
        assert_eq!(c.name, "a");
    }
}
