//! Why the gateway answered a request itself, as a stats label.

use crate::proxy::ProxyError;
use meshgate_cluster::pool::PoolError;

/// The `reason` label of `error_replies_total`: one per kind of
/// [`ProxyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    /// No route matched (or the listener's router is gone).
    NoRoute,
    /// The route names a cluster that does not exist.
    NoCluster,
    /// The cluster had no host to offer.
    NoHealthyHost,
    /// The request (or its last try) timed out.
    Timeout,
    /// The upstream connection closed before the reply.
    Reset,
    /// A pool bound was reached.
    Overflow,
    /// No upstream connection could be opened.
    ConnectFailure,
    /// The pool was closing (reload, stop).
    PoolClosed,
    /// The request could not be re-encoded for the upstream.
    Encode,
    /// A stream filter or a direct-response route answered.
    Local,
    /// Any other upstream failure.
    Upstream,
}

impl ErrorReason {
    /// Every reason, in label order.
    pub const ALL: [ErrorReason; 11] = [
        ErrorReason::NoRoute,
        ErrorReason::NoCluster,
        ErrorReason::NoHealthyHost,
        ErrorReason::Timeout,
        ErrorReason::Reset,
        ErrorReason::Overflow,
        ErrorReason::ConnectFailure,
        ErrorReason::PoolClosed,
        ErrorReason::Encode,
        ErrorReason::Local,
        ErrorReason::Upstream,
    ];

    /// The reason of a local reply.
    pub fn of(err: &ProxyError) -> ErrorReason {
        match err {
            ProxyError::NoRoute => ErrorReason::NoRoute,
            ProxyError::NoCluster(_) => ErrorReason::NoCluster,
            ProxyError::NoHealthyHost(_) => ErrorReason::NoHealthyHost,
            ProxyError::PerTryTimeout(_) | ProxyError::Timeout(_) => ErrorReason::Timeout,
            ProxyError::Local(_) => ErrorReason::Local,
            ProxyError::Pool(pool) => match pool {
                PoolError::ConnectTimeout { .. } | PoolError::ConnectRefused { .. } => {
                    ErrorReason::ConnectFailure
                }
                PoolError::Overflow { .. } => ErrorReason::Overflow,
                PoolError::UpstreamReset { .. } => ErrorReason::Reset,
                PoolError::Closed { .. } => ErrorReason::PoolClosed,
                PoolError::Encode(_) => ErrorReason::Encode,
                _ => ErrorReason::Upstream,
            },
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::NoRoute => "no_route",
            ErrorReason::NoCluster => "no_cluster",
            ErrorReason::NoHealthyHost => "no_healthy_host",
            ErrorReason::Timeout => "timeout",
            ErrorReason::Reset => "reset",
            ErrorReason::Overflow => "overflow",
            ErrorReason::ConnectFailure => "connect_failure",
            ErrorReason::PoolClosed => "pool_closed",
            ErrorReason::Encode => "encode",
            ErrorReason::Local => "local",
            ErrorReason::Upstream => "upstream",
        }
    }

    /// Position in [`ErrorReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, reason) in ErrorReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{}", reason.as_str());
        }
    }
}
