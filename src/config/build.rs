//! Raw MOSN document → validated runtime configuration.
//!
//! Every problem is collected (never the first only), each with its full
//! JSON path and a hint; `meshgate validate` prints them all. Warnings are
//! what MOSN accepts that meshgate ignores or reads differently.

use super::issues::{Collector, ConfigErrors, Issue};
use super::listener::{ListenerSpec, build_listener};
use super::raw::{MosnConfig, TypedConfig};
use meshgate_cluster::{ClusterConfig, ClusterManager};
use meshgate_codecs::Registry;
use meshgate_codecs::generic::{GenericCodec, GenericConfig};
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
                    if let Some(router) = cx.read::<RouterConfig>(&filter.config, &path) {
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
        let Some(config) = cx.read::<GenericConfig>(&extend.config, &format!("{path}.config"))
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
