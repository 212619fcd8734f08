//! What health checking and outlier detection know about one host, shared
//! by every build of that host (a reload keeps it, as it keeps the host's
//! [`crate::HostStats`]), and the active-check state machine.
//!
//! The health flags live here: a host is healthy when no flag is set, so
//! the active checker and outlier detection mark and clear it without
//! undoing each other (MOSN's `FAILED_ACTIVE_HC` / `FAILED_OUTLIER_CHECK`).
//! Everything is atomics, read with relaxed loads on the request path; the
//! one lock (the ejection time) is taken only when a host is ejected or
//! swept.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::time::Instant;

/// Live health state of one host.
#[derive(Debug, Default)]
pub struct HostHealth {
    flags: AtomicU32,
    counters: HealthCounters,
    pub(crate) outlier: OutlierHostState,
}

/// Health counters of one host, for the stats and admin endpoints. Plain
/// atomics, read with [`HealthCounters::get`].
#[derive(Debug, Default)]
pub struct HealthCounters {
    /// Active checks that succeeded.
    pub checks_succeeded: AtomicU64,
    /// Active checks that failed (refused, timed out, wrong answer).
    pub checks_failed: AtomicU64,
    /// Times active checks marked the host unhealthy.
    pub marked_unhealthy: AtomicU64,
    /// Times active checks marked the host healthy again.
    pub marked_healthy: AtomicU64,
    /// Times outlier detection ejected the host.
    pub ejections: AtomicU64,
    /// Ejections outlier detection wanted but `max_ejection_percent`
    /// refused.
    pub ejections_refused: AtomicU64,
    /// Times an ejected host returned to the balancers.
    pub ejection_returns: AtomicU64,
}

impl HealthCounters {
    /// Reads a counter (relaxed: counters are advisory).
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Passive outlier detection's per-host book.
#[derive(Debug, Default)]
pub(crate) struct OutlierHostState {
    /// Error replies or local-origin failures in a row (Envoy's
    /// `consecutive_5xx`).
    pub(crate) consecutive_errors: AtomicU32,
    /// 502/503/504 replies or local-origin failures in a row.
    pub(crate) consecutive_gateway: AtomicU32,
    /// Connect failures, timeouts and resets in a row (counted apart only
    /// with `split_external_local_origin_errors`).
    pub(crate) consecutive_local: AtomicU32,
    /// How many times the host was ejected, decayed while it behaves: the
    /// ejection time is `base_ejection_time` times this.
    pub(crate) multiplier: AtomicU32,
    /// When the current ejection started; `None` when not ejected.
    pub(crate) ejected_at: Mutex<Option<Instant>>,
}

impl OutlierHostState {
    pub(crate) fn reset_streaks(&self) {
        for streak in [
            &self.consecutive_errors,
            &self.consecutive_gateway,
            &self.consecutive_local,
        ] {
            // A load first: the common case (nothing to reset) writes nothing.
            if streak.load(Ordering::Relaxed) != 0 {
                streak.store(0, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn ejected_at(&self) -> Option<Instant> {
        *self.ejected_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_ejected_at(&self, at: Option<Instant>) {
        *self.ejected_at.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl HostHealth {
    /// True when no flag is set.
    pub fn is_healthy(&self) -> bool {
        self.flags.load(Ordering::Relaxed) == 0
    }

    /// Whether flag `bit` is set.
    pub(crate) fn has(&self, bit: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & bit != 0
    }

    /// Sets `bit`; true when it was not set before.
    pub(crate) fn set(&self, bit: u32) -> bool {
        self.flags.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Clears `bit`; true when it was set before.
    pub(crate) fn clear(&self, bit: u32) -> bool {
        self.flags.fetch_and(!bit, Ordering::Relaxed) & bit != 0
    }

    /// The host's health counters.
    pub fn counters(&self) -> &HealthCounters {
        &self.counters
    }
}

/// A change of a host's active-check health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `unhealthy_threshold` checks failed in a row.
    BecameUnhealthy,
    /// `healthy_threshold` checks succeeded in a row.
    BecameHealthy,
}

/// The active-check state machine of one host:
///
/// ```text
///            unhealthy_threshold failures in a row
///  Healthy ───────────────────────────────────────► Unhealthy
///     ▲                                                 │
///     └──────────── healthy_threshold successes ────────┘
///                        in a row
/// ```
///
/// A success resets the failure streak and a failure the success streak,
/// so only consecutive results count (as in MOSN and Envoy). A host starts
/// healthy, as in MOSN, unless a previous build of it was unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveCheckState {
    healthy: bool,
    successes: u32,
    failures: u32,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl ActiveCheckState {
    /// A machine in state `healthy` with these thresholds (each at least 1).
    pub fn new(healthy: bool, healthy_threshold: u32, unhealthy_threshold: u32) -> Self {
        ActiveCheckState {
            healthy,
            successes: 0,
            failures: 0,
            healthy_threshold: healthy_threshold.max(1),
            unhealthy_threshold: unhealthy_threshold.max(1),
        }
    }

    /// Whether the host is healthy as far as active checks go.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Feeds one check result; returns the transition it caused, if any.
    pub fn record(&mut self, success: bool) -> Option<Transition> {
        if success {
            self.failures = 0;
            if self.healthy {
                return None;
            }
            self.successes += 1;
            if self.successes >= self.healthy_threshold {
                self.healthy = true;
                self.successes = 0;
                return Some(Transition::BecameHealthy);
            }
        } else {
            self.successes = 0;
            if !self.healthy {
                return None;
            }
            self.failures += 1;
            if self.failures >= self.unhealthy_threshold {
                self.healthy = false;
                self.failures = 0;
                return Some(Transition::BecameUnhealthy);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_after_threshold_failures_in_a_row() {
        let mut s = ActiveCheckState::new(true, 2, 3);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        // A success breaks the streak.
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(false), Some(Transition::BecameUnhealthy));
        assert!(!s.is_healthy());
        // Further failures change nothing.
        assert_eq!(s.record(false), None);
    }

    #[test]
    fn healthy_after_threshold_successes_in_a_row() {
        let mut s = ActiveCheckState::new(false, 2, 3);
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(false), None);
        assert_eq!(s.record(true), None);
        assert_eq!(s.record(true), Some(Transition::BecameHealthy));
        assert!(s.is_healthy());
        assert_eq!(s.record(true), None);
    }

    #[test]
    fn thresholds_of_one_flip_at_once_and_zero_means_one() {
        let mut s = ActiveCheckState::new(true, 0, 0);
        assert_eq!(s.record(false), Some(Transition::BecameUnhealthy));
        assert_eq!(s.record(true), Some(Transition::BecameHealthy));
    }

    #[test]
    fn flags_are_independent() {
        let h = HostHealth::default();
        assert!(h.set(1));
        assert!(!h.set(1));
        assert!(h.set(2));
        assert!(h.clear(1));
        assert!(!h.is_healthy());
        assert!(h.clear(2));
        assert!(!h.clear(2));
        assert!(h.is_healthy());
    }
}
