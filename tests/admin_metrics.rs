//! Resilience counters on `/metrics` after real events: circuit-breaker
//! refusals counted per cluster and resource, equal to the requests the
//! breaker turned away; an outlier ejection counted on its host, which
//! `/api/v1/clusters` shows as `ejected`.

mod common;

use bytes::Bytes;
use common::{bolt, bolt_call, bounded, cluster_with, document, route, start, wire_status};
use meshgate_codecs::{Frame, Status};
use meshgate_test_support::client::{CALL_TIMEOUT, FramedClient};
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::http;
use meshgate_test_support::{MockUpstream, echo_response};
use serde_json::{Value, json};
use std::net::SocketAddr;
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

fn with_admin(mut doc: Value) -> Value {
    doc["admin"] = json!({ "address": { "socket_address": { "port_value": 0 } } });
    doc
}

fn server_exception(req: &Frame) -> Option<Frame> {
    let mut resp = echo_response(req);
    resp.status = Some(Status::new(2, 500));
    Some(resp)
}

/// The health text `/api/v1/clusters` shows for host `addr`.
async fn health_in_clusters(admin: SocketAddr, addr: SocketAddr) -> String {
    let clusters = http::get(admin, "/api/v1/clusters")
        .await
        .expect("clusters")
        .json();
    clusters["clusters"][0]["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["address"] == addr.to_string())
        .and_then(|h| h["health"].as_str())
        .unwrap_or_else(|| panic!("{addr} not in {clusters}"))
        .to_owned()
}

#[tokio::test]
async fn an_outlier_ejection_shows_on_clusters_and_metrics() {
    bounded(async {
        let good = MockUpstream::start(bolt());
        let bad = MockUpstream::builder(bolt())
            .responder(server_exception)
            .start();
        let doc = with_admin(document(
            "Auto",
            json!([route(".*", "c")]),
            json!([cluster_with(
                "c",
                "LB_ROUNDROBIN",
                &[good.addr(), bad.addr()],
                // Ejected far longer than the test runs.
                json!({ "outlier_detection": {
                    "consecutive_5xx": 3, "interval": "100ms", "base_ejection_time": "60s"
                }}),
            )]),
            json!([]),
        ));
        let (gateway, addr) = start(&doc).await;
        let admin = gateway.admin_addr().expect("the admin API runs");
        assert_eq!(health_in_clusters(admin, bad.addr()).await, "healthy");

        let mut client = FramedClient::connect(addr, bolt()).await.expect("connect");
        let mut errors = 0;
        for id in 1..=12 {
            let reply = client
                .call(&bolt_call(id, "svc", &[]))
                .await
                .expect("reply");
            if wire_status(&reply) != Some(BOLT_OK) {
                errors += 1;
            }
        }
        assert_eq!(errors, 3, "ejected at the third error in a row");

        assert_eq!(health_in_clusters(admin, bad.addr()).await, "ejected");
        assert_eq!(health_in_clusters(admin, good.addr()).await, "healthy");
        let text = http::get(admin, "/metrics").await.expect("metrics").body;
        let bad_host = format!("host=\"{}\"", bad.addr());
        let good_host = format!("host=\"{}\"", good.addr());
        let ejections = "meshgate_host_ejections_total";
        assert_eq!(sample(&text, ejections, &[&bad_host]), 1.0);
        assert_eq!(sample(&text, ejections, &[&good_host]), 0.0);
        assert_eq!(
            sample(&text, "meshgate_host_ejection_returns_total", &[&bad_host]),
            0.0
        );
        assert_eq!(sample(&text, "meshgate_host_healthy", &[&bad_host]), 0.0);
        assert_eq!(sample(&text, "meshgate_host_healthy", &[&good_host]), 1.0);
        gateway.stop(Duration::from_secs(1)).await;
    })
    .await;
}

#[tokio::test]
async fn breaker_refusals_show_on_metrics() {
    bounded(async {
        let delay = Duration::from_millis(500);
        let slow = MockUpstream::builder(bolt()).delay(delay, delay).start();
        let doc = with_admin(document(
            "Auto",
            json!([route(".*", "c")]),
            json!([cluster_with(
                "c",
                "LB_ROUNDROBIN",
                &[slow.addr()],
                json!({ "circuit_breakers": [{ "max_requests": MAX_REQUESTS }] }),
            )]),
            json!([]),
        ));
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
