//! The admin API over a gateway that carried real traffic: every count it
//! shows equals what the test sent (bolt and Dubbo requests, an
//! unroutable request, a garbage connection), `/metrics` read back by
//! Prometheus' own Python parser, the admin address on loopback by
//! default, secrets never in `config_dump`, and reload keeping the admin
//! API up with the new configuration.

mod common;

use bytes::BytesMut;
use common::{DUBBO_SERVICE, bolt, bolt_call, dubbo, dubbo_call};
use meshgate::control::Gateway;
use meshgate_codecs::{Frame, FrameCodec};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::http;
use meshgate_test_support::process::interop;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const BOLT_SERVICE: &str = "com.example.Echo:1.0";
const BOLT_REQUESTS: usize = 40;
const BOLT_CONNECTIONS: usize = 4;
const DUBBO_REQUESTS: usize = 25;
const DUBBO_CONNECTIONS: usize = 2;
const GARBAGE: &[u8] = b"GARBAGE-THAT-IS-NO-PROTOCOL\r\n";

/// A gateway with its admin API on 127.0.0.1 (port 0) and an `Auto`
/// listener routing bolt to two hosts and Dubbo to one.
struct Setup {
    gateway: Gateway,
    addr: SocketAddr,
    admin: SocketAddr,
    bolt_hosts: Vec<MockUpstream>,
    dubbo_host: MockUpstream,
}

