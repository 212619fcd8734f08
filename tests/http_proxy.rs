//! HTTP/1.1 and h2c through the gateway, with curl as the client and a
//! hyper upstream (`common::http`): methods and bodies, rewrites, header
//! lists, redirects, direct responses, every matcher kind, local replies,
//! cross-version forwarding, an upstream failing mid-body, malformed
//! requests.

mod common;
#[path = "common/http.rs"]
mod http_common;

use common::{bounded, start};
use http_common::{HttpUpstream, curl};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// curl's flags for each downstream version.
const H1: &[&str] = &[];
const H2: &[&str] = &["--http2-prior-knowledge"];

/// One listener `rpc` speaking `protocol` (`Http1`, `Http2`, `Auto`) with
/// `upstream_protocol`, routing with `virtual_hosts` to `clusters`.
fn http_document(
    protocol: &str,
    upstream_protocol: &str,
    virtual_hosts: Value,
    clusters: Value,
) -> Value {
    json!({
        "servers": [{
            "graceful_timeout": "5s",
            "routers": [{
                "router_config_name": "web",
                "request_headers_to_add": [{"header": {"key": "x-router-level", "value": "r"}}],
                "virtual_hosts": virtual_hosts
            }],
            "listeners": [{
                "name": "rpc",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{ "filters": [{
                    "type": "proxy",
                    "config": {
                        "downstream_protocol": protocol,
                        "upstream_protocol": upstream_protocol,
                        "router_config_name": "web",
                        "extend_config": {"max_header_size": 16384, "max_request_body_size": 4194304}
                    }
                }]}]
            }]
        }],
        "cluster_manager": { "clusters": clusters }
    })
}

fn web_cluster(name: &str, hosts: &[SocketAddr]) -> Value {
    common::cluster(name, "LB_ROUNDROBIN", hosts)
}

/// The routes most tests use, on a `*` virtual host: each matcher kind,
/// the rewrites, header lists, a redirect and a direct response.
fn routes() -> Value {
    json!([{
        "name": "any",
        "domains": ["*"],
        "request_headers_to_add": [{"header": {"key": "x-vhost-level", "value": "v"}}],
        "routers": [
            {"match": {"prefix": "/api/"}, "route": {"cluster_name": "web", "prefix_rewrite": "/v2/"}},
            {"match": {"regex": "^/items/[0-9]+$"}, "route": {"cluster_name": "web",
                "regex_rewrite": {"pattern": {"regex": "^/items/([0-9]+)$"}, "substitution": "/item?id=$1"}}},
            {"match": {"path": "/exact"}, "route": {"cluster_name": "web", "host_rewrite": "rewritten.example"}},
            {"match": {"prefix": "/by-header", "headers": [{"name": "x-tenant", "value": "blue"}]},
             "route": {"cluster_name": "web",
                "request_headers_to_add": [{"header": {"key": "x-matched", "value": "header"}}]}},
            {"match": {"prefix": "/by-method", "headers": [{"name": ":method", "value": "DELETE"}]},
             "route": {"cluster_name": "web",
                "request_headers_to_add": [{"header": {"key": "x-matched", "value": "method"}}]}},
            {"match": {"prefix": "/headers"}, "route": {"cluster_name": "web",
             "request_headers_to_add": [
                {"header": {"key": "x-added", "value": "route"}},
                {"header": {"key": "x-peer", "value": "%downstream_remote_ip%"}}],
             "request_headers_to_remove": ["x-drop-me"],
             "response_headers_to_add": [{"header": {"key": "x-resp-added", "value": "yes"}}],
             "response_headers_to_remove": ["x-upstream-secret"]}},
            {"match": {"prefix": "/old/"}, "redirect": {"prefix_rewrite": "/new/", "response_code": 302}},
            {"match": {"path": "/teapot"}, "direct_response": {"status": 418, "body": "short and stout"}},
            {"match": {"prefix": "/nohost"}, "route": {"cluster_name": "empty"}},
            {"match": {"prefix": "/"}, "route": {"cluster_name": "web"}}
        ]
    }])
}

