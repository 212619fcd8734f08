//! Stream filters and access logs for HTTP requests, through the real
//! gateway binary with curl (HTTP/1.1 and `--http2-prior-knowledge`) and a
//! hyper upstream: `fault` aborts with the configured status (a gRPC
//! request gets a `grpc-status`, not an error page), `fault` delays,
//! `header_mutation` changes what the upstream and the client see (and
//! routing sees its request changes), and every request, local replies
//! included, is one access-log line whose fields parse back into what was
//! sent. An in-process gateway with a hand-written filter checks that
//! `RematchRoute` and `RechooseHost` are honoured and bounded for HTTP as
//! they are for RPC.

mod common;
#[path = "common/http.rs"]
mod http_common;

use common::process::{GatewayProcess, TempDir};
use common::{bounded, cluster, wait_for_lines};
use http_common::{CurlAnswer, HttpUpstream, curl};
use meshgate::config;
use meshgate::control::Gateway;
use meshgate::proxy::{FilterCx, Flow, Stage, StreamFilter};
use meshgate_test_support::process::interop;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// curl's flags for each downstream version.
const H1: &[&str] = &[];
const H2: &[&str] = &["--http2-prior-knowledge"];

/// The fields the access log test reads, tab-separated.
const FIELDS: [&str; 13] = [
    "request_header_x-test-id",
    "protocol",
    "request_header_x-mosn-method",
    "request_header_x-mosn-path",
    "response_code",
    "response_flag",
    "bytes_received",
    "bytes_sent",
    "upstream_host",
    "upstream_cluster",
    "duration",
    "response_header_x-upstream",
    "request_id",
];

fn log_format() -> String {
    FIELDS
        .iter()
        .map(|f| format!("%{f}%"))
        .collect::<Vec<_>>()
        .join("\t")
}

/// The listener's stream filters: `header_mutation` (before routing) and
/// two `fault`s chosen by the `x-fault` header: abort with 429, delay
/// 300 ms.
fn stream_filters() -> Value {
    json!([
        {"type": "header_mutation", "config": {
            "request_headers_to_add": [
                {"header": {"key": "x-filter-added", "value": "yes"}},
                {"header": {"key": "x-filter-peer", "value": "%downstream_remote_ip%"}}
            ],
            "request_headers_to_remove": ["x-secret-in"],
            "response_headers_to_add": [{"header": {"key": "x-filter-resp", "value": "on"}}],
            "response_headers_to_remove": ["x-upstream-secret"]
        }},
        {"type": "fault", "config": {
            "abort": {"status": 429, "percentage": 100},
            "upstream_cluster": "web",
            "headers": [{"name": "x-fault", "value": "abort"}]
        }},
        {"type": "fault", "config": {
            "delay": {"fixed_delay": "300ms", "percentage": 100},
            "headers": [{"name": "x-fault", "value": "delay"}]
        }}
    ])
}

/// One `Auto` listener `web` (HTTP/1 and h2c) with [`stream_filters`] and
/// an access log at `log`. `/by-filter` routes only when the header
/// `header_mutation` adds is there; `/nowhere` routes nowhere.
fn document(log: &Path, upstream: SocketAddr) -> Value {
    json!({
        "servers": [{
            "graceful_timeout": "5s",
            "routers": [{
                "router_config_name": "web",
                "virtual_hosts": [{"name": "any", "domains": ["*"], "routers": [
                    {"match": {"prefix": "/by-filter", "headers": [{"name": "x-filter-added", "value": "yes"}]},
                     "route": {"cluster_name": "web"}},
                    {"match": {"prefix": "/api/"}, "route": {"cluster_name": "web"}},
                    {"match": {"prefix": "/bytes/"}, "route": {"cluster_name": "web"}},
                    {"match": {"prefix": "/test.Echo/"}, "route": {"cluster_name": "web"}}
                ]}]
            }],
            "listeners": [{
                "name": "web",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{"filters": [{
                    "type": "proxy",
                    "config": {"downstream_protocol": "Auto", "upstream_protocol": "Auto", "router_config_name": "web"}
                }]}],
                "stream_filters": stream_filters(),
                "access_logs": [{"log_path": log.to_str().expect("a UTF-8 path"), "log_format": log_format()}]
            }]
        }],
        "cluster_manager": {"clusters": [cluster("web", "LB_ROUNDROBIN", &[upstream])]}
    })
}

/// The gateway binary on [`document`], with its temporary directory.
fn start_gateway(name: &str, upstream: &HttpUpstream) -> (GatewayProcess, TempDir) {
    start_with(name, |log| document(log, upstream.addr()))
}

