//! Why the gateway answers a request itself instead of an upstream.

use std::fmt;

/// The reason for a local ("hijack") reply. Each codec maps it to its own
/// wire status (table in `docs/writing-a-codec.md` and in each codec's
/// `error_reply`); [`ReplyStatus::neutral_code`] is MOSN's protocol-neutral
/// code, which HTTP uses as its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyStatus {
    /// No route matched the request.
    NoRoute,
    /// The route's cluster has no healthy host (or does not exist).
    NoHealthyUpstream,
    /// A circuit breaker or in-flight limit refused the request.
    Overloaded,
    /// A rate limiter refused the request.
    RateLimited,
    /// The upstream did not answer in time.
    Timeout,
    /// A filter denied the request.
    PermissionDenied,
    /// The upstream connection closed or reset before the reply arrived.
    UpstreamReset,
    /// No upstream connection could be opened.
    ConnectFailed,
    /// The request's bytes are not a valid frame.
    CodecError,
    /// The request's body could not be deserialized.
    DeserializeError,
    /// Anything else that went wrong inside the gateway.
    Internal,
}

impl ReplyStatus {
    /// MOSN's protocol-neutral (HTTP-like) code for this reason.
    pub fn neutral_code(self) -> u16 {
        match self {
            ReplyStatus::NoRoute => 404,
            ReplyStatus::NoHealthyUpstream
            | ReplyStatus::UpstreamReset
            | ReplyStatus::ConnectFailed => 502,
            ReplyStatus::Overloaded => 503,
            ReplyStatus::RateLimited => 509,
            ReplyStatus::Timeout => 504,
            ReplyStatus::PermissionDenied => 403,
            ReplyStatus::CodecError | ReplyStatus::DeserializeError => 400,
            ReplyStatus::Internal => 500,
        }
    }

    /// MOSN's short message for this reason (Dubbo replies carry it as
    /// `"<code>|<text>"`).
    pub fn message(self) -> &'static str {
        match self {
            ReplyStatus::NoRoute => "404|router unavailable",
            ReplyStatus::NoHealthyUpstream => "502|no health upstream",
            ReplyStatus::UpstreamReset => "502|upstream reset",
            // MOSN answers a failed connect with NoHealthUpstreamCode.
            ReplyStatus::ConnectFailed => "502|no health upstream",
            ReplyStatus::Overloaded => "503|upstream overflow",
            ReplyStatus::RateLimited => "509|limit exceeded",
            ReplyStatus::Timeout => "504|timeout",
            ReplyStatus::PermissionDenied => "403|permission denied",
            ReplyStatus::CodecError => "0|codec exception",
            ReplyStatus::DeserializeError => "3|deserial exception",
            ReplyStatus::Internal => "500|internal error",
        }
    }
}

impl fmt::Display for ReplyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
