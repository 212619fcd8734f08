//! Resilience counters on `/metrics` after real events: circuit-breaker
//! refusals counted per cluster and resource, equal to the requests the
//! breaker turned away.

mod common;

use bytes::Bytes;
use common::{bolt, bounded, cluster_with, document, route, start, wire_status};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::{CALL_TIMEOUT, FramedClient};
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::http;
use serde_json::json;
use std::time::Duration;

const BOLT_OK: u32 = 0;
const MAX_REQUESTS: u64 = 2;
const BURST: u64 = 9;

/// The value of the one sample of `name` carrying every label of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    let matching: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    matching[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value: {}", matching[0]))
}

#[tokio::test]
async fn breaker_refusals_show_on_metrics() {
    bounded(async {
        let delay = Duration::from_millis(500);
        let slow = MockUpstream::builder(bolt()).delay(delay, delay).start();
        let mut doc = document(
            "Auto",
            json!([route(".*", "c")]),
            json!([cluster_with(
                "c",
                "LB_ROUNDROBIN",
                &[slow.addr()],
                json!({ "circuit_breakers": [{ "max_requests": MAX_REQUESTS }] }),
            )]),
            json!([]),
        );
        doc["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
        let (gateway, addr) = start(&doc).await;
        let admin = gateway.admin_addr().expect("the admin API runs");

        // Pipelined on one connection: all in flight at once.
        let client = FramedClient::connect(addr, bolt()).await.expect("connect");
        let (mut writer, mut reader) = client.split();
        for id in 0..BURST {
            let request = bolt_request(id, Bytes::from(format!("payload-{id}")));
            writer.send(&request).await.expect("send");
        }
        let mut ok = 0;
        for _ in 0..BURST {
            let reply = tokio::time::timeout(CALL_TIMEOUT, reader.recv())
                .await
                .expect("answered in time")
                .expect("read a reply")
                .expect("connection open");
            if wire_status(&reply) == Some(BOLT_OK) {
                ok += 1;
            }
        }
        assert_eq!(ok, MAX_REQUESTS, "only max_requests reach the upstream");

        let text = http::get(admin, "/metrics").await.expect("metrics").body;
        let name = "meshgate_cluster_breaker_overflows_total";
        assert_eq!(
            sample(&text, name, &["cluster=\"c\"", "resource=\"requests\""]),
            (BURST - MAX_REQUESTS) as f64
        );
        assert_eq!(
            sample(&text, name, &["cluster=\"c\"", "resource=\"retries\""]),
            0.0
        );
        // The listener and process counters exist (nothing refused here).
        assert_eq!(
            sample(
                &text,
                "meshgate_listener_refused_over_limit_total",
                &["listener=\"rpc\""]
            ),
            0.0
        );
        assert_eq!(
            sample(
                &text,
                "meshgate_listener_tcp_proxy_connections_total",
                &["listener=\"rpc\""]
            ),
            0.0
        );
        assert!(text.contains("meshgate_process_access_log_dropped_total"));
        drop(writer);
        gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}
