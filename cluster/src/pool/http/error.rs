//! Why an HTTP pool could not deliver a response head, and what the proxy
//! may do about it.

use meshgate_codecs::ReplyStatus;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// An HTTP pool's answer when there is no response. The questions the
/// proxy asks are methods: [`HttpPoolError::is_retriable_before_write`]
/// (the upstream certainly did not act on the request: any request may go
/// again), [`HttpPoolError::is_retriable_if_idempotent`] (it may have
/// arrived but no response began: only idempotent requests, or those the
/// route declares retriable), [`HttpPoolError::is_connect_failure`] (for
/// outlier detection) and [`HttpPoolError::reply_status`].
///
/// The pool has already retried once itself where that was safe: an
/// HTTP/1 request none of which was written, a reused keep-alive
/// connection the upstream had closed (idempotent requests only), an h2
/// stream refused or cut by a graceful GOAWAY. Those retries happen only while the request
/// body is still whole (not yet polled, or empty), so the errors below are
/// what is left when they could not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpPoolError {
    /// The TCP connect failed (refused, unreachable, ...). Nothing sent.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The host.
        addr: SocketAddr,
        /// What the connect returned.
        #[source]
        source: io::Error,
    },
    /// The TCP connect did not finish within the connect timeout. Nothing
    /// sent.
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The host.
        addr: SocketAddr,
        /// The connect timeout in force.
        timeout: Duration,
    },
    /// The HTTP/2 handshake (preface and SETTINGS) failed on a fresh
    /// connection. Nothing sent.
    #[error("HTTP handshake with {addr} failed: {source}")]
    Handshake {
        /// The host.
        addr: SocketAddr,
        /// What failed: hyper's error, or the HTTP/1 client's own.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The cluster's circuit breaker refused a new connection
    /// (`max_connections`). Nothing sent.
    #[error("upstream {addr} overflow: {what}")]
    Overflow {
        /// The host.
        addr: SocketAddr,
        /// Which bound.
        what: &'static str,
    },
    /// A reused keep-alive connection ended before any response byte: the
    /// upstream had closed it while it sat idle (the race every HTTP/1
    /// client knows). The request may have reached the upstream's socket
    /// but not its application in the usual case; the pool retried it
    /// once itself if it was idempotent and its body whole.
    #[error("reused connection to {addr} closed by the upstream before any response: {source}")]
    StaleConnection {
        /// The host.
        addr: SocketAddr,
        /// What failed: hyper's error, or the HTTP/1 client's own.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The upstream refused the request without processing it: an h2
    /// `REFUSED_STREAM`, a stream above a graceful GOAWAY's last stream
    /// id, or a connection that closed before hyper started writing.
    /// Retrying cannot duplicate it.
    #[error("upstream {addr} did not process the request: {source}")]
    Refused {
        /// The host.
        addr: SocketAddr,
        /// What failed: hyper's error, or the HTTP/1 client's own.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection or stream was reset, or closed, before the response
    /// head arrived (h2 `RST_STREAM`, a GOAWAY with an error code, an I/O
    /// error, an early end of stream). The upstream may have acted on the
    /// request.
    #[error("upstream {addr} reset the request: {source}")]
    Reset {
        /// The host.
        addr: SocketAddr,
        /// What failed: hyper's error, or the HTTP/1 client's own.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The upstream broke the protocol (an unparsable response, an h2
    /// protocol error), or the request itself could not be sent as it is
    /// (hyper's user errors: a body error, a bad header for h2).
    #[error("HTTP exchange with {addr} failed: {source}")]
    Protocol {
        /// The host.
        addr: SocketAddr,
        /// What failed: hyper's error, or the HTTP/1 client's own.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The pool was shut down (reload or stop). Nothing sent.
    #[error("the HTTP pool for {addr} is closed")]
    Closed {
        /// The host.
        addr: SocketAddr,
    },
}

impl HttpPoolError {
    /// True when the upstream certainly did not act on the request:
    /// sending it again (another host, a new connection) cannot duplicate
    /// it, whatever its method. Connect failures, overflow, a closed pool,
    /// a refused stream.
    pub fn is_retriable_before_write(&self) -> bool {
        matches!(
            self,
            HttpPoolError::Connect { .. }
                | HttpPoolError::ConnectTimeout { .. }
                | HttpPoolError::Handshake { .. }
                | HttpPoolError::Overflow { .. }
                | HttpPoolError::Refused { .. }
                | HttpPoolError::Closed { .. }
        )
    }

    /// True when no response byte arrived, so a retry is safe for an
    /// idempotent request (RFC 9110 §9.2.2) or one the route's retry
    /// policy allows on reset: everything retriable before write, plus
    /// stale connections and resets.
    pub fn is_retriable_if_idempotent(&self) -> bool {
        self.is_retriable_before_write()
            || matches!(
                self,
                HttpPoolError::StaleConnection { .. } | HttpPoolError::Reset { .. }
            )
    }

    /// True for connect failures: the host, not the request, is at fault
    /// (outlier detection counts these; MOSN's `connect_failure` retry
    /// condition).
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            HttpPoolError::Connect { .. }
                | HttpPoolError::ConnectTimeout { .. }
                | HttpPoolError::Handshake { .. }
        )
    }

    /// The reason the proxy gives when it answers for the upstream.
    pub fn reply_status(&self) -> ReplyStatus {
        match self {
            HttpPoolError::Connect { .. }
            | HttpPoolError::ConnectTimeout { .. }
            | HttpPoolError::Handshake { .. } => ReplyStatus::ConnectFailed,
            HttpPoolError::Overflow { .. } => ReplyStatus::Overloaded,
            HttpPoolError::StaleConnection { .. }
            | HttpPoolError::Refused { .. }
            | HttpPoolError::Reset { .. }
            | HttpPoolError::Protocol { .. } => ReplyStatus::UpstreamReset,
            HttpPoolError::Closed { .. } => ReplyStatus::NoHealthyUpstream,
        }
    }

    /// The host the error is about.
    pub fn addr(&self) -> SocketAddr {
        match self {
            HttpPoolError::Connect { addr, .. }
            | HttpPoolError::ConnectTimeout { addr, .. }
            | HttpPoolError::Handshake { addr, .. }
            | HttpPoolError::Overflow { addr, .. }
            | HttpPoolError::StaleConnection { addr, .. }
            | HttpPoolError::Refused { addr, .. }
            | HttpPoolError::Reset { addr, .. }
            | HttpPoolError::Protocol { addr, .. }
            | HttpPoolError::Closed { addr } => *addr,
        }
    }
}

/// How hyper's error for an exchange that produced no response head
/// should be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not processed by the upstream (h2 refused / graceful GOAWAY).
    Unprocessed,
    /// The connection ended (EOF, reset, broken pipe) with no response.
    ConnectionLost,
    /// A reset of this stream, or a GOAWAY with an error code.
    StreamReset,
    /// Anything else: protocol or user error.
    Other,
}

/// Sorts an exchange's error: hyper's, or h2's own (the h2 pool speaks
/// h2 directly). h2 errors are read through their reason and whether the
/// peer sent them; an h2 `REFUSED_STREAM`, or a GOAWAY with `NO_ERROR`
/// (the graceful kind, which fails only streams the peer never
/// processed), means unprocessed (RFC 9113 §8.7).
pub(crate) fn classify(err: &(dyn std::error::Error + 'static)) -> Failure {
    if let Some(h2) = find_source::<h2::Error>(err) {
        if h2.is_io() {
            return Failure::ConnectionLost;
        }
        let reason = h2.reason();
        if reason == Some(h2::Reason::REFUSED_STREAM) {
            return Failure::Unprocessed;
        }
        if h2.is_go_away() && h2.is_remote() {
            return if reason == Some(h2::Reason::NO_ERROR) {
                Failure::Unprocessed
            } else {
                Failure::StreamReset
            };
        }
        if h2.is_reset() {
            return Failure::StreamReset;
        }
        return Failure::Other;
    }
    if let Some(hyper) = err.downcast_ref::<hyper::Error>()
        && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled())
    {
        return Failure::ConnectionLost;
    }
    if let Some(io) = find_source::<io::Error>(err) {
        return match io.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected => Failure::ConnectionLost,
            _ => Failure::Other,
        };
    }
    Failure::Other
}

