//! MOSN's `tcp_proxy` network filter: its config read Go-style, checked,
//! and built into a [`TcpProxySpec`] the listener's connections use.
//!
//! ```json
//! { "type": "tcp_proxy", "config": {
//!     "cluster": "db",                       // every connection goes here, or
//!     "routes": [{ "cluster": "a",           // the first route that matches
//!                  "source_addrs": ["10.0.0.0/8"], "source_port": "1000-2000",
//!                  "destination_addrs": [{"address": "127.0.0.1", "length": 32}],
//!                  "destination_port": "2045" }],
//!     "idle_timeout": "30s", "max_connect_attempts": 3 } }
//! ```
//!
//! MOSN's `StreamRoute` has no JSON tags, so Go reads its fields by name
//! (`SourceAddrs`, `Length`, ...); both those names and the snake_case
//! ones are accepted. An address is `"ip/len"`, a bare `"ip"`, or MOSN's
//! `CidrRange` object (`address`, `length`).
//!
//! Where this reads MOSN differently, on purpose (`docs/tcp-proxy.md`):
//! an empty address or port list matches anything (MOSN's matcher matches
//! nothing on an empty list, so such a route could never be chosen), and
//! `idle_timeout` is enforced for TCP (MOSN applies it to UDP only).

use super::issues::{Collector, Issue};
use meshgate_gocompat::GoDuration;
use serde::Deserialize;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// The filter's `config`, as MOSN's `v2.StreamProxy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TcpProxyConfig {
    /// Prefix of the filter's statistics (informational here).
    pub stat_prefix: String,
    /// The cluster every connection goes to; when set, `routes` is ignored
    /// (as MOSN does).
    pub cluster: String,
    /// Close both sides after this long with no byte either way.
    pub idle_timeout: Option<GoDuration>,
    /// Hosts tried per connection before giving up (MOSN and Envoy: at
    /// least 1).
    pub max_connect_attempts: u32,
    /// Clusters chosen by the connection's addresses, first match wins.
    pub routes: Vec<TcpRouteConfig>,
    /// MOSN's original-destination mode (not supported).
    pub transparent_proxy: bool,
}

/// One `routes[]` entry (MOSN's `StreamRoute`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TcpRouteConfig {
    /// The cluster a matching connection goes to.
    pub cluster: String,
    /// The client's address must be in one of these ranges (any if empty).
    #[serde(alias = "SourceAddrs", alias = "sourceaddrs")]
    pub source_addrs: Vec<Value>,
    /// The listener's address must be in one of these (any if empty).
    #[serde(alias = "DestinationAddrs", alias = "destinationaddrs")]
    pub destination_addrs: Vec<Value>,
    /// The client's port: `"80,8000-9000"` (any if empty).
    #[serde(alias = "SourcePort", alias = "sourceport")]
    pub source_port: String,
    /// The listener's port, same form.
    #[serde(alias = "DestinationPort", alias = "destinationport")]
    pub destination_port: String,
}

/// A built `tcp_proxy` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProxySpec {
    /// The fixed cluster, when configured.
    pub cluster: Option<String>,
    /// Address-matched clusters, in order.
    pub routes: Vec<TcpRoute>,
    /// Idle timeout (none: connections stay until a side closes).
    pub idle_timeout: Option<Duration>,
    /// Hosts tried per connection, at least 1.
    pub max_connect_attempts: u32,
    /// `stat_prefix`.
    pub stat_prefix: String,
    /// Where the filter's config is, for issues found later.
    pub path: String,
}

impl TcpProxySpec {
    /// The cluster for a connection from `peer` to `local` (the listener's
    /// address): the fixed one, else the first route that matches.
    pub fn cluster_for(&self, peer: SocketAddr, local: SocketAddr) -> Option<&str> {
        if let Some(cluster) = &self.cluster {
            return Some(cluster);
        }
        self.routes
            .iter()
            .find(|r| r.matches(peer, local))
            .map(|r| r.cluster.as_str())
    }

    /// Every cluster name the filter can choose, with its config path.
    pub fn clusters(&self) -> Vec<(String, &str)> {
        match &self.cluster {
            Some(c) => vec![(format!("{}.cluster", self.path), c.as_str())],
            None => self
                .routes
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        format!("{}.routes[{i}].cluster", self.path),
                        r.cluster.as_str(),
                    )
                })
                .collect(),
        }
    }
}

