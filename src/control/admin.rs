//! The running gateway as the admin API sees it: [`GatewaySource`]
//! implements `meshgate_admin::AdminSource` over the proxy core (the
//! configuration serving new requests, the stats, the pools), the
//! lifecycle, and the process log's control.

use super::lifecycle::State;
use crate::logging::LogControl;
use crate::proxy::ProxyCore;
use crate::stats;
use meshgate_admin::{
    AdminSource, ClusterView, HostView, ListenerView, Metric, MetricValue, StateView,
};
use meshgate_cluster::HealthFlag;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Turns a named logger other than `default` on or off (the access logs).
/// `Err` says what is unknown or failed.
pub type LoggerSwitch = Arc<dyn Fn(&str, bool) -> Result<(), String> + Send + Sync>;

/// The bound address of each listener, kept by the gateway as it binds
/// and stops them (the configured address says port 0 in tests).
pub type BoundListeners = Arc<RwLock<BTreeMap<String, SocketAddr>>>;

/// The gateway behind the admin API.
pub struct GatewaySource {
    pub(crate) core: Arc<ProxyCore>,
    pub(crate) state: watch::Receiver<State>,
    pub(crate) bound: BoundListeners,
    pub(crate) log: Option<Arc<LogControl>>,
    /// The access logs' switch, when the process has access logs (the
    /// logger name is an access log's path).
    pub(crate) access_logs: Option<LoggerSwitch>,
    /// The access logs' dropped-lines counter, exported as
    /// `access_log_dropped_total` (none: the process has no access logs).
    pub(crate) access_log_dropped: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
}

impl std::fmt::Debug for GatewaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySource")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// MOSN's name for the process log in `enable_log` / `disable_log`.
pub const DEFAULT_LOGGER: &str = "default";

impl GatewaySource {
    /// True when `log_path` (MOSN's `update_loglevel` field) names the
    /// process log: [`DEFAULT_LOGGER`], empty (no path given), `stderr`
    /// (where it writes), or the configured `default_log_path` (MOSN's
    /// name for its default error log; meshgate writes to stderr
    /// whatever it says).
    fn names_process_log(&self, log_path: &str) -> bool {
        if ["", DEFAULT_LOGGER, "stderr"].contains(&log_path) {
            return true;
        }
        let config = self.core.config();
        config.document["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|server| server["default_log_path"].as_str() == Some(log_path))
    }
}

fn health_of(host: &meshgate_cluster::Host) -> &'static str {
    if host.has_health_flag(HealthFlag::FailedOutlierCheck) {
        "ejected"
    } else if host.is_healthy() {
        "healthy"
    } else {
        "unhealthy"
    }
}

impl AdminSource for GatewaySource {
    fn version(&self) -> String {
        format!("meshgate {}", env!("CARGO_PKG_VERSION"))
    }

    fn state(&self) -> StateView {
        StateView {
            name: self.state.borrow().as_str().to_owned(),
            uptime: self.core.stats().uptime(),
        }
    }

    fn config(&self) -> serde_json::Value {
        (*self.core.config().document).clone()
    }

    fn metrics(&self) -> Vec<Metric> {
        let config = self.core.config();
        let mut metrics = stats::metrics(self.core.stats(), &config, self.core.upstreams());
        metrics.extend(self.core.mirrors().metrics());
        if let Some(dropped) = &self.access_log_dropped {
            metrics.push(Metric {
                scope: "process",
                object: "meshgate".to_owned(),
                name: "access_log_dropped_total",
                help: "Access log lines dropped: queue full, write failed, or logged after the log closed.",
                labels: Vec::new(),
                value: MetricValue::Counter(dropped()),
            });
        }
        metrics
    }

    fn clusters(&self) -> Vec<ClusterView> {
        let config = self.core.config();
        let stats = self.core.stats();
        config
            .clusters
            .clusters()
            .map(|cluster| ClusterView {
                name: cluster.name().to_owned(),
                lb_type: cluster.settings().lb_type.mosn_name().to_owned(),
                hosts: cluster
                    .hosts()
                    .hosts()
                    .iter()
                    .map(|host| {
                        let load = host.stats();
                        HostView {
                            address: host.address_text().to_owned(),
                            weight: host.weight(),
                            health: health_of(host).to_owned(),
                            in_flight: meshgate_cluster::HostStats::get(&load.active_requests),
                            connections: meshgate_cluster::HostStats::get(&load.active_connections),
                            requests_total: stats.host_requests(cluster, host),
                            metadata: host
                                .metadata()
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    fn listeners(&self) -> Vec<ListenerView> {
        let config = self.core.config();
        let bound = self.bound.read().unwrap_or_else(|e| e.into_inner());
        config
            .listeners
            .iter()
            .map(|spec| {
                let counts = self.core.stats().listener(&spec.name).snapshot();
                ListenerView {
                    name: spec.name.clone(),
                    address: bound.get(&spec.name).unwrap_or(&spec.addr).to_string(),
                    protocol: spec.protocol_spec.clone(),
                    active_connections: u64::try_from(counts.active).unwrap_or(0),
                    total_connections: counts.accepted,
                }
            })
            .collect()
    }

    fn log_level(&self) -> String {
        self.log
            .as_ref()
            .map_or_else(|| "info".to_owned(), |log| log.level())
    }

    fn set_log_level(&self, log_path: &str, level: &str) -> Result<(), String> {
        if !self.names_process_log(log_path) {
            return Err(format!(
                "no error log at {log_path:?}: meshgate has one, the process log on stderr, \
                 named \"default\" (also \"\", \"stderr\" or the configured default_log_path)"
            ));
        }
        match &self.log {
            Some(log) => log.set_level(level),
            None => {
                Err("this process's log level is not adjustable (no log control installed)".into())
            }
        }
    }

    fn set_log_enabled(&self, logger: &str, enabled: bool) -> Result<(), String> {
        if logger == DEFAULT_LOGGER {
            return match &self.log {
                Some(log) => log.set_enabled(enabled),
                None => {
                    Err("this process's log is not adjustable (no log control installed)".into())
                }
            };
        }
        match &self.access_logs {
            Some(switch) => switch(logger, enabled),
            None => Err(format!("unknown logger {logger:?}")),
        }
    }
}
