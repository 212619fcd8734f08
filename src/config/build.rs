//! Raw MOSN document → validated runtime configuration.
//!
//! Every problem is collected (never the first only), each with its full
//! JSON path and a hint; `meshgate validate` prints them all. Warnings are
//! what MOSN accepts that meshgate ignores or reads differently.

use super::issues::{Collector, ConfigErrors, Issue};
use super::raw::{
    ExtendConfig, FilterChainConfig, ListenerConfig, MosnConfig, ProxyConfig, TypedConfig,
};
use crate::proxy::StreamFilter;
use crate::proxy::filters::{self, Built};
use meshgate_cluster::{ClusterConfig, ClusterManager};
use meshgate_codecs::generic::{GenericCodec, GenericConfig};
use meshgate_codecs::{AUTO, Limits, Protocol, ProtocolSet, Registry};
use meshgate_gocompat::join_path;
use meshgate_router::{RouteTable, RouterConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The configuration the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Every protocol listeners may speak (built-ins + generic codecs).
    pub registry: Registry,
    /// Listeners to bind.
    pub listeners: Vec<ListenerSpec>,
    /// Route tables by `router_config_name`.
    pub routers: BTreeMap<String, Arc<RouteTable>>,
    /// Upstream clusters.
    pub clusters: Arc<ClusterManager>,
    /// The admin API address, if configured (127.0.0.1 when the config
    /// gives only a port).
    pub admin: Option<SocketAddr>,
    /// The document as the user wrote it, for the admin API's
    /// `config_dump` (which redacts secrets); `null` when the
    /// configuration was built from serde types rather than read.
    pub document: Arc<serde_json::Value>,
    /// The pid file, if configured.
    pub pid: Option<PathBuf>,
    /// How long `stop` waits for in-flight requests.
    pub graceful_timeout: Duration,
    /// Runtime worker threads; 0 = one per core.
    pub worker_threads: usize,
    /// The configured default log level, if any.
    pub log_level: Option<String>,
    /// Warnings met while reading and building.
    pub warnings: Vec<Issue>,
}

impl GatewayConfig {
    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&ListenerSpec> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

/// One listener, ready to bind.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// Unique name.
    pub name: String,
    /// Address to bind (port 0 = any free port).
    pub addr: SocketAddr,
    /// The protocols to detect, in order.
    pub protocols: ProtocolSet,
    /// The selection as configured (`Auto`, `bolt`, `bolt,dubbo`).
    pub protocol_spec: String,
    /// Route table name.
    pub router: String,
    /// Stream filters, in configured order.
    pub filters: Vec<Arc<dyn StreamFilter>>,
    /// Per-connection bounds.
    pub limits: ListenerLimits,
    /// The `tcp_proxy` network filter, when the chain has one that is used.
    pub tcp_proxy: Option<super::TcpProxyUse>,
    /// Access logs (`access_logs[]`).
    pub access_logs: crate::accesslog::ListenerAccessLogs,
    /// HTTP connection limits and upstream protocol (`docs/http.md`).
    pub http: super::http::HttpSettings,
}

/// Per-connection bounds of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Largest downstream frame, bytes.
    pub max_frame_len: usize,
    /// Requests in flight per connection before reading pauses.
    pub max_in_flight_per_conn: usize,
    /// Close connections idle this long (none: keep them).
    pub idle_timeout: Option<Duration>,
    /// How long detection waits for enough first bytes.
    pub detect_timeout: Duration,
    /// Connections held at once; more are closed as they are accepted.
    pub max_connections: Option<usize>,
    /// A frame must arrive whole this long after its first byte (none:
    /// no bound).
    pub frame_read_timeout: Option<Duration>,
    /// Send bolt's GoAway before closing (MOSN's `enable_bolt_goaway`);
    /// other protocols with a GoAway always send theirs.
    pub bolt_goaway: bool,
}

impl ListenerLimits {
    /// MOSN's idle timeout for server connections when the listener sets
    /// none (`types.DefaultIdleTimeout`).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
    /// MOSN's connection read timeout (`types.DefaultConnReadTimeout`),
    /// used as the bound on one frame's arrival.
    pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(15);
}

