//! The statistics' clock: monotonic nanoseconds as a plain `u64`.
//!
//! A latency is then one subtraction. The difference of two `Instant`s goes
//! through checked `timespec` arithmetic and `Duration` normalisation, 56
//! instructions per latency under callgrind (two per request); reading the
//! clock costs the same either way (`clock_gettime(CLOCK_MONOTONIC)`, the
//! clock `Instant` reads, so the two agree).
//!
//! This is the real clock: `tokio::time::pause` does not stop it (a paused
//! clock would record every latency as zero anyway). Nothing but latency
//! histograms reads it.

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on the monotonic clock (0 if the clock cannot be read,
/// which Linux never does for `CLOCK_MONOTONIC`).
pub(crate) fn now_nanos() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(t) => u64::try_from(t.tv_sec())
            .unwrap_or(0)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(u64::try_from(t.tv_nsec()).unwrap_or(0)),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_advance_with_the_clock_instant_reads() {
        let before = now_nanos();
        let std_before = tokio::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let std_elapsed = std_before.elapsed();
        let elapsed = now_nanos() - before;
        // Our interval encloses `Instant`'s: on the same clock it is at
        // least as long.
        let std_nanos = u64::try_from(std_elapsed.as_nanos()).unwrap();
        assert!(std_nanos >= 20_000_000, "{std_nanos} ns");
        assert!(elapsed >= std_nanos, "{elapsed} vs {std_nanos}");
    }
}
