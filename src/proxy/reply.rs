//! The one place that turns "the gateway answers this itself" into a
//! protocol frame: the request's codec builds its own error response.

use super::error::ProxyError;
use meshgate_codecs::{Frame, FrameCodec, ReplyStatus};

/// The reply reason for one of MOSN's neutral (HTTP-like) codes, as used by
/// `fault` aborts and direct responses.
pub fn status_for_code(code: u16) -> ReplyStatus {
    match code {
        404 => ReplyStatus::NoRoute,
        403 => ReplyStatus::PermissionDenied,
        429 | 509 => ReplyStatus::RateLimited,
        502 => ReplyStatus::NoHealthyUpstream,
        503 => ReplyStatus::Overloaded,
        504 => ReplyStatus::Timeout,
        400 => ReplyStatus::CodecError,
        _ => ReplyStatus::Internal,
    }
}

/// The request's own codec's error response for `err` (`None` when the
/// request takes no reply, e.g. oneway).
pub fn error_reply(codec: &dyn FrameCodec, request: &Frame, err: &ProxyError) -> Option<Frame> {
    codec.error_reply(request, err.reply_status(), &err.reply_message())
}
