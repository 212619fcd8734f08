//! The proxy's side of a cluster's circuit breaker: one `max_requests`
//! permit per request (held across all its tries), and one retry permit
//! per retry that adds load to a cluster that is failing to keep up.
//!
//! Which retries count. MOSN and Envoy count every retry. meshgate counts
//! a retry against `max_retries` and the retry budget when the failed try
//! timed out: the host is alive but not answering in time, it may still be
//! working on the request, and a retry is more work for a cluster that is
//! already behind (the retry storm the budget exists for). A try that
//! failed because its host is gone (connect refused, host in back-off,
//! connection reset) is failover: the dead host gets no more work from
//! the retry, and refusing it would turn one dead host into error replies
//! while healthy hosts sit idle. Such retries are still bounded by the
//! route's `num_retries` (and, for written requests, by its `retry_on`)
//! and by the request's own `max_requests` permit.

use super::error::ProxyError;
use super::filter::LocalReply;
use meshgate_cluster::{BreakerPermit, Cluster};
use meshgate_codecs::ReplyStatus;
use std::borrow::Cow;

/// A `max_requests` permit for a request to `cluster`, or the overflow
/// reply (the codec's "server busy" status) when the cluster is full.
pub(super) fn admit_request(cluster: &Cluster) -> Result<BreakerPermit, ProxyError> {
    cluster.breaker().try_request().ok_or_else(|| {
        tracing::debug!(
            cluster = cluster.name(),
            "circuit breaker: max_requests reached"
        );
        ProxyError::Local(LocalReply {
            status: ReplyStatus::Overloaded,
            message: Cow::Borrowed(ReplyStatus::Overloaded.message()),
        })
    })
}

/// Whether the retry the policy allows after `err` may go ahead. A retry
/// after a timed-out try takes a retry permit,
/// kept in `held` until the next retry or the end of the request; false
/// (counted by the breaker) when `max_retries` or the budget refuses.
pub(super) fn admit_retry(
    cluster: &Cluster,
    err: &ProxyError,
    held: &mut Option<BreakerPermit>,
) -> bool {
    if !adds_load_to_a_lagging_cluster(err) {
        return true;
    }
    // The previous retry is over: its permit goes back first.
    *held = None;
    match cluster.breaker().try_retry() {
        Ok(permit) => {
            *held = Some(permit);
            true
        }
        Err(refusal) => {
            tracing::debug!(cluster = cluster.name(), ?refusal, error = %err, "circuit breaker: retry refused");
            false
        }
    }
}

/// True when the try failed by timing out: its host is alive and behind.
fn adds_load_to_a_lagging_cluster(err: &ProxyError) -> bool {
    matches!(err, ProxyError::PerTryTimeout(_) | ProxyError::Timeout(_))
}
