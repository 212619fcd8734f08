//! `process`: READY parsing, timeouts, killing and client summaries, checked
//! with `sh` one-liners standing in for the real servers and clients.

use meshgate_test_support::process::{External, ProcessError, run_client, run_to_completion};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    cmd
}

/// True while a process with this PID exists (zombies included).
fn alive(pid: u32) -> bool {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid fits i32"))
        .expect("pid is not 0");
    rustix::process::test_kill_process(pid).is_ok()
}

const SHORT: Duration = Duration::from_millis(400);
const READY_WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn ready_line_gives_port_and_fields() {
    let mut ext = External::start(
        "dummy",
        sh("echo starting; echo 'warming up' >&2; echo 'READY port=4242 protocol=bolt name=x'; exec sleep 30"),
        READY_WAIT,
    )
    .await
    .expect("dummy becomes ready");
    assert_eq!(ext.port(), 4242);
    assert_eq!(ext.addr().to_string(), "127.0.0.1:4242");
    assert_eq!(ext.ready_field("protocol"), Some("bolt"));
    assert_eq!(ext.ready_field("name"), Some("x"));
    assert_eq!(ext.ready_field("nope"), None);
    assert_eq!(ext.ready_line(), "READY port=4242 protocol=bolt name=x");
    assert!(ext.output().stdout().contains("starting\n"));
    assert!(ext.try_status().is_none(), "still running");

    let pid = ext.pid();
    assert!(alive(pid));
    let started = Instant::now();
    let status = ext.kill().await.expect("kill");
    assert_eq!(status.signal(), Some(15), "ended by SIGTERM: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no grace period needed"
    );
    assert!(!alive(pid), "pid {pid} is gone");
    assert_eq!(
        ext.kill().await.expect("second kill").signal(),
        Some(15),
        "idempotent"
    );
    assert!(ext.output().stderr().contains("warming up"));
}

#[tokio::test]
async fn no_ready_line_times_out_with_output_and_kills() {
    let started = Instant::now();
    let err = External::start(
        "silent",
        sh("echo hello; echo oops >&2; exec sleep 30"),
        SHORT,
    )
    .await
    .expect_err("never ready");
    assert!(started.elapsed() < Duration::from_secs(3));
    let ProcessError::NotReady {
        pid,
        timeout,
        ref output,
        ..
    } = err
    else {
        panic!("expected NotReady, got {err}");
    };
    assert_eq!(timeout, SHORT);
    assert!(
        output.contains("hello") && output.contains("oops"),
        "{output}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("silent") && msg.contains("no READY line") && msg.contains("oops"),
        "{msg}"
    );
    assert!(!alive(pid), "the silent process was stopped");
}

#[tokio::test]
async fn exiting_before_ready_is_reported_with_status_and_output() {
    let err = External::start(
        "quitter",
        sh("echo bye; echo 'cannot bind' >&2; exit 7"),
        READY_WAIT,
    )
    .await
    .expect_err("exits");
    let msg = err.to_string();
    assert!(matches!(err, ProcessError::ExitedEarly { .. }), "{msg}");
    assert!(
        msg.contains("exit status: 7") && msg.contains("bye") && msg.contains("cannot bind"),
        "{msg}"
    );
}

#[tokio::test]
async fn ready_line_without_port_is_an_error() {
    for line in [
        "READY",
        "READY port=",
        "READY port=abc",
        "READY port=0",
        "READY port=70000",
    ] {
        let err = External::start(
            "noport",
            sh(&format!("echo '{line}'; exec sleep 30")),
            READY_WAIT,
        )
        .await
        .expect_err("bad READY line");
        let ProcessError::BadReadyLine {
            pid, line: ref got, ..
        } = err
        else {
            panic!("expected BadReadyLine for {line:?}, got {err}");
        };
        assert_eq!(got, line);
        assert!(!alive(pid));
    }
}

#[tokio::test]
async fn missing_program_is_a_spawn_error_with_a_hint() {
    let err = External::start(
        "ghost",
        Command::new("/nonexistent/meshgate-no-such-program"),
        SHORT,
    )
    .await
    .expect_err("cannot spawn");
    let msg = err.to_string();
    assert!(
        matches!(err, ProcessError::Spawn { .. }) && msg.contains("install"),
        "{msg}"
    );
}

#[tokio::test]
async fn sigterm_is_handled_by_a_well_behaved_child() {
    let mut ext = External::start(
        "polite",
        sh("trap 'echo closing; exit 0' TERM; echo READY port=1; while :; do sleep 0.05; done"),
        READY_WAIT,
    )
    .await
    .expect("ready");
    let status = ext.kill().await.expect("kill");
    assert!(status.success(), "exited 0 on SIGTERM: {status}");
    assert!(
        ext.output().stdout().contains("closing"),
        "output read to the end"
    );
}