/// A listener's `tcp_proxy` filter and which connections it gets.
#[derive(Debug, Clone)]
pub struct TcpProxyUse {
    /// The filter.
    pub spec: Arc<TcpProxySpec>,
    /// Which connections.
    pub role: TcpProxyRole,
}

/// Which connections of a listener its `tcp_proxy` filter proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpProxyRole {
    /// Every connection: no `proxy` filter comes before it.
    EveryConnection,
    /// Connections whose protocol the `proxy` filter could not detect
    /// (MOSN's `fallback_for_unknown_protocol`), with the bytes detection
    /// read.
    UnknownProtocol,
}

/// One built route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRoute {
    /// Its cluster.
    pub cluster: String,
    source: Vec<Cidr>,
    destination: Vec<Cidr>,
    source_ports: Vec<RangeInclusive<u16>>,
    destination_ports: Vec<RangeInclusive<u16>>,
}

impl TcpRoute {
    fn matches(&self, peer: SocketAddr, local: SocketAddr) -> bool {
        let in_any =
            |cidrs: &[Cidr], ip: IpAddr| cidrs.is_empty() || cidrs.iter().any(|c| c.contains(ip));
        let port_in = |ranges: &[RangeInclusive<u16>], port: u16| {
            ranges.is_empty() || ranges.iter().any(|r| r.contains(&port))
        };
        in_any(&self.source, peer.ip())
            && port_in(&self.source_ports, peer.port())
            && in_any(&self.destination, local.ip())
            && port_in(&self.destination_ports, local.port())
    }
}

/// An address range: the network address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client reaching an IPv6 socket shows as ::ffff:a.b.c.d.
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.len),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.len),
            _ => false,
        }
    }

    fn parse(value: &Value) -> Result<Cidr, String> {
        let (addr, len) = match value {
            Value::String(text) => match text.split_once('/') {
                Some((addr, len)) => (
                    addr.to_owned(),
                    Some(
                        len.parse::<u32>()
                            .map_err(|_| format!("{len:?} is not a prefix length"))?,
                    ),
                ),
                None => (text.clone(), None),
            },
            Value::Object(map) => {
                // Go reads CidrRange's untagged fields case-insensitively.
                let field = |name: &str| {
                    map.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                };
                let addr = field("address")
                    .and_then(Value::as_str)
                    .ok_or("a CidrRange needs \"address\" (a string)")?;
                let len = match field("length") {
                    None | Some(Value::Null) => Some(0),
                    Some(v) => Some(
                        v.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or("\"length\" must be a prefix length")?,
                    ),
                };
                (addr.to_owned(), len)
            }
            other => {
                return Err(format!(
                    "{other} is neither \"ip/len\" nor {{\"address\", \"length\"}}"
                ));
            }
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("prefix length {len} is over {max}"));
        }
        Ok(Cidr {
            addr,
            len: len as u8,
        })
    }
}

/// True when the first `len` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xFFu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// Parses MOSN's port list: `"80"`, `"80,443"`, `"8000-9000"`; empty = any.
fn parse_ports(text: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let port = |s: &str| {
            s.trim()
                .parse::<u16>()
                .map_err(|_| format!("{s:?} is not a port"))
        };
        let range = match item.split_once('-') {
            Some((lo, hi)) => port(lo)?..=port(hi)?,
            None => port(item)?..=port(item)?,
        };
        if range.is_empty() {
            return Err(format!("{item:?} is an empty range"));
        }
        out.push(range);
    }
    Ok(out)
}

/// Builds a `tcp_proxy` filter's config found at `path` (the filter entry);
/// `None` when it has errors (each recorded).
pub(crate) fn build(config: &Value, path: &str, cx: &mut Collector) -> Option<TcpProxySpec> {
    let cpath = format!("{path}.config");
    let errors_before = cx.errors.len();
    let raw: TcpProxyConfig = cx.read(config, &cpath)?;
    if raw.transparent_proxy {
        cx.warn(Issue::new(
            format!("{cpath}.transparent_proxy"),
            "original-destination proxying is not supported; ignored",
        ));
    }
    let mut routes = Vec::new();
    if raw.cluster.is_empty() {
        if raw.routes.is_empty() {
            cx.error(
                Issue::new(format!("{cpath}.cluster"), "missing, and no routes")
                    .hint("name the upstream cluster, or add routes[] choosing one by address"),
            );
        }
        for (i, route) in raw.routes.iter().enumerate() {
            let rpath = format!("{cpath}.routes[{i}]");
            if let Some(route) = build_route(route, &rpath, cx) {
                routes.push(route);
            }
        }
    } else if !raw.routes.is_empty() {
        cx.warn(Issue::new(
            format!("{cpath}.routes"),
            "ignored: \"cluster\" is set, and MOSN then uses it for every connection",
        ));
    }
    (cx.errors.len() == errors_before).then(|| TcpProxySpec {
        cluster: Some(raw.cluster).filter(|c| !c.is_empty()),
        routes,
        idle_timeout: raw
            .idle_timeout
            .map(GoDuration::get)
            .filter(|d| !d.is_zero()),
        max_connect_attempts: raw.max_connect_attempts.max(1),
        stat_prefix: raw.stat_prefix,
        path: cpath,
    })
}