/// The gateway binary on the document `doc` makes for its access log's
/// path.
fn start_with(name: &str, doc: impl FnOnce(&Path) -> Value) -> (GatewayProcess, TempDir) {
    let dir = TempDir::new(name);
    let config_file = dir.path("meshgate.json");
    let doc = doc(&dir.path("access.log"));
    std::fs::write(&config_file, doc.to_string()).expect("write config");
    (GatewayProcess::start(&config_file), dir)
}

fn ok(answer: &CurlAnswer) {
    assert_eq!(
        answer.exit,
        0,
        "curl failed ({}): {answer:?}",
        answer.stderr.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_abort_answers_the_configured_status_and_grpc_gets_a_grpc_status() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gateway, _dir) = start_gateway("http-fault-abort", &up);
        for flags in [H1, H2] {
            let aborted = curl(
                gateway.addr,
                "/api/x",
                &[flags, &["-H", "x-fault: abort"]].concat(),
            )
            .await;
            ok(&aborted);
            assert_eq!(aborted.status, 429, "{aborted:?}");
            assert_eq!(aborted.body.trim(), "fault injected", "{aborted:?}");
            let passed = curl(gateway.addr, "/api/x", flags).await;
            ok(&passed);
            assert_eq!(passed.status, 200, "{passed:?}");
        }
        assert_eq!(
            up.requests(),
            2,
            "aborted requests never reach the upstream"
        );

        // A gRPC call (h2c, application/grpc) aborted by the same filter:
        // a trailers-only answer with a gRPC status, not a 429 page.
        let grpc = curl(
            gateway.addr,
            "/test.Echo/Unary",
            &[
                "--http2-prior-knowledge",
                "-X",
                "POST",
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "-H",
                "x-fault: abort",
                "--data-binary",
                "",
            ],
        )
        .await;
        ok(&grpc);
        assert_eq!(grpc.status, 200, "{grpc:?}");
        assert_eq!(grpc.header("content-type"), Some("application/grpc"));
        // 429 is "rate limited": RESOURCE_EXHAUSTED.
        assert_eq!(grpc.header("grpc-status"), Some("8"), "{grpc:?}");
        assert_eq!(grpc.header("grpc-message"), Some("fault injected"));
        assert!(grpc.body.is_empty(), "{grpc:?}");
        assert_eq!(up.requests(), 2);

        // The same through grpcio, the real gRPC library: a status it
        // reads as the call's outcome.
        assert!(
            interop::venv_python().exists(),
            "tests/interop/.venv is missing: run scripts/install-test-deps"
        );
        let outcome = interop::python_json(
            "grpc_echo.py",
            &["call", &gateway.addr.to_string(), "x-fault=abort"],
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            outcome,
            json!({"code": "RESOURCE_EXHAUSTED", "details": "fault injected"})
        );
        assert_eq!(up.requests(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_delay_holds_the_request_for_the_configured_time() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gateway, _dir) = start_gateway("http-fault-delay", &up);
        for flags in [H1, H2] {
            let started = Instant::now();
            let delayed = curl(
                gateway.addr,
                "/api/slow",
                &[flags, &["-H", "x-fault: delay"]].concat(),
            )
            .await;
            let took = started.elapsed();
            ok(&delayed);
            assert_eq!(delayed.status, 200, "{delayed:?}");
            assert_eq!(delayed.echo()["uri"], "/api/slow", "then forwarded");
            assert!(took >= Duration::from_millis(300), "took {took:?}");
        }
        assert_eq!(up.requests(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_mutation_changes_what_upstream_and_client_see() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gateway, _dir) = start_gateway("http-header-mutation", &up);
        for flags in [H1, H2] {
            // `/by-filter` routes only on the header the filter adds: the
            // filter ran before routing.
            let answer = curl(
                gateway.addr,
                "/by-filter",
                &[flags, &["-H", "x-secret-in: 1", "-H", "x-kept: 2"]].concat(),
            )
            .await;
            ok(&answer);
            assert_eq!(answer.status, 200, "{answer:?}");
            let echo = answer.echo();
            assert_eq!(echo["headers"]["x-filter-added"], "yes", "{echo}");
            assert_eq!(echo["headers"]["x-filter-peer"], "127.0.0.1", "{echo}");
            assert!(echo["headers"].get("x-secret-in").is_none(), "{echo}");
            assert_eq!(echo["headers"]["x-kept"], "2");
            assert_eq!(answer.header("x-filter-resp"), Some("on"), "{answer:?}");
            assert_eq!(answer.header("x-upstream"), Some("web"));
            assert_eq!(answer.header("x-upstream-secret"), None, "{answer:?}");
        }
    })
    .await;
}