impl Default for ListenerLimits {
    fn default() -> ListenerLimits {
        ListenerLimits {
            max_frame_len: Limits::DEFAULT_MAX_FRAME_LEN,
            max_in_flight_per_conn: 4096,
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            detect_timeout: Duration::from_secs(10),
            max_connections: None,
            frame_read_timeout: Some(Self::DEFAULT_FRAME_READ_TIMEOUT),
            bolt_goaway: false,
        }
    }
}

/// MOSN's default graceful stop timeout.
const DEFAULT_GRACEFUL_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the runtime configuration. `previous` is the running cluster
/// manager on reload: hosts that stay keep their stats and health.
pub fn build(
    raw: MosnConfig,
    mut warnings: Vec<Issue>,
    previous: Option<&ClusterManager>,
) -> Result<GatewayConfig, ConfigErrors> {
    let mut cx = Collector {
        warnings: std::mem::take(&mut warnings),
        ..Collector::default()
    };
    warn_unsupported_sections(&raw, &mut cx);
    let registry = build_registry(&raw.extends, &mut cx);

    // Routers first (servers[].routers[] and legacy connection_manager
    // filters), so listeners can check their router_config_name.
    let mut routers = BTreeMap::new();
    // Every router config with its path, to point at cluster references.
    let mut router_configs: Vec<(String, RouterConfig)> = Vec::new();
    // Routers defined with errors (reported at their own paths).
    let mut invalid_routers: Vec<String> = Vec::new();
    for (i, server) in raw.servers.iter().enumerate() {
        for (j, router) in server.routers.iter().enumerate() {
            let path = format!("servers[{i}].routers[{j}]");
            add_router(router, &path, &mut routers, &mut invalid_routers, &mut cx);
            router_configs.push((path, router.clone()));
        }
        for (j, listener) in server.listeners.iter().enumerate() {
            for (k, filter) in listener
                .filter_chains
                .first()
                .map(|c| c.filters.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if filter.kind == "connection_manager" {
                    let path =
                        format!("servers[{i}].listeners[{j}].filter_chains[0].filters[{k}].config");
                    if let Some(router) = read::<RouterConfig>(&filter.config, &path, &mut cx) {
                        add_router(&router, &path, &mut routers, &mut invalid_routers, &mut cx);
                        router_configs.push((path, router));
                    }
                }
            }
        }
    }

    let clusters = build_clusters(&raw.cluster_manager.clusters, previous, &mut cx);
    // Heartbeat health checks need a framed protocol of this registry.
    for e in clusters.iter().flat_map(|m| {
        m.check_health_protocols(|p| {
            registry
                .codec(p)
                .is_some_and(|c| c.heartbeat_request(1).is_some())
        })
    }) {
        let hint = e.hint.clone().unwrap_or_default();
        cx.error(Issue::new(join_path("cluster_manager", &e.path), e.message).hint(hint));
    }
    // Defined clusters, valid or not (an invalid one has its own errors).
    let cluster_names: Vec<&str> = raw
        .cluster_manager
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for (path, router) in &router_configs {
        warn_undefined_clusters(router, path, &cluster_names, &mut cx);
    }

    let mut listeners = Vec::new();
    let mut names = BTreeMap::new();
    let mut worker_threads = 0;
    let mut graceful_timeout = DEFAULT_GRACEFUL_TIMEOUT;
    let mut log_level = None;
    for (i, server) in raw.servers.iter().enumerate() {
        if i == 0 {
            worker_threads = server.processor as usize;
            graceful_timeout = server
                .graceful_timeout
                .map_or(DEFAULT_GRACEFUL_TIMEOUT, |d| d.get());
            log_level = Some(server.default_log_level.clone()).filter(|l| !l.is_empty());
        }
        for (j, listener) in server.listeners.iter().enumerate() {
            let path = format!("servers[{i}].listeners[{j}]");
            if let Some(spec) = build_listener(
                listener,
                &path,
                &registry,
                &routers,
                &invalid_routers,
                &mut cx,
            ) {
                if let Some(first) = names.insert(spec.name.clone(), path.clone()) {
                    cx.error(
                        Issue::new(
                            format!("{path}.name"),
                            format!("listener name {:?} is already used at {first}", spec.name),
                        )
                        .hint("give every listener a unique name"),
                    );
                }
                listeners.push(spec);
            }
        }
    }
    for tcp in listeners.iter().filter_map(|l| l.tcp_proxy.as_ref()) {
        super::tcp_proxy::warn_undefined_clusters(&tcp.spec, &cluster_names, &mut cx);
    }
    if raw.servers.len() > 1 {
        cx.warn(Issue::new(
            "servers",
            "only the first server's processor, graceful_timeout and log level are used",
        ));
    }
    if listeners.is_empty() && cx.errors.is_empty() {
        cx.warn(Issue::new(
            "servers",
            "no listener to bind: the gateway will accept no traffic",
        ));
    }

    let admin = raw.admin.as_ref().and_then(|admin| {
        let socket = &admin.address.socket_address;
        let ip = if socket.address.is_empty() {
            "127.0.0.1"
        } else {
            socket.address.as_str()
        };
        match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                if !ip.is_loopback() {
                    cx.warn(Issue::new(
                        "admin.address.socket_address.address",
                        format!(
                            "the admin API on {ip} is reachable from other machines, and it can change the log level and show the configuration; leave the address empty (127.0.0.1) unless that is intended"
                        ),
                    ));
                }
                Some(SocketAddr::new(ip, socket.port_value))
            }
            Err(_) => {
                cx.error(
                    Issue::new(
                        "admin.address.socket_address.address",
                        format!("{ip:?} is not an IP address"),
                    )
                    .hint("use an IP such as \"127.0.0.1\""),
                );
                None
            }
        }
    });

    let Some(clusters) = clusters.filter(|_| cx.errors.is_empty()) else {
        return Err(ConfigErrors {
            errors: cx.errors,
            warnings: cx.warnings,
        });
    };
    Ok(GatewayConfig {
        registry,
        listeners,
        routers,
        clusters: Arc::new(clusters),
        admin,
        document: Arc::new(serde_json::Value::Null),
        pid: Some(PathBuf::from(&raw.pid)).filter(|p| !p.as_os_str().is_empty()),
        graceful_timeout,
        worker_threads,
        log_level,
        warnings: cx.warnings,
    })
}

