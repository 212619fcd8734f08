//! The real binary's lifecycle: `meshgate start -c FILE` serves, `meshgate
//! reload -c FILE` applies an edited file (and refuses an invalid one with
//! exit code 1, leaving the gateway as it was), `meshgate stop -c FILE`
//! drains and the process exits 0 with its pid file removed; SIGTERM does
//! the same. Both with one runtime thread (`processor: 1`: tokio's
//! single-threaded scheduler, the process's only thread) and with two.
//!
//! The gateway listens on port 0 and the test learns the port from its
//! `listening ... addr=` log line on stderr. Every process started here is
//! killed by its pid when a test fails (`GatewayProcess`'s `Drop`).

mod common;

use bytes::BytesMut;
use common::process::{GatewayProcess, TempDir};
use common::{bolt, cluster, document, route, wire_status};
use meshgate_codecs::Frame;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::{MockUpstream, echo_response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_meshgate");

/// Runs `meshgate <command> -c config` to completion.
fn meshgate(command: &str, config: &Path) -> Output {
    Command::new(BIN)
        .args([command, "-c"])
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .expect("run meshgate")
}

/// An echo mock whose answers are prefixed with `tag:`.
fn tagged(tag: &'static str, delay: Duration) -> MockUpstream {
    MockUpstream::builder(bolt())
        .delay(delay, delay)
        .responder(move |req: &Frame| {
            let mut resp = echo_response(req);
            let mut body = BytesMut::from(format!("{tag}:").as_bytes());
            body.extend_from_slice(req.body());
            resp.set_body(body.freeze());
            Some(resp)
        })
        .start()
}

/// A config with a pid file, one bolt listener on port 0 routing every
/// service to `to`, clusters `a` and `b`, and `processor` runtime threads.
fn config(pid: &Path, to: &str, (a, b): (&MockUpstream, &MockUpstream), processor: u32) -> Value {
    let mut doc = document(
        "bolt",
        json!([route(".*", to)]),
        json!([
            cluster("a", "LB_ROUNDROBIN", &[a.addr()]),
            cluster("b", "LB_ROUNDROBIN", &[b.addr()]),
        ]),
        json!([]),
    );
    doc["pid"] = json!(pid.to_str().expect("a UTF-8 temp path"));
    doc["servers"][0]["default_log_level"] = json!("INFO");
    doc["servers"][0]["processor"] = json!(processor);
    doc
}

/// How many threads process `pid` runs.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the gateway's /proc entry")
        .count()
}

fn write(path: &Path, doc: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(doc).expect("JSON")).expect("write config");
}

/// Which mock answered one call on a new connection.
async fn answered_by(addr: SocketAddr, id: u64) -> String {
    let mut client = FramedClient::connect(addr, bolt()).await.expect("connect");
    let reply = client
        .call(&bolt_request(id, "ping"))
        .await
        .expect("a reply");
    assert_eq!(wire_status(&reply), Some(0), "id {id}");
    let body = String::from_utf8(reply.body().to_vec()).expect("text");
    let (tag, rest) = body.split_once(':').expect("a tagged echo");
    assert_eq!(rest, "ping");
    tag.to_owned()
}

