//! Running a client to completion and reading its JSON summary.

use super::ProcessError;
use super::capture::Output;
use super::external::{drain, spawn, terminate};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Command;
use tokio::time::Instant;

/// A process that ran to its end.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The label given to it.
    pub name: String,
    /// How it ended.
    pub status: ExitStatus,
    /// What it wrote.
    pub output: Output,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// Every stdout line that is a JSON object, in order (the error_cases
    /// scripts print one per case; the clients print one summary).
    pub fn json_lines(&self) -> Vec<Map<String, Value>> {
        self.output
            .stdout()
            .lines()
            .filter_map(|l| match serde_json::from_str::<Value>(l.trim()) {
                Ok(Value::Object(m)) => Some(m),
                _ => None,
            })
            .collect()
    }
}

/// The summary line every interop client prints:
/// `{"ok", "failed", "mismatched", "not_started", "calls", "elapsed_ms", "errors", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ClientSummary {
    /// Calls whose reply matched the request.
    pub ok: u64,
    /// Calls that failed (error, timeout, never started), `not_started` included.
    pub failed: u64,
    /// Calls answered with the wrong reply (a crossed or corrupted reply).
    pub mismatched: u64,
    /// Calls never started because the client's deadline passed.
    #[serde(default)]
    pub not_started: u64,
    /// Calls asked for.
    #[serde(default)]
    pub calls: u64,
    /// How long the calls took, in the client's own measure.
    #[serde(default)]
    pub elapsed_ms: u64,
    /// The first few failures.
    #[serde(default)]
    pub errors: Vec<SummaryError>,
    /// `--mode whoami`: replies counted per server name.
    #[serde(default)]
    pub by_reply: BTreeMap<String, u64>,
    /// `bolt` or `dubbo`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The client library, e.g. `sofa-rpc-node+sofa-bolt-node`, `dubbo-ssl-python`.
    #[serde(default)]
    pub library: Option<String>,
    /// The client's hard deadline fired (it exited 3 mid-run).
    #[serde(default)]
    pub hard_deadline: bool,
}

/// One failure in a [`ClientSummary`].
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct SummaryError {
    /// `error`, `mismatch`, `deadline` or `setup`.
    #[serde(default)]
    pub kind: String,
    /// The call number, when the failure belongs to one call.
    #[serde(default)]
    pub seq: Option<u64>,
    /// The error's class/name as the library reports it (`Error`, `DubboResponseException`...).
    #[serde(default)]
    pub name: Option<String>,
    /// The error message as the library reports it.
    #[serde(default)]
    pub message: Option<String>,
    /// For a mismatch: the reply expected.
    #[serde(default)]
    pub expected: Option<Value>,
    /// For a mismatch: the reply received.
    #[serde(default)]
    pub got: Option<Value>,
    /// Anything else the library attached (`code`, `resultCode`...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A client run: how the process ended and its parsed summary.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// The process.
    pub finished: Finished,
    /// Its summary line.
    pub summary: ClientSummary,
}

impl ClientRun {
    /// Exit status 0 and every one of `calls` calls ok.
    pub fn all_ok(&self, calls: u64) -> bool {
        let s = &self.summary;
        self.finished.status.success() && s.ok == calls && s.failed == 0 && s.mismatched == 0
    }

    /// Panics with the summary and the client's output unless [`ClientRun::all_ok`].
    #[track_caller]
    pub fn assert_all_ok(&self, calls: u64) {
        assert!(self.all_ok(calls), "expected {calls} ok calls:\n{self}");
    }
}

impl fmt::Display for ClientRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "{} ({}): ok {} / {} calls, failed {}, mismatched {}, not started {}, {} ms",
            self.finished.name,
            self.finished.status,
            s.ok,
            s.calls,
            s.failed,
            s.mismatched,
            s.not_started,
            s.elapsed_ms
        )?;
        for e in &s.errors {
            writeln!(
                f,
                "  {} #{}: {} {} {}",
                e.kind,
                e.seq.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                e.name.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or(""),
                match (&e.expected, &e.got) {
                    (Some(x), Some(g)) => format!("expected {x} got {g}"),
                    _ => String::new(),
                }
            )?;
        }
        write!(f, "{}", self.finished.output.render())
    }
}

/// Runs `cmd` (stdin closed, output captured) until it exits, at most
/// `timeout`; past that it is stopped (SIGTERM, then SIGKILL after a second)
/// and the error carries its output. A non-zero exit is not an error here.
pub async fn run_to_completion(
    name: impl Into<String>,
    mut cmd: Command,
    timeout: Duration,
) -> Result<Finished, ProcessError> {
    let name = name.into();
    let started = Instant::now();
    let (mut child, pid, output, readers, _) = spawn(&name, &mut cmd, false)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            drain(readers).await;
            Ok(Finished {
                name,
                status,
                output,
                elapsed: started.elapsed(),
            })
        }
        Ok(Err(source)) => {
            let _ = terminate(&mut child, Duration::from_secs(1)).await;
            Err(ProcessError::Io {
                name,
                what: "waiting for it",
                source,
            })
        }
        Err(_elapsed) => {
            let _ = terminate(&mut child, Duration::from_secs(1)).await;
            drain(readers).await;
            Err(ProcessError::Timeout {
                name,
                pid,
                timeout,
                output: output.render(),
            })
        }
    }
}

/// [`run_to_completion`], then parses the last stdout line that is a JSON
/// object as a [`ClientSummary`]. A client that failed calls still returns
/// `Ok`: look at [`ClientRun::all_ok`] or the summary.
pub async fn run_client(
    name: impl Into<String>,
    cmd: Command,
    timeout: Duration,
) -> Result<ClientRun, ProcessError> {
    let finished = run_to_completion(name, cmd, timeout).await?;
    let stdout = finished.output.stdout();
    let last = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'));
    let problem = match last {
        None => "no line starting with '{'".to_owned(),
        Some(line) => match serde_json::from_str::<ClientSummary>(line) {
            Ok(summary) => return Ok(ClientRun { finished, summary }),
            Err(e) => format!("{e} in {line:?}"),
        },
    };
    Err(ProcessError::NoSummary {
        name: finished.name.clone(),
        status: finished.status,
        problem,
        output: finished.output.render(),
    })
}
