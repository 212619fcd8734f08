//! The dashboard in a real headless browser (Debian `chromium` through
//! playwright-core): the fake source's numbers appear on the page once it
//! is live; the screenshot is saved to
//! `target/test-artifacts/dashboard-fake.png`.

mod common;

use common::{FakeSource, start};
use meshgate_test_support::process::{browser, run_to_completion};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn the_dashboard_shows_the_sources_numbers_live() {
    browser::check_deps().unwrap_or_else(|e| panic!("{e}"));
    let server = start(Arc::new(FakeSource::default())).await;
    let screenshot = browser::artifact("dashboard-fake.png");
    let _ = std::fs::remove_file(&screenshot);
    let cmd = browser::DashboardCheck::new(format!("http://{}/dashboard", server.local_addr()))
        .expect("meshgate 0.1.0 (fake)")
        .expect_in("#state", "Running")
        .expect_in("#uptime", "1h 2m 3s")
        // Cluster row: 1234 requests, 5 in flight, 3 retries, p50/p90/p99/p99.9.
        .expect_in("[data-cluster=\"bolt_cluster\"]", "1234")
        .expect_in("[data-cluster=\"bolt_cluster\"]", "LB_ROUNDROBIN")
        .expect_in("[data-cluster=\"bolt_cluster\"]", "1.50")
        .expect_in("[data-cluster=\"bolt_cluster\"]", "4.25")
        .expect_in("[data-cluster=\"bolt_cluster\"]", "21.75")
        .expect_in("[data-cluster=\"bolt_cluster\"]", "88.50")
        .expect_in("#total-requests", "1234")
        .expect_in("#total-inflight", "5")
        .expect_in("#total-connections", "17")
        // Rates exist once two snapshots were seen (the fake does not move).
        .expect_in("#total-rps", "0.00")
        .expect_in("[data-host=\"127.0.0.1:12200\"]", "healthy")
        .expect_in("[data-host=\"127.0.0.1:12200\"]", "800")
        .expect_in("[data-host=\"127.0.0.1:12200\"]", "zone=gz01")
        .expect_in("[data-host=\"127.0.0.1:12201\"]", "unhealthy")
        .expect_in("[data-host=\"127.0.0.1:12201\"]", "434")
        .expect_in("#routes-table", "echo_route")
        .expect_in("#routes-table", "41")
        .expect_in("#listeners-table", "bolt_listener")
        .expect_in("#listeners-table", "321")
        .expect_in("#config", "[redacted]")
        .expect_in("#config", "bolt_router")
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
    assert_eq!(summary["missing"], serde_json::json!([]));
    assert_eq!(
        summary["console_errors"],
        serde_json::json!([]),
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
    // The private key never reaches the page.
    assert!(!run.output.stdout().contains("PRIVATE KEY"));
    server.shutdown().await;
}
