//! The statistics as the admin API's [`Metric`]s (`scope` / `object` /
//! `name`, as `docs/metrics.md` lists them).

use super::histogram::HistogramSnapshot;
use super::listener::ListenerCounts;
use super::reason::ErrorReason;
use super::request::{ClusterStats, HostRequestStats};
use super::{GatewayStats, entry};
use crate::config::GatewayConfig;
use crate::server::TcpProxyCounts;
use crate::upstream::Upstreams;
use meshgate_admin::{HistogramView, Metric, MetricValue};
use meshgate_cluster::pool::PoolCounters;
use meshgate_cluster::{BreakerCounters, HealthCounters};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn gauge(value: &AtomicI64) -> i64 {
    value.load(Ordering::Relaxed)
}

/// Collects metrics of one object.
struct Out<'a> {
    metrics: &'a mut Vec<Metric>,
    scope: &'static str,
    object: String,
    labels: Vec<(&'static str, String)>,
}

impl Out<'_> {
    fn push(&mut self, name: &'static str, help: &'static str, value: MetricValue) {
        self.push_labelled(name, help, None, value);
    }

    fn push_labelled(
        &mut self,
        name: &'static str,
        help: &'static str,
        label: Option<(&'static str, &str)>,
        value: MetricValue,
    ) {
        let mut labels = self.labels.clone();
        if let Some((key, value)) = label {
            labels.push((key, value.to_owned()));
        }
        self.metrics.push(Metric {
            scope: self.scope,
            object: self.object.clone(),
            name,
            help,
            labels,
            value,
        });
    }

    fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.push(name, help, MetricValue::Counter(value));
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, value: i64) {
        self.push(name, help, MetricValue::Gauge(value));
    }

    fn error_replies(&mut self, help: &'static str, counters: &[AtomicU64]) {
        for reason in ErrorReason::ALL {
            let value = MetricValue::Counter(get(&counters[reason.index()]));
            self.push_labelled(
                "error_replies_total",
                help,
                Some(("reason", reason.as_str())),
                value,
            );
        }
    }

    fn responses(&mut self, help: &'static str, ok: &AtomicU64, error: &AtomicU64) {
        for (class, counter) in [("ok", ok), ("error", error)] {
            let value = MetricValue::Counter(get(counter));
            self.push_labelled("responses_total", help, Some(("class", class)), value);
        }
    }
}

/// A histogram as the admin API shows it.
pub fn histogram_view(snapshot: &HistogramSnapshot) -> HistogramView {
    let ms = |q| snapshot.quantile_micros(q) / 1000.0;
    HistogramView {
        buckets: snapshot.prometheus_buckets(),
        count: snapshot.count(),
        sum_seconds: snapshot.sum().as_secs_f64(),
        p50_ms: ms(0.5),
        p90_ms: ms(0.9),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
    }
}

