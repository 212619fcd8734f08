//! A lock-free latency histogram with log-linear buckets.
//!
//! Values are microseconds. Below 32 µs every value has its own bucket;
//! above, each power of two is split into 32 equal buckets (HDR-style), so
//! a bucket is at most 1/32 (3.1 %) of its value wide and a percentile read
//! from the bucket's midpoint is within about 1.6 % of the true value.
//! Values past [`Histogram::MAX_MICROS`] (about 134 s) land in the last
//! bucket.
//!
//! ```text
//!  index:   0 1 2 … 31 │ 32 33 … 63 │ 64  65  … 95 │ 96 … │ …
//!  value:   0 1 2 … 31 │ 32 33 … 63 │ 64  66  … 126│ 128 …│   (bucket lower bounds, µs)
//!  width:   1          │ 1          │ 2            │ 4    │ doubles every 32 buckets
//! ```
//!
//! Recording is two relaxed atomic adds (the bucket and the sum); the
//! count is the buckets' total, read at snapshot time. Readers may see a
//! bucket incremented before the sum (or the reverse): a snapshot is exact
//! once recording stops, and close enough while it runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Powers of two covered above the linear range: 2^5 … 2^26 µs.
const GROUPS: usize = 22;
const BUCKETS: usize = SUB_COUNT * (GROUPS + 1);

