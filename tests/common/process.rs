//! The real `meshgate` binary for end-to-end tests: a temporary directory,
//! a started gateway whose listener address is read from its log, and
//! signals to it. Every process started here is killed by its pid when the
//! test ends ([`GatewayProcess`]'s `Drop`).

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_meshgate");

/// A binary of another workspace package (`mg-stub`, `mg-load` from
/// bench/), built by `cargo build --workspace --bins` next to the test
/// binary's directory (`target/<profile>/deps/..`).
pub(crate) fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins` (or `cargo build -p meshgate-bench`) first",
        binary.display()
    );
    binary
}

/// A directory for one test's files, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory named after the test.
    pub(crate) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("meshgate-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TempDir(dir)
    }

    /// `file` inside the directory.
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `meshgate start -c FILE`.
pub(crate) struct GatewayProcess {
    child: Child,
    /// The first listener's bound address.
    pub(crate) addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts the gateway on `config` and waits (up to 20 s) until it
    /// logged a listener's address and that it runs.
    pub(crate) fn start(config: &Path) -> GatewayProcess {
        let mut child = Command::new(BIN)
            .args(["start", "-c"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meshgate start");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut process = GatewayProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(addr) = process.logged_addr()
                && process.logged("meshgate running")
            {
                process.addr = addr;
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("meshgate exited with {status} at start:\n{}", process.log());
            }
            assert!(
                Instant::now() < deadline,
                "meshgate did not start:\n{}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the gateway.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).expect("a pid"));
        nix::sys::signal::kill(pid, signal).expect("signal the gateway");
    }

    fn logged_addr(&self) -> Option<SocketAddr> {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|line| line.contains("listening"))
            .find_map(|line| {
                let rest = &line[line.find(" addr=")? + " addr=".len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
    }

    /// True when some stderr line contains `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().any(|line| line.contains(needle))
    }

    /// True once some stderr line contains `needle`, waiting up to `limit`
    /// (a line logged after the effect a test saw may still be in the pipe).
    pub(crate) fn wait_logged(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.logged(needle) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Everything the gateway logged so far.
    pub(crate) fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// True while the process has not exited.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (up to `limit`) for the process to exit, reaping it.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "meshgate still running:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