/// Reads a JSON blob Go-style at `path`, recording warnings and errors.
/// `None` only when what is there cannot be read at all.
pub(super) fn read<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
    path: &str,
    cx: &mut Collector,
) -> Option<T> {
    let value = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value.clone()
    };
    // Every bad value is reported; the rest is still read (bad values
    // unset) so the checks that follow can report their problems too.
    let collected = meshgate_gocompat::from_value_collecting_at::<T>(value, path);
    for e in &collected.errors {
        cx.unreadable(e);
    }
    let parsed = collected.parsed?;
    for w in parsed.warnings {
        cx.warn(Issue::new(w.path, w.message));
    }
    Some(parsed.value)
}

fn warn_unsupported_sections(raw: &MosnConfig, cx: &mut Collector) {
    let sections = [
        ("tracing", raw.tracing.is_some()),
        ("metrics", raw.metrics.is_some()),
        ("debug", raw.debug.is_some()),
        ("plugin", raw.plugin.is_some()),
        ("dynamic_resources", raw.dynamic_resources.is_some()),
        ("static_resources", raw.static_resources.is_some()),
        ("third_part_codec", raw.third_part_codec.is_some()),
        ("wasm_global_plugins", raw.wasm_global_plugins.is_some()),
        (
            "cluster_manager.tls_context",
            raw.cluster_manager.tls_context.is_some(),
        ),
    ];
    for (path, present) in sections {
        if present {
            cx.warn(Issue::new(
                path,
                "MOSN section not supported by meshgate yet; ignored",
            ));
        }
    }
}