fn pid_in(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reload_and_stop_through_the_cli_on_one_thread() {
    start_reload_and_stop_through_the_cli(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reload_and_stop_through_the_cli_on_two_threads() {
    start_reload_and_stop_through_the_cli(2).await;
}

#[expect(
    clippy::unwrap_used,
    reason = "the body of the two tests above, which may unwrap"
)]
async fn start_reload_and_stop_through_the_cli(processor: u32) {
    let dir = TempDir::new("reload");
    let (pid_file, config_file) = (dir.path("run/meshgate.pid"), dir.path("meshgate.json"));
    let a = tagged("a", Duration::ZERO);
    let b = tagged("b", Duration::ZERO);
    write(&config_file, &config(&pid_file, "a", (&a, &b), processor));

    let mut gateway = GatewayProcess::start(&config_file);
    assert_eq!(
        pid_in(&pid_file),
        Some(gateway.pid()),
        "the pid file names the gateway"
    );
    // One runtime thread is the process's only thread; more runtime
    // threads come with tokio's multi-threaded scheduler beside the main one.
    let threads = threads_of(gateway.pid());
    match processor {
        1 => assert_eq!(threads, 1, "processor 1"),
        n => assert!(threads > n as usize, "processor {n}: {threads} threads"),
    }
    for id in 0..5 {
        assert_eq!(answered_by(gateway.addr, id).await, "a");
    }

    // Edit the file to route to `b`, then `meshgate reload`.
    write(&config_file, &config(&pid_file, "b", (&a, &b), processor));
    let out = meshgate("reload", &config_file);
    assert!(out.status.success(), "reload: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered_by(gateway.addr, 10).await != "b" {
        assert!(
            Instant::now() < deadline,
            "the new route never took effect:\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in 11..16 {
        assert_eq!(answered_by(gateway.addr, id).await, "b");
    }
    assert!(
        gateway.wait_logged("configuration reloaded", Duration::from_secs(5)),
        "{}",
        gateway.log()
    );

    // An invalid file: exit code 1, nothing changes.
    std::fs::write(&config_file, "{ \"servers\": [ { \"listeners\": ").unwrap();
    let out = meshgate("reload", &config_file);
    assert_eq!(out.status.code(), Some(1), "an invalid reload: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not reloaded"),
        "{out:?}"
    );
    let mut bad_lb = config(&pid_file, "a", (&a, &b), processor);
    bad_lb["cluster_manager"]["clusters"][0]["lb_type"] = json!("LB_NOPE");
    write(&config_file, &bad_lb);
    let out = meshgate("reload", &config_file);
    assert_eq!(out.status.code(), Some(1), "an invalid reload: {out:?}");
    assert!(gateway.is_running(), "still running");
    for id in 20..25 {
        assert_eq!(
            answered_by(gateway.addr, id).await,
            "b",
            "the running config is kept"
        );
    }

    // `meshgate stop` with a request in flight: it is answered, the
    // process exits 0 and removes its pid file.
    write(&config_file, &config(&pid_file, "b", (&a, &b), processor));
    b.set_delay(Duration::from_millis(500), Duration::from_millis(500));
    let seen = b.requests();
    let mut client = FramedClient::connect(gateway.addr, bolt()).await.unwrap();
    client.send(&bolt_request(30, "last")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.requests() < seen + 1 {
        assert!(Instant::now() < deadline, "the request never reached b");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // `stop` waits for the process to be gone, so the gateway must be
    // reaped meanwhile (a zombie child still "exists").
    let stop = {
        let config_file = config_file.clone();
        tokio::task::spawn_blocking(move || meshgate("stop", &config_file))
    };
    let reply = tokio::time::timeout(Duration::from_secs(5), client.recv())
        .await
        .expect("the in-flight request is answered")
        .unwrap()
        .expect("answered before the close");
    assert_eq!(reply.request_id, 30);
    assert_eq!(reply.body(), b"b:last");
    let exit = gateway.wait_exit(Duration::from_secs(10));
    assert!(
        exit.success(),
        "meshgate exits 0: {exit}\n{}",
        gateway.log()
    );
    let out = stop.await.unwrap();
    assert!(out.status.success(), "stop: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{out:?}"
    );
    assert!(!pid_file.exists(), "the pid file is removed");
    assert!(gateway.wait_logged(
        "stopping: draining in-flight requests",
        Duration::from_secs(5)
    ));
    assert!(
        tokio::net::TcpStream::connect(gateway.addr).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() {
    let dir = TempDir::new("sigterm");
    let (pid_file, config_file) = (dir.path("meshgate.pid"), dir.path("meshgate.json"));
    let a = tagged("a", Duration::from_millis(400));
    let b = tagged("b", Duration::ZERO);
    write(&config_file, &config(&pid_file, "a", (&a, &b), 1));
    let mut gateway = GatewayProcess::start(&config_file);

    let mut client = FramedClient::connect(gateway.addr, bolt()).await.unwrap();
    for id in 0..3 {
        client.send(&bolt_request(id, "slow")).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.requests() < 3 {
        assert!(Instant::now() < deadline, "the requests never reached a");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(gateway.pid()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal the gateway");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = tokio::time::timeout(Duration::from_secs(5), client.recv())
            .await
            .expect("in-flight requests are answered")
            .unwrap()
            .expect("answered before the close");
        assert_eq!(reply.body(), b"a:slow");
        ids.push(reply.request_id);
    }
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2]);
    let exit = gateway.wait_exit(Duration::from_secs(10));
    assert!(
        exit.success(),
        "meshgate exits 0 on SIGTERM: {exit}\n{}",
        gateway.log()
    );
    assert!(!pid_file.exists(), "the pid file is removed");
}
