//! External processes for the interop tests: real third-party servers and
//! clients (`tests/interop/`), started and stopped by the tests themselves.
//!
//! - [`External`] starts a server, waits for its `READY port=N` line on
//!   stdout (bounded), exposes the port, captures stdout/stderr, and stops it
//!   with SIGTERM then SIGKILL after a grace period — always, on drop too.
//! - [`run_to_completion`] / [`run_client`] run a client with a timeout and
//!   parse its one-line JSON summary ([`ClientSummary`]).
//! - [`browser`] runs the dashboard's headless-browser check
//!   (`tests/browser/dashboard-check.mjs`).
//! - [`interop`] knows where the scripts and the installed dependencies are;
//!   [`interop::check_deps`] fails with "run scripts/install-test-deps" when
//!   they are missing.
//!
//! Only the processes started here are ever signalled, by their own PID, and
//! only while they are still this process's unreaped children.
//!
//! The timeouts are tokio timers: do not combine these helpers with
//! `tokio::time::pause()`, or a ready timeout fires as soon as the runtime
//! idles while it waits for the outside process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshgate_test_support::process::ProcessError> {
//! use meshgate_test_support::process::{interop, run_client, External};
//! use std::time::Duration;
//!
//! interop::check_deps()?;
//! let mut server = External::start(
//!     "bolt_server",
//!     interop::node("bolt_server.js"),
//!     Duration::from_secs(20),
//! )
//! .await?;
//! let mut client = interop::node("bolt_client.js");
//! client.arg("--target").arg(server.addr().to_string()).args(["--calls", "200"]);
//! let run = run_client("bolt_client", client, Duration::from_secs(30)).await?;
//! run.assert_all_ok(200);
//! server.kill().await?;
//! # Ok(())
//! # }
//! ```

pub mod browser;
mod capture;
mod client;
mod external;
pub mod interop;

pub use capture::Output;
pub use client::{ClientRun, ClientSummary, Finished, SummaryError, run_client, run_to_completion};
pub use external::{DEFAULT_GRACE, External};

use std::process::ExitStatus;
use std::time::Duration;

/// Why an external process could not be started, waited for or read.
/// Every variant that concerns a started process carries its captured output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The interop dependencies are not installed.
    #[error(
        "interop test dependencies are missing: {what}\n\
         run `scripts/install-test-deps` (scripts/test does it) and rerun the tests"
    )]
    DepsMissing {
        /// What was looked for and not found.
        what: String,
    },
    /// The command could not be spawned (program missing, not executable...).
    #[error("{name}: cannot start `{command}`: {source}{hint}")]
    Spawn {
        /// The label given to the process.
        name: String,
        /// The command line, as Debug shows it.
        command: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
        /// A hint such as "is node installed?", or empty.
        hint: String,
    },
    /// No `READY` line within the timeout; the process was stopped.
    #[error(
        "{name} (pid {pid}) printed no READY line within {timeout:?}; it was stopped\n{output}"
    )]
    NotReady {
        /// The label given to the process.
        name: String,
        /// Its PID.
        pid: u32,
        /// The ready timeout.
        timeout: Duration,
        /// Its captured output ([`Output::render`]).
        output: String,
    },
    /// The process ended (or closed stdout) before printing `READY`.
    #[error("{name} (pid {pid}) ended before it was ready ({status})\n{output}")]
    ExitedEarly {
        /// The label given to the process.
        name: String,
        /// Its PID.
        pid: u32,
        /// How it ended, or why that is unknown.
        status: String,
        /// Its captured output.
        output: String,
    },
    /// A `READY` line without a usable `port=N`; the process was stopped.
    #[error("{name} (pid {pid}) printed a READY line without port=N: {line:?}\n{output}")]
    BadReadyLine {
        /// The label given to the process.
        name: String,
        /// Its PID.
        pid: u32,
        /// The line.
        line: String,
        /// Its captured output.
        output: String,
    },
    /// A client did not finish within its timeout; it was stopped.
    #[error("{name} (pid {pid}) did not finish within {timeout:?}; it was stopped\n{output}")]
    Timeout {
        /// The label given to the process.
        name: String,
        /// Its PID.
        pid: u32,
        /// The timeout.
        timeout: Duration,
        /// Its captured output.
        output: String,
    },
    /// A client finished without a JSON summary line on stdout.
    #[error("{name} finished ({status}) without a JSON summary on stdout: {problem}\n{output}")]
    NoSummary {
        /// The label given to the process.
        name: String,
        /// Its exit status.
        status: ExitStatus,
        /// What was wrong (no JSON line, or why the last one did not parse).
        problem: String,
        /// Its captured output.
        output: String,
    },
    /// Waiting for or signalling the process failed.
    #[error("{name}: {what}: {source}")]
    Io {
        /// The label given to the process.
        name: String,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