async fn gateway(
    protocol: &str,
    upstream: &str,
    up: &HttpUpstream,
) -> (meshgate::control::Gateway, SocketAddr) {
    let clusters = json!([web_cluster("web", &[up.addr()]), web_cluster("empty", &[])]);
    start(&http_document(protocol, upstream, routes(), clusters)).await
}

fn ok(answer: &http_common::CurlAnswer) {
    assert_eq!(
        answer.exit,
        0,
        "curl failed ({}): {answer:?}",
        answer.stderr.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_and_bodies_over_http1_and_h2c() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Auto", "Auto", &up).await;
        for (flags, version) in [(H1, "HTTP/1.1"), (H2, "HTTP/2.0")] {
            let get = curl(addr, "/echo?x=1", flags).await;
            ok(&get);
            assert_eq!(get.status, 200, "{get:?}");
            let echo = get.echo();
            assert_eq!(echo["method"], "GET");
            assert_eq!(echo["uri"], "/echo?x=1");
            assert_eq!(
                echo["version"], version,
                "Auto keeps the downstream version"
            );
            assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
            assert_eq!(echo["headers"]["x-forwarded-proto"], "http");
            assert_eq!(echo["headers"]["x-router-level"], "r");
            assert_eq!(echo["headers"]["x-vhost-level"], "v");
            assert!(echo["headers"].get("connection").is_none(), "{echo}");
            assert_eq!(get.header("x-upstream"), Some("web"));

            let post = curl(
                addr,
                "/echo",
                &[flags, &["-X", "POST", "-d", "hello=world"]].concat(),
            )
            .await;
            ok(&post);
            let echo = post.echo();
            assert_eq!(echo["method"], "POST");
            assert_eq!(echo["body"], "hello=world");

            let put = curl(
                addr,
                "/echo",
                &[flags, &["-X", "PUT", "--data-binary", "put-body"]].concat(),
            )
            .await;
            ok(&put);
            assert_eq!(put.echo()["method"], "PUT");
            assert_eq!(put.echo()["body"], "put-body");
        }
        // A chunked upload, larger than the retry buffer, streamed through.
        let file = std::env::temp_dir().join(format!("mg-upload-{}", std::process::id()));
        std::fs::write(&file, vec![b'u'; 300_000]).expect("write upload");
        let upload = format!("@{}", file.display());
        let chunked = curl(
            addr,
            "/echo",
            &[
                "-X",
                "POST",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &upload,
            ],
        )
        .await;
        ok(&chunked);
        assert_eq!(chunked.echo()["body_len"], 300_000);
        let h2_upload = curl(
            addr,
            "/echo",
            &["--http2-prior-knowledge", "--data-binary", &upload],
        )
        .await;
        ok(&h2_upload);
        assert_eq!(h2_upload.echo()["body_len"], 300_000);
        let _ = std::fs::remove_file(&file);
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_header_lists_redirects_and_direct_responses() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Auto", "Auto", &up).await;
        for flags in [H1, H2] {
            let prefix = curl(addr, "/api/users?page=2", flags).await;
            assert_eq!(
                prefix.echo()["uri"],
                "/v2/users?page=2",
                "prefix_rewrite keeps the query"
            );

            let regex = curl(addr, "/items/42", flags).await;
            assert_eq!(regex.echo()["uri"], "/item?id=42");

            let host = curl(addr, "/exact", flags).await;
            assert_eq!(host.echo()["host"], "rewritten.example");
            let kept = curl(
                addr,
                "/echo",
                &[flags, &["-H", "Host: kept.example"]].concat(),
            )
            .await;
            assert_eq!(kept.echo()["host"], "kept.example");

            let headers = curl(
                addr,
                "/headers",
                &[flags, &["-H", "x-drop-me: 1", "-H", "x-keep: 2"]].concat(),
            )
            .await;
            ok(&headers);
            let echo = headers.echo();
            assert_eq!(echo["headers"]["x-added"], "route");
            assert_eq!(echo["headers"]["x-peer"], "127.0.0.1");
            assert_eq!(echo["headers"]["x-keep"], "2");
            assert!(echo["headers"].get("x-drop-me").is_none(), "{echo}");
            assert_eq!(headers.header("x-resp-added"), Some("yes"));
            assert_eq!(headers.header("x-upstream-secret"), None);
            assert_eq!(headers.header("x-upstream"), Some("web"));

            let redirect = curl(
                addr,
                "/old/page?q=1",
                &[flags, &["-H", "Host: site.example"]].concat(),
            )
            .await;
            ok(&redirect);
            assert_eq!(redirect.status, 302);
            assert_eq!(
                redirect.header("location"),
                Some("http://site.example/new/page?q=1")
            );

            let direct = curl(addr, "/teapot", flags).await;
            assert_eq!(direct.status, 418);
            assert_eq!(direct.body, "short and stout");
        }
        assert!(up.requests() > 0);
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matcher_kind_and_local_replies() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let clusters = json!([web_cluster("web", &[up.addr()]), web_cluster("empty", &[])]);
        let vhosts = json!([
            {"name": "exact", "domains": ["only.example"], "routers": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": "vhost only.example"}}]},
            {"name": "strict", "domains": ["strict.example"], "routers": [
                {"match": {"path": "/here"}, "route": {"cluster_name": "web"}},
                {"match": {"prefix": "/nohost"}, "route": {"cluster_name": "empty"}}]},
            {"name": "rest", "domains": ["*"], "routers": routes()[0]["routers"].clone()}
        ]);
        let (gw, addr) = start(&http_document("Auto", "Auto", vhosts, clusters)).await;
        for flags in [H1, H2] {
            let vhost = curl(addr, "/anything", &[flags, &["-H", "Host: only.example"]].concat()).await;
            assert_eq!(vhost.body, "vhost only.example", "virtual host by Host");

            let no_route = curl(addr, "/elsewhere", &[flags, &["-H", "Host: strict.example"]].concat()).await;
            ok(&no_route);
            assert_eq!(no_route.status, 404, "{no_route:?}");
            let path = curl(addr, "/here", &[flags, &["-H", "Host: strict.example"]].concat()).await;
            assert_eq!(path.status, 200);

            let header = curl(addr, "/by-header", &[flags, &["-H", "X-Tenant: blue"]].concat()).await;
            assert_eq!(header.echo()["headers"]["x-matched"], "header", "header names match case-insensitively");
            let other = curl(addr, "/by-header", &[flags, &["-H", "X-Tenant: red"]].concat()).await;
            assert!(other.echo()["headers"].get("x-matched").is_none());

            let method = curl(addr, "/by-method", &[flags, &["-X", "DELETE"]].concat()).await;
            assert_eq!(method.echo()["headers"]["x-matched"], "method");
            let get = curl(addr, "/by-method", flags).await;
            assert!(get.echo()["headers"].get("x-matched").is_none());

            let no_host = curl(addr, "/nohost", flags).await;
            assert_eq!(no_host.status, 503, "{no_host:?}");
        }
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_version_forwarding() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        for (listener, upstream, flags, seen) in [
            ("Http1", "Http2", H1, "HTTP/2.0"),
            ("Http2", "Http1", H2, "HTTP/1.1"),
            ("Http2", "Http2", H2, "HTTP/2.0"),
            ("Http1", "Http1", H1, "HTTP/1.1"),
        ] {
            let (gw, addr) = gateway(listener, upstream, &up).await;
            let get = curl(
                addr,
                "/echo",
                &[flags, &["-H", "Host: cross.example"]].concat(),
            )
            .await;
            ok(&get);
            let echo = get.echo();
            assert_eq!(echo["version"], seen, "{listener} → {upstream}");
            assert_eq!(echo["host"], "cross.example");
            let post = curl(
                addr,
                "/echo",
                &[flags, &["--data-binary", "payload"]].concat(),
            )
            .await;
            assert_eq!(post.echo()["body"], "payload", "{listener} → {upstream}");
            let big = curl(addr, "/bytes/1000000", flags).await;
            ok(&big);
            assert_eq!(big.body.len(), 1_000_000);
            gw.stop(std::time::Duration::from_secs(2)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failing_mid_body_leaves_the_gateway_serving() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Auto", "Auto", &up).await;
        for flags in [H1, H2] {
            let broken = curl(addr, "/reset-mid-body", flags).await;
            assert_ne!(
                broken.exit, 0,
                "the client sees the response cut short: {broken:?}"
            );
            let next = curl(addr, "/echo", flags).await;
            ok(&next);
            assert_eq!(next.status, 200);
        }
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let clusters = json!([web_cluster("web", &[dead]), web_cluster("empty", &[])]);
        let (gw2, addr2) = start(&http_document("Auto", "Auto", routes(), clusters)).await;
        let refused = curl(addr2, "/echo", H1).await;
        assert_eq!(refused.status, 502, "connect failure: {refused:?}");
        gw2.stop(std::time::Duration::from_secs(2)).await;
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Http1", "Auto", &up).await;
        async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(bytes).await.expect("write");
            let mut out = Vec::new();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
                    .await;
            String::from_utf8_lossy(&out).into_owned()
        }
        let bad_line = raw(addr, b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(bad_line.starts_with("HTTP/1.1 400"), "{bad_line}");
        let huge = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        let too_big = raw(addr, huge.as_bytes()).await;
        assert!(too_big.starts_with("HTTP/1.1 431"), "{too_big}");
        let conflicting = raw(
            addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        )
        .await;
        assert!(conflicting.starts_with("HTTP/1.1 400"), "{conflicting}");
        let body_over = curl(
            addr,
            "/echo",
            &["-H", "Content-Length: 5000000", "--data-binary", "x"],
        )
        .await;
        assert_eq!(body_over.status, 413, "{body_over:?}");
        // A chunked body that grows past the limit (4 MiB) is cut off: 413.
        let file = std::env::temp_dir().join(format!("mg-over-{}", std::process::id()));
        std::fs::write(&file, vec![b'o'; 5_000_000]).expect("write upload");
        let upload = format!("@{}", file.display());
        let streamed_over = curl(
            addr,
            "/echo",
            &["-H", "Transfer-Encoding: chunked", "--data-binary", &upload],
        )
        .await;
        let _ = std::fs::remove_file(&file);
        assert_eq!(streamed_over.status, 413, "{}", streamed_over.stderr);
        let fine = curl(addr, "/echo", H1).await;
        assert_eq!(fine.status, 200, "the gateway still serves");
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_replay_the_request_body_on_another_host() {
    bounded(async {
        let a = HttpUpstream::start("a").await;
        let b = HttpUpstream::start("b").await;
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let vhosts = json!([{"name": "any", "domains": ["*"], "routers": [
            {"match": {"prefix": "/fail-on/"}, "route": {"cluster_name": "pair",
                "retry_policy": {"retry_on": true, "num_retries": 2}}},
            {"match": {"prefix": "/"}, "route": {"cluster_name": "half_dead"}}
        ]}]);
        let clusters = json!([
            web_cluster("pair", &[a.addr(), b.addr()]),
            web_cluster("half_dead", &[dead, b.addr()])
        ]);
        let (gw, addr) = start(&http_document("Auto", "Auto", vhosts, clusters)).await;
        for flags in [H1, H2] {
            for i in 0..4 {
                let body = format!("replay-me-{i}");
                // 503 from `a` is retried on `b`, body and all.
                let flaky = curl(
                    addr,
                    "/fail-on/a",
                    &[flags, &["--data-binary", &body]].concat(),
                )
                .await;
                ok(&flaky);
                assert_eq!(flaky.status, 200, "{flaky:?}");
                assert_eq!(flaky.header("x-upstream"), Some("b"));
                assert_eq!(flaky.echo()["body"], body.as_str());
                // A refused connect is retried (MOSN's implicit policy).
                let failover =
                    curl(addr, "/echo", &[flags, &["--data-binary", &body]].concat()).await;
                assert_eq!(failover.status, 200, "{failover:?}");
                assert_eq!(failover.echo()["body"], body.as_str());
            }
        }
        assert!(a.requests() > 0, "a was tried");
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_listener_serves_http1_h2c_and_bolt_on_one_port() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let bolt_mocks = common::mocks(&common::bolt(), 1);
        let vhosts = json!([{"name": "any", "domains": ["*"], "routers": [
            {"match": {"prefix": "/"}, "route": {"cluster_name": "web"}},
            common::route(".*", "rpc")
        ]}]);
        let clusters = json!([
            web_cluster("web", &[up.addr()]),
            common::cluster("rpc", "LB_ROUNDROBIN", &common::addrs(&bolt_mocks))
        ]);
        let (gw, addr) = start(&http_document("Auto", "Auto", vhosts, clusters)).await;
        let h1 = curl(addr, "/echo", H1).await;
        assert_eq!(h1.echo()["version"], "HTTP/1.1");
        let h2 = curl(addr, "/echo", H2).await;
        assert_eq!(h2.echo()["version"], "HTTP/2.0");
        let mut client = meshgate_test_support::client::FramedClient::connect(addr, common::bolt())
            .await
            .expect("bolt client connects");
        for id in 1..=3 {
            let request = common::bolt_call(id, "com.example.Echo", &[]);
            let reply = client.call(&request).await.expect("bolt reply");
            assert_eq!(reply.request_id, id);
            assert_eq!(reply.body(), request.body());
        }
        assert_eq!(bolt_mocks[0].requests(), 3);
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_requests_in_flight_finish() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Auto", "Auto", &up).await;
        let h1 = tokio::spawn(curl(addr, "/slow/600", H1));
        let h2 = tokio::spawn(curl(addr, "/slow/600", H2));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        gw.stop(std::time::Duration::from_secs(5)).await;
        for answer in [h1.await.expect("h1 task"), h2.await.expect("h2 task")] {
            ok(&answer);
            assert_eq!(answer.status, 200, "{answer:?}");
        }
        let after = curl(addr, "/echo", H1).await;
        assert_ne!(after.exit, 0, "the listener is closed after stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_after_connection_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let clusters = json!([web_cluster("web", &[up.addr()]), web_cluster("empty", &[])]);
        let mut document = http_document("Http1", "Auto", routes(), clusters);
        document["servers"][0]["listeners"][0]["connection_idle_timeout"] = json!("300ms");
        let (gw, addr) = start(&document).await;
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // A request slower than the idle timeout is not cut off.
        conn.write_all(b"GET /slow/500 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Then, idle, the connection is closed by the gateway.
        let started = tokio::time::Instant::now();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            conn.read_to_end(&mut rest),
        )
        .await;
        assert!(closed.is_ok(), "the idle connection is closed");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}

/// The streams of one h2c connection are served inside its task: a slow
/// one must not hold back the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_streams_of_one_connection_are_served_concurrently() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = gateway("Http2", "Http1", &up).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(connection);
        let mut client = client.ready().await.expect("ready");
        let get = |path: &str| {
            http::Request::get(format!("http://{addr}{path}"))
                .body(())
                .expect("a request")
        };
        let (slow, _) = client.send_request(get("/slow/1500"), true).expect("send");
        tokio::pin!(slow);
        let mut client = client.ready().await.expect("ready");
        let (fast, _) = client.send_request(get("/echo"), true).expect("send");
        let fast = fast.await.expect("the fast stream's response");
        assert_eq!(fast.status(), 200, "{fast:?}");
        let slow_done =
            std::future::poll_fn(|cx| std::task::Poll::Ready(slow.as_mut().poll(cx).is_ready()))
                .await;
        assert!(
            !slow_done,
            "the fast stream was answered while the slow one still waited"
        );
        let slow = slow.await.expect("the slow stream's response");
        assert_eq!(slow.status(), 200, "{slow:?}");
        gw.stop(std::time::Duration::from_secs(2)).await;
    })
    .await;
}
