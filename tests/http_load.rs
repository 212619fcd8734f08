//! Short, bounded load runs of real third-party tools through the gateway
//! binary: h2load (Debian `nghttp2-client`) over h2c for plain GETs and for
//! gRPC unary calls, and wrk (Debian `wrk`) over HTTP/1.1. Every response
//! must be 2xx and the counts nonzero; the tools' own summaries are parsed.
//! `scripts/install-test-deps` installs both; a missing tool fails the test.
//!
//! Needs the binary: `cargo build --workspace --bins` first.

mod common;
#[path = "common/stream.rs"]
mod stream;

use common::bounded;
use common::process::TempDir;
use std::time::Duration;
use stream::{StreamUpstream, document, start_gateway};

/// Runs `tool` with `args` (at most 60 s) and returns its stdout; fails
/// with a clear message when the tool is not installed.
async fn run_tool(tool: &str, package: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(tool)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .unwrap_or_else(|_| panic!("{tool} did not finish in 60 s"))
        .unwrap_or_else(|e| {
            panic!(
                "{tool} cannot run ({e}): install Debian's {package} package (scripts/install-test-deps does)"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{tool} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// h2load's summary lines.
#[derive(Debug, PartialEq, Eq)]
struct H2loadSummary {
    done: u64,
    succeeded: u64,
    failed: u64,
    errored: u64,
    timeout: u64,
    status_2xx: u64,
    status_other: u64,
}

/// The number before `label` in a comma-separated summary line, e.g.
/// `42` for `done` in `requests: 50 total, 50 started, 42 done`.
fn count(line: &str, label: &str) -> u64 {
    line.split(',')
        .find_map(|part| {
            let mut words = part.split_whitespace().rev();
            (words.next()? == label).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no `{label}` count in {line:?}"))
}

fn parse_h2load(output: &str) -> H2loadSummary {
    let line = |prefix: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in h2load's output:\n{output}"))
    };
    let requests = line("requests:");
    let codes = line("status codes:");
    H2loadSummary {
        done: count(requests, "done"),
        succeeded: count(requests, "succeeded"),
        failed: count(requests, "failed"),
        errored: count(requests, "errored"),
        timeout: count(requests, "timeout"),
        status_2xx: count(codes, "2xx"),
        status_other: count(codes, "3xx") + count(codes, "4xx") + count(codes, "5xx"),
    }
}

const H2LOAD_REQUESTS: u64 = 2000;

fn assert_all_2xx(summary: &H2loadSummary, output: &str) {
    assert_eq!(
        summary,
        &H2loadSummary {
            done: H2LOAD_REQUESTS,
            succeeded: H2LOAD_REQUESTS,
            failed: 0,
            errored: 0,
            timeout: 0,
            status_2xx: H2LOAD_REQUESTS,
            status_other: 0,
        },
        "h2load's output:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2load_over_h2c_and_grpc_unary_all_2xx() {
    bounded(async {
        let upstream = StreamUpstream::start().await;
        let dir = TempDir::new("h2load");
        let gateway = start_gateway(&dir, &document("Http2", upstream.addr()));
        let n = H2LOAD_REQUESTS.to_string();
        let url = format!("http://{}/download/512", gateway.addr);
        let output = run_tool(
            "h2load",
            "nghttp2-client",
            &["-n", &n, "-c", "4", "-m", "8", "-T", "10", &url],
        )
        .await;
        let summary = parse_h2load(&output);
        assert_all_2xx(&summary, &output);
        println!("h2load GET over h2c: {summary:?}");

        // gRPC unary: one length-prefixed protobuf message per request.
        let message = dir.path("grpc-request.bin");
        std::fs::write(
            &message,
            [0, 0, 0, 0, 7, 0x0a, 0x05, b'h', b'e', b'l', b'l', b'o'],
        )
        .expect("write the message");
        let message = message.to_str().expect("a UTF-8 path").to_owned();
        let url = format!("http://{}/grpc/test.Echo/Unary", gateway.addr);
        let output = run_tool(
            "h2load",
            "nghttp2-client",
            &[
                "-n",
                &n,
                "-c",
                "4",
                "-m",
                "8",
                "-T",
                "10",
                "-d",
                &message,
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                &url,
            ],
        )
        .await;
        let summary = parse_h2load(&output);
        assert_all_2xx(&summary, &output);
        assert_eq!(
            upstream.grpc_ok(),
            H2LOAD_REQUESTS,
            "every call reached the upstream as a whole gRPC message"
        );
        println!("h2load gRPC unary: {summary:?}");
    })
    .await;
}

/// wrk's summary: requests done, and the error lines it prints only when
/// there were errors.
#[derive(Debug)]
struct WrkSummary {
    requests: u64,
    non_2xx_3xx: u64,
    socket_errors: Option<String>,
}

fn parse_wrk(output: &str) -> WrkSummary {
    let requests = output
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(' ')?;
            rest.starts_with("requests in ").then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no `N requests in` line in wrk's output:\n{output}"));
    let non_2xx_3xx = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(0, |n| n.trim().parse().expect("a count"));
    let socket_errors = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(str::to_owned);
    WrkSummary {
        requests,
        non_2xx_3xx,
        socket_errors,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrk_over_http1_all_2xx() {
    bounded(async {
        let upstream = StreamUpstream::start().await;
        let dir = TempDir::new("wrk");
        let gateway = start_gateway(&dir, &document("Http1", upstream.addr()));
        let url = format!("http://{}/download/512", gateway.addr);
        let output = run_tool(
            "wrk",
            "wrk",
            &["-t", "2", "-c", "8", "-d", "2s", "--timeout", "5s", &url],
        )
        .await;
        let summary = parse_wrk(&output);
        println!("wrk over HTTP/1.1: {summary:?}");
        assert!(summary.requests > 0, "wrk's output:\n{output}");
        assert_eq!(summary.non_2xx_3xx, 0, "wrk's output:\n{output}");
        assert_eq!(summary.socket_errors, None, "wrk's output:\n{output}");
    })
    .await;
}

#[test]
fn tool_summaries_parse() {
    let h2load = "finished in 1.2s, 1600.00 req/s, 1MB/s\n\
        requests: 2000 total, 2000 started, 1999 done, 1998 succeeded, 2 failed, 1 errored, 0 timeout\n\
        status codes: 1998 2xx, 0 3xx, 1 4xx, 0 5xx\n";
    assert_eq!(
        parse_h2load(h2load),
        H2loadSummary {
            done: 1999,
            succeeded: 1998,
            failed: 2,
            errored: 1,
            timeout: 0,
            status_2xx: 1998,
            status_other: 1,
        }
    );
    let wrk = "Running 2s test @ http://127.0.0.1:1/\n  2 threads and 8 connections\n\
        \x20 12345 requests in 2.00s, 1.00MB read\n\
        \x20 Socket errors: connect 0, read 1, write 0, timeout 0\n\
        \x20 Non-2xx or 3xx responses: 7\nRequests/sec:   6172.50\n";
    let summary = parse_wrk(wrk);
    assert_eq!(summary.requests, 12345);
    assert_eq!(summary.non_2xx_3xx, 7);
    assert_eq!(
        summary.socket_errors.as_deref(),
        Some(" connect 0, read 1, write 0, timeout 0")
    );
}
