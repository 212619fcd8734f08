//! [`External`]: a started server process, stopped with SIGTERM then SIGKILL.

use super::ProcessError;
use super::capture::{Output, Stream};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long [`External::kill`] (and drop) waits after SIGTERM before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// How long to wait for the reader tasks to see EOF once the child has exited.
const DRAIN: Duration = Duration::from_secs(1);

/// A child process that announced itself ready with a `READY port=N ...` line
/// on stdout. Its stdout and stderr are captured ([`External::output`]).
///
/// Stopping is [`External::kill`]: SIGTERM to the child's PID, then SIGKILL
/// after the grace period ([`DEFAULT_GRACE`], see [`External::set_grace`]).
/// Dropping an `External` that was not killed does the same, blocking the
/// dropping thread for at most the grace period plus a second.
#[derive(Debug)]
pub struct External {
    name: String,
    pid: u32,
    port: u16,
    ready_line: String,
    output: Output,
    grace: Duration,
    child: Option<Child>,
    status: Option<ExitStatus>,
    readers: Vec<JoinHandle<()>>,
}

impl External {
    /// Spawns `cmd` (stdin closed, stdout/stderr captured) and waits up to
    /// `ready_timeout` for a stdout line starting with `READY` that holds a
    /// `port=N` field. On any failure the child is stopped and the error
    /// carries its output. Needs a tokio runtime (the readers are tasks).
    pub async fn start(
        name: impl Into<String>,
        mut cmd: Command,
        ready_timeout: Duration,
    ) -> Result<Self, ProcessError> {
        let name = name.into();
        let (mut child, pid, output, mut readers, ready_rx) = spawn(&name, &mut cmd, true)?;
        let Some(mut ready_rx) = ready_rx else {
            unreachable!("spawn(.., true) always returns a ready receiver")
        };

        enum Wait {
            Ready(String),
            StdoutClosed,
            Exited(std::io::Result<ExitStatus>),
        }
        let waited = tokio::time::timeout(ready_timeout, async {
            tokio::select! {
                biased;
                line = &mut ready_rx => match line {
                    Ok(line) => Wait::Ready(line),
                    Err(_) => Wait::StdoutClosed,
                },
                status = child.wait() => Wait::Exited(status),
            }
        })
        .await;

        match waited {
            Ok(Wait::Ready(line)) => match parse_port(&line) {
                Some(port) => Ok(Self {
                    name,
                    pid,
                    port,
                    ready_line: line,
                    output,
                    grace: DEFAULT_GRACE,
                    child: Some(child),
                    status: None,
                    readers,
                }),
                None => {
                    stop_quietly(&mut child, &mut readers).await;
                    Err(ProcessError::BadReadyLine {
                        name,
                        pid,
                        line,
                        output: output.render(),
                    })
                }
            },
            Ok(Wait::Exited(status)) => {
                drain(std::mem::take(&mut readers)).await;
                // It may have printed READY and exited at once, faster than
                // the reader task forwarded the line: it was ready, then ended.
                if let (Ok(line), Ok(status)) = (ready_rx.try_recv(), &status)
                    && let Some(port) = parse_port(&line)
                {
                    return Ok(Self {
                        name,
                        pid,
                        port,
                        ready_line: line,
                        output,
                        grace: DEFAULT_GRACE,
                        child: None,
                        status: Some(*status),
                        readers,
                    });
                }
                let status = match status {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("wait failed: {e}"),
                };
                Err(ProcessError::ExitedEarly {
                    name,
                    pid,
                    status,
                    output: output.render(),
                })
            }
            Ok(Wait::StdoutClosed) => {
                // stdout is closed: the process is ending (or closed it on
                // purpose). Give it a moment, then stop it either way.
                let status = match tokio::time::timeout(DRAIN, child.wait()).await {
                    Ok(Ok(s)) => s.to_string(),
                    Ok(Err(e)) => format!("wait failed: {e}"),
                    Err(_) => {
                        stop_quietly(&mut child, &mut readers).await;
                        "closed stdout without READY; stopped".to_owned()
                    }
                };
                drain(std::mem::take(&mut readers)).await;
                Err(ProcessError::ExitedEarly {
                    name,
                    pid,
                    status,
                    output: output.render(),
                })
            }
            Err(_elapsed) => {
                stop_quietly(&mut child, &mut readers).await;
                Err(ProcessError::NotReady {
                    name,
                    pid,
                    timeout: ready_timeout,
                    output: output.render(),
                })
            }
        }
    }

