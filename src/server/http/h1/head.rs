//! Request heads in and response heads out for the gateway's own HTTP/1.1
//! server path ([`super`]).
//!
//! Only requests whose framing leaves nothing to interpret are taken:
//! HTTP/1.1, no `Transfer-Encoding`, at most one `Content-Length` with a
//! body of at most [`BODY_WAIT_MAX`] bytes with its head (read whole before
//! the request is served), no `Expect`, `Upgrade` or `TE`, not CONNECT,
//! a head httparse accepts strictly with names and a target the `http`
//! types accept. Anything else, malformed heads included, is
//! [`Parsed::Elsewhere`]: hyper serves the connection from that request on,
//! with its checks against request smuggling and its error replies (400,
//! 414, 431).
//!
//! Response heads are written the way hyper's server writes them (field
//! order, lower-case names, a `date`, `content-length` from the body's
//! exact size or else chunked), so a client cannot tell the two paths
//! apart, except that a response after which the connection closes says
//! `connection: close`.

use super::body::FullBody;
use super::date;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};
use meshgate_cluster::pool::http::parse_content_length;
use std::mem::MaybeUninit;

/// hyper's default bound on a request's header fields.
const MAX_HEADERS: usize = 100;
/// Fields located without a second parse; a head with more goes to hyper.
const INLINE_FIELDS: usize = 40;
/// A request whose head and body fit in this many bytes is read whole
/// before it is served.
pub(super) const BODY_WAIT_MAX: usize = 64 * 1024;
/// hyper answers 414 to a longer request target.
const MAX_TARGET: usize = u16::MAX as usize - 1;

/// What the front of the read buffer holds.
// Returned once per request and taken apart at once: boxing the request
// would cost an allocation per request to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Parsed {
    /// A whole request, taken out of the buffer.
    Request {
        request: Request<FullBody>,
        /// The request asked for the connection to close after it.
        close: bool,
    },
    /// The head is not all there yet.
    Partial,
    /// The head is, and a small body follows: parse again once the buffer
    /// holds this many bytes.
    Short(usize),
    /// Not for this path (why, for the log); the buffer is untouched.
    Elsewhere(&'static str),
}

/// Where a slice of the head lies in it (offset, length), so it can be
/// sliced out of the frozen head once httparse's borrow of the buffer ends.
type Place = (u32, u32);

/// Where a field's name and value lie in the head.
#[derive(Clone, Copy, Default)]
struct Span {
    name: Place,
    value: Place,
}

/// Where `bytes`, borrowed from the head starting at `base`, lies in it.
fn place(base: usize, bytes: &[u8]) -> Place {
    // An empty slice may not point into the head at all. A head is at most
    // the read buffer's bound, far below 4 GiB.
    match bytes.len() {
        0 => (0, 0),
        len => ((bytes.as_ptr() as usize - base) as u32, len as u32),
    }
}

fn range((at, len): Place) -> std::ops::Range<usize> {
    at as usize..(at + len) as usize
}

/// Parses the request at the front of `buf`; a complete one is split off
/// it, its fields put in `spare`'s place (a cleared map of the last
/// response, with room for the fields the proxy adds).
pub(super) fn parse_request(buf: &mut BytesMut, spare: &mut HeaderMap) -> Parsed {
    // The usual case between requests: nothing to parse yet.
    if buf.is_empty() {
        return Parsed::Partial;
    }
    let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Elsewhere("a head httparse rejects"),
    };
    if parsed.version != Some(1) {
        return Parsed::Elsewhere("not HTTP/1.1");
    }
    let method = match parsed
        .method
        .map(|method| Method::from_bytes(method.as_bytes()))
    {
        Some(Ok(method)) if method != Method::CONNECT => method,
        _ => return Parsed::Elsewhere("CONNECT or an invalid method"),
    };
    let base = buf.as_ptr() as usize;
    let target = match parsed.path {
        Some(path) if path.len() <= MAX_TARGET => place(base, path.as_bytes()),
        _ => return Parsed::Elsewhere("a long request target"),
    };
    let count = parsed.headers.len();
    if count > INLINE_FIELDS {
        return Parsed::Elsewhere("many header fields");
    }
    let mut spans = [Span::default(); INLINE_FIELDS];
    let mut content_length = None;
    let mut close = false;
    for (span, field) in spans.iter_mut().zip(parsed.headers.iter()) {
        let name = field.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Parsed::Elsewhere("more than one content-length");
            }
            match parse_content_length(field.value) {
                Some(length) => content_length = Some(length),
                None => return Parsed::Elsewhere("an invalid content-length"),
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= has_token(field.value, b"close");
        } else if [&b"transfer-encoding"[..], b"upgrade", b"expect", b"te"]
            .iter()
            .any(|special| name.eq_ignore_ascii_case(special))
        {
            return Parsed::Elsewhere("a field hyper's path handles");
        }
        *span = Span {
            name: place(base, name),
            value: place(base, field.value),
        };
    }
    let body_len = match usize::try_from(content_length.unwrap_or(0)) {
        Ok(length) if buf.len() - head_len >= length => length,
        // A small body is awaited whole, as nginx buffers request bodies
        // (most clients write a body apart from its head); a larger one is
        // streamed upstream by hyper.
        Ok(length) if head_len + length <= BODY_WAIT_MAX => {
            return Parsed::Short(head_len + length);
        }
        _ => return Parsed::Elsewhere("a body to stream"),
    };
    let head = buf.split_to(head_len).freeze();
    match build(&head, method, target, &spans[..count], spare) {
        Some(mut request) => {
            if body_len > 0 {
                *request.body_mut() = FullBody::new(buf.split_to(body_len).freeze());
            }
            Parsed::Request { request, close }
        }
        None => {
            // Put the head back for hyper, which answers it with a 400.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Parsed::Elsewhere("a field name or target the http types reject")
        }
    }
}

