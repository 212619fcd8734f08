//! `/api/v1/stats` (MOSN's console-sink JSON) and `/api/v1/stats_glob`
//! (totals as `key:value` lines).

use crate::reply::{self, Reply};
use crate::routes::{Call, fields};
use crate::source::{Metric, MetricValue};
use hyper::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// type → namespace → key → value, values as strings (MOSN's shape).
type Grouped = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// MOSN's namespace: the labels joined as `name.value`, the object's own
/// label first (`cluster.c1`, `host.10.0.0.1:20880.cluster.c1`,
/// `cluster.c1.class.2xx`).
fn namespace(metric: &Metric) -> String {
    let mut ns = format!("{}.{}", metric.scope, metric.object);
    for (name, value) in &metric.labels {
        let _ = write!(ns, ".{name}.{value}");
    }
    ns
}

/// The keys and string values of one metric, as MOSN's console sink
/// writes them: counters and gauges as integers; a histogram as
/// `name.50.00%`, `name.90.00%`, `name.99.00%`, `name.99.90%` (ms, two
/// decimals) and `name.count`.
fn entries(metric: &Metric) -> Vec<(String, String)> {
    match &metric.value {
        MetricValue::Counter(v) => vec![(metric.name.to_owned(), v.to_string())],
        MetricValue::Gauge(v) => vec![(metric.name.to_owned(), v.to_string())],
        MetricValue::Histogram(h) => {
            let name = metric.name;
            vec![
                (format!("{name}.50.00%"), format!("{:.2}", h.p50_ms)),
                (format!("{name}.90.00%"), format!("{:.2}", h.p90_ms)),
                (format!("{name}.99.00%"), format!("{:.2}", h.p99_ms)),
                (format!("{name}.99.90%"), format!("{:.2}", h.p999_ms)),
                (format!("{name}.count"), h.count.to_string()),
            ]
        }
    }
}

fn group(metrics: &[Metric]) -> Grouped {
    let mut all = Grouped::new();
    for metric in metrics {
        let data = all
            .entry(metric.scope.to_owned())
            .or_default()
            .entry(namespace(metric))
            .or_default();
        data.extend(entries(metric));
    }
    all
}

/// `/api/v1/stats`: `{"<type>": {"<namespace>": {"<metric>": "<value>"}}}`.
/// `?key=` keeps one type (`?key=cluster`) or one namespace
/// (`?key=cluster.c1`); a key that matches nothing answers 200 with MOSN's
/// `no metrics key: ...` line. More than one parameter: 400.
pub(crate) fn stats(call: &Call<'_>) -> Reply {
    let all = group(&call.app.source.metrics());
    let query = call.query();
    let key = match query.as_slice() {
        [] => return reply::json_pretty(StatusCode::OK, &all),
        [(name, value)] if name == "key" => value,
        [(name, _)] => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                "unknown stats parameter",
                fields([("parameter", json!(name)), ("expected", json!("key"))]),
            );
        }
        _ => return reply::bad_request("only support one parameter"),
    };
    if let Some(of_type) = all.get(key.as_str()) {
        return reply::json_pretty(StatusCode::OK, &json!({ key.as_str(): of_type }));
    }
    for (kind, namespaces) in &all {
        if let Some(data) = namespaces.get(key.as_str()) {
            return reply::json_pretty(
                StatusCode::OK,
                &json!({ kind.as_str(): { key.as_str(): data } }),
            );
        }
    }
    reply::text(StatusCode::OK, format!("no metrics key: {key}"))
}

/// `/api/v1/stats_glob`: the process totals as MOSN's `key:value` lines,
/// one per type, metric and extra labels, summed over objects
/// (`cluster.requests_total:42`, `cluster.responses_total.class.2xx:40`);
/// a histogram contributes its `name.count`. Sorted by key.
pub(crate) fn stats_glob(call: &Call<'_>) -> Reply {
    let mut totals: BTreeMap<String, i128> = BTreeMap::new();
    for metric in call.app.source.metrics() {
        let mut key = format!("{}.{}", metric.scope, metric.name);
        let value = match &metric.value {
            MetricValue::Counter(v) => i128::from(*v),
            MetricValue::Gauge(v) => i128::from(*v),
            MetricValue::Histogram(h) => {
                key.push_str(".count");
                i128::from(h.count)
            }
        };
        for (name, label) in &metric.labels {
            let _ = write!(key, ".{name}.{label}");
        }
        *totals.entry(key).or_default() += value;
    }
    let mut out = String::new();
    for (key, value) in totals {
        let _ = writeln!(out, "{key}:{value}");
    }
    reply::text(StatusCode::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::HistogramView;

    fn metric(
        scope: &'static str,
        object: &str,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        value: MetricValue,
    ) -> Metric {
        Metric {
            scope,
            object: object.to_owned(),
            name,
            help: "h",
            labels,
            value,
        }
    }

    #[test]
    fn groups_by_type_then_namespace_like_mosn() {
        let all = group(&[
            metric(
                "cluster",
                "c1",
                "requests_total",
                vec![],
                MetricValue::Counter(5),
            ),
            metric("cluster", "c1", "in_flight", vec![], MetricValue::Gauge(-1)),
            metric(
                "cluster",
                "c1",
                "responses_total",
                vec![("class", "2xx".into())],
                MetricValue::Counter(4),
            ),
            metric(
                "host",
                "10.0.0.1:1",
                "latency",
                vec![("cluster", "c1".into())],
                MetricValue::Histogram(HistogramView {
                    count: 3,
                    p50_ms: 1.0,
                    p90_ms: 2.5,
                    p99_ms: 3.0,
                    p999_ms: 4.126,
                    ..Default::default()
                }),
            ),
        ]);
        assert_eq!(all["cluster"]["cluster.c1"]["requests_total"], "5");
        assert_eq!(all["cluster"]["cluster.c1"]["in_flight"], "-1");
        assert_eq!(
            all["cluster"]["cluster.c1.class.2xx"]["responses_total"],
            "4"
        );
        let host = &all["host"]["host.10.0.0.1:1.cluster.c1"];
        assert_eq!(host["latency.50.00%"], "1.00");
        assert_eq!(host["latency.90.00%"], "2.50");
        assert_eq!(host["latency.99.90%"], "4.13");
        assert_eq!(host["latency.count"], "3");
    }
}
