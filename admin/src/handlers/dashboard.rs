//! The dashboard: one page and its script and style sheet, compiled into
//! the binary (no Node, no CDN at run time), and `/api/v1/dashboard`, the
//! JSON it polls every second.

use crate::reply::{self, Reply};
use crate::routes::Call;
use crate::source::{Metric, MetricValue};
use hyper::StatusCode;
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const PAGE: &str = include_str!("../../assets/dashboard.html");
const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

/// `/dashboard` (and `/` for a browser).
pub(crate) fn page(_call: &Call<'_>) -> Reply {
    reply::body(StatusCode::OK, reply::HTML, PAGE)
}

/// `/dashboard/app.js`.
pub(crate) fn script(_call: &Call<'_>) -> Reply {
    reply::body(StatusCode::OK, reply::JAVASCRIPT, SCRIPT)
}

/// `/dashboard/app.css`.
pub(crate) fn style(_call: &Call<'_>) -> Reply {
    reply::body(StatusCode::OK, reply::CSS, STYLE)
}

/// `/api/v1/dashboard`: one snapshot of everything the page shows (the
/// shape is in docs/admin.md). Rates are left to the page, which keeps
/// the previous snapshot: this endpoint stays stateless.
pub(crate) fn data(call: &Call<'_>) -> Reply {
    let source = &call.app.source;
    let state = source.state();
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let metrics: Vec<Value> = source.metrics().iter().map(metric_json).collect();
    let body = json!({
        "version": source.version(),
        "time_ms": time_ms,
        "state": { "name": state.name, "uptime_seconds": state.uptime.as_secs_f64() },
        "log_level": source.log_level(),
        "admin_uptime_seconds": call.app.started.elapsed().as_secs_f64(),
        "metrics": metrics,
        "clusters": source.clusters(),
        "listeners": source.listeners(),
    });
    reply::json_compact(StatusCode::OK, &body)
}

/// `{"scope", "object", "name", "labels": {..}, "type", "value"}`; a
/// histogram's value is `{"count", "sum_seconds", "p50_ms", "p90_ms",
/// "p99_ms", "p999_ms"}` (buckets are for `/metrics`).
fn metric_json(metric: &Metric) -> Value {
    let labels: Map<String, Value> = metric
        .labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect();
    let (kind, value) = match &metric.value {
        MetricValue::Counter(v) => ("counter", json!(v)),
        MetricValue::Gauge(v) => ("gauge", json!(v)),
        MetricValue::Histogram(h) => (
            "histogram",
            json!({
                "count": h.count, "sum_seconds": h.sum_seconds,
                "p50_ms": h.p50_ms, "p90_ms": h.p90_ms, "p99_ms": h.p99_ms, "p999_ms": h.p999_ms,
            }),
        ),
    };
    json!({
        "scope": metric.scope,
        "object": metric.object,
        "name": metric.name,
        "labels": labels,
        "type": kind,
        "value": value,
    })
}