fn build_route(route: &TcpRouteConfig, path: &str, cx: &mut Collector) -> Option<TcpRoute> {
    let mut ok = true;
    if route.cluster.is_empty() {
        cx.error(
            Issue::new(format!("{path}.cluster"), "missing")
                .hint("name the cluster matching connections go to"),
        );
        ok = false;
    }
    let mut cidrs = |list: &[Value], field: &str, cx: &mut Collector| -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, value) in list.iter().enumerate() {
            match Cidr::parse(value) {
                Ok(cidr) => out.push(cidr),
                Err(message) => {
                    cx.error(
                        Issue::new(format!("{path}.{field}[{i}]"), message)
                            .hint("write \"10.0.0.0/8\", \"127.0.0.1\" or {\"address\": \"10.0.0.0\", \"length\": 8}"),
                    );
                    ok = false;
                }
            }
        }
        out
    };
    let source = cidrs(&route.source_addrs, "source_addrs", cx);
    let destination = cidrs(&route.destination_addrs, "destination_addrs", cx);
    let mut ports = |text: &str, field: &str, cx: &mut Collector| match parse_ports(text) {
        Ok(ranges) => ranges,
        Err(message) => {
            cx.error(
                Issue::new(format!("{path}.{field}"), message)
                    .hint("write ports like \"80,443,8000-9000\""),
            );
            ok = false;
            Vec::new()
        }
    };
    let source_ports = ports(&route.source_port, "source_port", cx);
    let destination_ports = ports(&route.destination_port, "destination_port", cx);
    ok.then(|| TcpRoute {
        cluster: route.cluster.clone(),
        source,
        destination,
        source_ports,
        destination_ports,
    })
}

/// Decides what a chain's `tcp_proxy` filter does next to its `proxy`
/// filter (at `proxy_path`), as MOSN's filter order decides it: a
/// `tcp_proxy` first takes every byte; after a `proxy` it only gets what
/// `fallback_for_unknown_protocol` hands on. `tcp` is the built filter
/// with its path and whether it came before the `proxy` filter.
pub(crate) fn attach(
    tcp: Option<(TcpProxySpec, bool)>,
    fallback: bool,
    proxy_path: &str,
    cx: &mut Collector,
) -> Option<TcpProxyUse> {
    let fallback_path = format!("{proxy_path}.config.fallback_for_unknown_protocol");
    match tcp {
        Some((spec, true)) => {
            cx.warn(Issue::new(
                format!("{proxy_path}.type"),
                "comes after a tcp_proxy filter, which takes every byte: every connection is proxied as TCP",
            ));
            Some(TcpProxyUse {
                spec: Arc::new(spec),
                role: TcpProxyRole::EveryConnection,
            })
        }
        Some((spec, false)) if fallback => Some(TcpProxyUse {
            spec: Arc::new(spec),
            role: TcpProxyRole::UnknownProtocol,
        }),
        Some((spec, false)) => {
            cx.warn(
                Issue::new(
                    spec.path.trim_end_matches(".config").to_owned(),
                    "never used: the proxy filter before it serves every connection",
                )
                .hint("set \"fallback_for_unknown_protocol\": true on the proxy filter to send undetected connections here"),
            );
            None
        }
        None if fallback => {
            cx.warn(
                Issue::new(fallback_path, "no tcp_proxy filter follows the proxy filter: undetected connections are closed")
                    .hint("add {\"type\": \"tcp_proxy\", \"config\": {\"cluster\": \"...\"}} after the proxy filter"),
            );
            None
        }
        None => None,
    }
}