fn with_admin(mut document: Value) -> Value {
    document["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
    document
}

async fn setup() -> Setup {
    let bolt_hosts = common::mocks(&bolt(), 2);
    let dubbo_host = MockUpstream::start(dubbo());
    let document = with_admin(common::document(
        "Auto",
        json!([
            common::route(BOLT_SERVICE, "bolt_cluster"),
            common::route(DUBBO_SERVICE, "dubbo_cluster"),
        ]),
        json!([
            common::cluster("bolt_cluster", "LB_ROUNDROBIN", &common::addrs(&bolt_hosts)),
            common::cluster("dubbo_cluster", "LB_ROUNDROBIN", &[dubbo_host.addr()]),
        ]),
        json!([]),
    ));
    let (gateway, addr) = common::start(&document).await;
    let admin = gateway.admin_addr().expect("the admin API runs");
    Setup {
        gateway,
        addr,
        admin,
        bolt_hosts,
        dubbo_host,
    }
}

/// What the test sent and got back, in bytes.
#[derive(Default)]
struct Sent {
    bytes_in: u64,
    bytes_out: u64,
}

fn encoded_len(codec: &dyn FrameCodec, frame: &Frame) -> u64 {
    let mut buf = BytesMut::new();
    codec.encode(frame, &mut buf).expect("the request encodes");
    buf.len() as u64
}

fn reply_len(reply: &Frame) -> u64 {
    reply.wire().expect("a decoded reply has its bytes").len() as u64
}

/// The traffic: bolt and Dubbo requests over several connections, one
/// unroutable bolt request, one connection of garbage.
async fn send_traffic(s: &Setup) -> Sent {
    let mut sent = Sent::default();
    let make_bolt = |i: usize| bolt_call(i as u64 + 1, BOLT_SERVICE, &[]);
    let make_dubbo = |i: usize| dubbo_call(i as u64 + 1, &format!("arg-{i}"));
    for i in 0..BOLT_REQUESTS {
        sent.bytes_in += encoded_len(bolt().as_ref(), &make_bolt(i));
    }
    for i in 0..DUBBO_REQUESTS {
        sent.bytes_in += encoded_len(dubbo().as_ref(), &make_dubbo(i));
    }
    let replies = common::drive(s.addr, &bolt(), BOLT_CONNECTIONS, BOLT_REQUESTS, make_bolt).await;
    let dubbo_replies = common::drive(
        s.addr,
        &dubbo(),
        DUBBO_CONNECTIONS,
        DUBBO_REQUESTS,
        make_dubbo,
    )
    .await;
    for reply in replies.iter().chain(&dubbo_replies) {
        sent.bytes_out += reply_len(reply);
    }
    assert!(
        common::not_status(&replies, 0).is_empty(),
        "bolt all succeed"
    );
    assert!(
        common::not_status(&dubbo_replies, 20).is_empty(),
        "Dubbo all succeed"
    );

    let unroutable = bolt_call(9_999, "com.example.Nobody:1.0", &[]);
    sent.bytes_in += encoded_len(bolt().as_ref(), &unroutable);
    let reply = common::call(s.addr, &bolt(), &unroutable).await;
    assert_ne!(common::status(&reply), 0, "no route: an error reply");
    sent.bytes_out += reply_len(&reply);

    let mut garbage = FramedClient::connect(s.addr, bolt())
        .await
        .expect("connects");
    garbage.send_raw(GARBAGE).await.expect("garbage sent");
    let closed = tokio::time::timeout(Duration::from_secs(5), garbage.recv()).await;
    assert!(
        matches!(closed, Ok(Ok(None)) | Ok(Err(_))),
        "garbage: the gateway closes"
    );
    sent
}

/// `/api/v1/stats` as JSON.
async fn stats(admin: SocketAddr) -> Value {
    let answer = http::get(admin, "/api/v1/stats")
        .await
        .expect("stats answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// One value of MOSN's stats shape: `{type: {namespace: {key: "value"}}}`.
fn stat(all: &Value, kind: &str, namespace: &str, key: &str) -> f64 {
    let value = &all[kind][namespace][key];
    value
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{kind} / {namespace} / {key} missing: {value}"))
}

/// Waits (bounded) until every downstream connection of the test closed.
async fn connections_closed(admin: SocketAddr) -> Value {
    for _ in 0..200 {
        let all = stats(admin).await;
        if stat(&all, "listener", "listener.rpc", "connections_active") == 0.0 {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("connections still open after 4 s: {}", stats(admin).await);
}

#[tokio::test]
async fn stats_equal_the_traffic_sent() {
    common::bounded(async {
        let s = setup().await;
        let sent = send_traffic(&s).await;
        let all = connections_closed(s.admin).await;
        let n_bolt = BOLT_REQUESTS as f64;
        let n_dubbo = DUBBO_REQUESTS as f64;

        // Listener: every connection, the garbage one's detection failure,
        // and every byte both ways.
        let l = |key| stat(&all, "listener", "listener.rpc", key);
        let connections = (BOLT_CONNECTIONS + DUBBO_CONNECTIONS + 2) as f64;
        assert_eq!(l("connections_total"), connections);
        assert_eq!(l("detected_total"), connections - 1.0);
        assert_eq!(
            stat(
                &all,
                "listener",
                "listener.rpc.reason.no_match",
                "detect_failures_total"
            ),
            1.0
        );
        assert_eq!(
            stat(
                &all,
                "listener",
                "listener.rpc.reason.timeout",
                "detect_failures_total"
            ),
            0.0
        );
        assert_eq!(l("bytes_in_total"), sent.bytes_in as f64);
        assert_eq!(l("bytes_out_total"), sent.bytes_out as f64);

        // Protocols: every request, the unroutable one's local reply.
        assert_eq!(
            stat(&all, "protocol", "protocol.bolt", "requests_total"),
            n_bolt + 1.0
        );
        assert_eq!(
            stat(&all, "protocol", "protocol.dubbo", "requests_total"),
            n_dubbo
        );
        assert_eq!(
            stat(
                &all,
                "protocol",
                "protocol.bolt.reason.no_route",
                "error_replies_total"
            ),
            1.0
        );
        assert_eq!(
            stat(
                &all,
                "protocol",
                "protocol.dubbo.reason.no_route",
                "error_replies_total"
            ),
            0.0
        );

        // Routes, by `<router>/<virtual host>/<index>`.
        assert_eq!(
            stat(&all, "route", "route.rpc_router/rpc/0", "requests_total"),
            n_bolt
        );
        assert_eq!(
            stat(&all, "route", "route.rpc_router/rpc/1", "requests_total"),
            n_dubbo
        );
        assert_eq!(
            stat(&all, "route", "route.rpc_router/rpc/0", "errors_total"),
            0.0
        );

        // Clusters: requests, responses by class, latency observations.
        for (cluster, n) in [("bolt_cluster", n_bolt), ("dubbo_cluster", n_dubbo)] {
            let ns = format!("cluster.{cluster}");
            assert_eq!(stat(&all, "cluster", &ns, "requests_total"), n, "{cluster}");
            assert_eq!(
                stat(
                    &all,
                    "cluster",
                    &format!("{ns}.class.ok"),
                    "responses_total"
                ),
                n
            );
            assert_eq!(
                stat(
                    &all,
                    "cluster",
                    &format!("{ns}.class.error"),
                    "responses_total"
                ),
                0.0
            );
            assert_eq!(stat(&all, "cluster", &ns, "latency.count"), n, "{cluster}");
            assert_eq!(stat(&all, "cluster", &ns, "in_flight"), 0.0);
            assert_eq!(stat(&all, "cluster", &ns, "retries_total"), 0.0);
            let p50 = stat(&all, "cluster", &ns, "latency.50.00%");
            let p999 = stat(&all, "cluster", &ns, "latency.99.90%");
            assert!(
                p50 > 0.0 && p50 <= p999,
                "{cluster}: p50 {p50} ms, p99.9 {p999} ms"
            );
        }

        // Hosts: each one's count is what its mock served; together, all.
        let clusters = http::get(s.admin, "/api/v1/clusters").await.unwrap().json();
        let bolt_view = clusters["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "bolt_cluster")
            .expect("bolt_cluster listed");
        let mut host_total = 0.0;
        for mock in &s.bolt_hosts {
            let address = mock.addr().to_string();
            let host = bolt_view["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["address"] == address.as_str())
                .expect("host listed");
            assert_eq!(host["requests_total"], mock.requests(), "{address}");
            assert_eq!(host["health"], "healthy");
            let ns = format!("host.{address}.cluster.bolt_cluster");
            let requests = stat(&all, "host", &ns, "requests_total");
            assert_eq!(requests, mock.requests() as f64, "{address}");
            assert_eq!(stat(&all, "host", &ns, "latency.count"), requests);
            host_total += requests;
        }
        assert_eq!(host_total, n_bolt, "the hosts' counts sum to the cluster's");
        let dubbo_ns = format!("host.{}.cluster.dubbo_cluster", s.dubbo_host.addr());
        assert_eq!(stat(&all, "host", &dubbo_ns, "requests_total"), n_dubbo);

        // Pools: one connection to each host, never re-opened.
        for mock in &s.bolt_hosts {
            let ns = format!("pool.{}.cluster.bolt_cluster.protocol.bolt", mock.addr());
            assert_eq!(stat(&all, "pool", &ns, "connections"), 1.0);
            assert_eq!(stat(&all, "pool", &ns, "reconnects_total"), 0.0);
            assert_eq!(stat(&all, "pool", &ns, "in_flight"), 0.0);
        }

        let listeners = http::get(s.admin, "/api/v1/listeners")
            .await
            .unwrap()
            .json();
        let rpc = &listeners["listeners"][0];
        assert_eq!(rpc["name"], "rpc");
        assert_eq!(rpc["address"], s.addr.to_string());
        assert_eq!(rpc["total_connections"], connections as u64);
        assert_eq!(rpc["active_connections"], 0);

        let states = http::get(s.admin, "/api/v1/states").await.unwrap();
        // MOSN's stage number: Running is 6.
        assert!(
            states.body.trim_end().ends_with("&state=6"),
            "{}",
            states.body
        );
        s.gateway.stop(Duration::from_secs(1)).await;
        assert_eq!(s.gateway.admin_addr(), None, "stopped with the gateway");
        assert!(
            http::get(s.admin, "/api/v1/states").await.is_err(),
            "admin closed"
        );
    })
    .await;
}

/// Runs Prometheus' Python text parser over `text`; returns every sample
/// as `{"name", "labels", "value"}`.
fn parse_with_prometheus_client(text: &str) -> Vec<Value> {
    use std::io::Write;
    interop::check_deps().expect("scripts/install-test-deps installed the venv");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(interop::venv_python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("text written");
    let output = child.wait_with_output().expect("python finishes");
    assert!(
        output.status.success(),
        "prometheus_client rejected the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|s| s["value"].as_f64())
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[tokio::test]
async fn prometheus_text_parses_with_prometheus_client() {
    common::bounded(async {
        let s = setup().await;
        send_traffic(&s).await;
        connections_closed(s.admin).await;
        let answer = http::get(s.admin, "/metrics").await.unwrap();
        assert_eq!(answer.status, 200);
        let samples = parse_with_prometheus_client(&answer.body);
        let bolt = [("cluster", "bolt_cluster")];
        let n = BOLT_REQUESTS as f64;
        assert_eq!(
            sample(&samples, "meshgate_cluster_requests_total", &bolt),
            n
        );
        assert_eq!(
            sample(
                &samples,
                "meshgate_cluster_responses_total",
                &[("cluster", "bolt_cluster"), ("class", "ok")]
            ),
            n
        );
        assert_eq!(sample(&samples, "meshgate_cluster_latency_count", &bolt), n);
        assert_eq!(
            sample(
                &samples,
                "meshgate_cluster_latency_bucket",
                &[("cluster", "bolt_cluster"), ("le", "+Inf")]
            ),
            n
        );
        let sum = sample(&samples, "meshgate_cluster_latency_sum", &bolt);
        assert!(sum > 0.0 && sum < n * 5.0, "latency sum {sum} s");
        // Buckets are cumulative.
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| {
                s["name"] == "meshgate_cluster_latency_bucket"
                    && s["labels"]["cluster"] == "bolt_cluster"
            })
            .map(|s| {
                let le = s["labels"]["le"].as_str().unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, s["value"].as_f64().unwrap())
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() > 10, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        assert_eq!(
            sample(
                &samples,
                "meshgate_listener_connections_total",
                &[("listener", "rpc")]
            ),
            (BOLT_CONNECTIONS + DUBBO_CONNECTIONS + 2) as f64
        );
        assert_eq!(
            sample(
                &samples,
                "meshgate_listener_detect_failures_total",
                &[("listener", "rpc"), ("reason", "no_match")]
            ),
            1.0
        );
        assert_eq!(
            sample(
                &samples,
                "meshgate_protocol_error_replies_total",
                &[("protocol", "bolt"), ("reason", "no_route")]
            ),
            1.0
        );
        assert_eq!(
            sample(
                &samples,
                "meshgate_protocol_requests_total",
                &[("protocol", "dubbo")]
            ),
            DUBBO_REQUESTS as f64
        );
        let host_sum: f64 = s
            .bolt_hosts
            .iter()
            .map(|m| {
                let addr = m.addr().to_string();
                sample(
                    &samples,
                    "meshgate_host_requests_total",
                    &[("host", &addr), ("cluster", "bolt_cluster")],
                )
            })
            .sum();
        assert_eq!(host_sum, n);
        assert!(sample(&samples, "meshgate_process_uptime_seconds", &[]) >= 0.0);
        s.gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}

/// A non-loopback address of this machine, if it has one: the source
/// address the kernel would use towards a public address (no packet is
/// sent by a UDP connect).
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn admin_is_on_loopback_unless_configured_otherwise() {
    common::bounded(async {
        let s = setup().await;
        assert_eq!(s.admin.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            http::get(s.admin, "/api/v1/version").await.unwrap().status,
            200
        );
        match non_loopback_ip() {
            Some(ip) => {
                let elsewhere = SocketAddr::new(ip, s.admin.port());
                let tried = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect(elsewhere),
                )
                .await;
                assert!(
                    !matches!(tried, Ok(Ok(_))),
                    "the admin API must not answer on {elsewhere}"
                );
            }
            None => assert!(s.admin.ip().is_loopback()),
        }
        s.gateway.stop(Duration::from_secs(1)).await;

        // Configured on every address: it binds there, with a warning.
        let mut document = common::document("bolt", json!([]), json!([]), json!([]));
        document["admin"] =
            json!({ "address": { "socket_address": { "address": "0.0.0.0", "port_value": 0 } } });
        let config = meshgate::config::load_str(&document.to_string(), None).unwrap();
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.path == "admin.address.socket_address.address"),
            "{:?}",
            config.warnings
        );
        let gateway = Gateway::start(config).await.unwrap();
        assert!(gateway.admin_addr().unwrap().ip().is_unspecified());
        gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}

const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-not-a-real-key\n-----END PRIVATE KEY-----";

#[tokio::test]
async fn config_dump_shows_the_config_without_private_keys_and_follows_reload() {
    common::bounded(async {
        let upstream = MockUpstream::start(bolt());
        let mut document = with_admin(common::document(
            "bolt",
            json!([common::route(BOLT_SERVICE, "c1")]),
            json!([common::cluster("c1", "LB_RANDOM", &[upstream.addr()])]),
            json!([]),
        ));
        // TLS configured but off: accepted, and its key must stay secret.
        document["servers"][0]["listeners"][0]["filter_chains"][0]["tls_context"] = json!({
            "status": false,
            "cert_chain": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "private_key": PRIVATE_KEY
        });
        let (gateway, addr) = common::start(&document).await;
        let admin = gateway.admin_addr().unwrap();
        for path in [
            "/api/v1/config_dump",
            "/api/v1/config_dump?mosnconfig",
            "/api/v1/config_dump?alllisteners",
        ] {
            let answer = http::get(admin, path).await.unwrap();
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            assert!(
                !answer.body.contains("BEGIN PRIVATE KEY"),
                "{path} shows the key: {}",
                answer.body
            );
            assert!(!answer.body.contains("not-a-real-key"), "{path}");
        }
        let dump = http::get(admin, "/api/v1/config_dump?allclusters")
            .await
            .unwrap();
        assert!(
            dump.body.contains("LB_RANDOM"),
            "as configured: {}",
            dump.body
        );

        common::call(addr, &bolt(), &bolt_call(1, BOLT_SERVICE, &[])).await;

        // Reload: the admin API stays on its address and shows the new
        // document; the cluster kept by name keeps its count.
        document["cluster_manager"]["clusters"][0]["lb_type"] = json!("LB_ROUNDROBIN");
        let config =
            meshgate::config::load_str(&document.to_string(), Some(&gateway.config().clusters))
                .unwrap();
        gateway.reload(config).await.unwrap();
        assert_eq!(gateway.admin_addr(), Some(admin));
        let dump = http::get(admin, "/api/v1/config_dump?allclusters")
            .await
            .unwrap();
        assert!(
            dump.body.contains("LB_ROUNDROBIN") && !dump.body.contains("LB_RANDOM"),
            "{}",
            dump.body
        );
        common::call(addr, &bolt(), &bolt_call(2, BOLT_SERVICE, &[])).await;
        let all = stats(admin).await;
        assert_eq!(stat(&all, "cluster", "cluster.c1", "requests_total"), 2.0);
        assert_eq!(stat(&all, "cluster", "cluster.c1", "latency.count"), 2.0);
        gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}
