//! The cluster manager: every cluster by name, built from config in one go.
//!
//! Building is the second config layer of STYLE §5: raw [`ClusterConfig`]s
//! in, validated [`Cluster`]s out, MOSN's defaults applied, and every
//! problem reported with its path and a hint rather than the first one
//! only. What MOSN tolerates (a weight above 128, a non-string metadata
//! value, an unknown cluster type) stays tolerated, as a warning; what MOSN
//! would silently get wrong (an unknown `lb_type` falling back to round
//! robin, a duplicate name replacing a cluster) is an error here.
//!
//! # Where this reads MOSN's config differently
//!
//! Kept as MOSN does it (`configmanager/parser.go`, `upstream/cluster/*.go`):
//! weights clamped into 1..=128 (0 → 1); `max_request_per_conn` 0 → 1024,
//! `conn_buffer_limit_bytes` 0 → 16 KiB, no or zero `connect_timeout` → 10 s;
//! `fall_back_policy` above 2 → 0; only the first `circuit_breakers` entry
//! counts and 0 means MOSN's default; non-string metadata values dropped; an unknown
//! or empty `type` is `SIMPLE`; an empty `lb_type` is round robin; duplicate
//! selectors merged; subsets on only with `subset_selectors`.
//!
//! Changed, each reported at its path:
//! - an unknown `lb_type` is an error (MOSN silently uses round robin);
//! - a duplicate cluster name is an error (MOSN lets the last one win);
//! - `EDS`, `STRICT_DNS`, `ORIGINAL_DST` and `LB_ORIGINAL_DST` are errors
//!   until they are implemented; `DYNAMIC` serves its listed hosts, warned;
//! - upstream TLS (`tls_context.status`, `cluster_manager_tls`) is an error
//!   until it is implemented, rather than a silent downgrade to clear text;
//! - a host address that does not parse or resolve is an error (MOSN logs
//!   it and keeps a host it can never reach);
//! - `lbconfig` zero values mean the defaults (`choice_count` 2,
//!   `active_request_bias` 1.0) where MOSN would use 0 (no candidate at
//!   all, or load ignored).
//!
//! The balancers' own differences are in their module docs ([`crate::lb`]).
//!
//! The manager is immutable once built, so reads need no lock: the gateway
//! keeps it in an `ArcSwap` and replaces it whole on reload.
//! [`ClusterManager::rebuild`] builds the replacement from the current one
//! so hosts that survive a reload keep their counters and health.

use crate::breaker::RetryBudget;
use crate::cluster::{CircuitBreakerLimits, Cluster, ClusterSettings, ClusterType};
use crate::config::{ClusterConfig, RetryBudgetConfig};
use crate::error::{ClusterConfigErrors, ConfigIssue, Issues};
use crate::health::HealthTasks;
use crate::host::{HostSet, build_hosts};
use crate::lb::{LbOptions, LbType};
use crate::subset::subset_settings;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Every upstream cluster, by name. Immutable after build.
#[derive(Debug, Default)]
pub struct ClusterManager {
    /// In config order.
    clusters: Vec<Arc<Cluster>>,
    /// Looked up once per request: Fx, not SipHash (names come from the
    /// config, not from clients; SipHash cost ~200 instructions a lookup).
    by_name: FxHashMap<String, usize>,
    warnings: Vec<ConfigIssue>,
    /// Health-check and outlier tasks, once started.
    health_tasks: HealthTasks,
}

impl ClusterManager {
    /// Builds every cluster of `cluster_manager.clusters`, or reports every
    /// problem found (paths relative to `cluster_manager`).
    pub fn build(configs: &[ClusterConfig]) -> Result<ClusterManager, ClusterConfigErrors> {
        build(configs, None)
    }

    /// Like [`build`](Self::build), for a reload: a host whose cluster name
    /// and address are unchanged shares its counters with the current one
    /// (in-flight requests still decrement them) and keeps its health.
    pub fn rebuild(
        &self,
        configs: &[ClusterConfig],
    ) -> Result<ClusterManager, ClusterConfigErrors> {
        build(configs, Some(self))
    }

