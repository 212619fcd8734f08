//! The TCP proxy (MOSN's `tcp_proxy` network filter) end to end: bytes
//! cross byte for byte both ways with half-close, connects move to other
//! hosts up to `max_connect_attempts`, an idle connection is closed, routes
//! pick clusters by address, and an `Auto` listener with
//! `fallback_for_unknown_protocol` hands a connection it cannot detect to
//! the TCP proxy, first bytes included, while bolt on the same listener is
//! still proxied request by request.

mod common;

use common::{bolt, cluster, route, start};
use meshgate_codecs::FrameKind;
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::net::closed_port;
use meshgate_test_support::tcp::{XorEchoServer, transformed};
use rand::RngCore;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const GRACE: Duration = Duration::from_secs(1);
/// Longest wait for anything in these tests.
const LIMIT: Duration = Duration::from_secs(10);

/// One listener `rpc` whose chain is `filters`, with `clusters`; a router
/// `rpc_router` routing every service to `l7` (for chains with a proxy
/// filter).
fn document(filters: Value, clusters: Value) -> Value {
    json!({
        "servers": [{
            "routers": [{
                "router_config_name": "rpc_router",
                "virtual_hosts": [{ "name": "rpc", "domains": ["*"], "routers": [route(".*", "l7")] }]
            }],
            "listeners": [{
                "name": "rpc", "address": "127.0.0.1:0", "bind_port": true,
                "filter_chains": [{ "filters": filters }]
            }]
        }],
        "cluster_manager": { "clusters": clusters }
    })
}

