//! Real third-party clients and servers talking *through* the gateway over
//! loopback: sofa-rpc-node (bolt) and dubbo-remoting servers as the
//! upstream hosts, sofa-rpc-node, dubbo-remoting and dubbo-ssl-python
//! clients on the downstream side, an in-process gateway in between.
//!
//! What each test proves:
//! - the bolt client's calls arrive at the real bolt server and every reply
//!   comes back to its own call, through a `bolt` listener, an `Auto`
//!   listener, and a MOSN config in the legacy `"X"` + `sub_protocol` form;
//! - the same for both Dubbo clients (Python and Node) against the Node
//!   Dubbo provider;
//! - bolt and Dubbo clients at the same time on one `Auto` port;
//! - two real servers per cluster share the real traffic (round robin);
//! - the gateway's own error replies (no route, no healthy upstream, an
//!   overload answer) reach each real client as an error carrying MOSN's
//!   message, well within the client's timeout.
//!
//! Needs `scripts/install-test-deps` (scripts/test runs it). Without it
//! these tests FAIL with that instruction; they never skip. Every client
//! run is bounded (`--deadline-ms`, `--timeout-ms`, and a process timeout);
//! every server is stopped by its PID when its `External` is dropped.

mod common;

use meshgate::control::Gateway;
use meshgate_test_support::process::{ClientRun, External, interop, run_client};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a server may take to print its READY line.
const READY: Duration = Duration::from_secs(20);
/// The process bound of one client run (its own deadline is shorter).
const CLIENT: Duration = Duration::from_secs(40);
/// A client's per-call reply timeout.
const TIMEOUT_MS: u64 = 3000;
/// After this a client starts no more calls.
const DEADLINE_MS: u64 = 20_000;

const BOLT_SERVICE: &str = interop::BOLT_SERVICE;
const DUBBO_SERVICE: &str = interop::DUBBO_SERVICE;

/// The class a sofa-bolt-node client names in a server error's message.
const RPC_SERVER_EXCEPTION: &str = "com.alipay.remoting.rpc.exception.RpcServerException";

fn deps() {
    if let Err(e) = interop::check_deps() {
        panic!("{e}");
    }
}

/// A real server (`bolt_server.js` / `dubbo_server.js`) on 127.0.0.1.
async fn server(script: &str, extra: &[&str]) -> External {
    let mut cmd = interop::node(script);
    cmd.args(["--host", "127.0.0.1", "--port", "0"]).args(extra);
    External::start(script, cmd, READY)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The real clients.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// sofa-rpc-node + sofa-bolt-node (`bolt_client.js`).
    Bolt,
    /// sofa-rpc-node + dubbo-remoting (`dubbo_client.js`).
    DubboNode,
    /// dubbo-ssl-python (`dubbo_client.py`).
    DubboPython,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Bolt => "bolt_client.js",
            Client::DubboNode => "dubbo_client.js",
            Client::DubboPython => "dubbo_client.py",
        }
    }

    /// The name the library gives the errors it raises for an error reply.
    fn error_name(self) -> &'static str {
        match self {
            Client::Bolt | Client::DubboNode => "Error",
            Client::DubboPython => "DubboResponseException",
        }
    }

    /// Runs `calls` calls, `concurrency` at a time, against `target`, with
    /// the bounded defaults and `extra` options; returns the summary.
    async fn run(
        self,
        target: SocketAddr,
        calls: u64,
        concurrency: u32,
        extra: &[&str],
    ) -> ClientRun {
        let mut cmd = match self {
            Client::Bolt | Client::DubboNode => interop::node(self.name()),
            Client::DubboPython => interop::python(self.name()),
        };
        cmd.arg("--target").arg(target.to_string()).args([
            "--calls",
            &calls.to_string(),
            "--concurrency",
            &concurrency.to_string(),
            "--timeout-ms",
            &TIMEOUT_MS.to_string(),
            "--deadline-ms",
            &DEADLINE_MS.to_string(),
        ]);
        cmd.args(extra);
        run_client(self.name(), cmd, CLIENT)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `calls` calls one at a time that must all fail with an error
    /// reply: each error is the library's own for an error status, with
    /// exactly `message`, and all of them came back well before one client
    /// timeout (replies, not timeouts).
    async fn assert_errors(self, target: SocketAddr, calls: u64, message: &str) {
        let run = self.run(target, calls, 1, &[]).await;
        let s = &run.summary;
        assert!(
            !run.finished.status.success() && s.ok == 0 && s.failed == calls && s.mismatched == 0,
            "every call fails:\n{run}"
        );
        assert_eq!(s.errors.len() as u64, calls.min(5), "{run}");
        for e in &s.errors {
            assert_eq!(e.kind, "error", "{run}");
            assert_eq!(e.name.as_deref(), Some(self.error_name()), "{run}");
            assert_eq!(e.message.as_deref(), Some(message), "{run}");
        }
        assert!(
            s.elapsed_ms < TIMEOUT_MS,
            "{calls} error replies took {} ms, more than one client timeout ({TIMEOUT_MS} ms): \
             some waited for a timeout\n{run}",
            s.elapsed_ms
        );
        eprintln!(
            "{}: {calls} calls failed as expected in {} ms: {} {message:?}",
            self.name(),
            s.elapsed_ms,
            self.error_name()
        );
    }
}

