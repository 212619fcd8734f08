//! Helpers for the gateway's end-to-end tests: MOSN-shaped configs built
//! around mock upstreams, a gateway started in-process on port 0, request
//! builders and drivers, and readers for what comes back.

#![allow(dead_code)] // Each test file uses its own subset.

pub(crate) mod process;

use bytes::Bytes;
use meshgate::config;
use meshgate::control::Gateway;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::dubbo::hessian::Reader;
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::{CALL_TIMEOUT, FramedClient};
use meshgate_test_support::frames::{bolt_request, decoded};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long one end-to-end test may take before it fails (nextest's own
/// limit is minutes; a hung test should say so sooner).
pub(crate) const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` under [`TEST_LIMIT`].
pub(crate) async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test finishes within its time limit")
}

/// Waits (up to 10 s: the access-log writer flushes every second) until
/// `path` holds `lines` lines, and returns its text.
pub(crate) async fn wait_for_lines(path: &std::path::Path, lines: usize) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= lines {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} has {} of {lines} lines:\n{text}",
            path.display(),
            text.lines().count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- configuration ----------------------------------------------------

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
    cluster_of(name, lb_type, hosts.iter().map(|h| host(*h)).collect())
}

/// A cluster named `name` over `hosts` (see [`host`], [`weighted_host`],
/// [`labelled_host`]) with `lb_type`.
pub(crate) fn cluster_of(name: &str, lb_type: &str, hosts: Vec<Value>) -> Value {
    json!({ "name": name, "type": "SIMPLE", "lb_type": lb_type, "connect_timeout": "500ms", "hosts": hosts })
}

/// One `hosts[]` entry.
pub(crate) fn host(addr: SocketAddr) -> Value {
    json!({ "address": addr.to_string() })
}

/// One `hosts[]` entry with a weight.
pub(crate) fn weighted_host(addr: SocketAddr, weight: u32) -> Value {
    json!({ "address": addr.to_string(), "weight": weight })
}

/// One `hosts[]` entry with subset labels (`metadata.filter_metadata["mosn.lb"]`).
pub(crate) fn labelled_host(addr: SocketAddr, labels: &[(&str, &str)]) -> Value {
    json!({ "address": addr.to_string(), "metadata": { "filter_metadata": { "mosn.lb": labels_map(labels) } } })
}

/// MOSN's metadata block: `{"filter_metadata": {"mosn.lb": {…}}}`, as a
/// route's `metadata_match` is written.
pub(crate) fn metadata_match(labels: &[(&str, &str)]) -> Value {
    json!({ "filter_metadata": { "mosn.lb": labels_map(labels) } })
}

fn labels_map(labels: &[(&str, &str)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect(),
    )
}

/// `base` (an object) with every key of `extra` (an object) set on it.
pub(crate) fn with(mut base: Value, extra: Value) -> Value {
    let (Some(base_map), Value::Object(extra)) = (base.as_object_mut(), extra) else {
        panic!("with() merges an object into an object");
    };
    base_map.extend(extra);
    base
}

/// One route: requests whose `service` header matches `service` (".*" =
/// any) go to `cluster`.
pub(crate) fn route(service: &str, cluster: &str) -> Value {
    json!({ "match": { "headers": [{ "name": "service", "value": service }] }, "route": { "cluster_name": cluster } })
}

/// One route matching every header of `headers` (exact values) with
/// `action` as its `route` section.
pub(crate) fn route_when(headers: &[(&str, &str)], action: Value) -> Value {
    let headers: Vec<Value> = headers
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    json!({ "match": { "headers": headers }, "route": action })
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

// ---- upstreams --------------------------------------------------------

/// The bolt v1 codec.
pub(crate) fn bolt() -> Arc<dyn FrameCodec> {
    Arc::new(BoltCodec::v1())
}

/// The Dubbo codec.
pub(crate) fn dubbo() -> Arc<dyn FrameCodec> {
    Arc::new(DubboCodec::new())
}

/// `n` echo mocks speaking `codec`.
pub(crate) fn mocks(codec: &Arc<dyn FrameCodec>, n: usize) -> Vec<MockUpstream> {
    (0..n)
        .map(|_| MockUpstream::start(Arc::clone(codec)))
        .collect()
}

/// The mocks' addresses.
pub(crate) fn addrs(mocks: &[MockUpstream]) -> Vec<SocketAddr> {
    mocks.iter().map(MockUpstream::addr).collect()
}

/// Two-way requests each mock received.
pub(crate) fn counts(mocks: &[MockUpstream]) -> Vec<u64> {
    mocks.iter().map(MockUpstream::requests).collect()
}

/// A response echoing the request (id and body) whose header map is the
/// request's header fields: the client sees what the upstream received.
/// For bolt (whose responses carry a header map).
pub(crate) fn echo_with_headers(req: &Frame) -> Option<Frame> {
    let mut resp = meshgate_test_support::echo_response(req);
    for (key, value) in req.headers().wire_fields() {
        resp.headers_mut().push_owned(key, value);
    }
    Some(resp)
}

// ---- requests ---------------------------------------------------------

/// A decoded bolt request for `service` with extra header fields.
pub(crate) fn bolt_call(id: u64, service: &str, headers: &[(&str, &str)]) -> Frame {
    let mut frame = bolt_request(id, Bytes::from(format!("payload-{id}")));
    frame.set_wire(None);
    frame.set_headers(meshgate_codecs::Headers::new());
    frame.headers_mut().insert("service", service.as_bytes());
    for (key, value) in headers {
        frame.headers_mut().insert(key, value.as_bytes());
    }
    decoded(&BoltCodec::v1(), &frame)
}

/// Sends `total` requests built by `make(i)` over `connections` client
/// connections at once (each connection one request at a time), and
/// returns every reply with its request's index, in index order.
pub(crate) async fn drive(
    addr: SocketAddr,
    codec: &Arc<dyn FrameCodec>,
    connections: usize,
    total: usize,
    make: impl Fn(usize) -> Frame + Send + Sync + 'static,
) -> Vec<Frame> {
    let make = Arc::new(make);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let codec = Arc::clone(codec);
        let make = Arc::clone(&make);
        tasks.push(tokio::spawn(async move {
            let mut client = FramedClient::connect(addr, codec)
                .await
                .expect("client connects");
            let mut replies = Vec::new();
            for i in (c..total).step_by(connections) {
                let request = make(i);
                let reply = client.call(&request).await.unwrap_or_else(|e| {
                    panic!("request {i} (id {}) got no reply: {e}", request.request_id)
                });
                assert_eq!(reply.request_id, request.request_id, "reply to request {i}");
                replies.push((i, reply));
            }
            replies
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, reply)| reply).collect()
}

/// Like [`drive`], asserting every reply is a success.
pub(crate) async fn drive_ok(
    addr: SocketAddr,
    codec: &Arc<dyn FrameCodec>,
    connections: usize,
    total: usize,
    make: impl Fn(usize) -> Frame + Send + Sync + 'static,
) {
    for (i, reply) in drive(addr, codec, connections, total, make)
        .await
        .iter()
        .enumerate()
    {
        assert_eq!(reply.kind, FrameKind::Response, "reply {i}");
        assert_eq!(status(reply), success_code(codec), "reply {i} succeeds");
    }
}

/// One request on a fresh connection; its reply.
pub(crate) async fn call(addr: SocketAddr, codec: &Arc<dyn FrameCodec>, request: &Frame) -> Frame {
    let mut client = FramedClient::connect(addr, Arc::clone(codec))
        .await
        .expect("client connects");
    let reply = client.call(request).await.expect("a reply");
    assert_eq!(reply.kind, FrameKind::Response);
    assert_eq!(reply.request_id, request.request_id);
    reply
}

// ---- replies ----------------------------------------------------------

/// A response's wire status (bolt: 0 success; Dubbo: 20 OK).
pub(crate) fn status(reply: &Frame) -> u32 {
    reply.status.map_or(0, |s| s.code)
}

/// The wire status of success for `codec`.
pub(crate) fn success_code(codec: &Arc<dyn FrameCodec>) -> u32 {
    if codec.name() == "dubbo" { 20 } else { 0 }
}

/// The message a Dubbo error response carries (its body is one hessian
/// string).
pub(crate) fn dubbo_error_message(reply: &Frame) -> String {
    let mut reader = Reader::new(reply.body());
    let span = reader
        .read_string()
        .expect("a Dubbo error body is a string");
    let mut out = Vec::new();
    span.collect_into(reply.body(), &mut out);
    String::from_utf8(out).expect("UTF-8 message")
}

/// Replies whose wire status is not `code`, as (index, status).
pub(crate) fn not_status(replies: &[Frame], code: u32) -> Vec<(usize, u32)> {
    replies
        .iter()
        .enumerate()
        .filter(|(_, r)| status(r) != code)
        .map(|(i, r)| (i, status(r)))
        .collect()
}

/// A Dubbo success response to `req` whose result is the string `value`,
/// with `attachments` when there are any (Dubbo's response types 4,
/// RESPONSE_VALUE_WITH_ATTACHMENTS, and 1, RESPONSE_VALUE).
pub(crate) fn dubbo_value_response(
    req: &Frame,
    value: &str,
    attachments: &[(&str, &str)],
) -> Frame {
    use meshgate_codecs::dubbo::hessian::write_string;
    let mut body = bytes::BytesMut::new();
    // Hessian's one-byte ints: 0x90 + n.
    body.extend_from_slice(&[0x90 + if attachments.is_empty() { 1 } else { 4 }]);
    write_string(&mut body, value);
    if !attachments.is_empty() {
        body.extend_from_slice(b"H");
        for (k, v) in attachments {
            write_string(&mut body, k);
            write_string(&mut body, v);
        }
        body.extend_from_slice(b"Z");
    }
    let mut resp = Frame::new(FrameKind::Response, req.request_id);
    resp.meta.flags = 0x02; // response, hessian2
    resp.meta.serialization = 2;
    resp.set_body(body.freeze());
    resp
}

/// A Dubbo success response's string result and its attachments (`None`
/// for the response types without them), read from the body.
pub(crate) fn dubbo_response_attachments(reply: &Frame) -> (String, Option<Vec<(String, String)>>) {
    let body = reply.body();
    let string = |reader: &mut Reader<'_>, body: &[u8]| {
        let span = reader.read_string().expect("a string");
        let mut out = Vec::new();
        span.collect_into(body, &mut out);
        String::from_utf8(out).expect("UTF-8")
    };
    let mut reader = Reader::new(body);
    let kind = reader.read_int().expect("the response type");
    let value = string(&mut reader, body);
    if kind == 1 {
        assert!(reader.at_end(), "nothing after a RESPONSE_VALUE");
        return (value, None);
    }
    assert_eq!(kind, 4, "RESPONSE_VALUE_WITH_ATTACHMENTS");
    let rest = &body[reader.pos()..];
    assert_eq!(rest.first(), Some(&b'H'), "an untyped map");
    assert_eq!(rest.last(), Some(&b'Z'), "the map ends the body");
    let map = &rest[1..rest.len() - 1];
    let mut reader = Reader::new(map);
    let mut pairs = Vec::new();
    while !reader.at_end() {
        let key = string(&mut reader, map);
        let value = string(&mut reader, map);
        pairs.push((key, value));
    }
    (value, Some(pairs))
}

// ---- resilience tests' helpers ----------------------------------------

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
pub(crate) fn wire_status(frame: &Frame) -> Option<u32> {
    frame.status.map(|s| s.code)
}

/// The message of a Dubbo error response (one hessian string).
pub(crate) fn dubbo_message(frame: &Frame) -> String {
    let span = meshgate_codecs::dubbo::hessian::Reader::new(frame.body())
        .read_string()
        .unwrap_or_else(|e| panic!("a Dubbo error body is one hessian string: {e}"));
    let mut bytes = Vec::new();
    span.collect_into(frame.body(), &mut bytes);
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