/// A listener with an access log and no stream filters: the proxy keeps
/// the chosen cluster and host for the log line alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_without_filters_logs_the_upstream_it_chose() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gateway, dir) = start_with("http-log-no-filters", |log| {
            let mut doc = document(log, up.addr());
            let listener = &mut doc["servers"][0]["listeners"][0];
            listener
                .as_object_mut()
                .expect("a listener object")
                .remove("stream_filters");
            doc
        });
        let answer = curl(gateway.addr, "/api/plain", &["-H", "x-test-id: plain"]).await;
        ok(&answer);
        assert_eq!(answer.status, 200);
        let text = wait_for_lines(&dir.path("access.log"), 1).await;
        let line = &parse(&text)["plain"];
        assert_eq!(line["response_code"], "200");
        assert_eq!(line["upstream_host"], up.addr().to_string(), "{text}");
        assert_eq!(line["upstream_cluster"], "web", "{text}");
    })
    .await;
}

/// The log's lines as field maps, keyed by the `x-test-id` request header.
fn parse(text: &str) -> BTreeMap<String, BTreeMap<&'static str, String>> {
    text.lines()
        .map(|line| {
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), FIELDS.len(), "line {line:?}");
            let fields: BTreeMap<&'static str, String> = FIELDS
                .iter()
                .zip(values)
                .map(|(k, v)| (*k, v.to_owned()))
                .collect();
            (fields["request_header_x-test-id"].clone(), fields)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_request_is_one_log_line_with_what_was_sent() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gateway, dir) = start_gateway("http-access-log", &up);
        let log = dir.path("access.log");
        let upload = "u".repeat(3000);
        let posted = curl(
            gateway.addr,
            "/api/upload?q=1",
            &[
                "-X",
                "POST",
                "-H",
                "x-test-id: h1-post",
                "--data-binary",
                &upload,
            ],
        )
        .await;
        ok(&posted);
        assert_eq!(posted.status, 200);
        let download = curl(
            gateway.addr,
            "/bytes/70000",
            &[H2, &["-H", "x-test-id: h2-get"]].concat(),
        )
        .await;
        ok(&download);
        assert_eq!(download.status, 200);
        assert_eq!(download.body.len(), 70_000);
        let lost = curl(gateway.addr, "/nowhere", &["-H", "x-test-id: no-route"]).await;
        ok(&lost);
        assert_eq!(lost.status, 404);
        let aborted = curl(
            gateway.addr,
            "/api/x",
            &[H2, &["-H", "x-test-id: aborted", "-H", "x-fault: abort"]].concat(),
        )
        .await;
        ok(&aborted);
        assert_eq!(aborted.status, 429);

        let text = wait_for_lines(&log, 4).await;
        let lines = parse(&text);
        assert_eq!(
            lines.keys().map(String::as_str).collect::<Vec<_>>(),
            ["aborted", "h1-post", "h2-get", "no-route"],
            "one line per request:\n{text}"
        );
        let upstream = up.addr().to_string();

        let post = &lines["h1-post"];
        assert_eq!(post["protocol"], "Http1");
        assert_eq!(post["request_header_x-mosn-method"], "POST");
        assert_eq!(post["request_header_x-mosn-path"], "/api/upload");
        assert_eq!(post["response_code"], "200");
        assert_eq!(post["response_flag"], "-");
        assert_eq!(post["bytes_received"], "3000");
        assert_eq!(post["bytes_sent"], posted.body.len().to_string());
        assert_eq!(post["upstream_host"], upstream);
        assert_eq!(post["upstream_cluster"], "web");
        assert_eq!(post["response_header_x-upstream"], "web");
        assert_eq!(post["request_id"], "-", "HTTP has no request id");
        assert!(post["duration"].ends_with('s'), "{post:?}");

        let get = &lines["h2-get"];
        assert_eq!(get["protocol"], "Http2");
        assert_eq!(get["request_header_x-mosn-method"], "GET");
        assert_eq!(get["request_header_x-mosn-path"], "/bytes/70000");
        assert_eq!(get["response_code"], "200");
        assert_eq!(get["bytes_received"], "0");
        assert_eq!(get["bytes_sent"], "70000");
        assert_eq!(get["upstream_host"], upstream);
        assert_eq!(get["upstream_cluster"], "web");

        let none = &lines["no-route"];
        assert_eq!(none["protocol"], "Http1");
        assert_eq!(none["response_code"], "404");
        assert_eq!(none["response_flag"], "NoRouteFound");
        assert_eq!(none["upstream_host"], "-");
        assert_eq!(none["upstream_cluster"], "-");
        assert_eq!(none["bytes_sent"], lost.body.len().to_string());
        assert_eq!(none["response_header_x-upstream"], "-");

        let abort = &lines["aborted"];
        assert_eq!(abort["protocol"], "Http2");
        assert_eq!(abort["response_code"], "429");
        // A local reply's flag names its reason; 429 is "rate limited".
        assert_eq!(abort["response_flag"], "RateLimited");
        assert_eq!(abort["upstream_cluster"], "web", "aborted after routing");
        assert_eq!(abort["upstream_host"], "-", "before a host was chosen");
    })
    .await;
}

