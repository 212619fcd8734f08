//! HTTP/1.1 upgrades through the gateway as byte tunnels.
//!
//! - The real `websockets` library (`tests/interop/ws_echo.py`, installed
//!   by `scripts/install-test-deps`) as client and echo server, through
//!   the `meshgate` binary: text, binary, 1 MiB and many messages, the
//!   close handshake, plain HTTP served meanwhile, refused upgrades, a
//!   dead upstream, a close by the upstream.
//! - Raw tokio sockets with a made-up `Upgrade` token, through an
//!   in-process gateway: arbitrary bytes both ways (including bytes that
//!   arrive with the 101 or behind the request), the route's header work,
//!   stats, an HTTP/1 upstream even when the route says h2, no retry of a
//!   refused upgrade, the idle timeout, and graceful stop.

mod common;
#[allow(dead_code)] // This file uses part of it.
#[path = "common/http.rs"]
mod http_common;
#[path = "common/upgrade.rs"]
mod upgrade_common;

use common::process::{GatewayProcess, TempDir};
use common::{bounded, start};
use http_common::{HttpUpstream, curl};
use meshgate_test_support::process::{External, interop};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use upgrade_common::{
    RAW_PROTOCOL, RawUpgradeUpstream, SERVER_BYE, SERVER_HELLO, invert, raw_upgrade, read_exactly,
    read_to_close,
};

/// How long one read through the tunnel may take.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// A listener `rpc` (HTTP/1) with `upstream_protocol`, routing `/dead`
/// to cluster `dead`, `/plain/` to `plain`, and everything else to `ws`;
/// `listener_extra` is merged into the listener.
fn document(
    upstream_protocol: &str,
    clusters: Value,
    route_extra: Value,
    listener_extra: Value,
) -> Value {
    let mut ws_route = json!({"cluster_name": "ws", "host_rewrite": "upstream.example"});
    if let (Some(route), Some(extra)) = (ws_route.as_object_mut(), route_extra.as_object()) {
        route.extend(extra.clone());
    }
    let mut listener = json!({
        "name": "rpc",
        "address": "127.0.0.1:0",
        "bind_port": true,
        "filter_chains": [{ "filters": [{
            "type": "proxy",
            "config": {
                "downstream_protocol": "Http1",
                "upstream_protocol": upstream_protocol,
                "router_config_name": "web"
            }
        }]}]
    });
    if let (Some(l), Some(extra)) = (listener.as_object_mut(), listener_extra.as_object()) {
        l.extend(extra.clone());
    }
    json!({
        "servers": [{
            "graceful_timeout": "5s",
            "routers": [{
                "router_config_name": "web",
                "virtual_hosts": [{
                    "name": "any",
                    "domains": ["*"],
                    "request_headers_to_add": [{"header": {"key": "x-vhost-level", "value": "v"}}],
                    "response_headers_to_add": [{"header": {"key": "x-gateway", "value": "meshgate"}}],
                    "routers": [
                        {"match": {"prefix": "/dead"}, "route": {"cluster_name": "dead"}},
                        {"match": {"prefix": "/plain/"}, "route": {"cluster_name": "plain"}},
                        {"match": {"prefix": "/"}, "route": ws_route}
                    ]
                }]
            }],
            "listeners": [listener]
        }],
        "cluster_manager": { "clusters": clusters }
    })
}

/// A port nothing listens on.
async fn dead_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// Clusters `ws` (`ws_host`), `plain` (`plain_host`) and `dead`.
async fn clusters(ws_host: SocketAddr, plain_host: SocketAddr) -> Value {
    json!([
        common::cluster("ws", "LB_ROUNDROBIN", &[ws_host]),
        common::cluster("plain", "LB_ROUNDROBIN", &[plain_host]),
        common::cluster("dead", "LB_ROUNDROBIN", &[dead_addr().await]),
    ])
}

/// The `websockets` echo server, started.
async fn ws_server() -> External {
    assert!(
        interop::venv_python().exists(),
        "tests/interop/.venv is missing: run scripts/install-test-deps"
    );
    let mut cmd = interop::python("ws_echo.py");
    cmd.arg("server");
    External::start("ws_echo server", cmd, Duration::from_secs(20))
        .await
        .expect("the websockets server starts")
}

