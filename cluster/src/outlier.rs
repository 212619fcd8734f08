//! Passive outlier detection: hosts that keep failing real requests are
//! ejected from the balancers for a while, without waiting for an active
//! health check to notice.
//!
//! The proxy reports every attempt's outcome ([`crate::Cluster::report_outcome`]).
//! A host is ejected when one of its streaks reaches its threshold
//! (Envoy's `outlier_detection` names and defaults, under the cluster):
//!
//! - `consecutive_5xx` (default 5): error replies (neutral status 5xx) in
//!   a row; connect failures, timeouts and resets count too unless
//!   `split_external_local_origin_errors` is set;
//! - `consecutive_gateway_failure` (off unless set): 502/503/504 replies in
//!   a row, local-origin failures counted the same way;
//! - `consecutive_local_origin_failure` (default 5, only with
//!   `split_external_local_origin_errors`): connect failures, timeouts and
//!   resets in a row.
//!
//! A success ends every streak. An ejection lasts `base_ejection_time`
//! (30 s) times the number of times the host was ejected, capped at
//! `max_ejection_time` (300 s); the count decays by one for every
//! `interval` (10 s) the host spends back in service. Ejected hosts return
//! on the sweep that runs every `interval`, as in Envoy, so an ejection
//! lasts up to one interval longer than its time. At most
//! `max_ejection_percent` (10 %) of the cluster's hosts are ejected at
//! once, but always at least one may be (Envoy's rule); an ejection over
//! the cap is refused and counted. The balancers' panic threshold still
//! applies on top: see [`crate::lb`].
//!
//! MOSN's nearest equivalent is the `fault_tolerance` stream filter
//! (exception rates over time windows, relative to the cluster's average);
//! its rate model is not implemented. See `docs/health-checks.md`.

use crate::error::{ConfigIssue, Issues};
use crate::health::HostHealth;
use crate::host::{HealthFlag, Host, HostSet};
use meshgate_gocompat::GoDuration;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Envoy's `outlier_detection`, the fields meshgate reads. Present (even
/// `{}`) turns detection on with the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutlierDetectionConfig {
    /// Error replies in a row that eject (default 5; 0 turns it off).
    pub consecutive_5xx: Option<u32>,
    /// 502/503/504 replies in a row that eject (default off).
    pub consecutive_gateway_failure: Option<u32>,
    /// Local-origin failures in a row that eject, with
    /// `split_external_local_origin_errors` (default 5; 0 off).
    pub consecutive_local_origin_failure: Option<u32>,
    /// Count connect failures, timeouts and resets apart from error replies.
    pub split_external_local_origin_errors: bool,
    /// How often ejected hosts are looked at for return (default 10 s).
    pub interval: Option<GoDuration>,
    /// The first ejection's length (default 30 s).
    pub base_ejection_time: Option<GoDuration>,
    /// The longest ejection (default 300 s, and never below the base).
    pub max_ejection_time: Option<GoDuration>,
    /// The most of the cluster's hosts ejected at once, in percent
    /// (default 10; at least one host may always be ejected).
    pub max_ejection_percent: Option<u32>,
}

/// Validated outlier detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierSettings {
    /// `consecutive_5xx`; `None`: off.
    pub consecutive_5xx: Option<u32>,
    /// `consecutive_gateway_failure`; `None`: off.
    pub consecutive_gateway_failure: Option<u32>,
    /// `consecutive_local_origin_failure`; `None`: off (always off
    /// without `split_external_local_origin_errors`).
    pub consecutive_local_origin_failure: Option<u32>,
    /// Local-origin failures counted apart.
    pub split_local_origin: bool,
    /// Sweep period.
    pub interval: Duration,
    /// First ejection's length.
    pub base_ejection_time: Duration,
    /// Longest ejection.
    pub max_ejection_time: Duration,
    /// Cap on ejected hosts, percent.
    pub max_ejection_percent: u32,
}