// ---- RematchRoute / RechooseHost (in process, a hand-written filter) ----

/// Asks for another host once per request (after the first choice), and
/// another route on every request whose `x-loop` header is set.
#[derive(Debug, Default)]
struct Redo {
    rechosen: AtomicU32,
    rematched: AtomicU32,
}

#[derive(Debug)]
struct AtStage(Arc<Redo>, Stage);

impl StreamFilter for AtStage {
    fn name(&self) -> &'static str {
        "redo"
    }

    fn stage(&self) -> Stage {
        self.1
    }

    fn on_request(&self, cx: &mut FilterCx<'_>, _resumed: bool) -> Flow {
        match self.1 {
            Stage::AfterRoute if cx.request.header("x-loop").is_some() => {
                self.0.rematched.fetch_add(1, Ordering::Relaxed);
                Flow::RematchRoute
            }
            Stage::AfterChooseHost if cx.attempts == 1 => {
                self.0.rechosen.fetch_add(1, Ordering::Relaxed);
                Flow::RechooseHost
            }
            _ => Flow::Continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rematch_and_rechoose_are_honoured_and_bounded() {
    bounded(async {
        let (first, second) = (HttpUpstream::start("first").await, HttpUpstream::start("second").await);
        let doc = json!({
            "servers": [{
                "routers": [{"router_config_name": "web", "virtual_hosts": [{"name": "any", "domains": ["*"],
                    "routers": [{"match": {"prefix": "/"}, "route": {"cluster_name": "web"}}]}]}],
                "listeners": [{
                    "name": "rpc", "address": "127.0.0.1:0", "bind_port": true,
                    "filter_chains": [{"filters": [{"type": "proxy", "config": {
                        "downstream_protocol": "Auto", "upstream_protocol": "Auto", "router_config_name": "web"}}]}]
                }]
            }],
            "cluster_manager": {"clusters": [cluster("web", "LB_ROUNDROBIN", &[first.addr(), second.addr()])]}
        });
        let mut config = config::load_str(&doc.to_string(), None).expect("config");
        let redo = Arc::new(Redo::default());
        config.listeners[0].filters = vec![
            Arc::new(AtStage(Arc::clone(&redo), Stage::AfterRoute)),
            Arc::new(AtStage(Arc::clone(&redo), Stage::AfterChooseHost)),
        ];
        let gateway = Gateway::start(config).await.expect("gateway starts");
        let addr = gateway.listener_addr("rpc").await.expect("bound");

        // Rechoose: every request's first choice is set aside and the
        // next one answers. Round robin alone alternates between the two
        // hosts; with each request taking two steps of it, every request
        // lands on the same host.
        let mut answered_by = Vec::new();
        for flags in [H1, H2, H1, H2] {
            let answer = curl(addr, "/x", flags).await;
            ok(&answer);
            assert_eq!(answer.status, 200, "{answer:?}");
            answered_by.push(answer.header("x-upstream").unwrap_or_default().to_owned());
        }
        assert_eq!(redo.rechosen.load(Ordering::Relaxed), 4);
        assert!(answered_by.iter().all(|name| *name == answered_by[0]), "{answered_by:?}");
        let mut counts = [first.requests(), second.requests()];
        counts.sort_unstable();
        assert_eq!(counts, [0, 4], "one upstream request each, all on one host");

        // Rematch forever: bounded (3 redos), then a 500.
        for flags in [H1, H2] {
            let before = redo.rematched.load(Ordering::Relaxed);
            let answer = curl(addr, "/x", &[flags, &["-H", "x-loop: 1"]].concat()).await;
            ok(&answer);
            assert_eq!(answer.status, 500, "{answer:?}");
            assert_eq!(answer.body.trim(), "stream filters asked to redo routing too often");
            assert_eq!(redo.rematched.load(Ordering::Relaxed) - before, 4, "first match + 3 redos");
        }
        assert_eq!(first.requests() + second.requests(), 4);
        gateway.stop(Duration::from_secs(2)).await;
    })
    .await;
}
