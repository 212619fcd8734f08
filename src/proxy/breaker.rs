//! The proxy's side of a cluster's circuit breaker: one `max_requests`
//! permit per request (held across all its tries), and one retry permit
//! per retry that could add load to the cluster.
//!
//! Which retries count. MOSN and Envoy count every retry. meshgate counts
//! a retry against `max_retries` and the retry budget only when the failed
//! try may have reached an upstream (the request was written, or the try
//! timed out): only those can make a failing cluster do the same work
//! twice. A request that never left the gateway (connect refused, host in
//! back-off, pool closed) costs no upstream anything when it is sent to
//! another host, and refusing it would turn one dead host into error
//! replies while healthy hosts sit idle. Such retries are still bounded by
//! the route's `num_retries` and the request's own `max_requests` permit.

use super::error::ProxyError;
use super::filter::LocalReply;
use meshgate_cluster::{BreakerPermit, Cluster};
use meshgate_codecs::ReplyStatus;
use std::borrow::Cow;

/// A `max_requests` permit for a request to `cluster`, or the overflow
/// reply (the codec's "server busy" status) when the cluster is full.
pub(super) fn admit_request(cluster: &Cluster) -> Result<BreakerPermit, ProxyError> {
    cluster.breaker().try_request().ok_or_else(|| {
        tracing::debug!(cluster = cluster.name(), "circuit breaker: max_requests reached");
        ProxyError::Local(LocalReply {
            status: ReplyStatus::Overloaded,
            message: Cow::Borrowed(ReplyStatus::Overloaded.message()),
        })
    })
}

/// Whether the retry the policy allows after `err` may go ahead. A retry
/// that may re-send work an upstream already has takes a retry permit,
/// kept in `held` until the next retry or the end of the request; false
/// (counted by the breaker) when `max_retries` or the budget refuses.
pub(super) fn admit_retry(
    cluster: &Cluster,
    err: &ProxyError,
    held: &mut Option<BreakerPermit>,
) -> bool {
    if !may_have_reached_upstream(err) {
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

/// True when the failed try may have been received by an upstream.
fn may_have_reached_upstream(err: &ProxyError) -> bool {
    match err {
        ProxyError::Pool(e) => e.was_written(),
        ProxyError::PerTryTimeout(_) | ProxyError::Timeout(_) => true,
        _ => false,
    }
}
