//! Active health checking: one task per host of every cluster with a
//! `health_check` block, probing it every `interval` and moving it between
//! healthy and unhealthy through [`ActiveCheckState`]; unhealthy hosts
//! leave every balancer (cluster and subsets) until they are healthy again.
//!
//! Tasks belong to the [`crate::ClusterManager`] that started them
//! ([`crate::ClusterManager::start_health_checks`]): they stop when it is
//! told to ([`crate::ClusterManager::stop_health_checks`], on reload and
//! stop) or dropped, so a reload never leaves a checker of a removed host
//! running. Host health itself ([`HostHealth`]) is shared by every build of
//! a host, so the checker of the new build carries on where the old one
//! left off. The same tasks run outlier detection's sweeper
//! ([`crate::outlier`]).
//!
//! | `protocol` | checker |
//! |---|---|
//! | `tcp` | TCP connect |
//! | `Http1`, `http1`, `http` | HTTP/1.1 request, status checked |
//! | a framed codec's name (`bolt`, `dubbo`, a generic codec); `SofaRpc` = `bolt` | the codec's heartbeat, reply with the same id |
//!
//! See `docs/health-checks.md` for the configuration and the state machine.

mod checker;
pub mod config;
mod state;

pub use checker::{CheckFailure, MAX_HTTP_HEAD};
pub use config::{CheckKind, HealthCheckSettings, HttpCheck, HttpCheckConfig, StatusRangeConfig};
pub use state::{ActiveCheckState, HealthCounters, HostHealth, Transition};

use crate::cluster::Cluster;
use crate::host::{HealthFlag, Host};
use checker::Probe;
use meshgate_codecs::Registry;
use rand::Rng;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;

/// The running tasks of one cluster manager; aborted on [`HealthTasks::stop`]
/// and on drop.
#[derive(Debug, Default)]
pub(crate) struct HealthTasks {
    handles: Mutex<Vec<AbortHandle>>,
}

impl HealthTasks {
    fn handles(&self) -> std::sync::MutexGuard<'_, Vec<AbortHandle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the checkers and sweepers of `clusters` (stopping any
    /// already running). Must be called inside a tokio runtime.
    pub(crate) fn start<'a>(
        &self,
        clusters: impl Iterator<Item = &'a Arc<Cluster>>,
        registry: &Registry,
    ) -> usize {
        self.stop();
        let mut handles = Vec::new();
        for cluster in clusters {
            start_cluster(cluster, registry, &mut handles);
        }
        let n = handles.len();
        *self.handles() = handles;
        n
    }

    /// Aborts every task.
    pub(crate) fn stop(&self) {
        for handle in self.handles().drain(..) {
            handle.abort();
        }
    }

    /// Tasks running (or finished but not yet reaped).
    pub(crate) fn len(&self) -> usize {
        self.handles().iter().filter(|h| !h.is_finished()).count()
    }
}

impl Drop for HealthTasks {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_cluster(cluster: &Arc<Cluster>, registry: &Registry, handles: &mut Vec<AbortHandle>) {
    let name = cluster.name();
    // Flags left by a previous build whose checks this build does not run.
    for host in cluster.hosts().hosts() {
        if cluster.settings().health_check.is_none()
            && host.health().clear(HealthFlag::FailedActiveCheck.bit())
        {
            tracing::info!(cluster = name, host = %host.address_text(), "health checks are off: the host counts as healthy again");
        }
        if cluster.outlier_detector().is_none() {
            host.health().outlier.set_ejected_at(None);
            if host.health().clear(HealthFlag::FailedOutlierCheck.bit()) {
                tracing::info!(cluster = name, host = %host.address_text(), "outlier detection is off: the host is no longer ejected");
            }
        }
    }
    if cluster.outlier_detector().is_some() {
        handles.push(tokio::spawn(crate::outlier::run_sweeper(Arc::clone(cluster))).abort_handle());
    }
    let Some(settings) = cluster.settings().health_check.clone() else {
        return;
    };
    let codec = match &settings.kind {
        CheckKind::Heartbeat { protocol } => {
            match registry
                .codec(protocol)
                .filter(|c| c.heartbeat_request(1).is_some())
            {
                Some(codec) => Some(codec),
                None => {
                    tracing::error!(cluster = name, protocol = %protocol, "health_check.protocol names no framed protocol with a heartbeat; no health checks run");
                    return;
                }
            }
        }
        _ => None,
    };
    let settings = Arc::new(settings);
    let cluster_name: Arc<str> = Arc::from(name);
    for host in cluster.hosts().hosts() {
        let Some(probe) = Probe::new(&settings, codec.clone(), host.address_text()) else {
            continue;
        };
        let task = run_checks(
            Arc::clone(&cluster_name),
            Arc::clone(host),
            Arc::clone(&settings),
            probe,
        );
        handles.push(tokio::spawn(task).abort_handle());
    }
    tracing::info!(cluster = name, protocol = %settings.protocol, hosts = cluster.hosts().len(), interval = ?settings.interval, "health checks started");
}

/// A random extra delay in `0..jitter`.
fn jitter(jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

/// One host's checker: initial delay, then check, record, sleep, forever
/// (until aborted).
async fn run_checks(
    cluster: Arc<str>,
    host: Arc<Host>,
    settings: Arc<HealthCheckSettings>,
    mut probe: Probe,
) {
    let health = host.health();
    let mut state = ActiveCheckState::new(
        !host.has_health_flag(HealthFlag::FailedActiveCheck),
        settings.healthy_threshold,
        settings.unhealthy_threshold,
    );
    tokio::time::sleep(settings.initial_delay + jitter(settings.interval_jitter)).await;
    loop {
        let result = probe.check(host.address(), settings.timeout).await;
        let counter = match &result {
            Ok(()) => &health.counters().checks_succeeded,
            Err(_) => &health.counters().checks_failed,
        };
        HealthCounters::inc(counter);
        match (state.record(result.is_ok()), &result) {
            (Some(Transition::BecameUnhealthy), Err(reason)) => {
                host.set_health_flag(HealthFlag::FailedActiveCheck);
                HealthCounters::inc(&health.counters().marked_unhealthy);
                tracing::info!(cluster = %cluster, host = %host.address_text(), %reason,
                    failures = settings.unhealthy_threshold, "active health check: host is unhealthy");
            }
            (Some(Transition::BecameHealthy), _) => {
                host.clear_health_flag(HealthFlag::FailedActiveCheck);
                HealthCounters::inc(&health.counters().marked_healthy);
                tracing::info!(cluster = %cluster, host = %host.address_text(),
                    successes = settings.healthy_threshold, "active health check: host is healthy again");
            }
            (_, Err(reason)) => {
                tracing::debug!(cluster = %cluster, host = %host.address_text(), %reason, "health check failed");
            }
            _ => {}
        }
        tokio::time::sleep(settings.interval + jitter(settings.interval_jitter)).await;
    }
}
