//! `/metrics` read back by Prometheus' own parser (Python
//! `prometheus_client`, from the test venv): every sample equals the fake
//! source's value.

mod common;

use common::{FakeSource, get, start};
use meshgate_admin::{AdminSource, MetricValue};
use meshgate_test_support::process::interop;
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Runs tests/interop/prometheus_parse.py on `text`.
async fn parse(text: &str) -> Value {
    interop::check_deps().unwrap_or_else(|e| panic!("{e}"));
    let mut child = interop::python("prometheus_parse.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the venv's python");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("write the exposition");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the parser finishes within 30 s")
        .expect("run the parser");
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// What the parser must return for the fake's metrics: (name, labels, value).
fn expected_samples(source: &FakeSource) -> Vec<(String, Value, f64)> {
    let mut samples = Vec::new();
    for m in source.metrics() {
        let name = format!("meshgate_{}_{}", m.scope, m.name);
        let mut labels = serde_json::Map::new();
        labels.insert(m.scope.to_owned(), json!(m.object));
        for (k, v) in &m.labels {
            labels.insert((*k).to_owned(), json!(v));
        }
        match &m.value {
            MetricValue::Counter(v) => samples.push((name, Value::Object(labels), *v as f64)),
            MetricValue::Gauge(v) => samples.push((name, Value::Object(labels), *v as f64)),
            MetricValue::Histogram(h) => {
                for (bound, count) in &h.buckets {
                    let mut with_le = labels.clone();
                    let le = if bound.is_infinite() {
                        "+Inf".to_owned()
                    } else {
                        bound.to_string()
                    };
                    with_le.insert("le".to_owned(), json!(le));
                    samples.push((
                        format!("{name}_bucket"),
                        Value::Object(with_le),
                        *count as f64,
                    ));
                }
                samples.push((
                    format!("{name}_sum"),
                    Value::Object(labels.clone()),
                    h.sum_seconds,
                ));
                samples.push((
                    format!("{name}_count"),
                    Value::Object(labels),
                    h.count as f64,
                ));
            }
        }
    }
    samples
}

#[tokio::test]
async fn prometheus_client_parses_every_sample_with_the_fakes_values() {
    let fake = Arc::new(FakeSource::default());
    let server = start(fake.clone()).await;
    let reply = get(server.local_addr(), "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let parsed = parse(&reply.body).await;
    let families = parsed["families"].as_array().expect("families");

    // One family per name, with the right type (the parser drops a
    // counter's `_total` from the family name).
    let kinds: Vec<(String, String)> = families
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or("").to_owned(),
                f["type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for want in [
        ("meshgate_cluster_requests", "counter"),
        ("meshgate_cluster_latency", "histogram"),
        ("meshgate_cluster_in_flight", "gauge"),
        ("meshgate_listener_connections_active", "gauge"),
        ("meshgate_host_requests", "counter"),
    ] {
        assert_eq!(
            kinds.iter().filter(|(n, _)| n == want.0).count(),
            1,
            "{want:?} in {kinds:?}"
        );
        assert!(
            kinds.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {kinds:?}"
        );
    }
    assert!(
        families
            .iter()
            .all(|f| f["documentation"] == "A test metric.")
    );

    let mut got: Vec<(String, Value, f64)> = families
        .iter()
        .flat_map(|f| f["samples"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["labels"].clone(),
                s["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let mut want = expected_samples(&fake);
    let key = |s: &(String, Value, f64)| format!("{} {}", s.0, s.1);
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
    // The awkward route name came back exactly, escapes undone.
    assert!(
        got.iter()
            .any(|s| s.1["route"] == "we\"ird\\route\nname" && s.2 == 9.0)
    );
    server.shutdown().await;
}
