//! The contract between the admin server and whatever it describes.
//!
//! The gateway implements [`AdminSource`]; tests implement it with a fake.
//! Every method returns a snapshot owned by the caller, so the admin server
//! never holds a gateway lock while it renders or writes a response.

use serde::Serialize;
use std::time::Duration;

/// What the admin server asks of the process it describes.
pub trait AdminSource: Send + Sync + 'static {
    /// The build's version string (`meshgate 0.1.0 (…)`).
    fn version(&self) -> String;

    /// The lifecycle state now.
    fn state(&self) -> StateView;

    /// The running configuration as a MOSN-shaped JSON document
    /// (`servers`, `cluster_manager`, `admin`, …). The admin server selects
    /// the parts a `config_dump` query asks for and redacts secrets itself,
    /// so the source may return keys and passwords as configured.
    fn config(&self) -> serde_json::Value;

    /// Every metric now.
    fn metrics(&self) -> Vec<Metric>;

    /// The upstream clusters with their hosts.
    fn clusters(&self) -> Vec<ClusterView>;

    /// The listeners.
    fn listeners(&self) -> Vec<ListenerView>;

    /// The current level of the process's log (`trace` … `error`, `off`).
    fn log_level(&self) -> String;

    /// Changes the level of the error log `log_path` names (MOSN's
    /// `update_loglevel`: a logger's output path, `""` when the body gave
    /// none); the next log line obeys it. `Err` carries a message for the
    /// 400 reply: a path naming no log of this process, or a level the log
    /// does not take.
    fn set_log_level(&self, log_path: &str, level: &str) -> Result<(), String>;

    /// Turns one named logger on or off (MOSN's `enable_log` /
    /// `disable_log`; `logger` is a log name such as an access log path or
    /// `default`). `Err` names what is unknown.
    fn set_log_enabled(&self, logger: &str, enabled: bool) -> Result<(), String>;
}

/// The lifecycle state, as MOSN's `/api/v1/states` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateView {
    /// `Starting`, `Running`, `Draining` or `Stopped`.
    pub name: String,
    /// How long the process has run.
    #[serde(skip)]
    pub uptime: Duration,
}

/// One metric: a counter, gauge or histogram of one object.
///
/// `scope` and `object` place it the way MOSN's `/api/v1/stats` groups
/// metrics (`{"cluster": {"<name>": {"<metric>": value}}}`); Prometheus sees
/// `meshgate_<scope>_<name>{<scope>="<object>", <labels>…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// The kind of object: `listener`, `protocol`, `route`, `cluster`,
    /// `host`, `pool`, `process`.
    pub scope: &'static str,
    /// Which one: a listener, cluster or protocol name, a host address.
    pub object: String,
    /// The metric's name within its scope, snake_case (`requests_total`).
    pub name: &'static str,
    /// One line of help text for the Prometheus `# HELP` line.
    pub help: &'static str,
    /// Further labels (a host's cluster, a status class).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: MetricValue,
}

/// A metric's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricValue {
    /// Only ever grows (until restart).
    Counter(u64),
    /// Goes up and down.
    Gauge(i64),
    /// A distribution of durations.
    Histogram(HistogramView),
}

/// A latency histogram, in seconds for Prometheus and milliseconds for
/// people.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HistogramView {
    /// `(upper bound in seconds, cumulative count)`, ascending; the last
    /// bound may be `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
    /// Percentiles in milliseconds: p50, p90, p99, p99.9.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
}

/// An upstream cluster as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    /// Its name.
    pub name: String,
    /// `lb_type` as configured (`LB_ROUNDROBIN`, …).
    pub lb_type: String,
    /// Its hosts.
    pub hosts: Vec<HostView>,
}

/// One upstream host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostView {
    /// `ip:port`.
    pub address: String,
    /// LB weight.
    pub weight: u32,
    /// `healthy`, `unhealthy`, `ejected` (outlier), …
    pub health: String,
    /// Requests sent and not yet answered.
    pub in_flight: u64,
    /// Open upstream connections.
    pub connections: u64,
    /// Requests ever sent.
    pub requests_total: u64,
    /// The host's metadata (subset keys); shown as a JSON object.
    #[serde(serialize_with = "pairs_as_object")]
    pub metadata: Vec<(String, String)>,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerView {
    /// Its name.
    pub name: String,
    /// The bound address (`127.0.0.1:2045`).
    pub address: String,
    /// `downstream_protocol` as configured (`Auto`, `bolt`, …).
    pub protocol: String,
    /// Connections open now.
    pub active_connections: u64,
    /// Connections ever accepted.
    pub total_connections: u64,
}

/// `[(k, v)]` as `{"k": "v"}` (later duplicates win, as in a JSON object).
fn pairs_as_object<S: serde::Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}
