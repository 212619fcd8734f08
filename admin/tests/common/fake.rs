//! A fake [`AdminSource`] with fixed, recognisable numbers and a config
//! with secrets at several depths.

use meshgate_admin::{
    AdminSource, ClusterView, HistogramView, HostView, ListenerView, Metric, MetricValue, StateView,
};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// A private key the config holds and no response may show.
pub const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
/// A password the config holds at depth.
pub const PASSWORD: &str = "hunter2-very-secret";
/// The path the fake's process log answers to in `update_loglevel` (as a
/// gateway configured with this `default_log_path` would).
pub const FAKE_DEFAULT_LOG_PATH: &str = "/home/admin/logs/mosn/default.log";

/// The fake. Its numbers: cluster `bolt_cluster` 1234 requests, 1200 2xx
/// and 34 5xx responses, 7 error replies (`no_healthy_upstream`), 3
/// retries, 2 timeouts, 5 in flight, a latency histogram of 1234
/// observations; route `echo_route` 1234 requests and 41 errors; listener
/// `bolt_listener` 17 active / 321 total connections; hosts
/// `127.0.0.1:12200` (healthy, 800 requests) and `127.0.0.1:12201`
/// (unhealthy, 434 requests).
#[derive(Debug)]
pub struct FakeSource {
    pub state: Mutex<String>,
    pub level: Mutex<String>,
    pub loggers: Mutex<Vec<(String, bool)>>,
    /// Added to every counter, so a test can make them grow.
    pub bump: Mutex<u64>,
}

impl Default for FakeSource {
    fn default() -> Self {
        Self {
            state: Mutex::new("Running".to_owned()),
            level: Mutex::new("info".to_owned()),
            loggers: Mutex::new(vec![("default".to_owned(), true)]),
            bump: Mutex::new(0),
        }
    }
}

