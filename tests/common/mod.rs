//! Helpers for the gateway's end-to-end tests: MOSN-shaped configs built
//! around mock upstreams, and a gateway started in-process on port 0.

#![allow(dead_code)] // Each test file uses its own subset.

use meshgate::config;
use meshgate::control::Gateway;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{Frame, FrameCodec};
use meshgate_test_support::client::{CALL_TIMEOUT, FramedClient};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

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

/// The bolt v1 codec, as the tests' clients and mocks speak it.
pub(crate) fn bolt() -> Arc<dyn FrameCodec> {
    Arc::new(BoltCodec::v1())
}

/// The Dubbo codec.
pub(crate) fn dubbo() -> Arc<dyn FrameCodec> {
    Arc::new(DubboCodec::new())
}

/// The service every Dubbo test request calls.
pub(crate) const DUBBO_SERVICE: &str = "org.apache.dubbo.samples.DemoService";

/// A Dubbo request to [`DUBBO_SERVICE`] with id `id` and argument `arg`.
pub(crate) fn dubbo_call(id: u64, arg: &str) -> Frame {
    meshgate_test_support::frames::dubbo_request(id, DUBBO_SERVICE, "sayHello", None, arg)
}

/// Merges the keys of `extra` (an object) into `target`, recursively for
/// nested objects.
pub(crate) fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(target), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, extra) => *target = extra,
    }
}

/// [`route`] with `extra` merged into its `route` action (`retry_policy`,
/// `timeout`, ...).
pub(crate) fn route_with(service: &str, cluster: &str, extra: Value) -> Value {
    let mut route = route(service, cluster);
    merge(&mut route["route"], extra);
    route
}

/// [`cluster`] with `extra` merged in (`connections_per_host`, ...).
pub(crate) fn cluster_with(name: &str, lb_type: &str, hosts: &[SocketAddr], extra: Value) -> Value {
    let mut cluster = cluster(name, lb_type, hosts);
    merge(&mut cluster, extra);
    cluster
}

/// The `rpc` listener of a [`document`], to change its settings.
pub(crate) fn rpc_listener(doc: &mut Value) -> &mut Value {
    &mut doc["servers"][0]["listeners"][0]
}

/// Merges `extend` into the `rpc` listener's `extend_config`
/// (`max_in_flight_per_conn`, `detect_timeout`, ...).
pub(crate) fn extend_config(doc: &mut Value, extend: Value) {
    let proxy = &mut rpc_listener(doc)["filter_chains"][0]["filters"][0]["config"];
    merge(&mut proxy["extend_config"], extend);
}

/// A response's wire status (bolt 0 = success, Dubbo 20 = OK).
pub(crate) fn status(frame: &Frame) -> Option<u32> {
    frame.status.map(|s| s.code)
}

/// The message of a Dubbo error response (one hessian string).
pub(crate) fn dubbo_message(frame: &Frame) -> String {
    let span = meshgate_codecs::dubbo::hessian::Reader::new(&frame.body)
        .read_string()
        .unwrap_or_else(|e| panic!("a Dubbo error body is one hessian string: {e}"));
    let mut bytes = Vec::new();
    span.collect_into(&frame.body, &mut bytes);
    String::from_utf8(bytes).expect("an UTF-8 message")
}

/// Sends `requests` pipelined on one new connection to `addr` and returns
/// the replies by id. Panics on a reply to an unknown id, a duplicate, or
/// a reply missing after the client's `CALL_TIMEOUT`.
pub(crate) async fn pipeline(
    addr: SocketAddr,
    codec: Arc<dyn FrameCodec>,
    requests: Vec<Frame>,
) -> HashMap<u64, Frame> {
    let client = FramedClient::connect(addr, codec)
        .await
        .expect("connect to the gateway");
    let (mut writer, mut reader) = client.split();
    let ids: HashSet<u64> = requests.iter().map(|r| r.request_id).collect();
    let expected = requests.len();
    let sender = tokio::spawn(async move {
        for request in &requests {
            writer.send(request).await.expect("send a request");
        }
        writer
    });
    let mut replies = HashMap::new();
    while replies.len() < expected {
        let frame = tokio::time::timeout(CALL_TIMEOUT, reader.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {expected} replies, then none", replies.len()))
            .expect("read a reply")
            .expect("the gateway keeps the connection open");
        let id = frame.request_id;
        assert!(ids.contains(&id), "a reply to id {id}, never sent");
        assert!(
            replies.insert(id, frame).is_none(),
            "two replies to id {id}"
        );
    }
    // The writer half lives until every reply is in: dropping it would
    // half-close the connection.
    drop(sender.await.expect("the sender finishes"));
    replies
}