#[tokio::test]
async fn a_child_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let mut ext = External::start(
        "stubborn",
        sh("trap '' TERM; echo READY port=1; exec sleep 30"),
        READY_WAIT,
    )
    .await
    .expect("ready");
    ext.set_grace(Duration::from_millis(300));
    let started = Instant::now();
    let status = ext.kill().await.expect("kill");
    let took = started.elapsed();
    assert_eq!(status.signal(), Some(9), "SIGKILL: {status}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!alive(ext.pid()));
}

#[tokio::test]
async fn drop_stops_the_child() {
    let ext = External::start(
        "dropped",
        sh("echo READY port=5; exec sleep 30"),
        READY_WAIT,
    )
    .await
    .expect("ready");
    let pid = ext.pid();
    assert!(alive(pid));
    drop(ext);
    assert!(!alive(pid), "drop sent SIGTERM and reaped it");

    let mut stubborn = External::start(
        "stubborn-dropped",
        sh("trap '' TERM; echo READY port=5; exec sleep 30"),
        READY_WAIT,
    )
    .await
    .expect("ready");
    stubborn.set_grace(Duration::from_millis(200));
    let pid = stubborn.pid();
    drop(stubborn);
    assert!(!alive(pid), "drop fell back to SIGKILL");
}

#[tokio::test]
async fn a_child_that_already_exited_is_not_signalled() {
    let mut ext = External::start("brief", sh("echo READY port=9; exit 0"), READY_WAIT)
        .await
        .expect("ready");
    let until = Instant::now() + Duration::from_secs(3);
    while ext.try_status().is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = ext.try_status().expect("it exited by itself");
    assert!(status.success());
    assert_eq!(ext.kill().await.expect("kill after exit").code(), Some(0));
}

#[tokio::test]
async fn client_summary_is_parsed_from_the_last_json_line() {
    let run = run_client(
        "fake-client",
        sh(r#"echo noise; echo '{"not":"this"}' >&2; echo '{"ok":3,"failed":0,"mismatched":0,"not_started":0,"calls":3,"elapsed_ms":12,"errors":[],"protocol":"bolt","library":"x"}'"#),
        READY_WAIT,
    )
    .await
    .expect("summary");
    assert_eq!(run.summary.ok, 3);
    assert_eq!(run.summary.protocol.as_deref(), Some("bolt"));
    assert!(run.all_ok(3));
    assert!(!run.all_ok(4));
    run.assert_all_ok(3);
}

#[tokio::test]
async fn failed_calls_come_back_as_a_summary_not_an_error() {
    let run = run_client(
        "failing-client",
        sh(r#"echo '{"ok":1,"failed":1,"mismatched":1,"calls":3,"errors":[{"seq":1,"kind":"error","name":"Error","message":"no route","resultCode":"01"},{"seq":2,"kind":"mismatch","expected":"a","got":"b"}],"by_reply":{"s1":1}}'; exit 1"#),
        READY_WAIT,
    )
    .await
    .expect("summary");
    assert_eq!(run.finished.status.code(), Some(1));
    assert!(!run.all_ok(3));
    let e = &run.summary.errors[0];
    assert_eq!(
        (e.kind.as_str(), e.seq, e.message.as_deref()),
        ("error", Some(1), Some("no route"))
    );
    assert_eq!(
        e.extra.get("resultCode").and_then(|v| v.as_str()),
        Some("01")
    );
    assert_eq!(run.summary.errors[1].got, Some(serde_json::json!("b")));
    assert_eq!(run.summary.by_reply.get("s1"), Some(&1));
    let shown = run.to_string();
    assert!(
        shown.contains("ok 1 / 3")
            && shown.contains("no route")
            && shown.contains("expected \"a\" got \"b\""),
        "{shown}"
    );
}

#[tokio::test]
async fn a_client_without_summary_is_an_error() {
    let err = run_client("mute", sh("echo hi; echo trouble >&2; exit 2"), READY_WAIT)
        .await
        .expect_err("no summary");
    let msg = err.to_string();
    assert!(
        matches!(err, ProcessError::NoSummary { .. }) && msg.contains("trouble"),
        "{msg}"
    );
    let err = run_client("garbled", sh("echo '{\"ok\": \"many\"}'"), READY_WAIT)
        .await
        .expect_err("bad summary");
    assert!(matches!(err, ProcessError::NoSummary { .. }), "{err}");
}

#[tokio::test]
async fn a_client_past_its_timeout_is_stopped() {
    let started = Instant::now();
    let err = run_to_completion("sleepy", sh("echo working; exec sleep 30"), SHORT)
        .await
        .expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(3));
    let ProcessError::Timeout {
        pid, ref output, ..
    } = err
    else {
        panic!("expected Timeout, got {err}");
    };
    assert!(output.contains("working"));
    assert!(!alive(pid));
}

#[tokio::test]
async fn json_lines_lists_every_object_line() {
    let done = run_to_completion(
        "lines",
        sh(r#"echo '{"case":"a"}'; echo text; echo '{"case":"b"}'; echo '[1]'"#),
        READY_WAIT,
    )
    .await
    .expect("runs");
    assert!(done.status.success());
    let cases: Vec<_> = done
        .json_lines()
        .iter()
        .map(|m| m["case"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(cases, ["a", "b"]);
}
