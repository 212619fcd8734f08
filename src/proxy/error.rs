//! Why the proxy could not forward a request, and how each reason is
//! answered and retried.

use super::filter::LocalReply;
use meshgate_cluster::pool::PoolError;
use meshgate_codecs::ReplyStatus;
use meshgate_router::FailureKind;
use std::time::Duration;

/// Where a failure came from (pingora's error source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// The gateway decided (no route, filters, config).
    Local,
    /// The upstream side failed.
    Upstream,
}

/// A request the proxy answers itself.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route matched.
    #[error("no route matches the request")]
    NoRoute,
    /// The route names a cluster that does not exist.
    #[error("cluster {0:?} is not defined")]
    NoCluster(String),
    /// The cluster had no host to offer.
    #[error("no healthy host in cluster {0:?}")]
    NoHealthyHost(String),
    /// The upstream pool failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// One try took longer than the per-try timeout.
    #[error("upstream did not answer within the per-try timeout of {0:?}")]
    PerTryTimeout(Duration),
    /// The whole request took longer than its timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// A filter or a direct-response route answered.
    #[error("local reply: {}", .0.status)]
    Local(LocalReply),
}

impl ProxyError {
    /// The neutral reason the request's codec answers with.
    pub fn reply_status(&self) -> ReplyStatus {
        match self {
            ProxyError::NoRoute => ReplyStatus::NoRoute,
            ProxyError::NoCluster(_) | ProxyError::NoHealthyHost(_) => {
                ReplyStatus::NoHealthyUpstream
            }
            ProxyError::Pool(e) => e.reply_status(),
            ProxyError::PerTryTimeout(_) | ProxyError::Timeout(_) => ReplyStatus::Timeout,
            ProxyError::Local(reply) => reply.status,
        }
    }

    /// The message carried in the reply where the protocol has one: a
    /// filter's or direct response's own text, else MOSN's fixed text for
    /// the status (`"504|timeout"`, `"502|no health upstream"`, ...), as
    /// MOSN's Dubbo hijack sends it. The detail (host, timeout) stays in
    /// the gateway's log; it is not the client's business.
    pub fn reply_message(&self) -> String {
        match self {
            ProxyError::Local(reply) if !reply.message.is_empty() => reply.message.to_string(),
            other => other.reply_status().message().to_owned(),
        }
    }

    /// Where the failure came from.
    pub fn source(&self) -> ErrorSource {
        match self {
            ProxyError::Pool(_) | ProxyError::PerTryTimeout(_) => ErrorSource::Upstream,
            _ => ErrorSource::Local,
        }
    }

    /// The failure kind a route's retry policy judges, for failures that
    /// may be retried on another host.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            ProxyError::Pool(e) if e.is_connect_failure() => Some(FailureKind::ConnectFailure),
            // The connection died before the request reached the socket:
            // the upstream never saw it, so it is as safe to send elsewhere
            // as after a failed connect (retried even by MOSN's implicit
            // policy, never duplicated).
            ProxyError::Pool(PoolError::UpstreamReset { written: false }) => {
                Some(FailureKind::ConnectFailure)
            }
            ProxyError::Pool(PoolError::UpstreamReset { .. }) => Some(FailureKind::Reset),
            ProxyError::Pool(PoolError::Closed { .. }) => Some(FailureKind::ConnectFailure),
            ProxyError::Pool(PoolError::Overflow { .. }) => Some(FailureKind::Overflow),
            ProxyError::PerTryTimeout(_) => Some(FailureKind::PerTryTimeout),
            _ => None,
        }
    }
}