    /// The cluster named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Cluster>> {
        self.cluster(name).cloned()
    }

    /// The cluster named `name`, borrowed (no reference count change).
    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.by_name.get(name).map(|&i| &self.clusters[i])
    }

    /// Every cluster, in config order.
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.clusters.iter()
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// True when there is no cluster.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// Problems tolerated while building (log them, `validate` prints them).
    pub fn warnings(&self) -> &[ConfigIssue] {
        &self.warnings
    }

    /// Starts active health checks (one task per host of each cluster with
    /// a `health_check`) and outlier detection's sweepers, replacing any
    /// this manager already runs; `registry` resolves heartbeat protocols.
    /// Returns the number of tasks. Must be called inside a tokio runtime.
    /// The tasks stop on [`stop_health_checks`](Self::stop_health_checks)
    /// or when the manager is dropped.
    pub fn start_health_checks(&self, registry: &meshgate_codecs::Registry) -> usize {
        self.health_tasks.start(self.clusters.iter(), registry)
    }

    /// Stops the tasks [`start_health_checks`](Self::start_health_checks)
    /// started (on reload, once the new manager runs its own; on stop).
    pub fn stop_health_checks(&self) {
        self.health_tasks.stop();
    }

    /// Health-check and outlier tasks running.
    pub fn health_tasks_running(&self) -> usize {
        self.health_tasks.len()
    }

    /// `health_check.protocol` values naming a heartbeat protocol that
    /// `has_heartbeat` does not know, as errors at their paths (relative to
    /// `cluster_manager`), for the gateway's config build, which owns the
    /// codec registry.
    pub fn check_health_protocols(&self, has_heartbeat: impl Fn(&str) -> bool) -> Vec<ConfigIssue> {
        self.clusters
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match &c.settings().health_check {
                Some(crate::health::HealthCheckSettings {
                    kind: crate::health::CheckKind::Heartbeat { protocol },
                    ..
                }) if !has_heartbeat(protocol) => Some(
                    ConfigIssue::new(
                        format!("clusters[{i}].health_check.protocol"),
                        format!("{protocol:?} is not a protocol with a heartbeat"),
                    )
                    .hint("use \"tcp\", \"Http1\", or a framed protocol such as \"bolt\" or \"dubbo\""),
                ),
                _ => None,
            })
            .collect()
    }
}

fn build(
    configs: &[ClusterConfig],
    previous: Option<&ClusterManager>,
) -> Result<ClusterManager, ClusterConfigErrors> {
    let mut issues = Issues::default();
    let mut manager = ClusterManager::default();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, config) in configs.iter().enumerate() {
        let path = format!("clusters[{i}]");
        let duplicate_of = match first_seen.get(config.name.as_str()) {
            Some(&first) if !config.name.is_empty() => Some(first),
            _ => {
                first_seen.insert(&config.name, i);
                None
            }
        };
        if let Some(first) = duplicate_of {
            issues.error(
                ConfigIssue::new(
                    format!("{path}.name"),
                    format!(
                        "duplicate cluster name {:?}, first defined at clusters[{first}]",
                        config.name
                    ),
                )
                .hint("cluster names must be unique: rename one of them"),
            );
        }
        // A duplicate is still checked, so its own problems are reported too.
        let old = previous.and_then(|p| p.cluster(&config.name));
        let built = build_cluster(config, &path, old.map(|c| &**c), &mut issues);
        if let Some(cluster) = built.filter(|_| duplicate_of.is_none()) {
            manager
                .by_name
                .insert(config.name.clone(), manager.clusters.len());
            manager.clusters.push(Arc::new(cluster));
        }
    }
    if !issues.errors.is_empty() {
        return Err(ClusterConfigErrors {
            errors: issues.errors,
            warnings: issues.warnings,
        });
    }
    manager.warnings = issues.warnings;
    Ok(manager)
}

