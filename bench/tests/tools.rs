//! The harness's own tools work: mg-load against mg-stub (bolt, Dubbo as
//! RpcResults, idle connections), and mg-stub's HTTP/1.1 and HTTP/2 (gRPC
//! unary) answers. Short runs; the full harness (bench/run.sh) is not part
//! of the test suite.

use bytes::Bytes;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A started mg-stub, killed (by its own handle) when dropped.
struct Stub {
    child: Child,
    port: u16,
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stub(args: &[&str]) -> Stub {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mg-stub"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mg-stub starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("READY line");
    let port = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Stub { child, port }
}

/// Runs mg-load to completion (bounded by its own flags) and returns stdout.
fn mg_load(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mg-load"))
        .args(args)
        .output()
        .expect("mg-load runs");
    assert!(
        out.status.success(),
        "mg-load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn load_report(protocol: &str, stub_args: &[&str], load_args: &[&str]) -> serde_json::Value {
    let stub = stub(stub_args);
    let target = format!("127.0.0.1:{}", stub.port);
    let mut args = vec![
        "--protocol",
        protocol,
        "--target",
        &target,
        "--connections",
        "2",
        "--in-flight",
        "4",
        "--warmup",
        "0s",
        "--duration",
        "1s",
        "--json",
    ];
    args.extend_from_slice(load_args);
    serde_json::from_str(mg_load(&args).trim()).expect("one JSON report")
}

#[test]
fn mg_load_checks_every_bolt_reply_from_mg_stub() {
    let report = load_report("bolt", &["--protocol", "bolt"], &[]);
    assert!(report["ok"].as_u64().expect("ok") > 100, "{report}");
    assert_eq!(report["mismatched"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["p99_us"].as_f64().expect("p99") > 0.0);
}

#[test]
fn dubbo_rpc_results_are_what_mg_load_expects_and_plain_echoes_are_not() {
    let report = load_report(
        "dubbo",
        &["--protocol", "dubbo", "--dubbo-rpc-result"],
        &["--dubbo-rpc-result"],
    );
    assert!(report["ok"].as_u64().expect("ok") > 100, "{report}");
    assert_eq!(report["mismatched"], 0, "{report}");
    // Without the flag on the load side, every reply's body differs.
    let stub = stub(&["--protocol", "dubbo", "--dubbo-rpc-result"]);
    let out = Command::new(env!("CARGO_BIN_EXE_mg-load"))
        .args([
            "--protocol",
            "dubbo",
            "--target",
            &format!("127.0.0.1:{}", stub.port),
        ])
        .args([
            "--connections",
            "1",
            "--in-flight",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "0.2s",
        ])
        .output()
        .expect("mg-load runs");
    assert!(
        !out.status.success(),
        "mismatched replies must fail the run"
    );
}

#[test]
fn idle_connections_are_held_and_counted() {
    let stub = stub(&["--protocol", "bolt"]);
    let out = mg_load(&[
        "--protocol",
        "bolt",
        "--target",
        &format!("127.0.0.1:{}", stub.port),
        "--idle-connections",
        "50",
        "--duration",
        "0.3s",
    ]);
    let opened_in_ms = out
        .split_once("READY n=50 open_ms=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|ms| ms.parse::<u64>().ok());
    assert!(
        opened_in_ms.is_some(),
        "READY with the time opening took: {out}"
    );
    assert!(out.contains("HELD n=50 closed_by_peer=0"), "{out}");
}

#[test]
fn http1_stub_answers_and_echoes_bodies_on_one_keep_alive_connection() {
    let stub = stub(&["--protocol", "http1"]);
    let mut conn = TcpStream::connect(("127.0.0.1", stub.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nPOST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde")
        .expect("write");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    for _ in 0..20 {
        let text = String::from_utf8_lossy(&seen);
        if text.matches("HTTP/1.1 200 OK").count() == 2 && text.ends_with("abcde") {
            break;
        }
        let n = conn.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {text}");
        seen.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("hello from mg-stub"), "{text}");
    assert!(text.ends_with("abcde"), "{text}");
}

#[tokio::test]
async fn h2_stub_answers_grpc_unary_with_the_message_and_status_0() {
    let stub = stub(&["--protocol", "h2"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", stub.port))
        .await
        .expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let request = http::Request::post("http://bench/bench.Echo/Unary")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x03\x0a\x01z");
    let (response, mut send) = client.send_request(request, false).expect("send");
    send.send_data(message.clone(), true).expect("data");
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    let mut body = response.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(got, message);
    let trailers = body.trailers().await.expect("trailers").expect("some");
    assert_eq!(trailers["grpc-status"], "0");
}