/// The built-in protocols plus every `extends[]` generic codec.
fn build_registry(extends: &[TypedConfig], cx: &mut Collector) -> Registry {
    let mut registry = Registry::builtin();
    for (i, extend) in extends.iter().enumerate() {
        let path = format!("extends[{i}]");
        if extend.kind != "generic_protocol" {
            cx.warn(
                Issue::new(
                    format!("{path}.type"),
                    format!("unknown extension {:?}; skipped", extend.kind),
                )
                .hint("meshgate reads \"generic_protocol\" extensions"),
            );
            continue;
        }
        let Some(config) = read::<GenericConfig>(&extend.config, &format!("{path}.config"), cx)
        else {
            continue;
        };
        match GenericCodec::new(config) {
            Ok(codec) => {
                if let Err(e) = registry.register(Arc::new(codec)) {
                    cx.error(
                        Issue::new(format!("{path}.config.name"), e.to_string())
                            .hint("choose a name no other protocol uses"),
                    );
                }
            }
            Err(e) => cx.error(Issue::new(
                join_path(&format!("{path}.config"), e.path()),
                e.to_string(),
            )),
        }
    }
    registry
}

fn add_router(
    config: &RouterConfig,
    path: &str,
    routers: &mut BTreeMap<String, Arc<RouteTable>>,
    invalid: &mut Vec<String>,
    cx: &mut Collector,
) {
    let name = &config.router_config_name;
    if name.is_empty() {
        cx.error(
            Issue::new(format!("{path}.router_config_name"), "missing")
                .hint("name the router; proxy filters refer to it by router_config_name"),
        );
        return;
    }
    match RouteTable::build(config) {
        Ok(table) => {
            for w in table.warnings() {
                cx.warn(Issue::new(join_path(path, &w.path), w.message.clone()));
            }
            if routers.insert(name.clone(), Arc::new(table)).is_some() {
                cx.error(
                    Issue::new(
                        format!("{path}.router_config_name"),
                        format!("router {name:?} is defined twice"),
                    )
                    .hint("router_config_name must be unique"),
                );
            }
        }
        Err(errors) => {
            // Listeners naming it are not told it does not exist.
            invalid.push(name.clone());
            for e in &errors.errors {
                cx.error(
                    Issue::new(join_path(path, e.path()), e.message()).hint(e.hint().into_owned()),
                );
            }
            for w in &errors.warnings {
                cx.warn(Issue::new(join_path(path, &w.path), w.message.clone()));
            }
        }
    }
}

/// Warns, at the path of each reference, about every cluster a route of
/// `router` names that `clusters` (the names in the file) does not define (MOSN accepts such a
/// route too, and answers its requests with "no healthy upstream").
fn warn_undefined_clusters(
    router: &RouterConfig,
    path: &str,
    clusters: &[&str],
    cx: &mut Collector,
) {
    for (v, vhost) in router.virtual_hosts.iter().enumerate() {
        for (r, route) in vhost.routers.iter().enumerate() {
            let at = format!("{path}.virtual_hosts[{v}].routers[{r}]");
            let mut names: Vec<(String, &str)> = Vec::new();
            // A direct response or redirect takes precedence: the route's
            // clusters are never used then (the router warns about that).
            if route.direct_response.is_none() && route.redirect.is_none() {
                let action = &route.route;
                if action.weighted_clusters.is_empty() {
                    if !action.cluster_name.is_empty() {
                        names.push((format!("{at}.route.cluster_name"), &action.cluster_name));
                    }
                } else {
                    for (k, weighted) in action.weighted_clusters.iter().enumerate() {
                        names.push((
                            format!("{at}.route.weighted_clusters[{k}].cluster.name"),
                            &weighted.cluster.name,
                        ));
                    }
                }
            }
            if let Some(mirror) = &route.request_mirror_policies {
                names.push((
                    format!("{at}.request_mirror_policies.cluster"),
                    &mirror.cluster,
                ));
            }
            for (at, name) in names {
                if !name.is_empty() && !clusters.contains(&name) {
                    let hint = if at.ends_with("request_mirror_policies.cluster") {
                        "requests on that route are not mirrored; add the cluster to cluster_manager.clusters"
                    } else {
                        "requests on that route get a no-healthy-upstream error reply; add the cluster to cluster_manager.clusters"
                    };
                    cx.warn(
                        Issue::new(
                            at,
                            format!("routes to cluster {name:?}, which is not defined"),
                        )
                        .hint(hint),
                    );
                }
            }
        }
    }
}