/// One cluster, or `None` when it has errors (recorded in `issues`).
fn build_cluster(
    c: &ClusterConfig,
    path: &str,
    previous: Option<&Cluster>,
    issues: &mut Issues,
) -> Option<Cluster> {
    let errors_before = issues.errors.len();
    if c.name.is_empty() {
        issues.error(
            ConfigIssue::new(format!("{path}.name"), "a cluster needs a name")
                .hint("routes refer to clusters by name: add \"name\": \"my_cluster\""),
        );
    }
    let cluster_type = cluster_type(&c.cluster_type, path, issues);
    let lb_type = lb_type(&c.lb_type, path, issues);
    check_tls(c, path, issues);
    let hosts = build_hosts(&c.hosts, path, previous, issues);
    let settings = ClusterSettings {
        cluster_type: cluster_type.unwrap_or(ClusterType::Simple),
        lb_type: lb_type.unwrap_or(LbType::RoundRobin),
        lb_options: lb_options(c, path, issues),
        connect_timeout: connect_timeout(c),
        idle_timeout: c.idle_timeout.map(|d| d.get()).filter(|d| !d.is_zero()),
        max_request_per_conn: nonzero_or(
            c.max_request_per_conn,
            ClusterSettings::DEFAULT_MAX_REQUEST_PER_CONN,
        ),
        conn_buffer_limit_bytes: nonzero_or(
            c.conn_buffer_limit_bytes,
            ClusterSettings::DEFAULT_CONN_BUFFER_LIMIT_BYTES,
        ),
        circuit_breakers: circuit_breakers(c, path, issues),
        subset: subset_settings(&c.lb_subset_config, &hosts, path, issues),
        health_check: crate::health::config::health_check_settings(
            &c.health_check,
            &format!("{path}.health_check"),
            issues,
        ),
        outlier_detection: c.outlier_detection.as_ref().map(|o| {
            crate::outlier::outlier_settings(o, &format!("{path}.outlier_detection"), issues)
        }),
        healthy_panic_threshold: panic_threshold(c, path, issues),
        cluster_pool_enable: c.cluster_pool_enable,
        connections_per_host: nonzero_or(c.connections_per_host, 1),
    };
    (issues.errors.len() == errors_before).then(|| {
        let mut cluster = Cluster::new(c.name.clone(), settings, HostSet::new(hosts));
        if let Some(previous) = previous {
            cluster.keep_breaker_of(previous);
        }
        cluster
    })
}

/// Envoy's `healthy_panic_threshold` as a whole percent (rounded up, so
/// 0.5 still means "panic when no host is healthy").
fn panic_threshold(c: &ClusterConfig, path: &str, issues: &mut Issues) -> u32 {
    match c.healthy_panic_threshold {
        None => crate::lb::DEFAULT_PANIC_THRESHOLD,
        Some(p) if (0.0..=100.0).contains(&p) => p.ceil() as u32,
        Some(p) => {
            issues.error(
                ConfigIssue::new(
                    format!("{path}.healthy_panic_threshold"),
                    format!("{p} is not a percentage"),
                )
                .hint("0 to 100; 50 is the default, 0 turns panic mode off"),
            );
            crate::lb::DEFAULT_PANIC_THRESHOLD
        }
    }
}

fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

fn cluster_type(name: &str, path: &str, issues: &mut Issues) -> Option<ClusterType> {
    let at = format!("{path}.type");
    match name {
        "" | "SIMPLE" => Some(ClusterType::Simple),
        "STATIC" => Some(ClusterType::Static),
        "DYNAMIC" => {
            issues.warn(
                ConfigIssue::new(at, "hosts pushed by a service registry are not supported")
                    .hint("the hosts listed in the config are used, as for SIMPLE"),
            );
            Some(ClusterType::Dynamic)
        }
        "EDS" | "STRICT_DNS" | "ORIGINAL_DST" => {
            issues.error(
                ConfigIssue::new(at, format!("cluster type {name:?} is not supported yet"))
                    .hint("use \"SIMPLE\" with a static \"hosts\" list"),
            );
            None
        }
        _ => {
            issues.warn(
                ConfigIssue::new(
                    at,
                    format!("unknown cluster type {name:?}, read as SIMPLE (as MOSN does)"),
                )
                .hint("one of: SIMPLE, STATIC, DYNAMIC"),
            );
            Some(ClusterType::Simple)
        }
    }
}