/// The Prometheus `le` bounds, in seconds: a fixed set derived from the fine
/// buckets (each bound's count is the total of the fine buckets whose index
/// is at most the bound's own bucket, so it may include values up to one
/// fine bucket, 3 %, above the bound).
pub const PROMETHEUS_BOUNDS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// A latency histogram; see the module docs.
pub struct Histogram {
    buckets: Box<[AtomicU64; BUCKETS]>,
    sum_nanos: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.snapshot().count())
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// The largest value with a bucket of its own, in microseconds.
    pub const MAX_MICROS: u64 = (1 << (GROUPS as u64 + SUB_BITS as u64)) - 1;

    /// Records one duration.
    pub fn record(&self, elapsed: Duration) {
        // 64-bit arithmetic (`as_nanos` is 128-bit): saturates after 584
        // years, far past the last bucket.
        self.record_nanos(
            elapsed
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(elapsed.subsec_nanos())),
        );
    }

    /// Records one duration given in nanoseconds.
    pub fn record_nanos(&self, nanos: u64) {
        self.buckets[bucket_of(nanos / 1_000)].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A copy of the counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

/// The bucket of a value in microseconds.
fn bucket_of(micros: u64) -> usize {
    if micros < SUB_COUNT as u64 {
        return micros as usize;
    }
    let micros = micros.min(Histogram::MAX_MICROS);
    // The highest set bit, at least SUB_BITS here.
    let exponent = 63 - micros.leading_zeros();
    let group = (exponent - SUB_BITS + 1) as usize;
    let sub = ((micros >> (exponent - SUB_BITS)) as usize) - SUB_COUNT;
    group * SUB_COUNT + sub
}

/// `[lower, upper)` of a bucket, in microseconds.
fn bounds_of(index: usize) -> (u64, u64) {
    let group = index / SUB_COUNT;
    let sub = (index % SUB_COUNT) as u64;
    if group == 0 {
        return (sub, sub + 1);
    }
    let width = 1u64 << (group - 1);
    let lower = (SUB_COUNT as u64 + sub) * width;
    (lower, lower + width)
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    buckets: Vec<u64>,
    sum_nanos: u64,
}

impl HistogramSnapshot {
    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// The `q`-quantile (`0.0..=1.0`) in microseconds: the midpoint of the
    /// bucket holding the observation of rank `ceil(q × count)`; 0 when
    /// empty.
    pub fn quantile_micros(&self, q: f64) -> f64 {
        let count = self.count();
        if count == 0 {
            return 0.0;
        }
        // Rank in 1..=count; float to integer rounds up and saturates.
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (lower, upper) = bounds_of(index);
                if upper - lower == 1 {
                    return lower as f64;
                }
                return (lower + upper) as f64 / 2.0;
            }
        }
        bounds_of(BUCKETS - 1).0 as f64
    }

    /// Cumulative counts at each of [`PROMETHEUS_BOUNDS`] (seconds), then at
    /// `+Inf`.
    pub fn prometheus_buckets(&self) -> Vec<(f64, u64)> {
        let mut out = Vec::with_capacity(PROMETHEUS_BOUNDS.len() + 1);
        let mut cumulative = 0;
        let mut next = 0;
        for &bound in &PROMETHEUS_BOUNDS {
            // Float seconds → whole microseconds: every bound is a whole
            // number of them.
            let last = bucket_of((bound * 1e6).round() as u64);
            while next <= last {
                cumulative += self.buckets[next];
                next += 1;
            }
            out.push((bound, cumulative));
        }
        out.push((f64::INFINITY, self.count()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        let mut expected_lower = 0;
        for index in 0..BUCKETS {
            let (lower, upper) = bounds_of(index);
            assert_eq!(lower, expected_lower, "bucket {index}");
            assert!(upper > lower);
            assert_eq!(bucket_of(lower), index);
            assert_eq!(bucket_of(upper - 1), index);
            // At most 1/32 of the value wide.
            assert!((upper - lower) * 32 <= upper.max(32), "bucket {index}");
            expected_lower = upper;
        }
        assert_eq!(expected_lower - 1, Histogram::MAX_MICROS);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        // 1 ms … 100 ms in 10 µs steps: 10,000 values, p50 = 50 ms, etc.
        let h = Histogram::default();
        for i in 1..=10_000u64 {
            h.record(Duration::from_micros(i * 10));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        let exact_sum: u64 = (1..=10_000u64).map(|i| i * 10_000).sum();
        assert_eq!(s.sum(), Duration::from_nanos(exact_sum));
        for (q, exact) in [
            (0.5, 50_000.0),
            (0.9, 90_000.0),
            (0.99, 99_000.0),
            (0.999, 99_900.0),
        ] {
            let got = s.quantile_micros(q);
            let error = (got - exact).abs() / exact;
            assert!(error < 0.016, "p{q}: {got} vs {exact} ({error})");
        }
    }

    #[test]
    fn percentiles_of_a_skewed_distribution() {
        // 99 % fast (200 µs), 1 % slow (2 s): p99 is fast, p99.9 slow.
        let h = Histogram::default();
        for i in 0..100_000u64 {
            let v = if i % 100 == 0 { 2_000_000 } else { 200 };
            h.record(Duration::from_micros(v));
        }
        let s = h.snapshot();
        let near = |got: f64, want: f64| (got - want).abs() / want < 0.016;
        assert!(near(s.quantile_micros(0.5), 200.0));
        assert!(near(s.quantile_micros(0.99), 200.0));
        assert!(near(s.quantile_micros(0.999), 2_000_000.0));
        assert!(near(s.quantile_micros(1.0), 2_000_000.0));
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile_micros(0.5), 0.0);
        h.record(Duration::from_nanos(500));
        h.record(Duration::from_micros(7));
        h.record(Duration::from_micros(7));
        let s = h.snapshot();
        assert_eq!(s.quantile_micros(0.3), 0.0);
        assert_eq!(s.quantile_micros(0.9), 7.0);
    }

    #[test]
    fn prometheus_buckets_are_cumulative() {
        let h = Histogram::default();
        for micros in [50, 90, 400, 800, 3_000, 70_000_000] {
            h.record(Duration::from_micros(micros));
        }
        let buckets = h.snapshot().prometheus_buckets();
        assert_eq!(buckets.len(), PROMETHEUS_BOUNDS.len() + 1);
        let at = |le: f64| buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(at(0.0001), Some(2));
        assert_eq!(at(0.0005), Some(3));
        assert_eq!(at(0.001), Some(4));
        assert_eq!(at(0.005), Some(5));
        assert_eq!(at(60.0), Some(5));
        assert_eq!(at(f64::INFINITY), Some(6));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.record(Duration::from_micros(t * 1000 + i % 500));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.snapshot().count(), 40_000);
    }
}
