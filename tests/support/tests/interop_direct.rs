//! The real third-party clients against the real servers, with no gateway in
//! between: proves the interop harness itself (scripts, installed libraries,
//! `process` helpers) before the gateway tests rely on it.
//!
//! Needs `scripts/install-test-deps` (scripts/test runs it). Without it these
//! tests FAIL with that instruction; they never skip.

use meshgate_test_support::process::{External, interop, run_client, run_to_completion};
use std::time::Duration;

const CALLS: u64 = 200;
const READY: Duration = Duration::from_secs(20);
const CLIENT: Duration = Duration::from_secs(30);

fn deps() {
    if let Err(e) = interop::check_deps() {
        panic!("{e}");
    }
}

async fn server(script: &str, extra: &[&str]) -> External {
    let mut cmd = interop::node(script);
    cmd.args(["--host", "127.0.0.1", "--port", "0"]).args(extra);
    External::start(script, cmd, READY)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A client command aimed at `target` with the bounded defaults used here.
fn client(mut cmd: tokio::process::Command, target: &External) -> tokio::process::Command {
    cmd.arg("--target").arg(target.addr().to_string()).args([
        "--calls",
        &CALLS.to_string(),
        "--concurrency",
        "8",
        "--timeout-ms",
        "5000",
        "--deadline-ms",
        "20000",
    ]);
    cmd
}

#[tokio::test]
async fn bolt_client_calls_bolt_server() {
    deps();
    let mut server = server("bolt_server.js", &["--name", "bolt-a"]).await;
    assert_eq!(server.ready_field("protocol"), Some("bolt"));
    assert_eq!(server.ready_field("service"), Some(interop::BOLT_SERVICE));

    let mut cmd = client(interop::node("bolt_client.js"), &server);
    cmd.args(["--charset", "unicode", "--max-len", "256"]);
    let run = run_client("bolt_client.js", cmd, CLIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    run.assert_all_ok(CALLS);
    assert_eq!(
        run.summary.library.as_deref(),
        Some("sofa-rpc-node+sofa-bolt-node")
    );

    let mut cmd = client(interop::node("bolt_client.js"), &server);
    cmd.args(["--mode", "whoami"]);
    let run = run_client("bolt_client.js whoami", cmd, CLIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    run.assert_all_ok(CALLS);
    assert_eq!(run.summary.by_reply.get("bolt-a"), Some(&CALLS), "{run}");

    let status = server.kill().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "bolt_server exits 0 on SIGTERM: {status}\n{}",
        server.output().render()
    );
}

#[tokio::test]
async fn python_dubbo_client_calls_dubbo_server() {
    deps();
    let mut server = server("dubbo_server.js", &["--name", "dubbo-a"]).await;
    assert_eq!(server.ready_field("protocol"), Some("dubbo"));

    let mut cmd = client(interop::python("dubbo_client.py"), &server);
    cmd.args(["--charset", "unicode", "--group", "g1"]);
    let run = run_client("dubbo_client.py", cmd, CLIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    run.assert_all_ok(CALLS);
    assert_eq!(run.summary.library.as_deref(), Some("dubbo-ssl-python"));

    let status = server.kill().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "dubbo_server exits 0 on SIGTERM: {status}\n{}",
        server.output().render()
    );
}

#[tokio::test]
async fn node_dubbo_client_calls_dubbo_server() {
    deps();
    let server = server(
        "dubbo_server.js",
        &["--name", "dubbo-b", "--max-delay-ms", "5"],
    )
    .await;
    let mut cmd = client(interop::node("dubbo_client.js"), &server);
    cmd.args(["--charset", "unicode", "--concurrency", "32"]);
    let run = run_client("dubbo_client.js", cmd, CLIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    run.assert_all_ok(CALLS);

    let mut cmd = client(interop::node("dubbo_client.js"), &server);
    cmd.args(["--mode", "whoami"]);
    let run = run_client("dubbo_client.js whoami", cmd, CLIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    run.assert_all_ok(CALLS);
    assert_eq!(run.summary.by_reply.get("dubbo-b"), Some(&CALLS), "{run}");
    // `server` is dropped here: SIGTERM, reaped.
}

/// What the real bolt client reports for a gateway-style "no route" reply
/// (status 6), with and without an error message in the content (README).
#[tokio::test]
async fn bolt_client_reports_status_6() {
    deps();
    let msg = "no route for com.meshgate.test.NoSuchService:1.0";
    let with_msg = server(
        "status_server.js",
        &["--protocol", "bolt", "--status", "6", "--message", msg],
    )
    .await;
    let empty = server(
        "status_server.js",
        &["--protocol", "bolt", "--status", "6", "--empty"],
    )
    .await;
    for (srv, expected) in [
        (
            &with_msg,
            format!("com.alipay.remoting.rpc.exception.RpcServerException: Error: {msg}"),
        ),
        (
            &empty,
            "Server exception when invoke with callback.Please check the server log!".to_owned(),
        ),
    ] {
        let mut cmd = interop::node("error_cases.js");
        cmd.args([
            "--protocol",
            "bolt",
            "--case",
            "unknown-service",
            "--target",
        ])
        .arg(srv.addr().to_string());
        let done = run_to_completion("error_cases.js", cmd, CLIENT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let lines = done.json_lines();
        assert!(
            done.status.success() && lines.len() == 1,
            "{}",
            done.output.render()
        );
        assert_eq!(lines[0]["outcome"], "error");
        assert_eq!(lines[0]["name"], "Error");
        assert_eq!(lines[0]["message"], expected.as_str());
    }
}

/// What both real Dubbo clients report for a gateway-style "no route" reply
/// (status 60 with a message) (README).
#[tokio::test]
async fn dubbo_clients_report_status_60() {
    deps();
    let msg = "no route for com.meshgate.test.NoSuchService:1.0.0";
    let srv = server(
        "status_server.js",
        &["--protocol", "dubbo", "--status", "60", "--message", msg],
    )
    .await;
    let target = srv.addr().to_string();

    let mut node = interop::node("error_cases.js");
    node.args([
        "--protocol",
        "dubbo",
        "--case",
        "unknown-service",
        "--target",
        &target,
    ]);
    let mut py = interop::python("error_cases.py");
    py.args(["--case", "unknown-service", "--target", &target]);
    for (name, cmd, error_name) in [
        ("error_cases.js", node, "Error"),
        ("error_cases.py", py, "DubboResponseException"),
    ] {
        let done = run_to_completion(name, cmd, CLIENT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let lines = done.json_lines();
        assert!(
            done.status.success() && lines.len() == 1,
            "{}",
            done.output.render()
        );
        assert_eq!(lines[0]["outcome"], "error", "{name}");
        assert_eq!(lines[0]["name"], error_name, "{name}");
        assert_eq!(lines[0]["message"], msg, "{name}");
    }
}
