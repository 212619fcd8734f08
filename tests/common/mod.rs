//! Helpers for the gateway's end-to-end tests: MOSN-shaped configs built
//! around mock upstreams, and a gateway started in-process on port 0.

#![allow(dead_code)] // Each test file uses its own subset.

use meshgate::config;
use meshgate::control::Gateway;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A MOSN v2 document with one listener `rpc` on 127.0.0.1:0 speaking
/// `protocol`, routing with `routes` (a `routers[]` list of the `*` virtual
/// host) to `clusters`, with optional `stream_filters`.
pub(crate) fn document(
    protocol: &str,
    routes: Value,
    clusters: Value,
    stream_filters: Value,
) -> Value {
    json!({
        "servers": [{
            "graceful_timeout": "5s",
            "routers": [{
                "router_config_name": "rpc_router",
                "virtual_hosts": [{ "name": "rpc", "domains": ["*"], "routers": routes }]
            }],
            "listeners": [{
                "name": "rpc",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{ "filters": [{
                    "type": "proxy",
                    "config": { "downstream_protocol": protocol, "upstream_protocol": "Auto", "router_config_name": "rpc_router" }
                }]}],
                "stream_filters": stream_filters
            }]
        }],
        "cluster_manager": { "clusters": clusters }
    })
}

/// A cluster named `name` over `hosts` with `lb_type`.
pub(crate) fn cluster(name: &str, lb_type: &str, hosts: &[SocketAddr]) -> Value {
    let hosts: Vec<Value> = hosts
        .iter()
        .map(|h| json!({ "address": h.to_string() }))
        .collect();
    json!({ "name": name, "type": "SIMPLE", "lb_type": lb_type, "connect_timeout": "500ms", "hosts": hosts })
}

/// One route: requests whose `service` header matches `service` (".*" =
/// any) go to `cluster`.
pub(crate) fn route(service: &str, cluster: &str) -> Value {
    json!({ "match": { "headers": [{ "name": "service", "value": service }] }, "route": { "cluster_name": cluster } })
}

/// Starts a gateway from `document`; returns it with the `rpc` listener's
/// bound address.
pub(crate) async fn start(document: &Value) -> (Gateway, SocketAddr) {
    // RUST_LOG=debug shows the gateway's logs in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = config::load_str(&document.to_string(), None)
        .unwrap_or_else(|e| panic!("test config invalid: {e}"));
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let addr = gateway
        .listener_addr("rpc")
        .await
        .expect("rpc listener bound");
    (gateway, addr)
}
