//! Reconnect back-off: after `n` connect failures in a row a host is left
//! alone for an exponentially growing, jittered, capped delay; requests
//! meanwhile fail fast with the last connect error.

use crate::pool::PoolError;
use std::time::Duration;
use tokio::time::Instant;

/// Exponential back-off with "equal jitter": the delay after `n` failures
/// is `min(max, base × 2^(n-1))` scaled by a random factor in
/// `[1 - jitter, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure. Default 50 ms.
    pub base: Duration,
    /// Cap on the delay. Default 2 s.
    pub max: Duration,
    /// Fraction of the delay that is random, 0.0..=1.0. Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_secs(2),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay after `failures` failures in a row, for a random `unit`
    /// in `0.0..1.0` (0 gives the full delay).
    pub fn delay_with(&self, failures: u32, unit: f64) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(30);
        let exp = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.base));
        let jitter = self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        exp.mul_f64(1.0 - jitter)
    }

    /// The delay after `failures` failures in a row, with fresh jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, rand::random::<f64>())
    }
}

/// A host's connect history: failures in a row, when the next attempt may
/// start, and the error requests get until then.
#[derive(Debug, Default)]
pub(crate) struct Reconnect {
    failures: u32,
    retry_at: Option<Instant>,
    last: Option<PoolError>,
}

impl Reconnect {
    /// Records a failed connect at `now`.
    pub(crate) fn on_failure(&mut self, err: PoolError, backoff: &Backoff, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + backoff.delay(self.failures));
        self.last = Some(err);
    }

    /// Records a successful connect.
    pub(crate) fn on_success(&mut self) {
        *self = Reconnect::default();
    }

    /// The error to fail fast with while the host is in back-off at `now`;
    /// `None` when a connect may be tried.
    pub(crate) fn blocked(&self, now: Instant) -> Option<PoolError> {
        match (self.retry_at, &self.last) {
            (Some(at), Some(err)) if now < at => Some(err.clone()),
            _ => None,
        }
    }

    /// Failures in a row so far.
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn grows_exponentially_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            jitter: 0.5,
        };
        assert_eq!(b.delay_with(0, 0.0), Duration::ZERO);
        assert_eq!(b.delay_with(1, 0.0), Duration::from_millis(10));
        assert_eq!(b.delay_with(2, 0.0), Duration::from_millis(20));
        assert_eq!(b.delay_with(4, 0.0), Duration::from_millis(80));
        assert_eq!(b.delay_with(5, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay_with(u32::MAX, 0.0), Duration::from_millis(100));
        // Full jitter draw halves the delay, never more.
        assert_eq!(b.delay_with(3, 1.0), Duration::from_millis(20));
        for _ in 0..100 {
            let d = b.delay(3);
            assert!(d >= Duration::from_millis(20) && d <= Duration::from_millis(40));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_during_backoff_then_allows_a_retry() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let err = PoolError::ConnectRefused {
            addr,
            kind: std::io::ErrorKind::ConnectionRefused,
        };
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        let mut r = Reconnect::default();
        assert_eq!(r.blocked(Instant::now()), None);
        r.on_failure(err.clone(), &b, Instant::now());
        assert_eq!(r.blocked(Instant::now()), Some(err.clone()));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(r.blocked(Instant::now()), None);
        r.on_failure(err.clone(), &b, Instant::now());
        assert_eq!(r.failures(), 2);
        tokio::time::advance(Duration::from_millis(199)).await;
        assert!(r.blocked(Instant::now()).is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(r.blocked(Instant::now()).is_none());
        r.on_success();
        assert_eq!(r.failures(), 0);
    }
}
