//! The real binary's log level changed through the admin API: the next
//! log line obeys (a debug-level event appears after `DEBUG`, and no
//! longer after `INFO`), and `disable_log default` silences the log until
//! `enable_log default`.

mod common;

use common::{bolt, bolt_call};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::http;
use serde_json::json;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_meshgate");
const SERVICE: &str = "com.example.Echo:1.0";
/// The gateway's debug-level line for every accepted connection.
const DEBUG_EVENT: &str = "accepted";
/// The admin API's info-level line for a level change.
const CHANGED: &str = "log level changed through the admin API";

/// A `meshgate start` process with its stderr collected line by line.
/// Dropping it kills the process through its `Child` handle and reaps it.
struct Gateway {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Gateway {
    async fn start(config: &std::path::Path) -> Gateway {
        let mut child = Command::new(BIN)
            .args(["start", "-c"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meshgate start");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lines").push(line);
            }
        });
        let mut gateway = Gateway {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addr = gateway.logged_addr("listening", " addr=");
            let admin = gateway.logged_addr("admin API listening", "local_addr=");
            if let (Some(addr), Some(admin)) = (addr, admin)
                && gateway.count("meshgate running") == 1
            {
                gateway.addr = addr;
                gateway.admin = admin;
                return gateway;
            }
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("meshgate exited with {status}:\n{}", gateway.log());
            }
            assert!(
                Instant::now() < deadline,
                "meshgate did not start:\n{}",
                gateway.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logged_addr(&self, line_has: &str, key: &str) -> Option<SocketAddr> {
        let lines = self.lines.lock().expect("log lines");
        lines
            .iter()
            .filter(|l| l.contains(line_has))
            .find_map(|line| {
                let rest = &line[line.find(key)? + key.len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
    }

    fn count(&self, needle: &str) -> usize {
        let lines = self.lines.lock().expect("log lines");
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    fn log(&self) -> String {
        self.lines.lock().expect("log lines").join("\n")
    }

    /// Waits (up to 10 s) until `needle` was logged `n` times.
    async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {n} times:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One bolt call on a new connection (the gateway logs `accepted` at
    /// debug level for it).
    async fn call(&self, id: u64) {
        common::call(self.addr, &bolt(), &bolt_call(id, SERVICE, &[])).await;
    }

    async fn set_level(&self, level: &str) -> http::HttpAnswer {
        let body = json!({ "log_path": "default", "log_level": level }).to_string();
        http::post(self.admin, "/api/v1/update_loglevel", body.as_bytes())
            .await
            .expect("update_loglevel answers")
    }

    /// `update_loglevel` for the log at `log_path`.
    async fn set_level_of(&self, log_path: &str, level: &str) -> http::HttpAnswer {
        let body = json!({ "log_path": log_path, "log_level": level }).to_string();
        http::post(self.admin, "/api/v1/update_loglevel", body.as_bytes())
            .await
            .expect("update_loglevel answers")
    }

    async fn level(&self) -> String {
        let answer = http::get(self.admin, "/api/v1/get_loglevel")
            .await
            .expect("get_loglevel answers");
        assert_eq!(answer.status, 200);
        answer.body
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn level_changes_take_effect_on_the_next_log_line() {
    common::bounded(async {
        let upstream = MockUpstream::start(bolt());
        let mut document = common::document(
            "bolt",
            json!([common::route(SERVICE, "c1")]),
            json!([common::cluster("c1", "LB_RANDOM", &[upstream.addr()])]),
            json!([]),
        );
        document["servers"][0]["default_log_level"] = json!("INFO");
        document["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
        let dir = std::env::temp_dir().join(format!("meshgate-loglevel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.json");
        std::fs::write(&config, document.to_string()).unwrap();
        let gateway = Gateway::start(&config).await;
        assert!(gateway.admin.ip().is_loopback());
        assert!(
            gateway.level().await.contains("INFO"),
            "{}",
            gateway.level().await
        );

        // INFO: the call's debug line is not written.
        gateway.call(1).await;
        assert_eq!(gateway.set_level("DEBUG").await.status, 200);
        gateway.wait_for(CHANGED, 1).await;
        assert_eq!(gateway.count(DEBUG_EVENT), 0, "{}", gateway.log());
        assert!(gateway.level().await.contains("DEBUG"));

        // DEBUG: the next connection's debug line appears.
        gateway.call(2).await;
        gateway.wait_for(DEBUG_EVENT, 1).await;

        // Back to INFO: the next connection's line does not (the level
        // change after it is an info line, so anything logged before it
        // is in the log by then).
        assert_eq!(gateway.set_level("info").await.status, 200);
        gateway.wait_for(CHANGED, 2).await;
        gateway.call(3).await;
        assert_eq!(gateway.set_level("INFO").await.status, 200);
        gateway.wait_for(CHANGED, 3).await;
        assert_eq!(gateway.count(DEBUG_EVENT), 1, "{}", gateway.log());

        // An unknown level is refused and changes nothing.
        assert_eq!(gateway.set_level("LOUD").await.status, 400);
        assert!(gateway.level().await.contains("INFO"));

        // disable_log default silences even info lines; enable_log brings
        // the log back at its level.
        let off = http::post(gateway.admin, "/api/v1/disable_log", b"default")
            .await
            .unwrap();
        assert_eq!(off.status, 200, "{}", off.body);
        assert_eq!(gateway.set_level("INFO").await.status, 200);
        let on = http::post(gateway.admin, "/api/v1/enable_log", b"default")
            .await
            .unwrap();
        assert_eq!(on.status, 200, "{}", on.body);
        assert_eq!(gateway.set_level("INFO").await.status, 200);
        gateway.wait_for(CHANGED, 4).await;
        assert_eq!(
            gateway.count(CHANGED),
            4,
            "the change while disabled was not logged"
        );
        let unknown = http::post(
            gateway.admin,
            "/api/v1/disable_log",
            b"/var/log/nothing.log",
        )
        .await
        .unwrap();
        assert_eq!(unknown.status, 400, "{}", unknown.body);
        drop(gateway);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn log_path_names_the_process_log_or_is_refused() {
    common::bounded(async {
        let upstream = MockUpstream::start(bolt());
        let mut document = common::document(
            "bolt",
            json!([common::route(SERVICE, "c1")]),
            json!([common::cluster("c1", "LB_RANDOM", &[upstream.addr()])]),
            json!([]),
        );
        let dir = std::env::temp_dir().join(format!("meshgate-logpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let default_log = dir.join("default.log");
        let default_log = default_log.to_str().expect("a UTF-8 temp path");
        document["servers"][0]["default_log_level"] = json!("INFO");
        document["servers"][0]["default_log_path"] = json!(default_log);
        document["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
        let config = dir.join("config.json");
        std::fs::write(&config, document.to_string()).unwrap();
        let gateway = Gateway::start(&config).await;

        // MOSN's tooling names the default log by its configured path.
        let by_path = gateway.set_level_of(default_log, "DEBUG").await;
        assert_eq!(
            (by_path.status, by_path.body.as_str()),
            (200, "update logger success\n")
        );
        assert!(gateway.level().await.contains("DEBUG"));
        for name in ["", "default", "stderr"] {
            assert_eq!(
                gateway.set_level_of(name, "WARN").await.status,
                200,
                "{name:?}"
            );
            assert!(gateway.level().await.contains("WARN"), "{name:?}");
        }

        // Any other path names no log of this process: 400, level kept.
        let other = gateway
            .set_level_of("/var/log/meshgate/other.log", "DEBUG")
            .await;
        assert_eq!(other.status, 400, "{}", other.body);
        let error: serde_json::Value = serde_json::from_str(&other.body).unwrap();
        assert_eq!(error["error"], "update logger failed");
        assert_eq!(error["log_path"], "/var/log/meshgate/other.log");
        assert!(
            error["detail"]
                .as_str()
                .is_some_and(|d| d.contains("default")),
            "{error}"
        );
        assert!(gateway.level().await.contains("WARN"));
        drop(gateway);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
