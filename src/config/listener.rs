//! One listener of the document → a [`ListenerSpec`]: its address, the
//! protocols it detects, its proxy and `tcp_proxy` filters, stream filters,
//! access logs and per-connection limits, each problem reported at its
//! JSON path.

use super::issues::{Collector, Issue};
use super::raw::{ExtendConfig, FilterChainConfig, ListenerConfig, ProxyConfig, TypedConfig};
use crate::proxy::StreamFilter;
use crate::proxy::filters::{self, Built};
use meshgate_codecs::{AUTO, Limits, Protocol, ProtocolSet, Registry};
use meshgate_gocompat::join_path;
use meshgate_router::RouteTable;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

pub(super) fn build_listener(
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
                proxy = cx
                    .read::<ProxyConfig>(&filter.config, &format!("{fpath}.config"))
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
    let extend = cx
        .read::<ExtendConfig>(
            &proxy.extend_config,
            &format!("{ppath}.config.extend_config"),
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
