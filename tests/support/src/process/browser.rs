//! The dashboard's browser check: `tests/browser/dashboard-check.mjs`
//! opens a dashboard URL in headless Debian `chromium` through
//! playwright-core, waits for live data, looks for texts and saves a
//! screenshot. The admin crate's test uses it with a fake source; the
//! gateway's end-to-end test uses it after real traffic.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshgate_test_support::process::ProcessError> {
//! use meshgate_test_support::process::{browser, run_to_completion};
//! use std::time::Duration;
//!
//! browser::check_deps()?;
//! let cmd = browser::DashboardCheck::new("http://127.0.0.1:34901/dashboard")
//!     .expect("bolt_cluster")
//!     .expect_in("[data-host=\"127.0.0.1:12200\"]", "healthy")
//!     .screenshot(browser::artifact("dashboard.png"))
//!     .command();
//! let run = run_to_completion("dashboard-check", cmd, Duration::from_secs(60)).await?;
//! assert!(run.status.success(), "{:?}", run.output);
//! # Ok(())
//! # }
//! ```

use super::ProcessError;
use super::interop::{interop_dir, repo_root};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// The browser the check drives (Debian's package; `$CHROMIUM` overrides).
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// `target/test-artifacts/<name>` under the repository, where screenshots
/// go (created by the script).
pub fn artifact(name: &str) -> PathBuf {
    repo_root().join("target").join("test-artifacts").join(name)
}

/// Fails with [`ProcessError::DepsMissing`] unless playwright-core and
/// chromium are installed (`scripts/install-test-deps` installs both).
pub fn check_deps() -> Result<(), ProcessError> {
    let needed = [
        interop_dir()
            .join("node_modules")
            .join("playwright-core")
            .join("package.json"),
        chromium(),
    ];
    let missing: Vec<String> = needed
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ProcessError::DepsMissing {
            what: missing.join(", "),
        })
    }
}

/// The arguments of one run of `dashboard-check.mjs` (documented at the
/// top of the script).
#[derive(Debug, Clone)]
pub struct DashboardCheck {
    url: String,
    expect: Vec<String>,
    expect_in: Vec<(String, String)>,
    min_polls: u32,
    screenshot: PathBuf,
    timeout_ms: u64,
}

impl DashboardCheck {
    /// A check of the dashboard at `url` (`http://ADDR/dashboard`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            expect: Vec::new(),
            expect_in: Vec::new(),
            min_polls: 2,
            screenshot: artifact("dashboard.png"),
            timeout_ms: 20_000,
        }
    }

    /// `text` must appear in the page's visible text.
    pub fn expect(mut self, text: impl Into<String>) -> Self {
        self.expect.push(text.into());
        self
    }

    /// `text` must appear inside the first element matching `selector`.
    pub fn expect_in(mut self, selector: impl Into<String>, text: impl Into<String>) -> Self {
        self.expect_in.push((selector.into(), text.into()));
        self
    }

    /// Snapshots the page must have applied first (default 2: rates shown).
    pub fn min_polls(mut self, polls: u32) -> Self {
        self.min_polls = polls;
        self
    }

    /// Where the screenshot goes (default `target/test-artifacts/dashboard.png`).
    pub fn screenshot(mut self, path: impl AsRef<Path>) -> Self {
        self.screenshot = path.as_ref().to_path_buf();
        self
    }

    /// How long the script waits for polls and texts (default 20 s).
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// The `node tests/browser/dashboard-check.mjs ...` command.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(
            repo_root()
                .join("tests")
                .join("browser")
                .join("dashboard-check.mjs"),
        )
        .arg("--url")
        .arg(&self.url)
        .arg("--min-polls")
        .arg(self.min_polls.to_string())
        .arg("--screenshot")
        .arg(&self.screenshot)
        .arg("--timeout-ms")
        .arg(self.timeout_ms.to_string())
        .arg("--chromium")
        .arg(chromium())
        .current_dir(repo_root());
        for text in &self.expect {
            cmd.arg("--expect").arg(text);
        }
        for (selector, text) in &self.expect_in {
            cmd.arg("--expect-in").arg(format!("{selector}={text}"));
        }
        cmd
    }
}
