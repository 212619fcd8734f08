//! The HTTP and gRPC examples (`examples/http/`, `examples/grpc/`) run as
//! `examples/README.md` tells: each config file is loaded as it is, only its
//! addresses are moved to free 127.0.0.1 ports (listeners on port 0, hosts
//! at the servers actually started, admin on port 0, the pid file in a
//! temporary directory), and the real `meshgate` binary serves it. So the
//! examples cannot rot: a key the gateway stops understanding, a route that
//! no longer matches or a protocol pair that breaks fails here.

mod common;
#[path = "common/http.rs"]
#[allow(dead_code)] // This file uses curl only.
mod http_common;

use common::bounded;
use common::process::{GatewayProcess, TempDir};
use http_common::curl;
use meshgate_test_support::process::{External, interop};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The example file at `path`, with its addresses moved: every listener to
/// 127.0.0.1:0, every cluster host to `upstream`, the admin API to port 0,
/// the pid file into `dir`. Written into `dir`; returns the new file.
fn relocated(path: &str, upstream: SocketAddr, dir: &TempDir) -> PathBuf {
    let text = std::fs::read_to_string(repo(path)).expect("the example exists");
    let mut doc: Value = serde_json::from_str(&text).expect("the example is JSON");
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name")
        .to_owned();
    doc["pid"] = json!(dir.path(&format!("{name}.pid")));
    let mut listeners = 0;
    for server in doc["servers"].as_array_mut().expect("servers[]") {
        for listener in server["listeners"].as_array_mut().expect("listeners[]") {
            listener["address"] = json!("127.0.0.1:0");
            listeners += 1;
        }
    }
    assert_eq!(listeners, 1, "{path}: one listener, as the README says");
    let mut hosts = 0;
    for cluster in doc["cluster_manager"]["clusters"]
        .as_array_mut()
        .expect("clusters[]")
    {
        for host in cluster["hosts"].as_array_mut().expect("hosts[]") {
            host["address"] = json!(upstream.to_string());
            hosts += 1;
        }
    }
    assert_eq!(hosts, 1, "{path}: one upstream host, as the README says");
    let socket = &mut doc["admin"]["address"]["socket_address"];
    assert!(socket.is_object(), "{path}: an admin address");
    socket["address"] = json!("127.0.0.1");
    socket["port_value"] = json!(0);
    let file = dir.path(&name);
    std::fs::write(&file, doc.to_string()).expect("write the relocated config");
    file
}

/// Starts the gateway on `config` (off the runtime's threads: it waits).
async fn gateway(config: PathBuf) -> GatewayProcess {
    tokio::task::spawn_blocking(move || GatewayProcess::start(&config))
        .await
        .expect("the gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_example_serves_through_both_gateways_in_series() {
    bounded(async {
        let dir = TempDir::new("example-http");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(repo("examples/http/server.py")).arg("0");
        let mut server = External::start("examples/http/server.py", cmd, Duration::from_secs(20))
            .await
            .expect("the example's HTTP server starts");
        let server_addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
        let server_side = gateway(relocated(
            "examples/http/server_config.json",
            server_addr,
            &dir,
        ))
        .await;
        let client_side = gateway(relocated(
            "examples/http/client_config.json",
            server_side.addr,
            &dir,
        ))
        .await;

        let got = curl(client_side.addr, "/hello?name=meshgate", &[]).await;
        assert_eq!(got.status, 200, "{got:?}\n{}", client_side.log());
        assert_eq!(got.protocol, "HTTP/1.1");
        let echo = got.echo();
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["path"], "/hello?name=meshgate");
        assert_eq!(
            echo["headers"]["x-meshgate-client-side"], "clientListener",
            "the client-side route added its header: {echo}"
        );
        assert_eq!(
            echo["headers"]["x-meshgate-server-side"], "serverListener",
            "the server-side route added its header: {echo}"
        );
        assert_eq!(got.header("x-meshgate-client-side"), Some("clientListener"));
        assert_eq!(got.header("x-meshgate-server-side"), Some("serverListener"));

        let posted = curl(
            client_side.addr,
            "/upload",
            &["-X", "POST", "--data-binary", "0123456789"],
        )
        .await;
        assert_eq!(posted.status, 200, "{posted:?}");
        let echo = posted.echo();
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["body_len"], 10, "the body crossed both gateways");
        assert_eq!(echo["headers"]["x-meshgate-server-side"], "serverListener");
        let _ = server.kill().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_example_serves_every_call_kind() {
    bounded(async {
        assert!(
            interop::venv_python().exists(),
            "tests/interop/.venv is missing: run scripts/install-test-deps"
        );
        let dir = TempDir::new("example-grpc");
        let mut cmd = interop::python("grpc_echo.py");
        cmd.args(["server", "0"]);
        let mut server = External::start("grpc_echo server", cmd, Duration::from_secs(20))
            .await
            .expect("the grpcio server starts");
        let upstream = SocketAddr::from(([127, 0, 0, 1], server.port()));
        let gw = gateway(relocated("examples/grpc/config.json", upstream, &dir)).await;

        let results = interop::python_json(
            "grpc_echo.py",
            &["client", &gw.addr.to_string()],
            Duration::from_secs(40),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}
{}",
                gw.log()
            )
        });
        assert_eq!(results["unary"], json!({"ok": "echo:hi"}));
        assert_eq!(
            results["server_stream"],
            json!({"ok": ["s-0", "s-1", "s-2"]})
        );
        assert_eq!(results["client_stream"], json!({"ok": "a+b+c"}));
        assert_eq!(results["bidi"], json!({"ok": ["bidi:x", "bidi:y"]}));
        assert_eq!(
            results["error"],
            json!({"code": "INVALID_ARGUMENT", "details": "bad input"})
        );
        assert_eq!(results["deadline"]["code"], "DEADLINE_EXCEEDED");
        assert_eq!(results["no_route"]["code"], "UNIMPLEMENTED", "{results}");
        assert_eq!(results["after"], json!({"ok": "echo:again"}));
        let _ = server.kill().await;
    })
    .await;
}