/// An exchange's error (hyper's or h2's) for a request to `addr` that
/// produced no response head, as the pool reports it.
pub(crate) fn from_exchange<E>(addr: SocketAddr, err: E) -> HttpPoolError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let kind = classify(&err);
    let source = Box::new(err);
    match kind {
        Failure::Unprocessed => HttpPoolError::Refused { addr, source },
        Failure::ConnectionLost | Failure::StreamReset => HttpPoolError::Reset { addr, source },
        Failure::Other => HttpPoolError::Protocol { addr, source },
    }
}

fn find_source<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    // Source chains are short; the bound guards against a cycle.
    for _ in 0..16 {
        let current = next?;
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_are_retriable_and_map_to_connect_failed() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let refused = HttpPoolError::Connect {
            addr,
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(refused.is_retriable_before_write());
        assert!(refused.is_retriable_if_idempotent());
        assert!(refused.is_connect_failure());
        assert_eq!(refused.reply_status(), ReplyStatus::ConnectFailed);
        assert_eq!(refused.addr(), addr);
        let closed = HttpPoolError::Closed { addr };
        assert!(closed.is_retriable_before_write() && !closed.is_connect_failure());
        assert_eq!(
            closed.to_string(),
            "the HTTP pool for 127.0.0.1:1 is closed"
        );
    }
}
