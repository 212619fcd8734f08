//! Per-request counters: protocol, route, cluster and host objects, and
//! the [`RequestStats`] recorder a request carries through the phases.
//!
//! The recorder holds `Arc`s to the objects its request touches, found
//! once each through the configuration snapshot's index (no lock), and
//! counts with relaxed atomics. A request that never finishes normally
//! (its connection closed mid-way) still decrements every `in_flight`
//! gauge it raised: the guards do it on drop.

use super::StatsIndex;
use super::histogram::Histogram;
use super::reason::ErrorReason;
use crate::proxy::ProxyError;
use meshgate_codecs::Frame;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::time::Instant;

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Requests of one detected protocol, and every local reply (including
/// those with no route, hence no cluster to count them under).
#[derive(Debug, Default)]
pub struct ProtocolStats {
    pub(crate) requests: AtomicU64,
    pub(crate) error_replies: [AtomicU64; ErrorReason::ALL.len()],
}

/// Requests one route matched.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub(crate) requests: AtomicU64,
    /// Local error replies and upstream replies with an error status.
    pub(crate) errors: AtomicU64,
}

/// One upstream cluster's requests.
#[derive(Debug, Default)]
pub struct ClusterStats {
    pub(crate) requests: AtomicU64,
    pub(crate) in_flight: AtomicI64,
    pub(crate) responses_ok: AtomicU64,
    pub(crate) responses_error: AtomicU64,
    pub(crate) error_replies: [AtomicU64; ErrorReason::ALL.len()],
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// Request start → reply (upstream or local).
    pub(crate) latency: Histogram,
}

/// One host's tries, as seen from one cluster.
#[derive(Debug, Default)]
pub struct HostRequestStats {
    pub(crate) requests: AtomicU64,
    pub(crate) in_flight: AtomicI64,
    pub(crate) responses_ok: AtomicU64,
    pub(crate) responses_error: AtomicU64,
    /// Try sent → upstream response.
    pub(crate) latency: Histogram,
}

/// True when an upstream response carries a success status (or none: a
/// protocol without statuses answers only on success).
fn is_ok(response: &Frame) -> bool {
    response.status.is_none_or(|s| s.is_success())
}

/// What one request has counted so far. Lives in the request's context.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// The stats index of the configuration the request started on.
    index: Option<Arc<StatsIndex>>,
    started: Option<Instant>,
    protocol: Option<Arc<ProtocolStats>>,
    route: Option<Arc<RouteStats>>,
    cluster: Option<InFlightCluster>,
}

/// A cluster's `in_flight` raised by one request, lowered on drop.
#[derive(Debug)]
struct InFlightCluster(Arc<ClusterStats>);

impl Drop for InFlightCluster {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestStats {
    /// A request of `protocol` starts now.
    pub(crate) fn start(protocol: Arc<ProtocolStats>, index: Arc<StatsIndex>) -> RequestStats {
        inc(&protocol.requests);
        RequestStats {
            index: Some(index),
            started: Some(Instant::now()),
            protocol: Some(protocol),
            route: None,
            cluster: None,
        }
    }

    /// The stats index the request started with.
    pub(crate) fn index(&self) -> Option<&StatsIndex> {
        self.index.as_deref()
    }

    /// The route matched (the last match counts when filters re-match).
    pub(crate) fn matched(&mut self, route: Arc<RouteStats>) {
        inc(&route.requests);
        if let Some(previous) = self.route.replace(route) {
            previous.requests.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The request goes to `cluster` (the last choice counts).
    pub(crate) fn routed(&mut self, cluster: Arc<ClusterStats>) {
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.0, &cluster))
        {
            return;
        }
        inc(&cluster.requests);
        cluster.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(previous) = self.cluster.replace(InFlightCluster(cluster)) {
            previous.0.requests.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// One try to `host` starts; the returned guard ends it.
    pub(crate) fn attempt(&self, host: Arc<HostRequestStats>) -> Attempt {
        inc(&host.requests);
        host.in_flight.fetch_add(1, Ordering::Relaxed);
        Attempt {
            host,
            cluster: self.cluster.as_ref().map(|c| Arc::clone(&c.0)),
            started: Instant::now(),
        }
    }

    /// A failed try is retried.
    pub(crate) fn retried(&self) {
        if let Some(cluster) = &self.cluster {
            inc(&cluster.0.retries);
        }
    }

    /// The request is answered: by `Ok(Some)` an upstream response, by
    /// `Ok(None)` nothing (oneway), by `Err` a local reply.
    pub(crate) fn finish(&mut self, outcome: &Result<Option<Frame>, ProxyError>) {
        self.finish_answered(match outcome {
            Ok(Some(response)) => Ok(Some(is_ok(response))),
            Ok(None) => Ok(None),
            Err(err) => Err(err),
        });
    }

    /// [`RequestStats::finish`] for an HTTP request: `Ok(status)` when a
    /// response went out (5xx counts as an error), `Err` for a local reply.
    pub(crate) fn finish_http(&mut self, outcome: Result<u16, &ProxyError>) {
        self.finish_answered(outcome.map(|status| Some(status < 500)));
    }

    /// `Ok(Some(ok))`: a response, successful or not; `Ok(None)`: nothing
    /// (oneway); `Err`: a local reply.
    fn finish_answered(&mut self, outcome: Result<Option<bool>, &ProxyError>) {
        let error = match outcome {
            Ok(Some(ok)) => !ok,
            Ok(None) => false,
            Err(_) => true,
        };
        if let Some(route) = &self.route
            && error
        {
            inc(&route.errors);
        }
        if let (Some(protocol), Err(err)) = (&self.protocol, outcome) {
            inc(&protocol.error_replies[ErrorReason::of(err).index()]);
        }
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let cluster = &cluster.0;
        match outcome {
            Ok(Some(_)) if error => inc(&cluster.responses_error),
            Ok(Some(_)) => inc(&cluster.responses_ok),
            Ok(None) => return,
            Err(err) => {
                inc(&cluster.error_replies[ErrorReason::of(err).index()]);
                // A per-try timeout was counted by its try.
                if matches!(err, ProxyError::Timeout(_)) {
                    inc(&cluster.timeouts);
                }
            }
        }
        if let Some(started) = self.started {
            cluster.latency.record(started.elapsed());
        }
    }
}

/// One try to one host, in flight until dropped.
#[derive(Debug)]
pub(crate) struct Attempt {
    host: Arc<HostRequestStats>,
    cluster: Option<Arc<ClusterStats>>,
    started: Instant,
}

impl Attempt {
    /// The try ended with `result`.
    pub(crate) fn done(self, result: &Result<Frame, ProxyError>) {
        self.done_answered(result.as_ref().map(is_ok));
    }

    /// [`Attempt::done`] for an HTTP try: `Ok(status)` when the upstream
    /// answered (5xx is an error response).
    pub(crate) fn done_http(self, result: Result<u16, &ProxyError>) {
        self.done_answered(result.map(|status| status < 500));
    }

    /// `Ok(ok)`: the upstream answered, successfully or not.
    fn done_answered(self, result: Result<bool, &ProxyError>) {
        match result {
            Ok(ok) => {
                if ok {
                    inc(&self.host.responses_ok);
                } else {
                    inc(&self.host.responses_error);
                }
                self.host.latency.record(self.started.elapsed());
            }
            Err(ProxyError::PerTryTimeout(_)) => {
                if let Some(cluster) = &self.cluster {
                    inc(&cluster.timeouts);
                }
            }
            Err(_) => {}
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
