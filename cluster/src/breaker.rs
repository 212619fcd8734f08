//! Circuit breakers: a cluster's limits on what it has in flight, enforced
//! with lock-free atomic counters and RAII permits.
//!
//! MOSN's `circuit_breakers` (its resource manager) bounds four resources
//! per cluster; each is a counter with a maximum, and asking for one more
//! than the maximum is refused at once instead of queued:
//!
//! | resource | counted while | refused → |
//! |---|---|---|
//! | `max_requests` | a request is being forwarded to the cluster (all its tries) | overflow error reply |
//! | `max_pending_requests` | a request waits for an upstream connection | overflow error reply |
//! | `max_connections` | an upstream connection of the cluster is open | no new connection; overflow if none has room |
//! | `max_retries` | a retry is in flight | no retry: the failed try's error is the answer |
//!
//! On top of `max_retries` sits a retry budget (Envoy's
//! `retry_budget`): a retry is allowed only while the retries in flight
//! stay under `budget_percent` of the requests in flight, or under
//! `min_retry_concurrency`, whichever is larger. A fixed `max_retries`
//! cannot tell 10 requests from 10,000; the budget scales with load, so
//! when a whole cluster fails, retries add at most that fraction to the
//! load instead of multiplying it.
//!
//! Counting is a compare-and-swap on one atomic per resource: a permit is
//! granted only if the count stays at or under the maximum, so the limit
//! is exact even under contention, and dropping the [`BreakerPermit`]
//! gives it back. Nothing here takes a lock or allocates.
//!
//! A breaker belongs to a cluster by name and survives reloads (the
//! cluster manager hands the old breaker to the rebuilt cluster and
//! updates its limits in place), so permits held across a reload are
//! returned to the breaker that counts new ones.

use crate::cluster::CircuitBreakerLimits;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The four resources a breaker counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Open upstream connections (`max_connections`).
    Connections,
    /// Requests waiting for an upstream connection (`max_pending_requests`).
    PendingRequests,
    /// Requests in flight (`max_requests`).
    Requests,
    /// Retries in flight (`max_retries` and the retry budget).
    Retries,
}

impl Resource {
    const ALL: [Resource; 4] = [
        Resource::Connections,
        Resource::PendingRequests,
        Resource::Requests,
        Resource::Retries,
    ];

    const fn index(self) -> usize {
        match self {
            Resource::Connections => 0,
            Resource::PendingRequests => 1,
            Resource::Requests => 2,
            Resource::Retries => 3,
        }
    }

    /// The config key that limits it.
    pub const fn config_name(self) -> &'static str {
        match self {
            Resource::Connections => "max_connections",
            Resource::PendingRequests => "max_pending_requests",
            Resource::Requests => "max_requests",
            Resource::Retries => "max_retries",
        }
    }
}

/// Envoy's retry budget (`circuit_breakers[0].retry_budget`, a meshgate
/// extension of MOSN's thresholds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Retries in flight allowed, as a percentage of requests in flight.
    /// Default 20; 100 or more turns the budget off.
    pub budget_percent: f64,
    /// Retries in flight always allowed, however few requests there are.
    /// Default 3 (MOSN's default `max_retries`).
    pub min_retry_concurrency: u32,
}

impl RetryBudget {
    /// Envoy's defaults: 20 %, at least 3.
    pub const DEFAULT: RetryBudget = RetryBudget {
        budget_percent: 20.0,
        min_retry_concurrency: 3,
    };

    /// The retries in flight this budget allows with `active_requests`
    /// requests in flight.
    pub fn allowed(&self, active_requests: u32) -> u32 {
        let share = (f64::from(active_requests) * self.budget_percent / 100.0).floor();
        // `as` saturates: a huge or NaN percentage cannot wrap.
        (share as u32).max(self.min_retry_concurrency)
    }
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget::DEFAULT
    }
}

