//! HTTP/1.1 as the pool writes and reads it: the request head, the
//! response head (parsed with `httparse`, header values sliced out of the
//! read buffer rather than copied), how long a response body is (RFC 9112
//! §6.3), and the chunked decoder. The request side is here; [`response`]
//! parses response heads and [`chunked`] decodes chunked bodies.

mod chunked;
mod response;

pub(crate) use chunked::{ChunkStep, Chunked};
pub use response::parse_decimal;
pub(crate) use response::{ResponseHead, parse_response};

use crate::pool::http::LentHead;
use bytes::{BufMut, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method};
use std::fmt::Write as _;
use std::io;

/// What went wrong on an upstream HTTP/1 connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// Reading or writing the socket failed.
    #[error("upstream connection failed: {0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before the response ended.
    #[error("upstream closed the connection {0}")]
    Closed(&'static str),
    /// The response head does not parse.
    #[error("invalid response head: {0}")]
    Head(String),
    /// The response head is larger than the pool's buffer limit.
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The chunked response body is malformed.
    #[error("invalid chunked body: {0}")]
    Chunk(&'static str),
    /// The request body failed or broke its announced length.
    #[error("request body: {0}")]
    Body(String),
}

impl WireError {
    /// True when the connection went away (EOF, reset, broken pipe) rather
    /// than the peer breaking the protocol.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            WireError::Closed(_) => true,
            WireError::Io(err) => matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::WriteZero
            ),
            _ => false,
        }
    }
}

/// How a request body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendFraming {
    /// No body.
    Empty,
    /// `content-length`.
    Length(u64),
    /// `transfer-encoding: chunked` (length unknown, or trailers).
    Chunked,
}

/// How a response body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// None (HEAD, 1xx, 204, 304, or `content-length: 0`).
    Empty,
    /// `content-length`.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// Methods that send `content-length: 0` for an empty body, as hyper's
/// client does: those whose requests are expected to carry content.
fn announces_empty_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Writes the request line and headers. The target is the URI's origin
/// form (RFC 9112 §3.2.1); the `Host` is the head's replacement if it has
/// one, else the request's, else an absolute URI's authority. The
/// request's own `content-length` and `transfer-encoding` give way to
/// `framing`, which the body decides.
pub(crate) fn encode_head(head: &LentHead<'_>, framing: SendFraming, dst: &mut BytesMut) {
    let target = head
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let target = if target.is_empty() { "/" } else { target };
    dst.reserve(64 + target.len() + head.headers.len() * 32);
    dst.put_slice(head.method.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(target.as_bytes());
    dst.put_slice(b" HTTP/1.1\r\n");
    let replaced = head.replaces_host();
    if let Some(host) = head.host {
        put_field(dst, b"host", host.as_bytes());
    } else if !replaced
        && let Some(authority) = head.uri.authority()
        && !head.headers.contains_key(HOST)
    {
        put_field(dst, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in head.headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || (replaced && name == HOST) {
            continue;
        }
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in head.appended {
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        SendFraming::Empty if announces_empty_body(head.method) => {
            dst.put_slice(b"content-length: 0\r\n");
        }
        SendFraming::Empty => {}
        SendFraming::Length(length) => {
            let _ = write!(dst, "content-length: {length}\r\n");
        }
        SendFraming::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    dst.put_slice(b"\r\n");
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

/// One chunk of a chunked request body: size line, data, CRLF.
pub(crate) fn encode_chunk(data: &[u8], dst: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    let _ = write!(dst, "{:X}\r\n", data.len());
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// The end of a chunked request body, with its trailers if any.
pub(crate) fn encode_last_chunk(trailers: Option<&HeaderMap>, dst: &mut BytesMut) {
    dst.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