fn metric(
    scope: &'static str,
    object: &str,
    name: &'static str,
    labels: &[(&'static str, &str)],
    value: MetricValue,
) -> Metric {
    Metric {
        scope,
        object: object.to_owned(),
        name,
        help: "A test metric.",
        labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        value,
    }
}

/// The latency histogram: bounds in seconds, cumulative counts.
pub fn latency() -> HistogramView {
    HistogramView {
        buckets: vec![
            (0.001, 400),
            (0.005, 1100),
            (0.025, 1220),
            (0.1, 1234),
            (f64::INFINITY, 1234),
        ],
        count: 1234,
        sum_seconds: 3.25,
        p50_ms: 1.5,
        p90_ms: 4.25,
        p99_ms: 21.75,
        p999_ms: 88.5,
    }
}

impl AdminSource for FakeSource {
    fn version(&self) -> String {
        "meshgate 0.1.0 (fake)".to_owned()
    }

    fn state(&self) -> StateView {
        StateView {
            name: self.state.lock().expect("lock").clone(),
            uptime: Duration::from_secs(3723),
        }
    }

    fn config(&self) -> Value {
        json!({
            "servers": [{
                "default_log_level": "INFO",
                "listeners": [{
                    "name": "bolt_listener",
                    "address": "127.0.0.1:2045",
                    "filter_chains": [{
                        "tls_context": {"status": true, "cert_chain": "CERTIFICATE", "private_key": PRIVATE_KEY},
                        "transport_socket": {"typed_config": {"tls_certificate": {
                            "certificate_chain": "CHAIN", "private_key": {"inline_string": PRIVATE_KEY}}}},
                        "filters": [{"type": "proxy", "config": {"downstream_protocol": "bolt", "router_config_name": "bolt_router"}}]
                    }]
                }, {"name": "dubbo_listener", "address": "127.0.0.1:20880"}],
                "routers": [{
                    "router_config_name": "bolt_router",
                    "virtual_hosts": [{"name": "vh", "domains": ["*"], "routers": [{"match": {"headers": [{"name": "service", "value": ".*"}]}, "route": {"cluster_name": "bolt_cluster"}}]}]
                }]
            }],
            "cluster_manager": {
                "tls_context": {"status": false},
                "clusters": [{
                    "name": "bolt_cluster", "type": "SIMPLE", "lb_type": "LB_ROUNDROBIN",
                    "hosts": [{"address": "127.0.0.1:12200"}, {"address": "127.0.0.1:12201"}],
                    "tls_context": {"status": true, "private_key": PRIVATE_KEY, "ca_cert": "CA"},
                    "health_check": {"service_name": "x", "auth": {"password": PASSWORD}}
                }]
            },
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 34901}}}
        })
    }

    fn metrics(&self) -> Vec<Metric> {
        let b = *self.bump.lock().expect("lock");
        let c = |v: u64| MetricValue::Counter(v + b);
        let host_a = "127.0.0.1:12200";
        let host_b = "127.0.0.1:12201";
        vec![
            metric(
                "listener",
                "bolt_listener",
                "connections_active",
                &[],
                MetricValue::Gauge(17),
            ),
            metric(
                "listener",
                "bolt_listener",
                "connections_total",
                &[],
                c(321),
            ),
            metric(
                "listener",
                "bolt_listener",
                "bytes_in_total",
                &[],
                c(99_000),
            ),
            metric(
                "listener",
                "bolt_listener",
                "bytes_out_total",
                &[],
                c(88_000),
            ),
            metric(
                "listener",
                "bolt_listener",
                "detect_failures_total",
                &[("reason", "no_match")],
                c(2),
            ),
            metric("protocol", "bolt", "requests_total", &[], c(1234)),
            metric("route", "echo_route", "requests_total", &[], c(1234)),
            metric("route", "echo_route", "errors_total", &[], c(41)),
            metric("cluster", "bolt_cluster", "requests_total", &[], c(1234)),
            metric(
                "cluster",
                "bolt_cluster",
                "responses_total",
                &[("class", "2xx")],
                c(1200),
            ),
            metric(
                "cluster",
                "bolt_cluster",
                "responses_total",
                &[("class", "5xx")],
                c(34),
            ),
            metric(
                "cluster",
                "bolt_cluster",
                "error_replies_total",
                &[("reason", "no_healthy_upstream")],
                c(7),
            ),
            metric("cluster", "bolt_cluster", "retries_total", &[], c(3)),
            metric("cluster", "bolt_cluster", "timeouts_total", &[], c(2)),
            metric(
                "cluster",
                "bolt_cluster",
                "in_flight",
                &[],
                MetricValue::Gauge(5),
            ),
            metric(
                "cluster",
                "bolt_cluster",
                "latency",
                &[],
                MetricValue::Histogram(latency()),
            ),
            metric(
                "host",
                host_a,
                "requests_total",
                &[("cluster", "bolt_cluster")],
                c(800),
            ),
            metric(
                "host",
                host_b,
                "requests_total",
                &[("cluster", "bolt_cluster")],
                c(434),
            ),
            metric(
                "host",
                host_a,
                "in_flight",
                &[("cluster", "bolt_cluster")],
                MetricValue::Gauge(3),
            ),
            metric(
                "pool",
                host_a,
                "connections",
                &[("cluster", "bolt_cluster")],
                MetricValue::Gauge(2),
            ),
            metric(
                "pool",
                host_a,
                "reconnects_total",
                &[("cluster", "bolt_cluster")],
                c(1),
            ),
            // A label value that needs escaping in the exposition format.
            metric("route", "we\"ird\\route\nname", "requests_total", &[], c(9)),
        ]
    }

    fn clusters(&self) -> Vec<ClusterView> {
        vec![ClusterView {
            name: "bolt_cluster".to_owned(),
            lb_type: "LB_ROUNDROBIN".to_owned(),
            hosts: vec![
                HostView {
                    address: "127.0.0.1:12200".to_owned(),
                    weight: 100,
                    health: "healthy".to_owned(),
                    in_flight: 3,
                    connections: 2,
                    requests_total: 800,
                    metadata: vec![("zone".to_owned(), "gz01".to_owned())],
                },
                HostView {
                    address: "127.0.0.1:12201".to_owned(),
                    weight: 50,
                    health: "unhealthy".to_owned(),
                    in_flight: 0,
                    connections: 0,
                    requests_total: 434,
                    metadata: vec![],
                },
            ],
        }]
    }

    fn listeners(&self) -> Vec<ListenerView> {
        vec![ListenerView {
            name: "bolt_listener".to_owned(),
            address: "127.0.0.1:2045".to_owned(),
            protocol: "bolt".to_owned(),
            active_connections: 17,
            total_connections: 321,
        }]
    }

    fn log_level(&self) -> String {
        self.level.lock().expect("lock").clone()
    }

    fn set_log_level(&self, log_path: &str, level: &str) -> Result<(), String> {
        if !["", "default", FAKE_DEFAULT_LOG_PATH].contains(&log_path) {
            return Err(format!("no log at {log_path:?}"));
        }
        *self.level.lock().expect("lock") = level.to_owned();
        Ok(())
    }

    fn set_log_enabled(&self, logger: &str, enabled: bool) -> Result<(), String> {
        let mut loggers = self.loggers.lock().expect("lock");
        match loggers.iter_mut().find(|(name, _)| name == logger) {
            Some(entry) => {
                entry.1 = enabled;
                Ok(())
            }
            None => Err(format!("no logger named {logger:?}")),
        }
    }
}