/// Warns, at each reference, about clusters a `tcp_proxy` names that are
/// not defined (its connections would be closed at once).
pub(crate) fn warn_undefined_clusters(spec: &TcpProxySpec, defined: &[&str], cx: &mut Collector) {
    for (path, name) in spec.clusters() {
        if !defined.contains(&name) {
            cx.warn(
                Issue::new(path, format!("cluster {name:?} is not defined"))
                    .hint("connections sent to it are closed; add it to cluster_manager.clusters"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn built(config: Value) -> (Option<TcpProxySpec>, Collector) {
        let mut cx = Collector::default();
        let spec = build(&config, "f", &mut cx);
        (spec, cx)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_fixed_cluster_wins_over_routes() {
        let (spec, cx) = built(
            json!({ "cluster": "c", "routes": [{ "cluster": "r" }], "max_connect_attempts": 0 }),
        );
        let spec = spec.unwrap();
        assert_eq!(
            spec.cluster_for(addr("1.2.3.4:5"), addr("127.0.0.1:80")),
            Some("c")
        );
        assert_eq!(spec.max_connect_attempts, 1, "at least one attempt");
        assert_eq!(spec.idle_timeout, None);
        assert_eq!(cx.warnings[0].path, "f.config.routes");
    }

    #[test]
    fn routes_match_addresses_and_ports_in_order() {
        let (spec, cx) = built(json!({
            "idle_timeout": "1.5s",
            "routes": [
                { "cluster": "local-high", "SourceAddrs": [{ "Address": "127.0.0.0", "Length": 8 }], "source_port": "40000-65535" },
                { "cluster": "ten", "source_addrs": ["10.0.0.0/8"], "destination_addrs": ["192.168.1.1"], "destination_port": "80,443" },
                { "cluster": "v6", "source_addrs": ["fd00::/8"] },
                { "cluster": "rest" }
            ]
        }));
        assert!(cx.errors.is_empty(), "{:?}", cx.errors);
        let spec = spec.unwrap();
        assert_eq!(spec.idle_timeout, Some(Duration::from_millis(1500)));
        let at = |peer: &str, local: &str| spec.cluster_for(addr(peer), addr(local));
        assert_eq!(at("127.9.9.9:50000", "127.0.0.1:80"), Some("local-high"));
        assert_eq!(at("127.9.9.9:1000", "127.0.0.1:80"), Some("rest"));
        assert_eq!(at("10.1.2.3:1000", "192.168.1.1:443"), Some("ten"));
        assert_eq!(at("10.1.2.3:1000", "192.168.1.2:443"), Some("rest"));
        assert_eq!(at("10.1.2.3:1000", "192.168.1.1:8080"), Some("rest"));
        assert_eq!(at("[fd12::1]:1", "[::1]:80"), Some("v6"));
        assert_eq!(
            at("[::ffff:127.0.0.1]:50000", "[::1]:80"),
            Some("local-high")
        );
    }

    #[test]
    fn bad_routes_are_errors_with_paths() {
        let (spec, cx) = built(json!({
            "routes": [
                { "source_addrs": ["10.0.0.0/33", "nope", 7], "source_port": "80-70", "destination_port": "http" }
            ]
        }));
        assert!(spec.is_none());
        let paths: Vec<&str> = cx.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "f.config.routes[0].cluster",
                "f.config.routes[0].source_addrs[0]",
                "f.config.routes[0].source_addrs[1]",
                "f.config.routes[0].source_addrs[2]",
                "f.config.routes[0].source_port",
                "f.config.routes[0].destination_port",
            ]
        );
        let (spec, cx) = built(json!({}));
        assert!(spec.is_none());
        assert_eq!(cx.errors[0].path, "f.config.cluster");
        let (spec, cx) = built(json!({ "cluster": "c", "idle_timeout": "soon" }));
        assert!(spec.is_none());
        assert_eq!(cx.errors[0].path, "f.config.idle_timeout");
    }

    #[test]
    fn prefixes_compare_bit_by_bit() {
        let net = Cidr::parse(&json!("192.168.0.0/17")).unwrap();
        assert!(net.contains("192.168.127.255".parse().unwrap()));
        assert!(!net.contains("192.168.128.0".parse().unwrap()));
        assert!(
            Cidr::parse(&json!("0.0.0.0/0"))
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            !Cidr::parse(&json!("::1"))
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
    }
}
