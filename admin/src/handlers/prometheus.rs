//! `/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Each metric becomes `meshgate_<scope>_<name>{<scope>="<object>",
//! <labels>…}`; all samples of one name form one family with one `# HELP`
//! and one `# TYPE` line, in the order the names first appear. A
//! histogram's buckets are cumulative with a final `le="+Inf"` equal to its
//! count, then `_sum` (seconds) and `_count`.

use crate::reply::{self, Reply};
use crate::routes::Call;
use crate::source::{Metric, MetricValue};
use hyper::StatusCode;
use std::fmt::Write as _;

/// The prefix of every metric name.
const PREFIX: &str = "meshgate";

/// `/metrics`.
pub(crate) fn metrics(call: &Call<'_>) -> Reply {
    reply::body(
        StatusCode::OK,
        reply::PROMETHEUS,
        render(&call.app.source.metrics()),
    )
}

fn kind(value: &MetricValue) -> &'static str {
    match value {
        MetricValue::Counter(_) => "counter",
        MetricValue::Gauge(_) => "gauge",
        MetricValue::Histogram(_) => "histogram",
    }
}

/// The exposition text of `metrics`.
pub(crate) fn render(metrics: &[Metric]) -> String {
    // Families in first-seen order; a metric whose kind differs from its
    // family's first one cannot be expressed and is left out.
    let mut families: Vec<(String, &Metric, Vec<&Metric>)> = Vec::new();
    for metric in metrics {
        let name = sanitize(&format!("{PREFIX}_{}_{}", metric.scope, metric.name));
        match families.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, first, members)) => {
                if kind(&first.value) == kind(&metric.value) {
                    members.push(metric);
                } else {
                    tracing::warn!(metric = %name, "metric kind differs within one family: left out of /metrics");
                }
            }
            None => families.push((name, metric, vec![metric])),
        }
    }
    let mut out = String::new();
    for (name, first, members) in &families {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(first.help));
        let _ = writeln!(out, "# TYPE {name} {}", kind(&first.value));
        for metric in members {
            write_samples(&mut out, name, metric);
        }
    }
    out
}

fn write_samples(out: &mut String, name: &str, metric: &Metric) {
    let labels = labels(metric);
    match &metric.value {
        MetricValue::Counter(v) => {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        MetricValue::Gauge(v) => {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        MetricValue::Histogram(h) => {
            let mut saw_inf = false;
            for (bound, count) in &h.buckets {
                saw_inf |= bound.is_infinite() && bound.is_sign_positive();
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{}\"}} {count}",
                    float(*bound)
                );
            }
            if !saw_inf {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            }
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", float(h.sum_seconds));
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
    }
}

/// `scope="object",k="v",…` (the object's label first; an extra label
/// with the scope's own name would repeat it and is dropped).
fn labels(metric: &Metric) -> String {
    let scope = sanitize(metric.scope);
    let mut out = format!("{scope}=\"{}\"", escape_label(&metric.object));
    for (name, value) in &metric.labels {
        let name = sanitize(name);
        if name != scope && name != "le" {
            let _ = write!(out, ",{name}=\"{}\"", escape_label(value));
        }
    }
    out
}

/// A valid metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, anything
/// else becomes `_`.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text escapes `\` and newlines.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go-style floats: `+Inf`, `-Inf`, `NaN`, otherwise the shortest form.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
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
            help: "Help with \\ and\nnewline.",
            labels,
            value,
        }
    }

    #[test]
    fn one_family_per_name_with_escaped_labels() {
        let text = render(&[
            metric(
                "cluster",
                "a\"b\\c\nd",
                "requests_total",
                vec![],
                MetricValue::Counter(1),
            ),
            metric(
                "listener",
                "l",
                "connections_active",
                vec![],
                MetricValue::Gauge(3),
            ),
            metric(
                "cluster",
                "c2",
                "requests_total",
                vec![("class", "2xx".into())],
                MetricValue::Counter(2),
            ),
        ]);
        assert_eq!(
            text,
            "# HELP meshgate_cluster_requests_total Help with \\\\ and\\nnewline.\n\
             # TYPE meshgate_cluster_requests_total counter\n\
             meshgate_cluster_requests_total{cluster=\"a\\\"b\\\\c\\nd\"} 1\n\
             meshgate_cluster_requests_total{cluster=\"c2\",class=\"2xx\"} 2\n\
             # HELP meshgate_listener_connections_active Help with \\\\ and\\nnewline.\n\
             # TYPE meshgate_listener_connections_active gauge\n\
             meshgate_listener_connections_active{listener=\"l\"} 3\n"
        );
    }

    #[test]
    fn histogram_gets_an_inf_bucket_sum_and_count() {
        let h = HistogramView {
            buckets: vec![(0.001, 1), (0.01, 3)],
            count: 4,
            sum_seconds: 0.5,
            ..Default::default()
        };
        let text = render(&[metric(
            "cluster",
            "c",
            "latency",
            vec![],
            MetricValue::Histogram(h),
        )]);
        assert!(text.contains("meshgate_cluster_latency_bucket{cluster=\"c\",le=\"0.001\"} 1\n"));
        assert!(text.contains("meshgate_cluster_latency_bucket{cluster=\"c\",le=\"0.01\"} 3\n"));
        assert!(text.contains("meshgate_cluster_latency_bucket{cluster=\"c\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("meshgate_cluster_latency_sum{cluster=\"c\"} 0.5\n"));
        assert!(text.contains("meshgate_cluster_latency_count{cluster=\"c\"} 4\n"));
        assert!(text.contains("# TYPE meshgate_cluster_latency histogram\n"));
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("a-b.c"), "a_b_c");
        assert_eq!(sanitize("9x"), "_9x");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(1.0), "1");
    }
}