/// Three calls from each real client at the same time, all of which must
/// fail at once with `message`: as the library's own error text for the
/// bolt client (`RpcServerException: <message>`), as is for the Dubbo
/// clients.
async fn every_client_errors(port: SocketAddr, message: &str) {
    let bolt_message = format!("{RPC_SERVER_EXCEPTION}: {message}");
    tokio::join!(
        Client::Bolt.assert_errors(port, 3, &bolt_message),
        Client::DubboPython.assert_errors(port, 3, message),
        Client::DubboNode.assert_errors(port, 3, message),
    );
}

/// Asserts every call ok and prints the count and time.
#[track_caller]
fn all_ok(run: &ClientRun, calls: u64, via: &str) {
    run.assert_all_ok(calls);
    eprintln!(
        "{} via {via}: ok {}/{calls} in {} ms",
        run.finished.name, run.summary.ok, run.summary.elapsed_ms
    );
}

/// `doc` with one more listener `name` on 127.0.0.1:0 speaking `protocol`,
/// otherwise a copy of the first listener (same router, same filters).
fn add_listener(doc: &mut Value, name: &str, protocol: &str) {
    let listeners = doc["servers"][0]["listeners"]
        .as_array_mut()
        .expect("the document has listeners");
    let mut copy = listeners[0].clone();
    copy["name"] = json!(name);
    copy["filter_chains"][0]["filters"][0]["config"]["downstream_protocol"] = json!(protocol);
    listeners.push(copy);
}

async fn listener(gateway: &Gateway, name: &str) -> SocketAddr {
    gateway
        .listener_addr(name)
        .await
        .unwrap_or_else(|| panic!("listener {name} bound"))
}

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local addr")
    // Dropped here: connecting to it is refused.
}

/// 300 calls, 16 at a time, with Unicode payloads up to 256 characters,
/// from the real bolt client to the real bolt server through a `bolt`
/// listener and, at the same time, through an `Auto` listener of the same
/// gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_client_to_bolt_server_through_bolt_and_auto_listeners() {
    deps();
    let upstream = server(
        "bolt_server.js",
        &["--name", "bolt-a", "--max-delay-ms", "3"],
    )
    .await;
    let mut doc = common::document(
        "bolt",
        json!([common::route(BOLT_SERVICE, "bolt_cluster")]),
        json!([common::cluster(
            "bolt_cluster",
            "LB_ROUNDROBIN",
            &[upstream.addr()]
        )]),
        json!([]),
    );
    add_listener(&mut doc, "auto", "Auto");
    let (gateway, bolt_port) = common::start(&doc).await;
    let auto_port = listener(&gateway, "auto").await;

    let opts = ["--charset", "unicode", "--max-len", "256"];
    let (via_bolt, via_auto) = tokio::join!(
        Client::Bolt.run(bolt_port, 300, 16, &opts),
        Client::Bolt.run(auto_port, 300, 16, &opts),
    );
    all_ok(&via_bolt, 300, "bolt listener");
    all_ok(&via_auto, 300, "Auto listener");
}