fn build_clusters(
    configs: &[ClusterConfig],
    previous: Option<&ClusterManager>,
    cx: &mut Collector,
) -> Option<ClusterManager> {
    let built = match previous {
        Some(previous) => previous.rebuild(configs),
        None => ClusterManager::build(configs),
    };
    let issue = |i: &meshgate_cluster::ConfigIssue| {
        let issue = Issue::new(join_path("cluster_manager", &i.path), i.message.clone());
        match &i.hint {
            Some(h) => issue.hint(h.clone()),
            None => issue,
        }
    };
    match built {
        Ok(manager) => {
            for w in manager.warnings() {
                cx.warn(issue(w));
            }
            Some(manager)
        }
        Err(errors) => {
            for e in &errors.errors {
                cx.error(issue(e));
            }
            for w in &errors.warnings {
                cx.warn(issue(w));
            }
            None
        }
    }
}

fn build_listener(
    listener: &ListenerConfig,
    path: &str,
    registry: &Registry,
    routers: &BTreeMap<String, Arc<RouteTable>>,
    invalid_routers: &[String],
    cx: &mut Collector,
) -> Option<ListenerSpec> {
    if listener.name.is_empty() {
        cx.error(
            Issue::new(format!("{path}.name"), "missing")
                .hint("every listener needs a unique name"),
        );
    }
    if !listener.bind_port {
        cx.warn(Issue::new(format!("{path}.bind_port"), "false: MOSN does not bind such (original-destination) listeners, so neither does meshgate").hint("set \"bind_port\": true to serve this listener"));
        return None;
    }
    let addr = match listener.address.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            cx.error(
                Issue::new(
                    format!("{path}.address"),
                    format!("{:?} is not an ip:port address", listener.address),
                )
                .hint("write it like \"127.0.0.1:2045\" (port 0 picks a free port)"),
            );
            None
        }
    };
    let chain = match listener.filter_chains.as_slice() {
        [] => {
            cx.error(
                Issue::new(format!("{path}.filter_chains"), "no filter chain")
                    .hint("add a filter chain with a \"proxy\" filter"),
            );
            return None;
        }
        [first, rest @ ..] => {
            if !rest.is_empty() {
                cx.warn(Issue::new(
                    format!("{path}.filter_chains"),
                    "only the first filter chain is used",
                ));
            }
            first
        }
    };
    check_tls(chain, &format!("{path}.filter_chains[0]"), cx);
    let mut proxy = None;
    let (mut tcp, mut tcp_seen) = (None, false);
    for (k, filter) in chain.filters.iter().enumerate() {
        let fpath = format!("{path}.filter_chains[0].filters[{k}]");
        match filter.kind.as_str() {
            "proxy" if proxy.is_some() => cx.error(
                Issue::new(format!("{fpath}.type"), "a second proxy filter")
                    .hint("one proxy filter per listener"),
            ),
            "proxy" => {
                proxy = read::<ProxyConfig>(&filter.config, &format!("{fpath}.config"), cx)
                    .map(|p| (p, fpath))
            }
            "connection_manager" => {} // read with the routers
            "tcp_proxy" if tcp_seen => cx.error(
                Issue::new(format!("{fpath}.type"), "a second tcp_proxy filter")
                    .hint("one tcp_proxy filter per listener"),
            ),
            "tcp_proxy" => {
                tcp_seen = true;
                tcp = super::tcp_proxy::build(&filter.config, &fpath, cx)
                    .map(|spec| (spec, proxy.is_none()));
            }
            other => cx.warn(Issue::new(
                format!("{fpath}.type"),
                format!("network filter {other:?} is not supported; skipped"),
            )),
        }
    }
    let Some((proxy, ppath)) = proxy else {
        if let Some((spec, _)) = tcp {
            return tcp_only_listener(listener, addr?, spec, registry, path, cx);
        }
        if tcp_seen {
            return None; // its errors are reported
        }
        cx.error(Issue::new(format!("{path}.filter_chains[0].filters"), "no \"proxy\" filter").hint("add {\"type\": \"proxy\", \"config\": {\"downstream_protocol\": \"Auto\", \"router_config_name\": \"...\"}}"));
        return None;
    };
    let extend = read::<ExtendConfig>(
        &proxy.extend_config,
        &format!("{ppath}.config.extend_config"),
        cx,
    )
    .unwrap_or_default();
    let (protocols, protocol_spec) = select_protocols(&proxy, &extend, registry, &ppath, cx)?;
    check_upstream_protocol(&proxy, &extend, &protocols, &ppath, cx);
    let http = super::http::build(&proxy.upstream_protocol, &extend, &ppath, cx);
    let tcp_proxy = super::tcp_proxy::attach(tcp, proxy.fallback_for_unknown_protocol, &ppath, cx);
    if !routers.contains_key(&proxy.router_config_name)
        && !invalid_routers.contains(&proxy.router_config_name)
    {
        let known = routers
            .keys()
            .cloned()
            .chain(invalid_routers.iter().map(|r| format!("{r} (invalid)")))
            .collect::<Vec<_>>()
            .join(", ");
        cx.error(
            Issue::new(
                format!("{ppath}.config.router_config_name"),
                format!("no router named {:?}", proxy.router_config_name),
            )
            .hint(format!(
                "defined routers: {}",
                if known.is_empty() { "none" } else { &known }
            )),
        );
    }
    let filters = build_stream_filters(
        &listener.stream_filters,
        &format!("{path}.stream_filters"),
        cx,
    );
    let mut log_issues = meshgate_gocompat::Issues::default();
    let access_logs = crate::accesslog::build(
        &listener.access_logs,
        &format!("{path}.access_logs"),
        &mut log_issues,
    );
    log_issues.errors.into_iter().for_each(|e| cx.error(e));
    log_issues.warnings.into_iter().for_each(|w| cx.warn(w));
    let defaults = ListenerLimits::default();
    let limits = ListenerLimits {
        max_frame_len: extend
            .max_frame_len
            .map_or(defaults.max_frame_len, |n| n.min(Limits::CEILING)),
        max_in_flight_per_conn: extend
            .max_in_flight_per_conn
            .filter(|n| *n > 0)
            .unwrap_or(defaults.max_in_flight_per_conn),
        // Unset: MOSN's default; an explicit 0 turns it off.
        idle_timeout: listener
            .connection_idle_timeout
            .map_or(defaults.idle_timeout, |d| {
                Some(d.get()).filter(|d| !d.is_zero())
            }),
        detect_timeout: extend
            .detect_timeout
            .map_or(defaults.detect_timeout, |d| d.get()),
        max_connections: extend.max_connections.filter(|n| *n > 0),
        frame_read_timeout: extend
            .frame_read_timeout
            .map_or(defaults.frame_read_timeout, |d| {
                Some(d.get()).filter(|d| !d.is_zero())
            }),
        bolt_goaway: extend.enable_bolt_goaway
            || extend.bolt.as_ref().is_some_and(|b| b.enable_bolt_goaway),
    };
    Some(ListenerSpec {
        name: listener.name.clone(),
        addr: addr?,
        protocols,
        protocol_spec,
        router: proxy.router_config_name,
        filters,
        limits,
        tcp_proxy,
        access_logs,
        http,
    })
}

