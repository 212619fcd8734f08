//! Why a pool could not deliver a request's response.

use meshgate_codecs::{CodecError, ReplyStatus};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// A pool's answer when there is no response. Each variant says whether the
/// upstream may have seen the request ([`PoolError::was_written`]), which
/// decides whether the proxy may retry it ([`PoolError::is_retryable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The TCP connect did not finish in time (or the host is in back-off
    /// after such a failure). The request was never sent.
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The host.
        addr: SocketAddr,
        /// The connect timeout in force.
        timeout: Duration,
    },
    /// The TCP connect failed (refused, unreachable, ...), or the host is in
    /// back-off after such a failure. The request was never sent.
    #[error("connect to {addr} failed: {kind}")]
    ConnectRefused {
        /// The host.
        addr: SocketAddr,
        /// What the connect returned.
        kind: io::ErrorKind,
    },
    /// A bound was reached (in-flight requests per connection with every
    /// connection open, or waiters for a ping-pong connection; a full
    /// write buffer makes requests wait, not fail). The request was never
    /// sent.
    #[error("upstream {addr} overflow: {what}")]
    Overflow {
        /// The host.
        addr: SocketAddr,
        /// Which bound.
        what: &'static str,
    },
    /// The connection closed or failed before the response arrived.
    /// `written`: the frame had been handed to the socket, so the upstream
    /// may have received (and acted on) it. For a ping-pong connection
    /// reused from idle, an end of stream before any response byte also
    /// counts as not written: the upstream had closed the idle connection
    /// (the stale keep-alive case every HTTP client retries once).
    #[error("upstream connection reset {} the request was written", if *written { "after" } else { "before" })]
    UpstreamReset {
        /// Whether the request may have reached the upstream.
        written: bool,
    },
    /// The pool was closed (reload or shutdown). The request was never sent.
    #[error("the pool for {addr} is closed")]
    Closed {
        /// The host.
        addr: SocketAddr,
    },
    /// The request could not be encoded (a frame built in memory whose
    /// fields do not fit the protocol). Retrying cannot help.
    #[error("request cannot be encoded: {0}")]
    Encode(#[source] CodecError),
}

impl PoolError {
    /// True when the upstream may have received the request.
    pub fn was_written(&self) -> bool {
        match self {
            PoolError::UpstreamReset { written } => *written,
            // An encode failure writes nothing, but the request is broken.
            PoolError::ConnectTimeout { .. }
            | PoolError::ConnectRefused { .. }
            | PoolError::Overflow { .. }
            | PoolError::Closed { .. }
            | PoolError::Encode(_) => false,
        }
    }

    /// True when sending the request again (to another host or on a new
    /// connection) cannot duplicate it: it never reached the upstream. A
    /// written request is retriable only if the route says it is
    /// idempotent, which is the proxy's decision, not the pool's.
    pub fn is_retryable(&self) -> bool {
        !self.was_written() && !matches!(self, PoolError::Encode(_))
    }

    /// True for connect failures (the host, not the request, is at fault;
    /// outlier detection counts these).
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            PoolError::ConnectTimeout { .. } | PoolError::ConnectRefused { .. }
        )
    }

    /// The reason the proxy gives when it answers for the upstream.
    pub fn reply_status(&self) -> ReplyStatus {
        match self {
            PoolError::ConnectTimeout { .. } | PoolError::ConnectRefused { .. } => {
                ReplyStatus::ConnectFailed
            }
            PoolError::Overflow { .. } => ReplyStatus::Overloaded,
            PoolError::UpstreamReset { .. } => ReplyStatus::UpstreamReset,
            PoolError::Closed { .. } => ReplyStatus::NoHealthyUpstream,
            PoolError::Encode(_) => ReplyStatus::CodecError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unwritten_requests_are_retryable() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let retryable = [
            PoolError::ConnectTimeout {
                addr,
                timeout: Duration::from_secs(1),
            },
            PoolError::ConnectRefused {
                addr,
                kind: io::ErrorKind::ConnectionRefused,
            },
            PoolError::Overflow { addr, what: "x" },
            PoolError::UpstreamReset { written: false },
            PoolError::Closed { addr },
        ];
        for err in retryable {
            assert!(err.is_retryable(), "{err}");
        }
        let written = PoolError::UpstreamReset { written: true };
        assert!(written.was_written() && !written.is_retryable());
        assert!(!PoolError::Encode(CodecError::malformed("x", "y")).is_retryable());
        assert_eq!(written.reply_status(), ReplyStatus::UpstreamReset);
        assert_eq!(
            written.to_string(),
            "upstream connection reset after the request was written"
        );
    }
}