fn tcp_proxy(config: Value) -> Value {
    json!({ "type": "tcp_proxy", "config": config })
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Sends `payload` (writing and reading at once), half-closes, and reads
/// until the other side closes; returns what came back.
async fn exchange(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let payload = payload.to_vec();
    // A connection the gateway closes unread may be reset: what was read
    // by then is the answer.
    let writer = tokio::spawn(async move {
        if write.write_all(&payload).await.is_ok() {
            let _ = write.shutdown().await;
        }
        write
    });
    let mut back = Vec::new();
    let read = tokio::time::timeout(LIMIT, read.read_to_end(&mut back))
        .await
        .expect("the reply ends in time");
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    drop(writer.await.expect("writer"));
    back
}

/// Polls `cond` every 10 ms until true or [`LIMIT`].
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn bytes_cross_byte_for_byte_both_ways_with_half_close() {
    let upstream = XorEchoServer::start().await;
    // A route by address: 10/8 never matches loopback, 127/8 does.
    let doc = document(
        json!([tcp_proxy(json!({
            "routes": [
                { "cluster": "nowhere", "source_addrs": ["10.0.0.0/8"] },
                { "cluster": "raw", "source_addrs": [{ "address": "127.0.0.0", "length": 8 }], "destination_port": "1-65535" }
            ]
        }))]),
        json!([cluster("raw", "LB_ROUNDROBIN", &[upstream.addr()])]),
    );
    let (gateway, addr) = start(&doc).await;
    let payloads = [random_bytes(1), random_bytes(4 << 20), random_bytes(70_001)];
    let mut tasks = Vec::new();
    for payload in payloads.clone() {
        tasks.push(tokio::spawn(async move {
            let back = exchange(addr, &payload).await;
            (payload, back)
        }));
    }
    for task in tasks {
        let (payload, back) = task.await.unwrap();
        assert_eq!(back.len(), payload.len(), "every byte came back");
        assert!(back == transformed(&payload), "byte for byte");
    }
    let mut received = upstream.received();
    received.sort_by_key(Vec::len);
    let mut sent = payloads.to_vec();
    sent.sort_by_key(Vec::len);
    assert!(
        received == sent,
        "the upstream got exactly what was sent, then the half-close"
    );
    let stats = gateway.tcp_proxy_stats("rpc").await.unwrap();
    let total: u64 = payloads.iter().map(|p| p.len() as u64).sum();
    assert_eq!(stats.connections, 3);
    assert_eq!(stats.bytes_to_upstream, total);
    assert_eq!(stats.bytes_to_downstream, total);
    eventually("every proxied connection ended", || upstream.ended() == 3).await;
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn connects_move_to_other_hosts_up_to_max_connect_attempts() {
    let upstream = XorEchoServer::start().await;
    let hosts = [closed_port(), closed_port(), upstream.addr()];
    for (attempts, expect_all) in [(3, true), (1, false)] {
        let doc = document(
            json!([tcp_proxy(
                json!({ "cluster": "raw", "max_connect_attempts": attempts })
            )]),
            json!([cluster("raw", "LB_ROUNDROBIN", &hosts)]),
        );
        let (gateway, addr) = start(&doc).await;
        let mut served = 0;
        for i in 0..6u8 {
            let back = exchange(addr, &[i; 10]).await;
            if back == transformed(&[i; 10]) {
                served += 1;
            } else {
                assert!(back.is_empty(), "a connection with no upstream is closed");
            }
        }
        let stats = gateway.tcp_proxy_stats("rpc").await.unwrap();
        if expect_all {
            assert_eq!(served, 6, "three attempts always reach the live host");
            assert_eq!(stats.no_upstream, 0);
        } else {
            assert_eq!(
                served, 2,
                "one attempt: round robin gives the live host one in three"
            );
            assert_eq!(stats.no_upstream, 4);
        }
        assert!(stats.connect_failures >= 4, "{stats:?}");
        gateway.stop(GRACE).await;
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let upstream = XorEchoServer::start().await;
    let doc = document(
        json!([tcp_proxy(
            json!({ "cluster": "raw", "idle_timeout": "300ms" })
        )]),
        json!([cluster("raw", "LB_ROUNDROBIN", &[upstream.addr()])]),
    );
    let (gateway, addr) = start(&doc).await;

    // Busy: a byte every 100 ms for a second keeps it open.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    let mut byte = [0u8; 1];
    for i in 0..10u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.write_all(&[i]).await.unwrap();
        busy.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte[0], transformed(&[i])[0]);
    }
    // Idle: closed about 300 ms after the last byte, both sides.
    let quiet = Instant::now();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(LIMIT, busy.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .unwrap();
    let waited = quiet.elapsed();
    assert_eq!(n, 0);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed at the idle timeout: {waited:?}"
    );
    eventually("the upstream side closed too", || upstream.ended() == 1).await;
    assert_eq!(
        gateway.tcp_proxy_stats("rpc").await.unwrap().idle_timeouts,
        1
    );
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn an_unknown_protocol_falls_back_to_the_tcp_proxy_and_bolt_stays_l7() {
    let raw = XorEchoServer::start().await;
    let rpc = MockUpstream::start(bolt());
    let doc = document(
        json!([
            { "type": "proxy", "config": {
                "downstream_protocol": "Auto", "router_config_name": "rpc_router",
                "fallback_for_unknown_protocol": true
            }},
            tcp_proxy(json!({ "cluster": "raw" }))
        ]),
        json!([
            cluster("raw", "LB_ROUNDROBIN", &[raw.addr()]),
            cluster("l7", "LB_ROUNDROBIN", &[rpc.addr()])
        ]),
    );
    let (gateway, addr) = start(&doc).await;

    // Bytes no protocol starts with: detection reads them, finds nothing,
    // and hands them (and the rest) to the TCP proxy.
    let mut payload = vec![0xFF, 0xEE, 0x00, 0x01];
    payload.extend(random_bytes(300_000));
    let back = exchange(addr, &payload).await;
    assert!(
        back == transformed(&payload),
        "byte for byte, first bytes included"
    );
    assert!(
        raw.received() == vec![payload.clone()],
        "the cluster got the whole stream"
    );

    // bolt on the same listener is still served request by request.
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    for id in 0..5 {
        let reply = client
            .call(&bolt_request(id, format!("hello-{id}")))
            .await
            .unwrap();
        assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, id));
        assert_eq!(reply.body(), format!("hello-{id}").as_bytes());
    }
    assert_eq!(rpc.requests(), 5, "bolt went through the L7 proxy");
    assert_eq!(raw.accepted(), 1, "and never to the TCP cluster");

    let stats = gateway.listener_stats("rpc").await.unwrap();
    assert_eq!((stats.detected, stats.detect_no_match), (1, 1));
    let tcp = gateway.tcp_proxy_stats("rpc").await.unwrap();
    assert_eq!((tcp.connections, tcp.fallbacks), (1, 1));
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn without_fallback_an_unknown_protocol_is_closed() {
    let raw = XorEchoServer::start().await;
    let rpc = MockUpstream::start(bolt());
    let doc = document(
        json!([
            { "type": "proxy", "config": { "downstream_protocol": "Auto", "router_config_name": "rpc_router" } },
            tcp_proxy(json!({ "cluster": "raw" }))
        ]),
        json!([
            cluster("raw", "LB_ROUNDROBIN", &[raw.addr()]),
            cluster("l7", "LB_ROUNDROBIN", &[rpc.addr()])
        ]),
    );
    let config = meshgate::config::load_str(&doc.to_string(), None).unwrap();
    assert!(
        config.warnings.iter().any(|w| w.path
            == "servers[0].listeners[0].filter_chains[0].filters[1]"
            && w.message.contains("never used")),
        "{:?}",
        config.warnings
    );
    let (gateway, addr) = start(&doc).await;
    let back = exchange(addr, &[0xFF, 0xEE, 0x00, 0x01, 0x02]).await;
    assert!(back.is_empty(), "closed");
    assert_eq!(raw.accepted(), 0);
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn a_client_silent_past_the_detect_timeout_falls_back_too() {
    // Protocols whose server speaks first send nothing to detect.
    let raw = XorEchoServer::start().await;
    let rpc = MockUpstream::start(bolt());
    let doc = document(
        json!([
            { "type": "proxy", "config": {
                "downstream_protocol": "Auto", "router_config_name": "rpc_router",
                "fallback_for_unknown_protocol": true,
                "extend_config": { "detect_timeout": "200ms" }
            }},
            tcp_proxy(json!({ "cluster": "raw" }))
        ]),
        json!([
            cluster("raw", "LB_ROUNDROBIN", &[raw.addr()]),
            cluster("l7", "LB_ROUNDROBIN", &[rpc.addr()])
        ]),
    );
    let (gateway, addr) = start(&doc).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    eventually("the silent connection reached the TCP cluster", || {
        raw.accepted() == 1
    })
    .await;
    stream.write_all(b"late hello").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(LIMIT, stream.read_exact(&mut back))
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(back.to_vec(), transformed(b"late hello"));
    let stats = gateway.listener_stats("rpc").await.unwrap();
    assert_eq!(stats.detect_timeout, 1);
    gateway.stop(GRACE).await;
}
