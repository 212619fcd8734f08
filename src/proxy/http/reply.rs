//! Answers the gateway gives HTTP requests itself: an HTTP status with a
//! short text body, or, for gRPC requests, a trailers-only response
//! (HTTP 200 with `grpc-status` and `grpc-message` in the one header
//! block) as gRPC clients expect (gRPC's "HTTP to gRPC status mapping"
//! would otherwise turn a 404 into a vague UNIMPLEMENTED/UNKNOWN).

use super::super::error::ProxyError;
use super::ResponseBody;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use meshgate_codecs::ReplyStatus;

/// gRPC status codes the gateway answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrpcCode {
    /// 4.
    DeadlineExceeded,
    /// 7.
    PermissionDenied,
    /// 8.
    ResourceExhausted,
    /// 12.
    Unimplemented,
    /// 13.
    Internal,
    /// 14.
    Unavailable,
}

impl GrpcCode {
    fn number(self) -> u8 {
        match self {
            GrpcCode::DeadlineExceeded => 4,
            GrpcCode::PermissionDenied => 7,
            GrpcCode::ResourceExhausted => 8,
            GrpcCode::Unimplemented => 12,
            GrpcCode::Internal => 13,
            GrpcCode::Unavailable => 14,
        }
    }
}

/// The HTTP status for a local reply. Unlike MOSN (502 for "no healthy
/// upstream"), an unavailable upstream is 503 as in Envoy; a failed
/// connect or a reset is 502 ("bad gateway").
pub(crate) fn http_status(err: &ProxyError) -> StatusCode {
    let code = match err {
        ProxyError::NoRoute => 404,
        ProxyError::NoCluster(_) | ProxyError::NoHealthyHost(_) => 503,
        ProxyError::Local(reply) => return local_status(reply.status, &reply.message),
        other => match other.reply_status() {
            ReplyStatus::Timeout => 504,
            ReplyStatus::Overloaded => 503,
            ReplyStatus::NoHealthyUpstream => 503,
            ReplyStatus::UpstreamReset | ReplyStatus::ConnectFailed => 502,
            status => status.neutral_code(),
        },
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A filter's or direct response's status: the code in a `"NNN|text"`
/// message when there is one, else the reason's neutral code.
fn local_status(status: ReplyStatus, message: &str) -> StatusCode {
    message
        .split_once('|')
        .and_then(|(code, _)| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or_else(|| {
            StatusCode::from_u16(match status {
                ReplyStatus::NoHealthyUpstream => 503,
                other => other.neutral_code(),
            })
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
}

/// The gRPC status for a local reply.
pub(crate) fn grpc_code(err: &ProxyError) -> GrpcCode {
    match err.reply_status() {
        ReplyStatus::NoRoute => GrpcCode::Unimplemented,
        ReplyStatus::Timeout => GrpcCode::DeadlineExceeded,
        ReplyStatus::PermissionDenied => GrpcCode::PermissionDenied,
        ReplyStatus::RateLimited => GrpcCode::ResourceExhausted,
        ReplyStatus::NoHealthyUpstream
        | ReplyStatus::Overloaded
        | ReplyStatus::UpstreamReset
        | ReplyStatus::ConnectFailed => GrpcCode::Unavailable,
        _ => GrpcCode::Internal,
    }
}

/// The text a local reply carries: MOSN's fixed text without its code
/// prefix, or a filter's own message.
fn message(err: &ProxyError) -> String {
    let full = err.reply_message();
    match full.split_once('|') {
        Some((code, text)) if code.parse::<u16>().is_ok() => text.to_owned(),
        _ => full,
    }
}

/// The local reply for `err`: gRPC trailers-only when `grpc`, else an
/// HTTP error with a `text/plain` body.
pub(crate) fn error_response(err: &ProxyError, grpc: bool) -> Response<ResponseBody> {
    let text = message(err);
    if grpc {
        return grpc_response(grpc_code(err), &text);
    }
    text_response(http_status(err), format!("{text}\n"))
}

/// A text/plain response.
pub(crate) fn text_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A gRPC trailers-only response.
pub(crate) fn grpc_response(code: GrpcCode, message: &str) -> Response<ResponseBody> {
    let mut response = Response::new(full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(u16::from(code.number())));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// A whole body.
pub(crate) fn full(bytes: Bytes) -> ResponseBody {
    ResponseBody::boxed(Full::new(bytes).map_err(|never| match never {}))
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` as is,
/// everything else percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `content-type` value that makes a request gRPC (`application/grpc`,
/// `+proto`, `+json`, ...); `HeadFacts` reads it.
pub(crate) fn is_grpc_content_type(value: &HeaderValue) -> bool {
    value.as_bytes().starts_with(b"application/grpc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::LocalReply;
    use std::borrow::Cow;
    use std::time::Duration;

    #[test]
    fn statuses_for_local_replies() {
        assert_eq!(http_status(&ProxyError::NoRoute), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(&ProxyError::NoHealthyHost("c".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(&ProxyError::Timeout(Duration::from_secs(1))),
            StatusCode::GATEWAY_TIMEOUT
        );
        let direct = ProxyError::Local(LocalReply {
            status: ReplyStatus::Internal,
            message: Cow::Borrowed("418|teapot"),
        });
        assert_eq!(http_status(&direct).as_u16(), 418);
        assert_eq!(grpc_code(&ProxyError::NoRoute), GrpcCode::Unimplemented);
        assert_eq!(
            grpc_code(&ProxyError::Timeout(Duration::from_secs(1))),
            GrpcCode::DeadlineExceeded
        );
        assert_eq!(
            grpc_code(&ProxyError::NoHealthyHost("c".into())),
            GrpcCode::Unavailable
        );
    }

    #[test]
    fn grpc_replies_are_trailers_only() {
        let r = error_response(&ProxyError::NoRoute, true);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "12");
        assert_eq!(r.headers()["grpc-message"], "router unavailable");
        assert_eq!(r.headers()["content-type"], "application/grpc");
        assert_eq!(percent_encode("a%b\n"), "a%25b%0A");
    }
}