/// A listener whose chain is a `tcp_proxy` filter alone: every connection
/// is proxied as bytes, no protocol detected.
fn tcp_only_listener(
    listener: &ListenerConfig,
    addr: SocketAddr,
    spec: super::TcpProxySpec,
    registry: &Registry,
    path: &str,
    cx: &mut Collector,
) -> Option<ListenerSpec> {
    if !listener.stream_filters.is_empty() {
        cx.warn(Issue::new(
            format!("{path}.stream_filters"),
            "ignored: a tcp_proxy listener forwards bytes, not requests",
        ));
    }
    if !listener.access_logs.is_empty() {
        cx.warn(Issue::new(
            format!("{path}.access_logs"),
            "ignored: a tcp_proxy listener forwards bytes, not requests, so it has no request to log",
        ));
    }
    Some(ListenerSpec {
        name: listener.name.clone(),
        addr,
        // Never consulted: nothing is detected on this listener.
        protocols: registry.select(AUTO).ok()?,
        protocol_spec: "tcp_proxy".to_owned(),
        router: String::new(),
        filters: Vec::new(),
        limits: ListenerLimits::default(),
        tcp_proxy: Some(super::TcpProxyUse {
            spec: Arc::new(spec),
            role: super::TcpProxyRole::EveryConnection,
        }),
        // Access logs record requests; a byte proxy has none.
        access_logs: Default::default(),
        http: Default::default(),
    })
}