/// Refusals, by resource: what the stats page shows as overflows.
#[derive(Debug, Default)]
pub struct BreakerCounters {
    /// Requests refused at `max_requests`.
    pub requests_overflow: AtomicU64,
    /// Requests refused at `max_pending_requests`.
    pub pending_overflow: AtomicU64,
    /// Connections not opened at `max_connections` (each also fails or
    /// delays a request).
    pub connections_overflow: AtomicU64,
    /// Retries refused at `max_retries`.
    pub retries_overflow: AtomicU64,
    /// Retries refused by the retry budget.
    pub retry_budget_overflow: AtomicU64,
    /// Retries allowed.
    pub retries: AtomicU64,
}

impl BreakerCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Every refusal, all resources together.
    pub fn overflows(&self) -> u64 {
        [
            &self.requests_overflow,
            &self.pending_overflow,
            &self.connections_overflow,
            &self.retries_overflow,
            &self.retry_budget_overflow,
        ]
        .into_iter()
        .map(BreakerCounters::get)
        .sum()
    }

    fn refused(&self, resource: Resource) -> &AtomicU64 {
        match resource {
            Resource::Connections => &self.connections_overflow,
            Resource::PendingRequests => &self.pending_overflow,
            Resource::Requests => &self.requests_overflow,
            Resource::Retries => &self.retries_overflow,
        }
    }
}

/// Why a retry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryRefusal {
    /// `max_retries` retries are in flight.
    MaxRetries,
    /// The retry budget is spent.
    Budget,
}

/// One cluster's circuit breaker. Shared (`Arc`) by the cluster, the
/// proxy and the cluster's pools.
pub struct CircuitBreaker {
    max: [AtomicU32; 4],
    active: [AtomicU32; 4],
    /// `budget_percent` as `f64` bits.
    budget_percent: AtomicU64,
    min_retry_concurrency: AtomicU32,
    counters: BreakerCounters,
}

impl CircuitBreaker {
    /// MOSN's defaults for a limit left at 0 or unset (its resource
    /// manager, "10x bigger than Envoy's").
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_240;
    /// See [`CircuitBreaker::DEFAULT_MAX_CONNECTIONS`].
    pub const DEFAULT_MAX_PENDING_REQUESTS: u32 = 10_240;
    /// See [`CircuitBreaker::DEFAULT_MAX_CONNECTIONS`].
    pub const DEFAULT_MAX_REQUESTS: u32 = 10_240;

    /// A breaker enforcing `limits`, nothing counted yet.
    pub fn new(limits: &CircuitBreakerLimits) -> Arc<CircuitBreaker> {
        let breaker = CircuitBreaker {
            max: Default::default(),
            active: Default::default(),
            budget_percent: AtomicU64::new(0),
            min_retry_concurrency: AtomicU32::new(0),
            counters: BreakerCounters::default(),
        };
        breaker.set_limits(limits);
        Arc::new(breaker)
    }

    /// Applies new limits (on reload). Permits already granted stay
    /// granted; a lowered limit refuses new ones until enough are returned.
    pub fn set_limits(&self, limits: &CircuitBreakerLimits) {
        let resolved = [
            limits
                .max_connections
                .unwrap_or(Self::DEFAULT_MAX_CONNECTIONS),
            limits
                .max_pending_requests
                .unwrap_or(Self::DEFAULT_MAX_PENDING_REQUESTS),
            limits.max_requests.unwrap_or(Self::DEFAULT_MAX_REQUESTS),
            // No fixed cap unless configured: the budget bounds retries.
            limits.max_retries.unwrap_or(u32::MAX),
        ];
        for (slot, max) in self.max.iter().zip(resolved) {
            slot.store(max, Ordering::Relaxed);
        }
        let budget = limits.retry_budget.unwrap_or_default();
        self.budget_percent
            .store(budget.budget_percent.to_bits(), Ordering::Relaxed);
        self.min_retry_concurrency
            .store(budget.min_retry_concurrency, Ordering::Relaxed);
    }

    /// The maximum in force for `resource` (`u32::MAX`: none).
    pub fn max(&self, resource: Resource) -> u32 {
        self.max[resource.index()].load(Ordering::Relaxed)
    }