impl Default for OutlierSettings {
    /// Envoy's defaults.
    fn default() -> Self {
        OutlierSettings {
            consecutive_5xx: Some(5),
            consecutive_gateway_failure: None,
            consecutive_local_origin_failure: None,
            split_local_origin: false,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

/// Validates `outlier_detection` at `path` (`clusters[i].outlier_detection`).
pub(crate) fn outlier_settings(
    c: &OutlierDetectionConfig,
    path: &str,
    issues: &mut Issues,
) -> OutlierSettings {
    let d = OutlierSettings::default();
    let threshold = |v: Option<u32>, default: Option<u32>| match v {
        Some(0) => None,
        Some(n) => Some(n),
        None => default,
    };
    let duration = |v: Option<GoDuration>, default: Duration| {
        v.map(GoDuration::get)
            .filter(|d| !d.is_zero())
            .unwrap_or(default)
    };
    let mut max_ejection_percent = c.max_ejection_percent.unwrap_or(d.max_ejection_percent);
    if max_ejection_percent > 100 {
        issues.warn(
            ConfigIssue::new(
                format!("{path}.max_ejection_percent"),
                format!("{max_ejection_percent} is over 100; using 100"),
            )
            .hint("a percentage of the cluster's hosts, 0 to 100"),
        );
        max_ejection_percent = 100;
    }
    if c.consecutive_local_origin_failure.is_some() && !c.split_external_local_origin_errors {
        issues.warn(
            ConfigIssue::new(
                format!("{path}.consecutive_local_origin_failure"),
                "ignored without split_external_local_origin_errors",
            )
            .hint("local-origin failures count toward consecutive_5xx unless split"),
        );
    }
    let base_ejection_time = duration(c.base_ejection_time, d.base_ejection_time);
    OutlierSettings {
        consecutive_5xx: threshold(c.consecutive_5xx, d.consecutive_5xx),
        consecutive_gateway_failure: threshold(c.consecutive_gateway_failure, None),
        consecutive_local_origin_failure: if c.split_external_local_origin_errors {
            threshold(c.consecutive_local_origin_failure, Some(5))
        } else {
            None
        },
        split_local_origin: c.split_external_local_origin_errors,
        interval: duration(c.interval, d.interval),
        base_ejection_time,
        max_ejection_time: duration(c.max_ejection_time, d.max_ejection_time)
            .max(base_ejection_time),
        max_ejection_percent,
    }
}

/// How one attempt on a host ended, as the proxy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A reply with a success status.
    Success,
    /// A reply with an error status (the codec's neutral HTTP-like code).
    ErrorReply(u16),
    /// The connection could not be opened.
    ConnectFailure,
    /// No reply within the (per-try) timeout.
    Timeout,
    /// The connection died with the request on it.
    Reset,
    /// Not the host's doing (the gateway's own limits, a closed pool):
    /// neither counts nor ends a streak.
    Ignored,
}

impl AttemptOutcome {
    fn is_local_origin(self) -> bool {
        matches!(
            self,
            AttemptOutcome::ConnectFailure | AttemptOutcome::Timeout | AttemptOutcome::Reset
        )
    }
}

/// A cluster's outlier detection: its settings and the lock that keeps
/// ejection decisions (and so the ejection cap) consistent.
#[derive(Debug)]
pub(crate) struct OutlierDetector {
    settings: OutlierSettings,
    ejecting: Mutex<()>,
}

impl OutlierDetector {
    pub(crate) fn new(settings: OutlierSettings) -> OutlierDetector {
        OutlierDetector {
            settings,
            ejecting: Mutex::new(()),
        }
    }

    pub(crate) fn settings(&self) -> &OutlierSettings {
        &self.settings
    }

    /// Books `outcome` against `host`; ejects it when a streak reaches its
    /// threshold and the cap allows.
    pub(crate) fn report(
        &self,
        cluster: &str,
        hosts: &HostSet,
        host: &Host,
        outcome: AttemptOutcome,
    ) {
        let state = &host.health().outlier;
        let s = &self.settings;
        let bump = |streak: &AtomicU32, threshold: Option<u32>| {
            let n = streak.fetch_add(1, Ordering::Relaxed) + 1;
            threshold.is_some_and(|t| n >= t)
        };
        let local = outcome.is_local_origin();
        let gateway = matches!(outcome, AttemptOutcome::ErrorReply(502..=504));
        let reached = match outcome {
            AttemptOutcome::Ignored => return,
            AttemptOutcome::Success => {
                state.reset_streaks();
                return;
            }
            AttemptOutcome::ErrorReply(status) if status < 500 => {
                state.reset_streaks();
                return;
            }
            _ if local && s.split_local_origin => {
                bump(&state.consecutive_local, s.consecutive_local_origin_failure)
            }
            _ => {
                let errors = bump(&state.consecutive_errors, s.consecutive_5xx);
                let gateway_failure = (gateway || local)
                    && bump(&state.consecutive_gateway, s.consecutive_gateway_failure);
                errors || gateway_failure
            }
        };
        if reached {
            self.eject(cluster, hosts, host, outcome, Instant::now());
        }
    }

    fn eject(
        &self,
        cluster: &str,
        hosts: &HostSet,
        host: &Host,
        why: AttemptOutcome,
        now: Instant,
    ) {
        let _decide = self.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        let health = host.health();
        health.outlier.reset_streaks();
        if host.has_health_flag(HealthFlag::FailedOutlierCheck) {
            return;
        }
        let ejected = hosts
            .hosts()
            .iter()
            .filter(|h| h.has_health_flag(HealthFlag::FailedOutlierCheck))
            .count();
        let cap = (hosts.len() * self.settings.max_ejection_percent as usize / 100).max(1);
        if ejected >= cap {
            crate::health::HealthCounters::inc(&health.counters().ejections_refused);
            tracing::info!(cluster, host = %host.address_text(), reason = ?why, ejected, cap,
                "outlier detection would eject the host, but max_ejection_percent is reached");
            return;
        }
        let times = health.outlier.multiplier.fetch_add(1, Ordering::Relaxed) + 1;
        health.outlier.set_ejected_at(Some(now));
        host.set_health_flag(HealthFlag::FailedOutlierCheck);
        crate::health::HealthCounters::inc(&health.counters().ejections);
        tracing::info!(cluster, host = %host.address_text(), reason = ?why, times,
            ejection = ?self.ejection_time(times), "outlier detection ejected the host");
    }

    /// How long the `times`-th ejection lasts.
    pub(crate) fn ejection_time(&self, times: u32) -> Duration {
        self.settings
            .base_ejection_time
            .saturating_mul(times.max(1))
            .min(self.settings.max_ejection_time)
    }

    /// One sweep at `now`: returns hosts whose ejection is over, decays the
    /// multiplier of hosts in service.
    pub(crate) fn sweep(&self, cluster: &str, hosts: &HostSet, now: Instant) {
        let _decide = self.ejecting.lock().unwrap_or_else(|e| e.into_inner());
        for host in hosts.hosts() {
            let health: &HostHealth = host.health();
            let times = health.outlier.multiplier.load(Ordering::Relaxed);
            if !host.has_health_flag(HealthFlag::FailedOutlierCheck) {
                if times > 0 {
                    health
                        .outlier
                        .multiplier
                        .store(times - 1, Ordering::Relaxed);
                }
                continue;
            }
            // A host ejected by a build that is gone has no start time:
            // it counts from now.
            let since = health.outlier.ejected_at().unwrap_or_else(|| {
                health.outlier.set_ejected_at(Some(now));
                now
            });
            if now.saturating_duration_since(since) >= self.ejection_time(times) {
                health.outlier.set_ejected_at(None);
                health.outlier.reset_streaks();
                host.clear_health_flag(HealthFlag::FailedOutlierCheck);
                crate::health::HealthCounters::inc(&health.counters().ejection_returns);
                tracing::info!(cluster, host = %host.address_text(), times,
                    "ejection over: the host is back in the balancers");
            }
        }
    }
}

/// The sweeper task of one cluster: a sweep every `interval`.
pub(crate) async fn run_sweeper(cluster: std::sync::Arc<crate::Cluster>) {
    let Some(detector) = cluster.outlier_detector() else {
        return;
    };
    let mut tick = tokio::time::interval(detector.settings().interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        detector.sweep(cluster.name(), cluster.hosts(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;

    fn hosts(n: u16) -> HostSet {
        HostSet::new(
            (0..n)
                .map(|i| Arc::new(Host::new(SocketAddr::from(([127, 0, 0, 1], 1000 + i)))))
                .collect(),
        )
    }

    fn detector(f: impl FnOnce(&mut OutlierSettings)) -> OutlierDetector {
        let mut s = OutlierSettings {
            base_ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(25),
            interval: Duration::from_secs(1),
            max_ejection_percent: 50,
            ..OutlierSettings::default()
        };
        f(&mut s);
        OutlierDetector::new(s)
    }

    fn report_n(d: &OutlierDetector, set: &HostSet, i: usize, outcome: AttemptOutcome, n: usize) {
        for _ in 0..n {
            d.report("c", set, &set.hosts()[i], outcome);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_errors_eject_and_a_success_breaks_the_streak() {
        let d = detector(|_| {});
        let set = hosts(4);
        report_n(&d, &set, 0, AttemptOutcome::ErrorReply(500), 4);
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::Success);
        report_n(&d, &set, 0, AttemptOutcome::ErrorReply(500), 4);
        assert!(set.hosts()[0].is_healthy());
        // A 4xx-like answer is the host working: it ends the streak too.
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::ErrorReply(404));
        report_n(&d, &set, 0, AttemptOutcome::ErrorReply(500), 4);
        assert!(set.hosts()[0].is_healthy());
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::Timeout);
        assert!(
            !set.hosts()[0].is_healthy(),
            "local-origin failures count as errors"
        );
        let counters = set.hosts()[0].health().counters();
        assert_eq!(crate::health::HealthCounters::get(&counters.ejections), 1);
        // Ignored outcomes neither count nor reset.
        report_n(&d, &set, 1, AttemptOutcome::ConnectFailure, 4);
        d.report("c", &set, &set.hosts()[1], AttemptOutcome::Ignored);
        d.report("c", &set, &set.hosts()[1], AttemptOutcome::Reset);
        assert!(!set.hosts()[1].is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn ejection_time_grows_with_repeat_offences_and_is_capped() {
        let d = detector(|_| {});
        let set = hosts(2);
        let host = &set.hosts()[0];
        let mut lengths = Vec::new();
        for _ in 0..4 {
            report_n(&d, &set, 0, AttemptOutcome::ErrorReply(503), 5);
            assert!(!host.is_healthy());
            let start = Instant::now();
            while !host.is_healthy() {
                tokio::time::advance(Duration::from_secs(1)).await;
                d.sweep("c", &set, Instant::now());
                assert!(start.elapsed() < Duration::from_secs(60), "never returned");
            }
            lengths.push(start.elapsed().as_secs());
        }
        // 10 s, 20 s, then capped at 25 s (the multiplier decays by one per
        // sweep in service, here none: the host is ejected again at once).
        assert_eq!(lengths, [10, 20, 25, 25]);
        // In service, the multiplier decays one step per sweep.
        for _ in 0..4 {
            d.sweep("c", &set, Instant::now());
        }
        report_n(&d, &set, 0, AttemptOutcome::ErrorReply(503), 5);
        assert_eq!(host.health().outlier.multiplier.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejection_percent_caps_ejections_but_one_is_always_allowed() {
        let d = detector(|s| s.max_ejection_percent = 50);
        let set = hosts(4);
        for i in 0..4 {
            report_n(&d, &set, i, AttemptOutcome::ConnectFailure, 5);
        }
        let ejected = set.hosts().iter().filter(|h| !h.is_healthy()).count();
        assert_eq!(ejected, 2);
        let refused: u64 = set
            .hosts()
            .iter()
            .map(|h| crate::health::HealthCounters::get(&h.health().counters().ejections_refused))
            .sum();
        assert_eq!(refused, 2);

        let d = detector(|s| s.max_ejection_percent = 0);
        let set = hosts(3);
        report_n(&d, &set, 0, AttemptOutcome::ConnectFailure, 5);
        report_n(&d, &set, 1, AttemptOutcome::ConnectFailure, 5);
        let ejected = set.hosts().iter().filter(|h| !h.is_healthy()).count();
        assert_eq!(ejected, 1, "at least one host may always be ejected");
    }

    #[tokio::test(start_paused = true)]
    async fn split_local_origin_errors_count_apart() {
        let d = detector(|s| {
            s.split_local_origin = true;
            s.consecutive_local_origin_failure = Some(2);
            s.consecutive_5xx = Some(3);
        });
        let set = hosts(2);
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::ErrorReply(500));
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::ErrorReply(500));
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::Timeout);
        assert!(
            set.hosts()[0].is_healthy(),
            "a timeout is not a 5xx when split"
        );
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::Timeout);
        assert!(!set.hosts()[0].is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn gateway_failures_eject_when_configured() {
        let d = detector(|s| {
            s.consecutive_5xx = None;
            s.consecutive_gateway_failure = Some(2);
        });
        let set = hosts(2);
        report_n(&d, &set, 0, AttemptOutcome::ErrorReply(500), 10);
        assert!(set.hosts()[0].is_healthy(), "500 is not a gateway failure");
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::ErrorReply(502));
        d.report("c", &set, &set.hosts()[0], AttemptOutcome::ConnectFailure);
        assert!(!set.hosts()[0].is_healthy());
    }

    #[test]
    fn settings_take_envoys_defaults_and_names() {
        let mut issues = Issues::default();
        let s = outlier_settings(&OutlierDetectionConfig::default(), "p", &mut issues);
        assert_eq!(s, OutlierSettings::default());
        let c: OutlierDetectionConfig = serde_json::from_value(serde_json::json!({
            "consecutive_5xx": 0, "consecutive_local_origin_failure": 3,
            "base_ejection_time": "2s", "max_ejection_time": "1s", "max_ejection_percent": 150
        }))
        .unwrap();
        let s = outlier_settings(&c, "p", &mut issues);
        assert_eq!(s.consecutive_5xx, None);
        assert_eq!(s.consecutive_local_origin_failure, None);
        assert_eq!(s.max_ejection_time, Duration::from_secs(2));
        assert_eq!(s.max_ejection_percent, 100);
        let warned: Vec<_> = issues.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            warned,
            [
                "p.max_ejection_percent",
                "p.consecutive_local_origin_failure"
            ]
        );
    }
}
