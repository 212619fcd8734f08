//! Per-request counters: protocol, route, cluster and host objects, and
//! the [`RequestStats`] recorder a request carries through the phases.
//!
//! The recorder holds `Arc`s to the objects its request touches, found
//! once each through the configuration snapshot's index (no lock), and
//! counts with relaxed atomics. A request that never finishes normally
//! (its connection closed mid-way) still decrements every `in_flight`
//! gauge it raised: the guards do it on drop.

use super::StatsIndex;
use super::clock::now_nanos;
use super::histogram::Histogram;
use super::reason::ErrorReason;
use crate::proxy::ProxyError;
use meshgate_codecs::Frame;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

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
///
/// Three clock reads per proxied request (`clock.rs`: nanoseconds, so a
/// latency is a subtraction): when it starts, when its try is sent and
/// when the try's response arrives. A request answered by its try's
/// response ends when that response arrived (the response filters after
/// it take nanoseconds), so the cluster's request latency needs no clock
/// read of its own.
///
/// Small on purpose (64 bytes): it lives in the request's future, which
/// tokio moves by `memcpy` when it spawns it, so every byte here is paid
/// per request. Hence the protocol's counters left with the connection
/// (`Downstream`), and 0 for "not yet" in the timestamps (the monotonic
/// clock is never 0).
#[derive(Debug, Default)]
pub struct RequestStats {
    /// The stats index of the configuration the request started on.
    index: Option<Arc<StatsIndex>>,
    /// When the request started (`clock.rs` nanoseconds).
    started: u64,
    route: Option<Arc<RouteStats>>,
    cluster: Option<InFlightCluster>,
    /// The try in flight, if any.
    attempt: Option<OpenAttempt>,
    /// When the last try's response arrived (0: none yet).
    answered: u64,
}

/// A cluster's `in_flight` raised by one request, lowered on drop.
#[derive(Debug)]
struct InFlightCluster(Arc<ClusterStats>);

impl Drop for InFlightCluster {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One try to one host, in flight until dropped (a request whose
/// connection closes mid-try lowers the host's `in_flight` all the same).
#[derive(Debug)]
struct OpenAttempt {
    host: Arc<HostRequestStats>,
    /// When the try was sent (`clock.rs` nanoseconds).
    sent: u64,
}

impl Drop for OpenAttempt {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestStats {
    /// A request of `protocol` starts now, on stats index `index`.
    pub(crate) fn start(protocol: &ProtocolStats, index: Arc<StatsIndex>) -> RequestStats {
        inc(&protocol.requests);
        RequestStats {
            index: Some(index),
            started: now_nanos(),
            ..RequestStats::default()
        }
    }

    /// The stats index the request started with.
    pub(crate) fn index(&self) -> Option<&StatsIndex> {
        self.index.as_deref()
    }

    /// The route matched (the last match counts when filters re-match).
    /// Out of line so callgrind can attribute its cost.
    #[inline(never)]
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

    /// One try to `host` is sent now; [`RequestStats::attempt_done`] ends
    /// it (or the request's end, for a oneway request or a dropped one).
    pub(crate) fn attempt(&mut self, host: Arc<HostRequestStats>) {
        inc(&host.requests);
        host.in_flight.fetch_add(1, Ordering::Relaxed);
        self.attempt = Some(OpenAttempt {
            host,
            sent: now_nanos(),
        });
    }

    /// The open try ended with `result`.
    pub(crate) fn attempt_done(&mut self, result: &Result<Frame, ProxyError>) {
        self.attempt_answered(result.as_ref().map(is_ok));
    }

    /// [`RequestStats::attempt_done`] for an HTTP try: `Ok(status)` when the
    /// upstream answered (5xx is an error response).
    pub(crate) fn attempt_done_http(&mut self, result: Result<u16, &ProxyError>) {
        self.attempt_answered(result.map(|status| status < 500));
    }

    /// `Ok(ok)`: the upstream answered, successfully or not.
    fn attempt_answered(&mut self, result: Result<bool, &ProxyError>) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        match result {
            Ok(ok) => {
                let host = &attempt.host;
                if ok {
                    inc(&host.responses_ok);
                } else {
                    inc(&host.responses_error);
                }
                let now = now_nanos();
                host.latency.record_nanos(now.saturating_sub(attempt.sent));
                self.answered = now;
            }
            Err(ProxyError::PerTryTimeout(_)) => {
                if let Some(cluster) = &self.cluster {
                    inc(&cluster.0.timeouts);
                }
            }
            Err(_) => {}
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
    /// `protocol`: the counters of the request's protocol.
    pub(crate) fn finish(
        &mut self,
        protocol: &ProtocolStats,
        outcome: &Result<Option<Frame>, ProxyError>,
    ) {
        self.finish_answered(
            protocol,
            match outcome {
                Ok(Some(response)) => Ok(Some(is_ok(response))),
                Ok(None) => Ok(None),
                Err(err) => Err(err),
            },
        );
    }

    /// [`RequestStats::finish`] for an HTTP request: `Ok(status)` when a
    /// response went out (5xx counts as an error), `Err` for a local reply.
    pub(crate) fn finish_http(
        &mut self,
        protocol: &ProtocolStats,
        outcome: Result<u16, &ProxyError>,
    ) {
        self.finish_answered(protocol, outcome.map(|status| Some(status < 500)));
    }

    /// `Ok(Some(ok))`: a response, successful or not; `Ok(None)`: nothing
    /// (oneway); `Err`: a local reply.
    fn finish_answered(
        &mut self,
        protocol: &ProtocolStats,
        outcome: Result<Option<bool>, &ProxyError>,
    ) {
        self.attempt = None;
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
        if let Err(err) = &outcome {
            inc(&protocol.error_replies[ErrorReason::of(err).index()]);
        }
        let Some(cluster) = self.cluster.take() else {
            return;
        };
        let cluster = &cluster.0;
        // An upstream reply is the response of the last try.
        let ended = match outcome {
            Ok(Some(_)) => {
                inc(if error {
                    &cluster.responses_error
                } else {
                    &cluster.responses_ok
                });
                Some(self.answered).filter(|&at| at != 0)
            }
            Ok(None) => return,
            Err(err) => {
                inc(&cluster.error_replies[ErrorReason::of(err).index()]);
                // A per-try timeout was counted by its try.
                if matches!(err, ProxyError::Timeout(_)) {
                    inc(&cluster.timeouts);
                }
                None
            }
        };
        let ended = ended.unwrap_or_else(now_nanos);
        cluster
            .latency
            .record_nanos(ended.saturating_sub(self.started));
    }
}