fn check_tls(chain: &FilterChainConfig, path: &str, cx: &mut Collector) {
    let on = |v: &serde_json::Value| {
        v.get("status")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    if on(&chain.tls_context) || chain.tls_context_set.iter().any(on) {
        cx.error(
            Issue::new(format!("{path}.tls_context"), "TLS is not supported yet")
                .hint("terminate TLS in front of meshgate, or set \"status\": false"),
        );
    }
}

/// The downstream protocol selection, resolving MOSN's legacy `X` +
/// `sub_protocol` form.
fn select_protocols(
    proxy: &ProxyConfig,
    extend: &ExtendConfig,
    registry: &Registry,
    path: &str,
    cx: &mut Collector,
) -> Option<(ProtocolSet, String)> {
    let spec = match proxy.downstream_protocol.as_str() {
        "X" | "x" if extend.sub_protocol.is_empty() => {
            cx.error(Issue::new(format!("{path}.config.extend_config.sub_protocol"), "missing: downstream_protocol \"X\" names its protocol here").hint("set \"extend_config\": {\"sub_protocol\": \"bolt\"} or write the protocol in downstream_protocol"));
            return None;
        }
        "X" | "x" => extend.sub_protocol.clone(),
        "" => {
            cx.error(
                Issue::new(format!("{path}.config.downstream_protocol"), "missing").hint(format!(
                    "use \"{AUTO}\", a protocol name, or a comma list such as \"bolt,dubbo\""
                )),
            );
            return None;
        }
        other => other.to_owned(),
    };
    match registry.select(&spec) {
        Ok(set) => Some((set, spec)),
        Err(e) => {
            cx.error(
                Issue::new(format!("{path}.config.downstream_protocol"), e.to_string()).hint(
                    format!("use \"{AUTO}\", one of the registered names, or a comma list of them"),
                ),
            );
            None
        }
    }
}

fn check_upstream_protocol(
    proxy: &ProxyConfig,
    extend: &ExtendConfig,
    downstream: &ProtocolSet,
    path: &str,
    cx: &mut Collector,
) {
    let upstream = match proxy.upstream_protocol.as_str() {
        "" | "Auto" => return,
        "X" | "x" => extend.sub_protocol.as_str(),
        other => other,
    };
    // HTTP goes upstream in either HTTP version (`docs/http.md`).
    let http_downstream = downstream
        .protocols()
        .iter()
        .any(|p| matches!(p, Protocol::Http1 | Protocol::Http2));
    if http_downstream && super::http::HttpVersion::parse(upstream).is_some() {
        return;
    }
    if !downstream.protocols().iter().any(|p| p.name() == upstream) {
        cx.error(
            Issue::new(format!("{path}.config.upstream_protocol"), format!("{upstream:?} differs from the downstream protocol"))
                .hint("framed RPC requests are forwarded in the protocol they arrive in; use \"Auto\" or the downstream protocol"),
        );
    }
}

fn build_stream_filters(
    entries: &[TypedConfig],
    path: &str,
    cx: &mut Collector,
) -> Vec<Arc<dyn StreamFilter>> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match filters::build(&entry.kind, entry.config.clone()) {
            Ok((Built::Filter(filter), warnings)) => {
                for w in warnings {
                    cx.warn(Issue::new(
                        join_path(&format!("{at}.config"), &w.path),
                        w.message,
                    ));
                }
                out.push(filter);
            }
            Ok((Built::Unknown, _)) => cx.warn(
                Issue::new(
                    format!("{at}.type"),
                    format!("unknown stream filter {:?}; skipped", entry.kind),
                )
                .hint(format!(
                    "meshgate's stream filters: {}",
                    filters::BUILTIN.join(", ")
                )),
            ),
            Err((sub, message)) => cx.error(Issue::new(
                join_path(&format!("{at}.config"), &sub),
                message,
            )),
        }
    }
    out
}