/// A MOSN config written as MOSN users of the xprotocol era have it: the
/// legacy `"downstream_protocol": "X"` and `"upstream_protocol": "X"` with
/// `"extend_config": {"sub_protocol": "bolt"}`, a route timeout, a host
/// weight, `max_request_per_conn` and `conn_buffer_limit_bytes`. The real
/// bolt client's 300 calls (16 at once) reach the real server through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_client_through_a_legacy_x_sub_protocol_config() {
    deps();
    let upstream = server("bolt_server.js", &["--name", "bolt-x"]).await;
    let doc = json!({
        "servers": [{
            "default_log_level": "INFO",
            "graceful_timeout": "5s",
            "routers": [{
                "router_config_name": "bolt_router",
                "virtual_hosts": [{
                    "name": "bolt_host",
                    "domains": ["*"],
                    "routers": [{
                        "match": { "headers": [{ "name": "service", "value": BOLT_SERVICE }] },
                        "route": { "cluster_name": "bolt_server", "timeout": "3s" }
                    }]
                }]
            }],
            "listeners": [{
                "name": "rpc",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{
                    "filters": [{
                        "type": "proxy",
                        "config": {
                            "downstream_protocol": "X",
                            "upstream_protocol": "X",
                            "router_config_name": "bolt_router",
                            "extend_config": { "sub_protocol": "bolt" }
                        }
                    }]
                }]
            }]
        }],
        "cluster_manager": {
            "clusters": [{
                "name": "bolt_server",
                "type": "SIMPLE",
                "lb_type": "LB_RANDOM",
                "max_request_per_conn": 1024,
                "conn_buffer_limit_bytes": 32768,
                "connect_timeout": "1s",
                "hosts": [{ "address": upstream.addr().to_string(), "weight": 100 }]
            }]
        }
    });
    let (_gateway, port) = common::start(&doc).await;
    let run = Client::Bolt.run(port, 300, 16, &[]).await;
    all_ok(&run, 300, "X/sub_protocol bolt listener");
}

/// Both real Dubbo clients against the real Dubbo provider through a
/// `dubbo` listener, at the same time: dubbo-ssl-python (200 calls, 8
/// threads) and sofa-rpc-node + dubbo-remoting (300 calls, 16 at once on
/// one connection), Unicode payloads, a `group` attachment on the Python
/// calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo_clients_to_dubbo_server_through_the_gateway() {
    deps();
    let upstream = server(
        "dubbo_server.js",
        &["--name", "dubbo-a", "--max-delay-ms", "3"],
    )
    .await;
    let doc = common::document(
        "dubbo",
        json!([common::route(DUBBO_SERVICE, "dubbo_cluster")]),
        json!([common::cluster(
            "dubbo_cluster",
            "LB_ROUNDROBIN",
            &[upstream.addr()]
        )]),
        json!([]),
    );
    let (_gateway, port) = common::start(&doc).await;

    let (python, node) = tokio::join!(
        Client::DubboPython.run(port, 200, 8, &["--charset", "unicode", "--group", "g1"]),
        Client::DubboNode.run(port, 300, 16, &["--charset", "unicode", "--max-len", "256"]),
    );
    all_ok(&python, 200, "dubbo listener");
    all_ok(&node, 300, "dubbo listener");
    assert_eq!(python.summary.library.as_deref(), Some("dubbo-ssl-python"));
}

/// One `Auto` port, three real clients at the same time: the bolt client
/// (300 calls, 16 at once), the Python Dubbo client (200 calls, 8 threads)
/// and the Node Dubbo client (200 calls, 8 at once). Each protocol is
/// detected per connection and routed to its own real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_and_dubbo_clients_at_once_on_one_auto_port() {
    deps();
    let (bolt_upstream, dubbo_upstream) = tokio::join!(
        server("bolt_server.js", &["--name", "bolt-auto"]),
        server("dubbo_server.js", &["--name", "dubbo-auto"]),
    );
    let doc = common::document(
        "Auto",
        json!([
            common::route(BOLT_SERVICE, "bolt_cluster"),
            common::route(DUBBO_SERVICE, "dubbo_cluster"),
        ]),
        json!([
            common::cluster("bolt_cluster", "LB_ROUNDROBIN", &[bolt_upstream.addr()]),
            common::cluster("dubbo_cluster", "LB_ROUNDROBIN", &[dubbo_upstream.addr()]),
        ]),
        json!([]),
    );
    let (_gateway, port) = common::start(&doc).await;

    let (bolt, python, node) = tokio::join!(
        Client::Bolt.run(port, 300, 16, &["--charset", "unicode"]),
        Client::DubboPython.run(port, 200, 8, &["--charset", "unicode"]),
        Client::DubboNode.run(port, 200, 8, &[]),
    );
    all_ok(&bolt, 300, "Auto port");
    all_ok(&python, 200, "Auto port");
    all_ok(&node, 200, "Auto port");
}