    /// How many of `resource` are held now.
    pub fn active(&self, resource: Resource) -> u32 {
        self.active[resource.index()].load(Ordering::Relaxed)
    }

    /// The retry budget in force.
    pub fn retry_budget(&self) -> RetryBudget {
        RetryBudget {
            budget_percent: f64::from_bits(self.budget_percent.load(Ordering::Relaxed)),
            min_retry_concurrency: self.min_retry_concurrency.load(Ordering::Relaxed),
        }
    }

    /// The refusal counters.
    pub fn counters(&self) -> &BreakerCounters {
        &self.counters
    }

    /// One more request in flight, or `None` (counted) at `max_requests`.
    pub fn try_request(self: &Arc<Self>) -> Option<BreakerPermit> {
        self.try_acquire(Resource::Requests)
    }

    /// One more request waiting for a connection, or `None` (counted) at
    /// `max_pending_requests`.
    pub fn try_pending(self: &Arc<Self>) -> Option<BreakerPermit> {
        self.try_acquire(Resource::PendingRequests)
    }

    /// One more open connection, or `None` (counted) at `max_connections`.
    pub fn try_connection(self: &Arc<Self>) -> Option<BreakerPermit> {
        self.try_acquire(Resource::Connections)
    }

    /// Like [`CircuitBreaker::try_connection`], but a refusal is not
    /// counted: for a pool opening a spare connection no request waits for.
    pub fn try_spare_connection(self: &Arc<Self>) -> Option<BreakerPermit> {
        self.acquire(Resource::Connections, false)
    }

    /// One more retry in flight, if both `max_retries` and the retry budget
    /// allow it; a refusal is counted under its reason.
    pub fn try_retry(self: &Arc<Self>) -> Result<BreakerPermit, RetryRefusal> {
        let budget = self.retry_budget().allowed(self.active(Resource::Requests));
        let slot = &self.active[Resource::Retries.index()];
        let max = self.max(Resource::Retries);
        let granted = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max && n < budget).then_some(n + 1)
        });
        match granted {
            Ok(_) => {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                Ok(BreakerPermit {
                    breaker: Arc::clone(self),
                    resource: Resource::Retries,
                })
            }
            Err(n) if n >= max => {
                self.counters
                    .retries_overflow
                    .fetch_add(1, Ordering::Relaxed);
                Err(RetryRefusal::MaxRetries)
            }
            Err(_) => {
                self.counters
                    .retry_budget_overflow
                    .fetch_add(1, Ordering::Relaxed);
                Err(RetryRefusal::Budget)
            }
        }
    }

    fn try_acquire(self: &Arc<Self>, resource: Resource) -> Option<BreakerPermit> {
        self.acquire(resource, true)
    }

    fn acquire(self: &Arc<Self>, resource: Resource, count_refusal: bool) -> Option<BreakerPermit> {
        let max = self.max(resource);
        let slot = &self.active[resource.index()];
        match slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        }) {
            Ok(_) => Some(BreakerPermit {
                breaker: Arc::clone(self),
                resource,
            }),
            Err(_) => {
                if count_refusal {
                    self.counters
                        .refused(resource)
                        .fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        }
    }
}

/// Identity: two breakers are equal when they are the same breaker (pool
/// configs compare equal only when they share it).
impl PartialEq for CircuitBreaker {
    fn eq(&self, other: &CircuitBreaker) -> bool {
        std::ptr::eq(self, other)
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CircuitBreaker");
        for resource in Resource::ALL {
            s.field(
                resource.config_name(),
                &format_args!("{}/{}", self.active(resource), self.max(resource)),
            );
        }
        s.field("retry_budget", &self.retry_budget())
            .field("overflows", &self.counters.overflows())
            .finish()
    }
}

/// One unit of a breaker's resource, given back when dropped.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct BreakerPermit {
    breaker: Arc<CircuitBreaker>,
    resource: Resource,
}