/// Every metric of the gateway now: the running configuration's
/// listeners, routes, clusters and hosts, every protocol seen, and the
/// open pools.
pub fn metrics(stats: &GatewayStats, config: &GatewayConfig, upstreams: &Upstreams) -> Vec<Metric> {
    let mut metrics = Vec::new();
    out(&mut metrics, "process", "meshgate", Vec::new()).push(
        "uptime_seconds",
        "Seconds since the gateway started.",
        MetricValue::Gauge(i64::try_from(stats.uptime().as_secs()).unwrap_or(i64::MAX)),
    );
    for spec in &config.listeners {
        listener(
            &mut out(&mut metrics, "listener", &spec.name, Vec::new()),
            &stats.listener(&spec.name).snapshot(),
        );
        tcp_proxy_metrics(
            &mut out(&mut metrics, "listener", &spec.name, Vec::new()),
            &stats.listener(&spec.name).tcp_proxy().snapshot(),
        );
    }
    let mut protocols: Vec<_> = stats
        .protocols
        .iter()
        .map(|e| (e.key().clone(), std::sync::Arc::clone(e.value())))
        .collect();
    protocols.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, protocol) in protocols {
        let mut o = out(&mut metrics, "protocol", &name, Vec::new());
        o.counter(
            "requests_total",
            "Requests received.",
            get(&protocol.requests),
        );
        o.error_replies(
            "Requests the gateway answered itself, by reason.",
            &protocol.error_replies,
        );
    }
    for (router, table) in &config.routers {
        super::for_each_route(router, table, |name, _| {
            let route = entry(&stats.routes, name.clone());
            let mut o = out(&mut metrics, "route", &name, Vec::new());
            o.counter(
                "requests_total",
                "Requests the route matched.",
                get(&route.requests),
            );
            o.counter(
                "errors_total",
                "Requests of the route answered with an error (local or upstream).",
                get(&route.errors),
            );
        });
    }
    for cluster in config.clusters.clusters() {
        let name = cluster.name();
        cluster_metrics(
            &mut out(&mut metrics, "cluster", name, Vec::new()),
            &entry(&stats.clusters, name.to_owned()),
        );
        breaker_metrics(
            &mut out(&mut metrics, "cluster", name, Vec::new()),
            cluster.breaker().counters(),
        );
        for host in cluster.hosts().hosts() {
            let key = (name.to_owned(), host.address());
            let labels = vec![("cluster", name.to_owned())];
            host_metrics(
                &mut out(&mut metrics, "host", host.address_text(), labels),
                &entry(&stats.hosts, key),
                host.is_healthy(),
            );
            health_metrics(
                &mut out(
                    &mut metrics,
                    "host",
                    host.address_text(),
                    vec![("cluster", name.to_owned())],
                ),
                host.health().counters(),
            );
        }
    }
    upstreams.for_each(|addr, protocol, counters| {
        let cluster = config
            .clusters
            .clusters()
            .find(|c| c.hosts().hosts().iter().any(|h| h.address() == addr))
            .map_or_else(String::new, |c| c.name().to_owned());
        let labels = vec![("cluster", cluster), ("protocol", protocol.to_owned())];
        pool_metrics(
            &mut out(&mut metrics, "pool", &addr.to_string(), labels),
            counters,
        );
    });
    metrics
}

fn out<'a>(
    metrics: &'a mut Vec<Metric>,
    scope: &'static str,
    object: &str,
    labels: Vec<(&'static str, String)>,
) -> Out<'a> {
    Out {
        metrics,
        scope,
        object: object.to_owned(),
        labels,
    }
}

fn listener(o: &mut Out<'_>, counts: &ListenerCounts) {
    o.gauge(
        "connections_active",
        "Downstream connections open now.",
        counts.active,
    );
    o.counter(
        "connections_total",
        "Downstream connections accepted.",
        counts.accepted,
    );
    o.counter(
        "bytes_in_total",
        "Bytes read from downstream connections.",
        counts.bytes_in,
    );
    o.counter(
        "bytes_out_total",
        "Bytes written to downstream connections.",
        counts.bytes_out,
    );
    o.counter(
        "detected_total",
        "Connections whose protocol was detected.",
        counts.detected,
    );
    o.counter(
        "refused_over_limit_total",
        "Connections closed on accept because the listener held max_connections.",
        counts.refused_over_limit,
    );
    let help = "Connections closed because protocol detection failed, by reason.";
    for (reason, value) in [
        ("no_match", counts.detect_no_match),
        ("timeout", counts.detect_timeout),
        ("closed", counts.detect_closed),
        ("io", counts.detect_io_error),
    ] {
        o.push_labelled(
            "detect_failures_total",
            help,
            Some(("reason", reason)),
            MetricValue::Counter(value),
        );
    }
}

fn cluster_metrics(o: &mut Out<'_>, c: &ClusterStats) {
    o.counter(
        "requests_total",
        "Requests routed to the cluster.",
        get(&c.requests),
    );
    o.responses(
        "Upstream responses, by class (error: an error status).",
        &c.responses_ok,
        &c.responses_error,
    );
    o.error_replies(
        "Requests of the cluster the gateway answered itself, by reason.",
        &c.error_replies,
    );
    o.counter(
        "retries_total",
        "Tries retried on another host.",
        get(&c.retries),
    );
    o.counter(
        "timeouts_total",
        "Tries and requests that timed out.",
        get(&c.timeouts),
    );
    o.gauge(
        "in_flight",
        "Requests of the cluster not answered yet.",
        gauge(&c.in_flight),
    );
    o.push(
        "latency",
        "Request start to reply, seconds.",
        MetricValue::Histogram(histogram_view(&c.latency.snapshot())),
    );
}