/// Two real servers per cluster (bolt-a/bolt-b, dubbo-a/dubbo-b), round
/// robin: `whoami` calls through one `Auto` port are answered by both hosts
/// of their cluster, half each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_real_calls_over_two_real_servers() {
    deps();
    let (bolt_a, bolt_b, dubbo_a, dubbo_b) = tokio::join!(
        server("bolt_server.js", &["--name", "bolt-a"]),
        server("bolt_server.js", &["--name", "bolt-b"]),
        server("dubbo_server.js", &["--name", "dubbo-a"]),
        server("dubbo_server.js", &["--name", "dubbo-b"]),
    );
    let doc = common::document(
        "Auto",
        json!([
            common::route(BOLT_SERVICE, "bolt_cluster"),
            common::route(DUBBO_SERVICE, "dubbo_cluster"),
        ]),
        json!([
            common::cluster(
                "bolt_cluster",
                "LB_ROUNDROBIN",
                &[bolt_a.addr(), bolt_b.addr()]
            ),
            common::cluster(
                "dubbo_cluster",
                "LB_ROUNDROBIN",
                &[dubbo_a.addr(), dubbo_b.addr()]
            ),
        ]),
        json!([]),
    );
    let (_gateway, port) = common::start(&doc).await;

    const CALLS: u64 = 100;
    let whoami = ["--mode", "whoami"];
    // The Dubbo clients take turns: sharing the cluster's round robin at
    // the same time, either could see any split.
    let (bolt, (python, node)) = tokio::join!(Client::Bolt.run(port, CALLS, 4, &whoami), async {
        let python = Client::DubboPython.run(port, CALLS, 4, &whoami).await;
        (python, Client::DubboNode.run(port, CALLS, 4, &whoami).await)
    },);
    for (run, a, b) in [
        (&bolt, "bolt-a", "bolt-b"),
        (&python, "dubbo-a", "dubbo-b"),
        (&node, "dubbo-a", "dubbo-b"),
    ] {
        all_ok(run, CALLS, "Auto port, 2 hosts");
        let by = &run.summary.by_reply;
        eprintln!("{}: replies by server {by:?}", run.finished.name);
        assert_eq!(
            (by.len(), by.get(a), by.get(b)),
            (2, Some(&(CALLS / 2)), Some(&(CALLS / 2))),
            "round robin over {a} and {b}: half each\n{run}"
        );
    }
}

/// No route: the gateway routes only another service. The real bolt
/// client gets an error showing MOSN's `404|router unavailable` (bolt
/// status 6 with an RpcServerException), both Dubbo clients an error with
/// that message (status 60); each call is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_an_error_reply_real_clients_report() {
    deps();
    let nowhere = closed_port();
    let doc = common::document(
        "Auto",
        json!([common::route("com.meshgate.test.OtherService:1.0", "other")]),
        json!([common::cluster("other", "LB_ROUNDROBIN", &[nowhere])]),
        json!([]),
    );
    let (_gateway, port) = common::start(&doc).await;
    let message = "404|router unavailable";
    every_client_errors(port, message).await;
}

/// No healthy upstream: the only host is a closed port. Every call is
/// answered with an error (bolt status 6, Dubbo 60, MOSN's `502|no health
/// upstream`) well within the client's timeout, never left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_upstream_is_an_error_reply_not_a_hang() {
    deps();
    let nowhere = closed_port();
    let doc = common::document(
        "Auto",
        json!([common::route(".*", "dead")]),
        json!([common::cluster("dead", "LB_ROUNDROBIN", &[nowhere])]),
        json!([]),
    );
    let (_gateway, port) = common::start(&doc).await;
    let message = "502|no health upstream";
    every_client_errors(port, message).await;
}

/// An overload answer (here a `fault` filter aborting with MOSN's 503):
/// the bolt client sees status 4 with the message, and both Dubbo clients
/// an error with it. dubbo-ssl-python has no entry for Dubbo's status 100,
/// so the gateway answers overload with 40 BAD_REQUEST as MOSN does; with
/// 100 the Python client would only time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_reply_reaches_every_real_client() {
    deps();
    let nowhere = closed_port();
    let doc = common::document(
        "Auto",
        json!([common::route(".*", "busy")]),
        json!([common::cluster("busy", "LB_ROUNDROBIN", &[nowhere])]),
        json!([{ "type": "fault", "config": { "abort": { "status": 503, "percentage": 100 } } }]),
    );
    let (_gateway, port) = common::start(&doc).await;
    let message = "503|fault injected";
    every_client_errors(port, message).await;
}