    /// The label given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The `port=N` of the READY line.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port` (the interop servers listen on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The whole READY line.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// A `key=value` field of the READY line (`name`, `protocol`, `pid`...).
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        ready_field(&self.ready_line, key)
    }

    /// The captured stdout and stderr (live: it grows while the child runs).
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Sets how long [`External::kill`] and drop wait after SIGTERM.
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The exit status if the child has already ended (reaping it), without
    /// signalling it. `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.status = Some(status);
            self.child = None;
        }
        self.status
    }

    /// SIGKILL at once (no grace: the process dies mid-flight, as in a
    /// crash), then waits for it. Idempotent like [`External::kill`].
    pub async fn kill_hard(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Some(mut child) = self.child.take() {
            // Resumed first, should it be frozen: a stopped process is
            // killed all the same, but its exit is reported sooner.
            send_signal(&child, rustix::process::Signal::CONT);
            let status = async {
                child.start_kill()?;
                child.wait().await
            }
            .await
            .map_err(|source| ProcessError::Io {
                name: self.name.clone(),
                what: "killing it",
                source,
            })?;
            self.status = Some(status);
        }
        drain(std::mem::take(&mut self.readers)).await;
        self.status.ok_or_else(|| ProcessError::Io {
            name: self.name.clone(),
            what: "killing it",
            source: std::io::Error::other("no child and no exit status"),
        })
    }

    /// Freezes the child (SIGSTOP): it keeps its sockets but runs no code,
    /// as a host stalled by the scheduler, swap or a debugger. No-op once
    /// it has ended.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            send_signal(child, rustix::process::Signal::STOP);
        }
    }

    /// Resumes a frozen child (SIGCONT).
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            send_signal(child, rustix::process::Signal::CONT);
        }
    }

    /// Stops the child: SIGTERM to its PID, SIGKILL if it is still running
    /// after the grace period, then waits for it and for its output to be
    /// read to the end. Idempotent: later calls return the same status.
    pub async fn kill(&mut self) -> Result<ExitStatus, ProcessError> {
        if let Some(mut child) = self.child.take() {
            let status =
                terminate(&mut child, self.grace)
                    .await
                    .map_err(|source| ProcessError::Io {
                        name: self.name.clone(),
                        what: "stopping it",
                        source,
                    })?;
            self.status = Some(status);
        }
        drain(std::mem::take(&mut self.readers)).await;
        self.status.ok_or_else(|| ProcessError::Io {
            name: self.name.clone(),
            what: "stopping it",
            source: std::io::Error::other("no child and no exit status"),
        })
    }
}

impl Drop for External {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen child would ignore SIGTERM until the SIGKILL.
            send_signal(&child, rustix::process::Signal::CONT);
            terminate_blocking(&mut child, self.grace);
        }
    }
}

/// Spawns `cmd` with captured output; with `want_ready`, also returns the
/// receiver of the first `READY` line.
#[allow(clippy::type_complexity)]
pub(crate) fn spawn(
    name: &str,
    cmd: &mut Command,
    want_ready: bool,
) -> Result<
    (
        Child,
        u32,
        Output,
        Vec<JoinHandle<()>>,
        Option<oneshot::Receiver<String>>,
    ),
    ProcessError,
> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let command = format!("{:?}", cmd.as_std());
    let mut child = cmd.spawn().map_err(|source| {
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let hint = if source.kind() == std::io::ErrorKind::NotFound {
            format!(" (is `{program}` installed and on PATH? for the interop scripts run scripts/install-test-deps)")
        } else {
            String::new()
        };
        ProcessError::Spawn { name: name.to_owned(), command, source, hint }
    })?;
    let pid = child.id().unwrap_or(0);
    let output = Output::default();
    let (tx, rx) = if want_ready {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let mut readers = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        readers.push(output.spawn_reader(stdout, Stream::Stdout, tx));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(output.spawn_reader(stderr, Stream::Stderr, None));
    }
    Ok((child, pid, output, readers, rx))
}

/// Waits (bounded) for the reader tasks to reach EOF.
pub(crate) async fn drain(readers: Vec<JoinHandle<()>>) {
    let all = async {
        for r in readers {
            let _ = r.await;
        }
    };
    let _ = tokio::time::timeout(DRAIN, all).await;
}

async fn stop_quietly(child: &mut Child, readers: &mut Vec<JoinHandle<()>>) {
    let _ = terminate(child, Duration::from_millis(500)).await;
    drain(std::mem::take(readers)).await;
}

/// SIGTERM, up to `grace` for it to end, then SIGKILL and wait.
pub(crate) async fn terminate(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    send_signal(child, rustix::process::Signal::TERM);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return status;
    }
    child.start_kill()?;
    child.wait().await
}

/// [`terminate`] for `Drop`, where nothing can be awaited: polls `try_wait`.
fn terminate_blocking(child: &mut Child, grace: Duration) {
    if !matches!(child.try_wait(), Ok(None)) {
        return; // already ended and reaped (or cannot tell)
    }
    send_signal(child, rustix::process::Signal::TERM);
    if poll_exit(child, grace) {
        return;
    }
    let _ = child.start_kill();
    let _ = poll_exit(child, Duration::from_secs(1));
}

/// Polls every 10 ms. Counts steps rather than reading a clock, so a paused
/// tokio clock cannot make it spin forever.
fn poll_exit(child: &mut Child, within: Duration) -> bool {
    const STEP: Duration = Duration::from_millis(10);
    let steps = within.as_millis() / STEP.as_millis() + 1;
    for _ in 0..steps {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => std::thread::sleep(STEP),
        }
    }
    matches!(child.try_wait(), Ok(Some(_)) | Err(_))
}

/// Signals the child by PID. Only called while `try_wait` says it has not been
/// reaped, so the PID is still this child's (a zombie keeps its PID).
fn send_signal(child: &Child, signal: rustix::process::Signal) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        // ESRCH (it just exited) is fine: the wait that follows sees that.
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// The `port=N` field of a READY line.
pub(crate) fn parse_port(line: &str) -> Option<u16> {
    ready_field(line, "port")?.parse().ok().filter(|&p| p != 0)
}

fn ready_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().skip(1).find_map(|tok| {
        let (k, v) = tok.split_once('=')?;
        (k == key).then_some(v)
    })
}