impl BreakerPermit {
    /// What it holds.
    pub fn resource(&self) -> Resource {
        self.resource
    }
}

impl fmt::Debug for BreakerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BreakerPermit")
            .field(&self.resource)
            .finish()
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        self.breaker.active[self.resource.index()].fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: u32, retries: Option<u32>) -> CircuitBreakerLimits {
        CircuitBreakerLimits {
            max_requests: Some(requests),
            max_retries: retries,
            ..CircuitBreakerLimits::default()
        }
    }

    #[test]
    fn permits_stop_at_the_limit_and_come_back_when_dropped() {
        let b = CircuitBreaker::new(&limits(2, None));
        let one = b.try_request().expect("first");
        let two = b.try_request().expect("second");
        assert!(b.try_request().is_none());
        assert!(b.try_request().is_none());
        assert_eq!(b.active(Resource::Requests), 2);
        assert_eq!(BreakerCounters::get(&b.counters().requests_overflow), 2);
        drop(one);
        let three = b.try_request().expect("room again");
        drop((two, three));
        assert_eq!(b.active(Resource::Requests), 0);
    }

    #[test]
    fn unset_limits_take_mosn_defaults() {
        let b = CircuitBreaker::new(&CircuitBreakerLimits::default());
        assert_eq!(b.max(Resource::Requests), 10_240);
        assert_eq!(b.max(Resource::Connections), 10_240);
        assert_eq!(b.max(Resource::PendingRequests), 10_240);
        assert_eq!(b.max(Resource::Retries), u32::MAX);
        assert_eq!(b.retry_budget(), RetryBudget::DEFAULT);
    }

    #[test]
    fn the_budget_scales_with_requests_in_flight() {
        let budget = RetryBudget::DEFAULT;
        assert_eq!(budget.allowed(0), 3);
        assert_eq!(budget.allowed(10), 3);
        assert_eq!(budget.allowed(100), 20);
        assert_eq!(budget.allowed(1001), 200);
        let off = RetryBudget {
            budget_percent: 100.0,
            min_retry_concurrency: 0,
        };
        assert_eq!(off.allowed(7), 7);
        let absurd = RetryBudget {
            budget_percent: f64::INFINITY,
            min_retry_concurrency: 0,
        };
        assert_eq!(absurd.allowed(1), u32::MAX);
    }

    #[test]
    fn retries_need_room_under_the_budget_and_max_retries() {
        let b = CircuitBreaker::new(&limits(1000, Some(5)));
        let requests: Vec<_> = (0..50).map(|_| b.try_request().unwrap()).collect();
        // 20 % of 50 = 10, capped by max_retries 5.
        let retries: Vec<_> = (0..5).map(|_| b.try_retry().unwrap()).collect();
        assert_eq!(b.try_retry().unwrap_err(), RetryRefusal::MaxRetries);
        drop(retries);
        b.set_limits(&limits(1000, None));
        let retries: Vec<_> = (0..10).map(|_| b.try_retry().unwrap()).collect();
        assert_eq!(b.try_retry().unwrap_err(), RetryRefusal::Budget);
        let c = b.counters();
        assert_eq!(BreakerCounters::get(&c.retries_overflow), 1);
        assert_eq!(BreakerCounters::get(&c.retry_budget_overflow), 1);
        assert_eq!(BreakerCounters::get(&c.retries), 15);
        drop((requests, retries));
        assert_eq!(b.active(Resource::Retries), 0);
    }

    #[test]
    fn the_limit_is_exact_under_contention() {
        let b = CircuitBreaker::new(&limits(64, None));
        let granted = AtomicU32::new(0);
        let peak = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        if let Some(p) = b.try_request() {
                            granted.fetch_add(1, Ordering::Relaxed);
                            peak.fetch_max(b.active(Resource::Requests), Ordering::Relaxed);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 64);
        assert!(granted.load(Ordering::Relaxed) > 0);
        assert_eq!(b.active(Resource::Requests), 0);
    }
}
