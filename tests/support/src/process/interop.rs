//! Where the interop scripts (`tests/interop/`) and their installed
//! dependencies are, and commands to run them.
//!
//! `scripts/install-test-deps` installs `tests/interop/node_modules` (npm ci)
//! and `tests/interop/.venv` (pip); nothing here installs anything.

use super::ProcessError;
use std::path::PathBuf;
use tokio::process::Command;

/// The bolt service `bolt_server.js` exposes by default (`echo`, `whoami`).
pub const BOLT_SERVICE: &str = "com.alipay.test.EchoService:1.0";
/// The Dubbo interface `dubbo_server.js` exposes by default (`sayHello`, `whoami`).
pub const DUBBO_SERVICE: &str = "org.apache.dubbo.samples.DemoService";
/// Its version.
pub const DUBBO_VERSION: &str = "1.0.0";

/// The repository root.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")); // tests/support
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map_or(manifest.clone(), PathBuf::from)
}

/// `tests/interop/`.
pub fn interop_dir() -> PathBuf {
    repo_root().join("tests").join("interop")
}

/// The venv's Python (`tests/interop/.venv/bin/python`).
pub fn venv_python() -> PathBuf {
    interop_dir().join(".venv").join("bin").join("python")
}

/// Fails with [`ProcessError::DepsMissing`] ("run scripts/install-test-deps")
/// unless the npm packages and the Python venv are installed. A test that
/// needs them calls this first and fails (never skips) on the error.
pub fn check_deps() -> Result<(), ProcessError> {
    let dir = interop_dir();
    let needed = [
        dir.join("node_modules").join(".meshgate-install-stamp"),
        dir.join("node_modules")
            .join("sofa-rpc-node")
            .join("package.json"),
        dir.join("node_modules")
            .join("sofa-bolt-node")
            .join("package.json"),
        dir.join("node_modules")
            .join("dubbo-remoting")
            .join("package.json"),
        dir.join(".venv").join(".meshgate-install-stamp"),
        venv_python(),
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

/// `node tests/interop/<script>`, run in `tests/interop/`.
pub fn node(script: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(interop_dir().join(script))
        .current_dir(interop_dir());
    cmd
}

/// `tests/interop/.venv/bin/python tests/interop/<script>`, run in `tests/interop/`.
pub fn python(script: &str) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(interop_dir().join(script))
        .current_dir(interop_dir());
    cmd
}

/// Runs `tests/interop/<script> ARGS` under the venv's Python, killed if it
/// takes longer than `limit`, and returns the one JSON line it prints. The
/// error says why, with the script's output.
pub async fn python_json(
    script: &str,
    args: &[&str],
    limit: std::time::Duration,
) -> Result<serde_json::Value, String> {
    let mut cmd = python(script);
    cmd.args(args).kill_on_drop(true);
    let output = match tokio::time::timeout(limit, cmd.output()).await {
        Err(_) => return Err(format!("{script} {args:?} did not finish within {limit:?}")),
        Ok(Err(e)) => return Err(format!("{script} {args:?} did not run: {e}")),
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "{script} {args:?} failed ({}): {stdout}\n{stderr}",
            output.status
        ));
    }
    serde_json::from_str(stdout.trim())
        .map_err(|e| format!("{script} {args:?} printed no JSON line ({e}): {stdout}\n{stderr}"))
}
