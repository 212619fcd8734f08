//! gRPC through the gateway with the real grpcio library
//! (`tests/interop/grpc_echo.py`, installed by `scripts/install-test-deps`):
//! all four call types on an h2c listener, a deadline, an upstream error
//! status passed through, and a method no route matches answered
//! UNIMPLEMENTED by the gateway as a trailers-only response.

mod common;

use common::{bounded, start};
use meshgate_test_support::process::{External, interop};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_calls_of_every_kind_through_the_gateway() {
    bounded(async {
        assert!(
            interop::venv_python().exists(),
            "tests/interop/.venv is missing: run scripts/install-test-deps"
        );
        let mut cmd = interop::python("grpc_echo.py");
        cmd.arg("server");
        let mut server = External::start("grpc_echo server", cmd, Duration::from_secs(20))
            .await
            .expect("the grpcio server starts");
        let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], server.port()));
        let document = json!({
            "servers": [{
                "routers": [{
                    "router_config_name": "grpc",
                    "virtual_hosts": [{"name": "any", "domains": ["*"], "routers": [
                        {"match": {"prefix": "/test.Echo/"}, "route": {"cluster_name": "echo"}}
                    ]}]
                }],
                "listeners": [{
                    "name": "rpc",
                    "address": "127.0.0.1:0",
                    "bind_port": true,
                    "filter_chains": [{ "filters": [{
                        "type": "proxy",
                        "config": {"downstream_protocol": "Http2", "upstream_protocol": "Http2", "router_config_name": "grpc"}
                    }]}]
                }]
            }],
            "cluster_manager": {"clusters": [common::cluster("echo", "LB_ROUNDROBIN", &[upstream])]}
        });
        let (gw, addr) = start(&document).await;
        let results = interop::python_json(
            "grpc_echo.py",
            &["client", &addr.to_string()],
            Duration::from_secs(40),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(results["unary"], json!({"ok": "echo:hi"}));
        assert_eq!(results["server_stream"], json!({"ok": ["s-0", "s-1", "s-2"]}));
        assert_eq!(results["client_stream"], json!({"ok": "a+b+c"}));
        assert_eq!(results["bidi"], json!({"ok": ["bidi:x", "bidi:y"]}));
        assert_eq!(
            results["error"],
            json!({"code": "INVALID_ARGUMENT", "details": "bad input"}),
            "the upstream's status and message pass through"
        );
        assert_eq!(results["deadline"]["code"], "DEADLINE_EXCEEDED");
        assert_eq!(results["no_route"]["code"], "UNIMPLEMENTED", "{results}");
        assert_eq!(results["no_route"]["details"], "router unavailable");
        assert_eq!(results["after"], json!({"ok": "echo:again"}));
        gw.stop(Duration::from_secs(2)).await;
        let _ = server.kill().await;
    })
    .await;
}