fn lb_type(name: &str, path: &str, issues: &mut Issues) -> Option<LbType> {
    if let Some(t) = LbType::from_mosn_name(name) {
        return Some(t);
    }
    let at = format!("{path}.lb_type");
    let valid: Vec<_> = LbType::ALL.iter().map(|t| t.mosn_name()).collect();
    let issue = if name == "LB_ORIGINAL_DST" {
        ConfigIssue::new(at, "LB_ORIGINAL_DST is not supported yet")
    } else {
        ConfigIssue::new(at, format!("unknown lb_type {name:?}"))
    };
    issues.error(issue.hint(format!("one of: {}", valid.join(", "))));
    None
}

fn check_tls(c: &ClusterConfig, path: &str, issues: &mut Issues) {
    let hint = "remove it (or set \"status\": false) to connect in clear";
    if c.tls_context.get("status").and_then(|s| s.as_bool()) == Some(true) {
        issues.error(
            ConfigIssue::new(
                format!("{path}.tls_context"),
                "upstream TLS is not supported yet",
            )
            .hint(hint),
        );
    }
    if c.cluster_manager_tls {
        issues.error(
            ConfigIssue::new(
                format!("{path}.cluster_manager_tls"),
                "upstream TLS is not supported yet",
            )
            .hint(hint),
        );
    }
}

fn lb_options(c: &ClusterConfig, path: &str, issues: &mut Issues) -> LbOptions {
    let mut options = LbOptions::default();
    let Some(lc) = &c.lbconfig else {
        return options;
    };
    if lc.choice_count > 0 {
        options.choice_count = lc.choice_count;
    }
    let bias = lc.active_request_bias;
    if bias.is_finite() && bias > 0.0 {
        options.active_request_bias = bias;
    } else if bias != 0.0 {
        issues.warn(
            ConfigIssue::new(
                format!("{path}.lbconfig.active_request_bias"),
                "must be a positive number; using 1.0",
            )
            .hint("1.0 weighs load linearly, larger values more aggressively"),
        );
    }
    options
}

/// MOSN's dialer reads 0 as "the default" too (`network/connection.go`).
fn connect_timeout(c: &ClusterConfig) -> Duration {
    c.connect_timeout
        .map(|d| d.get())
        .filter(|d| !d.is_zero())
        .unwrap_or(ClusterSettings::DEFAULT_CONNECT_TIMEOUT)
}

fn circuit_breakers(c: &ClusterConfig, path: &str, issues: &mut Issues) -> CircuitBreakerLimits {
    for i in 1..c.circuit_breakers.len() {
        issues.warn(ConfigIssue::new(
            format!("{path}.circuit_breakers[{i}]"),
            "ignored: only the first threshold set applies (as in MOSN)",
        ));
    }
    let Some(t) = c.circuit_breakers.first() else {
        return CircuitBreakerLimits::default();
    };
    let limit = |v: u32| (v != 0).then_some(v);
    CircuitBreakerLimits {
        max_connections: limit(t.max_connections),
        max_pending_requests: limit(t.max_pending_requests),
        max_requests: limit(t.max_requests),
        max_retries: limit(t.max_retries),
        retry_budget: t.retry_budget.as_ref().map(|b| {
            retry_budget(
                b,
                &format!("{path}.circuit_breakers[0].retry_budget"),
                issues,
            )
        }),
    }
}

/// Envoy's field semantics: an unset (0) field takes its default; a
/// percentage outside 0..=100 is an error.
fn retry_budget(b: &RetryBudgetConfig, path: &str, issues: &mut Issues) -> RetryBudget {
    let mut budget = RetryBudget::DEFAULT;
    if let Some(percent) = b.budget_percent {
        if percent.is_finite() && (0.0..=100.0).contains(&percent) {
            budget.budget_percent = percent;
        } else {
            issues.error(
                ConfigIssue::new(
                    format!("{path}.budget_percent"),
                    format!("{percent} is not a percentage"),
                )
                .hint("a number from 0 to 100: retries in flight as a share of requests in flight (default 20)"),
            );
        }
    }
    if let Some(min) = b.min_retry_concurrency {
        budget.min_retry_concurrency = min;
    }
    budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ClusterManager>();
        check::<Cluster>();
        check::<crate::Host>();
    }
}
