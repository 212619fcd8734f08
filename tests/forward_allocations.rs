//! The forward path allocates nothing per request, framed or HTTP/1.1: a
//! counting global allocator over a run of real load through the gateway
//! (HTTP/1.1: curl over one keep-alive connection).
//!
//! The gateway runs in this test's process; the load generator (`mg-load`,
//! every reply checked against its request) and the upstream (`mg-stub`)
//! are separate processes, so the allocator counts only the gateway (and
//! this test, which waits meanwhile). A warm-up run first lets the
//! connections, buffers and in-flight slots reach their working sizes; the
//! measured run then opens new client connections and pushes a few
//! thousand requests (debug build) or many more.
//!
//! What may still allocate is per buffer or per connection, never per
//! request: a new 8 KiB read buffer (and the first split that shares it)
//! every few dozen requests while the old one is still held by requests
//! in flight, and an upstream connection replaced every
//! `max_request_per_conn` (1024) requests with its buffers and task. Those
//! come to about 0.2 allocations per request; one allocation on every
//! request would make it at least 1. Before the in-flight set reused its
//! futures' memory it was 2.2 (callgrind's call counts, BENCHMARKS.md).
//!
//! Needs `mg-stub` and `mg-load` built next to the test binary:
//! `cargo build --workspace --bins` (scripts/test does it).

#![allow(clippy::print_stdout)] // The figure is printed, for BENCHMARKS.md.

mod common;

use common::process::workspace_binary;
use meshgate_test_support::process::External;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Above this many allocations per request, something allocates on every
/// request again.
const MAX_ALLOCATIONS_PER_REQUEST: f64 = 0.5;

/// The allocator counts the whole process, so the two tests must not
/// overlap: nextest runs each in a process of its own, but `cargo test`
/// runs them on threads of one, where each counted the other's load.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_bolt_request_forwarded_allocates_nothing_of_its_own() {
    alone(forward_allocations("bolt"));
}

#[test]
fn a_dubbo_request_forwarded_allocates_nothing_of_its_own() {
    alone(forward_allocations("dubbo"));
}

#[test]
fn an_http1_request_forwarded_allocates_nothing_of_its_own() {
    alone(http1_forward_allocations());
}

/// Runs `test` on a one-worker runtime of its own while no other test of
/// this file runs.
fn alone(test: impl Future<Output = ()>) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test);
}

async fn forward_allocations(protocol: &str) {
    let mut stub = tokio::process::Command::new(workspace_binary("mg-stub"));
    stub.args(["--protocol", protocol, "--listen", "127.0.0.1:0"]);
    let stub = External::start(format!("mg-stub {protocol}"), stub, Duration::from_secs(10))
        .await
        .expect("mg-stub starts");
    let upstream: SocketAddr = ([127, 0, 0, 1], stub.port()).into();
    let doc = common::document(
        "Auto",
        json!([common::route(".*", "stub")]),
        json!([common::cluster("stub", "LB_ROUNDROBIN", &[upstream])]),
        json!([]),
    );
    let (_gateway, addr) = common::start(&doc).await;

    let warm_up = load(protocol, addr, "1s").await;
    assert!(warm_up["ok"].as_u64() > Some(100), "warm-up: {warm_up}");

    let region = Region::new(GLOBAL);
    let run = load(protocol, addr, "2s").await;
    let allocations = region.change().allocations;

    let ok = run["ok"].as_u64().unwrap_or(0);
    assert_eq!(
        (run["errors"].as_u64(), run["mismatched"].as_u64()),
        (Some(0), Some(0)),
        "every reply is its request's: {run}"
    );
    assert!(ok >= 1000, "too few requests to measure: {run}");
    let per_request = allocations as f64 / ok as f64;
    println!(
        "{protocol}: {allocations} allocations over {ok} requests = {per_request:.3} per request"
    );
    assert!(
        per_request < MAX_ALLOCATIONS_PER_REQUEST,
        "{protocol}: {allocations} allocations over {ok} requests = {per_request:.3} per request"
    );
}

/// One `mg-load` run against `addr` with no warm-up of its own: 8
/// connections × 8 requests in flight for `duration`. Its JSON report.
async fn load(protocol: &str, addr: SocketAddr, duration: &str) -> Value {
    let output = tokio::process::Command::new(workspace_binary("mg-load"))
        .args(["--protocol", protocol, "--target", &addr.to_string()])
        .args(["--connections", "8", "--in-flight", "8", "--warmup", "0s"])
        .args(["--duration", duration, "--timeout", "5s", "--json"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("mg-load stops by itself")
        .expect("mg-load runs");
    assert!(output.status.success(), "mg-load failed: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("mg-load's report {text:?}: {e}"))
}

/// HTTP/1.1 through the gateway's own path, keep-alive: curl fetching many
/// URLs over one connection (its URL ranges), so per-connection costs are
/// spread over the run as the framed tests' are.
async fn http1_forward_allocations() {
    let mut stub = tokio::process::Command::new(workspace_binary("mg-stub"));
    stub.args(["--protocol", "http1", "--listen", "127.0.0.1:0"]);
    let stub = External::start("mg-stub http1", stub, Duration::from_secs(10))
        .await
        .expect("mg-stub starts");
    let upstream: SocketAddr = ([127, 0, 0, 1], stub.port()).into();
    let doc = common::document(
        "Http1",
        json!([{ "match": { "prefix": "/" }, "route": { "cluster_name": "stub" } }]),
        json!([common::cluster("stub", "LB_ROUNDROBIN", &[upstream])]),
        json!([]),
    );
    let (_gateway, addr) = common::start(&doc).await;

    let warm_up = curl_many(addr, 300).await;
    assert_eq!(warm_up, 300, "warm-up answers");

    let region = Region::new(GLOBAL);
    let ok = curl_many(addr, 3000).await;
    let allocations = region.change().allocations;

    assert_eq!(ok, 3000, "every request answered 200");
    let per_request = allocations as f64 / ok as f64;
    println!("http1: {allocations} allocations over {ok} requests = {per_request:.3} per request");
    // The header maps are reused, the authority is shared with the
    // request's head, and the tries' future is pinned in the request's
    // own (it was boxed: one allocation per request).
    assert!(
        per_request < MAX_ALLOCATIONS_PER_REQUEST,
        "http1: {allocations} allocations over {ok} requests = {per_request:.3} per request"
    );
}

/// `count` GETs from one curl over one keep-alive connection; how many
/// were answered 200.
async fn curl_many(addr: SocketAddr, count: usize) -> usize {
    let output = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
        ])
        .arg(format!("http://{addr}/item[1-{count}]"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("curl stops by itself")
        .expect("curl runs");
    assert!(output.status.success(), "curl failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|code| *code == "200")
        .count()
}
