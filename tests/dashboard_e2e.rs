//! The dashboard end to end: a real gateway (admin API on 127.0.0.1, port
//! 0) carries a known number of bolt requests to a cluster of two mock
//! hosts, one of which an active `tcp` health check has marked unhealthy;
//! headless Debian `chromium` (through playwright-core) then loads
//! `/dashboard` and must find the real request count and both hosts'
//! health on the page. The screenshot is saved to
//! `target/test-artifacts/dashboard-gateway.png`.

mod common;

use common::{bolt, bolt_call, bounded};
use meshgate::control::Gateway;
use meshgate_test_support::http;
use meshgate_test_support::process::{browser, run_to_completion};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

const BOLT_SERVICE: &str = "com.example.Echo:1.0";
/// A count no other number on the page is likely to equal.
const REQUESTS: usize = 137;
const CONNECTIONS: usize = 3;

fn host_is_healthy(gateway: &Gateway, i: usize) -> bool {
    let config = gateway.config();
    let cluster = config.clusters.get("bolt_cluster").expect("bolt_cluster");
    cluster.hosts().hosts()[i].is_healthy()
}

/// The value of the one sample of `name` whose labels include every one
/// of `labels` (`key="value"` texts) in Prometheus text `text`.
fn sample(text: &str, name: &str, labels: &[String]) -> f64 {
    let matching: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label.as_str())))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    matching[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value: {}", matching[0]))
}

#[tokio::test]
async fn the_dashboard_shows_the_gateways_real_traffic_and_health() {
    browser::check_deps().unwrap_or_else(|e| panic!("{e}"));
    bounded(async {
        let hosts = common::mocks(&bolt(), 2);
        let mut document = common::document(
            "Auto",
            json!([common::route(BOLT_SERVICE, "bolt_cluster")]),
            json!([common::cluster_with(
                "bolt_cluster",
                "LB_ROUNDROBIN",
                &common::addrs(&hosts),
                json!({ "health_check": {
                    "protocol": "tcp", "timeout": "200ms", "interval": "100ms",
                    "healthy_threshold": 2, "unhealthy_threshold": 2
                }}),
            )]),
            json!([]),
        );
        document["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
        let (gateway, addr) = common::start(&document).await;
        let admin = gateway.admin_addr().expect("the admin API runs");

        // The second host stops accepting connections: its tcp checks fail.
        hosts[1].stop_listening();
        let start = Instant::now();
        while host_is_healthy(&gateway, 1) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the health check never marked the closed host unhealthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(host_is_healthy(&gateway, 0), "the live host stays healthy");

        common::drive_ok(addr, &bolt(), CONNECTIONS, REQUESTS, |i| {
            bolt_call(i as u64 + 1, BOLT_SERVICE, &[])
        })
        .await;
        assert_eq!(
            common::counts(&hosts),
            vec![REQUESTS as u64, 0],
            "every request went to the healthy host"
        );

        let healthy = format!("[data-host=\"{}\"]", hosts[0].addr());
        let unhealthy = format!("[data-host=\"{}\"]", hosts[1].addr());
        let screenshot = browser::artifact("dashboard-gateway.png");
        let _ = std::fs::remove_file(&screenshot);
        let cmd = browser::DashboardCheck::new(format!("http://{admin}/dashboard"))
            .expect(format!("meshgate {}", env!("CARGO_PKG_VERSION")))
            .expect_in("#state", "Running")
            .expect_in("[data-cluster=\"bolt_cluster\"]", REQUESTS.to_string())
            .expect_in("[data-cluster=\"bolt_cluster\"]", "LB_ROUNDROBIN")
            .expect_in("#total-requests", REQUESTS.to_string())
            .expect_in(&healthy, "healthy")
            .expect_in(&healthy, REQUESTS.to_string())
            .expect_in(&unhealthy, "unhealthy")
            .expect_in("#listeners-table", "rpc")
            .expect_in("#config", "bolt_cluster")
            .screenshot(&screenshot)
            .command();
        let run = run_to_completion("dashboard-check", cmd, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let summary: Value = run
            .json_lines()
            .pop()
            .map(Value::Object)
            .unwrap_or_else(|| panic!("no summary line: {}", run.output.stdout()));
        assert!(
            run.status.success(),
            "dashboard check failed: {summary}\n{}",
            run.output.stderr()
        );
        assert_eq!(summary["missing"], json!([]));
        assert_eq!(
            summary["console_errors"],
            json!([]),
            "the page logged errors"
        );
        assert!(
            summary["polls"].as_u64().is_some_and(|p| p >= 2),
            "{summary}"
        );
        let png = std::fs::read(&screenshot).expect("the screenshot was saved");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "not a real screenshot"
        );

        // `/metrics` tells the same story: the closed host's failed checks,
        // its one transition to unhealthy, the live host's passing checks.
        let text = http::get(admin, "/metrics").await.expect("metrics").body;
        let host = |i: usize| format!("host=\"{}\"", hosts[i].addr());
        let failed = [host(1), "result=\"failure\"".to_owned()];
        let passed = [host(0), "result=\"success\"".to_owned()];
        assert!(sample(&text, "meshgate_host_health_checks_total", &failed) >= 2.0);
        assert!(sample(&text, "meshgate_host_health_checks_total", &passed) >= 1.0);
        assert_eq!(
            sample(&text, "meshgate_host_marked_unhealthy_total", &[host(1)]),
            1.0
        );
        assert_eq!(
            sample(&text, "meshgate_host_marked_unhealthy_total", &[host(0)]),
            0.0
        );
        assert_eq!(sample(&text, "meshgate_host_healthy", &[host(1)]), 0.0);
        assert_eq!(
            sample(&text, "meshgate_host_requests_total", &[host(0)]),
            REQUESTS as f64
        );
        gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}
