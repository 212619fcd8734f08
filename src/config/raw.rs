//! MOSN's v2 configuration document, field for field, as serde types.
//!
//! These mirror MOSN's JSON exactly (names from MOSN's `pkg/config/v2`);
//! they are read through `meshgate_gocompat`, so field names match
//! case-insensitively, `null` leaves a default and unknown keys become
//! warnings. Sections owned by other crates use those crates' types
//! (`meshgate_router::RouterConfig`, `meshgate_cluster::ClusterConfig`).
//! Polymorphic `config` blobs stay JSON until the factory for their `type`
//! reads them. Nothing here is validated: `build.rs` turns these into the
//! runtime configuration and reports every problem with its path.

use meshgate_cluster::ClusterConfig;
use meshgate_gocompat::GoDuration;
use meshgate_router::RouterConfig;
use serde::Deserialize;
use serde_json::Value;

/// The whole document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MosnConfig {
    /// Servers: listeners and routers.
    pub servers: Vec<ServerConfig>,
    /// Upstream clusters.
    pub cluster_manager: ClusterManagerConfig,
    /// The admin API address.
    pub admin: Option<AdminConfig>,
    /// Path of the pid file `meshgate stop` and `reload` read.
    pub pid: String,
    /// MOSN: close connections gracefully on stop (always true here).
    pub close_graceful: Option<bool>,
    /// Extensions; meshgate reads `{"type": "generic_protocol", "config": {…}}`
    /// entries (config-driven codecs) and warns about the rest.
    pub extends: Vec<TypedConfig>,
    /// Accepted MOSN sections meshgate does not implement (warned, ignored).
    pub tracing: Option<Value>,
    /// See `tracing`.
    pub metrics: Option<Value>,
    /// See `tracing`.
    pub debug: Option<Value>,
    /// See `tracing`.
    pub plugin: Option<Value>,
    /// See `tracing`.
    pub dynamic_resources: Option<Value>,
    /// See `tracing`.
    pub static_resources: Option<Value>,
    /// See `tracing`.
    pub third_part_codec: Option<Value>,
    /// See `tracing`.
    pub wasm_global_plugins: Option<Value>,
}

/// One `servers[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// MOSN's server name (informational).
    pub server_name: String,
    /// Default error log path (`stdout`, `stderr` or a file).
    pub default_log_path: String,
    /// Default log level (`DEBUG`, `INFO`, `WARN`, `ERROR`, …).
    pub default_log_level: String,
    /// How long `stop` waits for in-flight requests (MOSN: graceful_timeout).
    pub graceful_timeout: Option<GoDuration>,
    /// Worker threads (MOSN: `processor`, the GOMAXPROCS); 0 = one per core.
    pub processor: u32,
    /// Log rotation settings (accepted, not implemented).
    pub global_log_roller: String,
    /// The listeners.
    pub listeners: Vec<ListenerConfig>,
    /// Route tables, referred to by the proxy filters' `router_config_name`.
    pub routers: Vec<RouterConfig>,
}

/// One `listeners[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListenerConfig {
    /// Unique name.
    pub name: String,
    /// `ip:port` to listen on (port 0 picks a free port).
    pub address: String,
    /// MOSN binds only listeners with `bind_port: true`; others are
    /// "virtual" (original-destination) listeners.
    pub bind_port: bool,
    /// Listener-specific log path (accepted, not implemented).
    pub log_path: String,
    /// Log level for this listener (accepted, not implemented).
    pub log_level: String,
    /// Access logs: `{"log_path", "log_format"}` (docs/access-log.md).
    pub access_logs: Vec<crate::accesslog::AccessLogConfig>,
    /// Network filter chains; meshgate uses the first chain.
    pub filter_chains: Vec<FilterChainConfig>,
    /// Stream filters applied to every request of this listener, in order.
    pub stream_filters: Vec<TypedConfig>,
    /// Listener filters (accepted, not implemented).
    pub listener_filters: Vec<Value>,
    /// TLS inspector (accepted, not implemented).
    pub inspector: bool,
    /// Closes downstream connections idle this long (nothing in flight,
    /// nothing read); unset: MOSN's 90 s, `0`: never.
    pub connection_idle_timeout: Option<GoDuration>,
    /// MOSN's per-connection buffer limit (accepted; meshgate bounds frames
    /// with `extend_config.max_frame_len` instead).
    pub per_connection_buffer_limit_bytes: u32,
    /// Transparent-proxy settings (accepted, not implemented).
    pub use_original_dst: Option<Value>,
    /// See `use_original_dst`.
    pub access_log_path: String,
}