/// The request out of a head that httparse accepted; `None` when a field
/// name or the target is not valid for the `http` types.
fn build(
    head: &Bytes,
    method: Method,
    target: Place,
    spans: &[Span],
    spare: &mut HeaderMap,
) -> Option<Request<FullBody>> {
    let uri = Uri::from_maybe_shared(head.slice(range(target))).ok()?;
    spare.clear();
    for span in spans {
        let name = HeaderName::from_bytes(&head[range(span.name)]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(range(span.value))).ok()?;
        spare.append(name, value);
    }
    let mut request = Request::new(FullBody::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    std::mem::swap(request.headers_mut(), spare);
    Some(request)
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// How much the response's body says it holds, as hyper asks it: `None`
/// for a body that has ended already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodySize {
    Ended,
    Exact(u64),
    Unknown,
}

/// How the body goes out after the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body is written (HEAD, 204, 304, or an empty one).
    Nothing,
    /// Exactly this many bytes.
    Length(u64),
    Chunked,
    /// Raw, ended by closing the connection (an HTTP/1.0 response of
    /// unknown length).
    UntilClose,
}

/// A response head the proxy should never produce.
#[derive(Debug, thiserror::Error)]
pub(super) enum HeadError {
    #[error("a 1xx response other than 101 cannot be sent")]
    Informational,
    #[error("invalid or conflicting content-length in the response")]
    ContentLength,
}

/// Writes the response head into `dst` and says how its body goes out.
/// `closing`: the connection closes after this response (the head then
/// says so); a response asking to close sets it.
pub(super) fn encode_response(
    response: &http::response::Parts,
    size: BodySize,
    head_request: bool,
    closing: &mut bool,
    dst: &mut BytesMut,
) -> Result<Framing, HeadError> {
    let status = response.status;
    if status.is_informational() {
        return Err(HeadError::Informational);
    }
    let http10 = response.version == Version::HTTP_10;
    let reason = response.extensions.get::<hyper::ext::ReasonPhrase>();
    if !http10 && status == StatusCode::OK && reason.is_none() {
        dst.put_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        dst.put_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        dst.put_slice(status.as_str().as_bytes());
        dst.put_u8(b' ');
        match reason {
            Some(reason) => dst.put_slice(reason.as_bytes()),
            None => dst.put_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        dst.put_slice(b"\r\n");
    }
    let no_content = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let can_chunk = !http10 && !head_request && !no_content;
    let mut framing = None;
    let mut chunked_last = true;
    let mut wrote_date = false;
    let mut wrote_close = false;
    for (name, value) in &response.headers {
        if name == header::CONTENT_LENGTH {
            if no_content || framing == Some(Framing::Chunked) {
                continue;
            }
            let length = parse_content_length(value.as_bytes()).ok_or(HeadError::ContentLength)?;
            match framing {
                Some(Framing::Length(seen)) if seen != length => {
                    return Err(HeadError::ContentLength);
                }
                Some(_) => continue,
                None => {}
            }
            // hyper trusts a body of exact size over the field, and drops
            // a non-zero field of a body that has ended (but for HEAD).
            let length = match size {
                BodySize::Exact(exact) if !head_request => exact,
                BodySize::Ended if !head_request => {
                    continue;
                }
                _ => length,
            };
            framing = Some(Framing::Length(length));
            put_field(
                dst,
                b"content-length",
                itoa::Buffer::new().format(length).as_bytes(),
            );
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            if !can_chunk || matches!(framing, Some(Framing::Length(_))) {
                continue;
            }
            framing = Some(Framing::Chunked);
            chunked_last = value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            if has_token(value.as_bytes(), b"close") {
                *closing = true;
                wrote_close = true;
            }
        } else if name == header::DATE {
            wrote_date = true;
        } else if name == header::TRAILER && !can_chunk {
            continue;
        }
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    if framing == Some(Framing::Chunked) && !chunked_last {
        put_field(dst, b"transfer-encoding", b"chunked");
    }
    let framing = match framing {
        Some(framing) => framing,
        None => match size {
            BodySize::Unknown if can_chunk => {
                put_field(dst, b"transfer-encoding", b"chunked");
                Framing::Chunked
            }
            BodySize::Unknown if http10 && !head_request && !no_content => {
                *closing = true;
                Framing::UntilClose
            }
            BodySize::Unknown => Framing::Nothing,
            BodySize::Ended | BodySize::Exact(0) => {
                if !head_request && !no_content {
                    put_field(dst, b"content-length", b"0");
                }
                Framing::Nothing
            }
            BodySize::Exact(length) => {
                if !no_content {
                    put_field(
                        dst,
                        b"content-length",
                        itoa::Buffer::new().format(length).as_bytes(),
                    );
                }
                Framing::Length(length)
            }
        },
    };
    if *closing && !wrote_close {
        put_field(dst, b"connection", b"close");
    }
    if !wrote_date {
        dst.put_slice(b"date: ");
        date::put(dst);
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
    Ok(
        if head_request || no_content || framing == Framing::Length(0) {
            Framing::Nothing
        } else {
            framing
        },
    )
}

fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.reserve(name.len() + value.len() + 4);
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