fn host_metrics(o: &mut Out<'_>, h: &HostRequestStats, healthy: bool) {
    o.counter(
        "requests_total",
        "Tries sent to the host.",
        get(&h.requests),
    );
    o.responses(
        "Host responses, by class (error: an error status).",
        &h.responses_ok,
        &h.responses_error,
    );
    o.gauge(
        "in_flight",
        "Tries to the host not answered yet.",
        gauge(&h.in_flight),
    );
    o.gauge(
        "healthy",
        "1 when the host takes traffic, else 0.",
        i64::from(healthy),
    );
    o.push(
        "latency",
        "Try sent to upstream response, seconds.",
        MetricValue::Histogram(histogram_view(&h.latency.snapshot())),
    );
}

fn pool_metrics(o: &mut Out<'_>, p: &PoolCounters) {
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    o.gauge(
        "connections",
        "Upstream connections open now.",
        as_gauge(p.open_connections()),
    );
    o.gauge(
        "in_flight",
        "Requests sent on the pool's connections and not answered yet.",
        as_gauge(PoolCounters::get(&p.in_flight)),
    );
    o.counter(
        "reconnects_total",
        "Connect attempts that replace a closed, failed or rotated connection.",
        PoolCounters::get(&p.reconnects),
    );
}

fn tcp_proxy_metrics(o: &mut Out<'_>, t: &TcpProxyCounts) {
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    o.counter(
        "tcp_proxy_connections_total",
        "Connections the TCP proxy took (fallbacks included).",
        t.connections,
    );
    o.counter(
        "tcp_proxy_fallbacks_total",
        "Connections an Auto listener handed to the TCP proxy after detection found no protocol.",
        t.fallbacks,
    );
    o.gauge(
        "tcp_proxy_connections_active",
        "Connections the TCP proxy carries now.",
        as_gauge(t.active),
    );
    o.counter(
        "tcp_proxy_no_route_total",
        "TCP proxy connections closed because no cluster matched.",
        t.no_route,
    );
    o.counter(
        "tcp_proxy_connect_failures_total",
        "TCP proxy upstream connect attempts that failed or timed out.",
        t.connect_failures,
    );
    o.counter(
        "tcp_proxy_no_upstream_total",
        "TCP proxy connections closed because every upstream attempt failed.",
        t.no_upstream,
    );
    o.counter(
        "tcp_proxy_idle_timeouts_total",
        "TCP proxy connections closed after idle_timeout without a byte.",
        t.idle_timeouts,
    );
    o.counter(
        "tcp_proxy_bytes_to_upstream_total",
        "Bytes the TCP proxy sent to upstreams.",
        t.bytes_to_upstream,
    );
    o.counter(
        "tcp_proxy_bytes_to_downstream_total",
        "Bytes the TCP proxy sent back to clients.",
        t.bytes_to_downstream,
    );
}

fn breaker_metrics(o: &mut Out<'_>, b: &BreakerCounters) {
    let help = "Requests, connections or retries the circuit breaker refused, by resource.";
    for (resource, counter) in [
        ("requests", &b.requests_overflow),
        ("pending_requests", &b.pending_overflow),
        ("connections", &b.connections_overflow),
        ("retries", &b.retries_overflow),
        ("retry_budget", &b.retry_budget_overflow),
    ] {
        o.push_labelled(
            "breaker_overflows_total",
            help,
            Some(("resource", resource)),
            MetricValue::Counter(BreakerCounters::get(counter)),
        );
    }
}

fn health_metrics(o: &mut Out<'_>, h: &HealthCounters) {
    let help = "Active health checks of the host, by result.";
    for (result, counter) in [
        ("success", &h.checks_succeeded),
        ("failure", &h.checks_failed),
    ] {
        o.push_labelled(
            "health_checks_total",
            help,
            Some(("result", result)),
            MetricValue::Counter(HealthCounters::get(counter)),
        );
    }
    o.counter(
        "marked_unhealthy_total",
        "Times active health checks marked the host unhealthy.",
        HealthCounters::get(&h.marked_unhealthy),
    );
    o.counter(
        "marked_healthy_total",
        "Times active health checks marked the host healthy again.",
        HealthCounters::get(&h.marked_healthy),
    );
    o.counter(
        "ejections_total",
        "Times outlier detection ejected the host.",
        HealthCounters::get(&h.ejections),
    );
    o.counter(
        "ejections_refused_total",
        "Ejections outlier detection wanted but max_ejection_percent refused.",
        HealthCounters::get(&h.ejections_refused),
    );
    o.counter(
        "ejection_returns_total",
        "Times an ejected host returned to the load balancers.",
        HealthCounters::get(&h.ejection_returns),
    );
}