/// One `filter_chains[]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FilterChainConfig {
    /// MOSN's chain match (accepted, unused: one chain per listener).
    pub filter_chain_match: Option<Value>,
    /// Downstream TLS (not implemented; a config turning it on is refused).
    pub tls_context: Value,
    /// See `tls_context`.
    pub tls_context_set: Vec<Value>,
    /// The network filters.
    pub filters: Vec<TypedConfig>,
}

/// `{"type": …, "config": {…}}`, the shape of every pluggable piece.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TypedConfig {
    /// The factory name (`proxy`, `fault`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Read by the factory for `type`.
    pub config: Value,
}

/// The `proxy` network filter's config (MOSN `v2.Proxy`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProxyConfig {
    /// Informational.
    pub name: String,
    /// A protocol name, a comma list (detection order), `Auto`, or MOSN's
    /// legacy `X` with `extend_config.sub_protocol`.
    pub downstream_protocol: String,
    /// Upstream protocol; framed protocols are forwarded as they arrive, so
    /// this must be `Auto`, empty, or the downstream protocol.
    pub upstream_protocol: String,
    /// Hand connections whose protocol detection finds nothing to the
    /// `tcp_proxy` filter that follows (`docs/tcp-proxy.md`).
    pub fallback_for_unknown_protocol: bool,
    /// Name of the route table (`servers[].routers[].router_config_name`).
    pub router_config_name: String,
    /// MOSN's router handler (only the default exists here).
    pub router_handler_name: String,
    /// MOSN: check route clusters exist (always done here).
    pub validate_clusters: bool,
    /// Protocol options: MOSN's `sub_protocol`, and meshgate's listener
    /// limits (see [`ExtendConfig`]).
    pub extend_config: Value,
}

/// The keys of `extend_config` meshgate reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExtendConfig {
    /// MOSN's legacy form: the protocol when `downstream_protocol` is `X`.
    pub sub_protocol: String,
    /// Largest frame accepted from a downstream connection (bytes).
    pub max_frame_len: Option<usize>,
    /// Requests one downstream connection may have in flight; reading
    /// pauses at the limit.
    pub max_in_flight_per_conn: Option<usize>,
    /// How long protocol detection waits for the first bytes.
    pub detect_timeout: Option<GoDuration>,
    /// Connections the listener holds at once; more are accepted and
    /// closed at once. Unset or 0: no limit.
    pub max_connections: Option<usize>,
    /// How long a frame may take to arrive once its first byte has
    /// (slowloris bound); default 15 s, `0` turns it off.
    pub frame_read_timeout: Option<GoDuration>,
    /// MOSN: send bolt's GoAway (command 100) before closing a
    /// connection; off by default, as in MOSN, since SOFA clients do not
    /// know the command.
    pub enable_bolt_goaway: bool,
    /// MOSN's per-protocol form: `{"bolt": {"enable_bolt_goaway": true}}`.
    pub bolt: Option<BoltExtendConfig>,
    /// HTTP listeners: the largest request header section, bytes (MOSN's
    /// HTTP/1 `max_header_size`).
    pub max_header_size: Option<usize>,
    /// HTTP listeners: the largest request body, bytes (MOSN's HTTP/1
    /// `max_request_body_size`); unset or 0: no limit.
    pub max_request_body_size: Option<u64>,
}

/// `extend_config.bolt`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BoltExtendConfig {
    /// See [`ExtendConfig::enable_bolt_goaway`].
    pub enable_bolt_goaway: bool,
}

/// `admin`: MOSN's Envoy-shaped address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// The address.
    pub address: AdminAddress,
}

/// `admin.address`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AdminAddress {
    /// `{"address": "127.0.0.1", "port_value": 34901}`.
    pub socket_address: SocketAddressConfig,
}

/// `admin.address.socket_address`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SocketAddressConfig {
    /// IP address.
    pub address: String,
    /// Port.
    pub port_value: u16,
}

/// `cluster_manager`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterManagerConfig {
    /// The clusters.
    pub clusters: Vec<ClusterConfig>,
    /// Shared upstream TLS (not implemented).
    pub tls_context: Option<Value>,
    /// MOSN: clusters file directory (not implemented).
    pub clusters_configs: Option<Value>,
    /// MOSN: auto-discovery toggle (accepted, unused).
    pub auto_discovery: Option<bool>,
    /// MOSN: registry-driven hosts (accepted, unused).
    pub registry_use_health_check: Option<bool>,
}