/// The client's next stdout line, within 30 s.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the client answers in time")
        .expect("read the client's stdout")
}

/// The gateway binary on `document`.
fn gateway_binary(dir: &TempDir, document: &Value) -> GatewayProcess {
    let path = dir.path("meshgate.json");
    std::fs::write(&path, document.to_string()).expect("write the config");
    GatewayProcess::start(&path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_echo_through_the_gateway_binary_while_it_serves_http() {
    bounded(async {
        let mut server = ws_server().await;
        let plain = HttpUpstream::start("plain").await;
        let dir = TempDir::new("ws-echo");
        let document = document(
            "Http1",
            clusters(server.addr(), plain.addr()).await,
            json!({}),
            json!({}),
        );
        let gateway = gateway_binary(&dir, &document);
        let mut client = interop::python("ws_echo.py")
            .args(["client", &format!("ws://{}", gateway.addr), "echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the websockets client runs");
        let mut stdin = client.stdin.take().expect("stdin");
        let mut lines = BufReader::new(client.stdout.take().expect("stdout")).lines();
        let Some(open) = next_line(&mut lines).await else {
            let output = client.wait_with_output().await.expect("client output");
            panic!(
                "the client printed nothing: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let open: Value = serde_json::from_str(&open).expect("a JSON line");
        assert_eq!(
            open["open"],
            json!({"text": "hello", "binary": true, "big": true, "big_len": 1_048_576,
                   "many": true, "subprotocol_header": "websocket"}),
            "{open}"
        );
        // The tunnel is open: other connections are served meanwhile.
        for i in 0..10 {
            let answer = curl(gateway.addr, &format!("/plain/{i}"), &[]).await;
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_eq!(answer.echo()["uri"], format!("/plain/{i}"));
        }
        assert_eq!(plain.requests(), 10);
        stdin.write_all(b"close\n").await.expect("tell the client");
        let closed: Value =
            serde_json::from_str(&next_line(&mut lines).await.expect("a second line"))
                .expect("JSON");
        assert_eq!(
            closed["closed"],
            json!({"after": "still there", "code": 1000, "rcvd": 1000}),
            "the close handshake completed through the tunnel"
        );
        let status = tokio::time::timeout(Duration::from_secs(10), client.wait())
            .await
            .expect("the client exits")
            .expect("client status");
        assert!(status.success(), "client exit {status}");
        let _ = server.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upgrades_a_dead_upstream_and_an_upstream_close_reach_the_websocket_client() {
    bounded(async {
        let mut server = ws_server().await;
        let plain = HttpUpstream::start("plain").await;
        let dir = TempDir::new("ws-errors");
        let document = document(
            "Http1",
            clusters(server.addr(), plain.addr()).await,
            json!({}),
            json!({}),
        );
        let gateway = gateway_binary(&dir, &document);
        let results = interop::python_json(
            "ws_echo.py",
            &["client", &format!("ws://{}", gateway.addr), "errors"],
            Duration::from_secs(40),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            results["refuse_200"],
            json!({"status": 200, "body": "refused with 200\n"})
        );
        assert_eq!(
            results["refuse_400"],
            json!({"status": 400, "body": "refused with 400\n"})
        );
        let dead = results["dead"]["status"].as_u64().expect("a status");
        assert!(dead == 502 || dead == 503, "dead upstream: {results}");
        assert_eq!(
            results["upstream_close"],
            json!({"closed": true, "code": 4000, "reason": "bye"}),
            "the upstream's close frame and TCP close reached the client"
        );
        let _ = server.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_upgrade_carries_arbitrary_bytes_both_ways_over_http1_even_when_the_route_says_h2() {
    bounded(async {
        let upstream = RawUpgradeUpstream::start().await;
        let plain = HttpUpstream::start("plain").await;
        // The listener asks for h2 upstream: an upgrade still goes out as
        // HTTP/1.1 (the raw upstream speaks nothing else).
        let (gw, addr) = start(&document(
            "Http2",
            clusters(upstream.addr(), plain.addr()).await,
            json!({"request_headers_to_add": [{"header": {"key": "x-route-level", "value": "r"}}]}),
            json!({}),
        ))
        .await;
        let before = gw.listener_stats("rpc").await.expect("stats");
        let early = b"early-bytes";
        let (mut stream, head, mut got) = raw_upgrade(
            addr,
            "/tunnel?q=1",
            "x-client: c\r\nkeep-alive: timeout=5\r\n",
            early,
        )
        .await;
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains(&format!("upgrade: {RAW_PROTOCOL}")), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        assert!(
            head.contains("x-gateway: meshgate"),
            "response header lists apply: {head}"
        );
        // What came with the 101, then the early bytes echoed.
        let mut want = SERVER_HELLO.to_vec();
        want.extend(invert(early));
        read_exactly(&mut stream, &mut got, want.len(), READ_LIMIT).await;
        assert_eq!(got, want);
        let seen = upstream.seen();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert!(
            request.starts_with("get /tunnel?q=1 http/1.1\r\n"),
            "{request}"
        );
        for line in [
            "host: upstream.example",
            "connection: upgrade",
            &format!("upgrade: {RAW_PROTOCOL}"),
            "x-client: c",
            "x-vhost-level: v",
            "x-route-level: r",
            "x-forwarded-for: 127.0.0.1",
        ] {
            assert!(
                request.contains(&format!("\r\n{line}\r\n")),
                "{line} missing: {request}"
            );
        }
        assert!(
            !request.contains("keep-alive"),
            "other hop-by-hop fields go: {request}"
        );
        // Every byte value, in sizes that cross the copy buffer.
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
        let (mut read_half, mut write_half) = stream.split();
        let writer = async {
            for chunk in payload.chunks(7_001) {
                write_half.write_all(chunk).await.expect("write");
            }
        };
        let reader = async {
            let mut echoed = Vec::new();
            let mut chunk = vec![0u8; 65536];
            while echoed.len() < payload.len() {
                let n = tokio::time::timeout(
                    READ_LIMIT,
                    tokio::io::AsyncReadExt::read(&mut read_half, &mut chunk),
                )
                .await
                .expect("echo in time")
                .expect("read");
                assert!(n > 0, "closed after {} bytes", echoed.len());
                echoed.extend_from_slice(&chunk[..n]);
            }
            echoed
        };
        let ((), echoed) = tokio::join!(writer, reader);
        assert!(echoed == invert(&payload), "the echo differs");
        assert_eq!(gw.connections(), 1, "the tunnel is a live connection");
        let upstream_connections = || {
            let config = gw.config();
            let cluster = config.clusters.get("ws").expect("cluster ws");
            cluster.hosts().hosts()[0]
                .stats()
                .active_connections
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(
            upstream_connections(),
            1,
            "the upstream side stays counted too"
        );
        // The client closes its sending half: the upstream sees it, says
        // goodbye and closes; the client sees both.
        stream.shutdown().await.expect("shutdown");
        let rest = read_to_close(&mut stream, READ_LIMIT).await;
        assert_eq!(rest, SERVER_BYE);
        assert_eq!(upstream.wait_ended(1, READ_LIMIT).await, ["eof"]);
        let after = gw.listener_stats("rpc").await.expect("stats");
        assert!(
            after.bytes_in - before.bytes_in > payload.len() as u64,
            "tunnel bytes are counted in: {before:?} {after:?}"
        );
        assert!(
            after.bytes_out - before.bytes_out > payload.len() as u64,
            "tunnel bytes are counted out"
        );
        // Normal requests still work on a new connection.
        let answer = curl(addr, "/plain/after", &[]).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let deadline = tokio::time::Instant::now() + READ_LIMIT;
        while gw.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(gw.connections(), 0, "the tunnel's connection is closed");
        assert_eq!(upstream_connections(), 0, "and its upstream connection");
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_a_normal_response_and_is_not_retried() {
    bounded(async {
        let upstream = RawUpgradeUpstream::start().await;
        let plain = HttpUpstream::start("plain").await;
        let (gw, addr) = start(&document(
            "Http1",
            clusters(upstream.addr(), plain.addr()).await,
            json!({"retry_policy": {"retry_on": true, "num_retries": 2}}),
            json!({}),
        ))
        .await;
        let (mut stream, head, mut body) = raw_upgrade(addr, "/status/503", "", b"").await;
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(!head.contains("upgrade:"), "{head}");
        let want = "no upgrade here: 503\n".len();
        read_exactly(&mut stream, &mut body, want, READ_LIMIT).await;
        assert_eq!(body, b"no upgrade here: 503\n");
        assert_eq!(
            upstream.seen().len(),
            1,
            "an upgrade that reached a host is not sent again"
        );
        // A plain request with the same policy is retried: the policy works.
        let answer = curl(addr, "/status/503", &[]).await;
        assert_eq!(answer.status, 503);
        assert_eq!(upstream.seen().len(), 4);
        // An upgrade to a dead upstream: the usual 502/503.
        let (_stream, head, _) = raw_upgrade(addr, "/dead", "", b"").await;
        assert!(
            head.starts_with("HTTP/1.1 502") || head.starts_with("HTTP/1.1 503"),
            "{head}"
        );
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tunnel_is_closed_on_both_sides_after_the_listener_idle_timeout() {
    bounded(async {
        let upstream = RawUpgradeUpstream::start().await;
        let plain = HttpUpstream::start("plain").await;
        let (gw, addr) = start(&document(
            "Http1",
            clusters(upstream.addr(), plain.addr()).await,
            json!({}),
            json!({"connection_idle_timeout": "400ms"}),
        ))
        .await;
        let (mut stream, head, mut got) = raw_upgrade(addr, "/silent", "", b"").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let started = tokio::time::Instant::now();
        // Traffic keeps it open past the timeout...
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stream.write_all(b"ping").await.expect("write while active");
        }
        assert!(
            upstream.ended().is_empty(),
            "still open while traffic flows"
        );
        // ...silence closes it, both ways.
        got.extend(read_to_close(&mut stream, READ_LIMIT).await);
        assert!(got.is_empty(), "the silent upstream sent {got:?}");
        assert!(started.elapsed() >= Duration::from_millis(1000));
        assert_eq!(upstream.wait_ended(1, READ_LIMIT).await, ["eof"]);
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_waits_for_a_tunnel_until_the_grace_period_then_closes_it() {
    bounded(async {
        let upstream = RawUpgradeUpstream::start().await;
        let plain = HttpUpstream::start("plain").await;
        let (gw, addr) = start(&document(
            "Http1",
            clusters(upstream.addr(), plain.addr()).await,
            json!({}),
            json!({}),
        ))
        .await;
        let (mut stream, head, mut got) = raw_upgrade(addr, "/tunnel", "", b"").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        read_exactly(&mut stream, &mut got, SERVER_HELLO.len(), READ_LIMIT).await;
        let gw = std::sync::Arc::new(gw);
        let stopping = {
            let gw = std::sync::Arc::clone(&gw);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                gw.stop(Duration::from_millis(1500)).await;
                started.elapsed()
            })
        };
        // Draining: the tunnel still carries bytes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(b"during drain").await.expect("write");
        let mut echoed = Vec::new();
        read_exactly(&mut stream, &mut echoed, 12, READ_LIMIT).await;
        assert_eq!(echoed, invert(b"during drain"));
        assert!(!stopping.is_finished(), "stop waits for the tunnel");
        // The grace period ends: both sides are closed.
        let rest = read_to_close(&mut stream, READ_LIMIT).await;
        assert!(rest.is_empty(), "{rest:?}");
        let took = tokio::time::timeout(READ_LIMIT, stopping)
            .await
            .expect("stop ends")
            .expect("stop task");
        assert!(
            took >= Duration::from_millis(1400),
            "stopped after {took:?}"
        );
        assert_eq!(upstream.wait_ended(1, READ_LIMIT).await, ["eof"]);
    })
    .await;
}
