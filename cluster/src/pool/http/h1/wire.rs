//! HTTP/1.1 as the pool writes and reads it: the request head, the
//! response head (parsed with `httparse`, header values sliced out of the
//! read buffer rather than copied), how long a response body is (RFC 9112
//! §6.3), and the chunked decoder.

use crate::pool::http::LentHead;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use std::fmt::Write as _;
use std::io;
use std::mem::MaybeUninit;

/// Headers per response head (hyper's bound too); more is a protocol error.
const MAX_HEADERS: usize = 100;
/// Response heads with up to this many fields are parsed once; larger
/// ones twice.
const INLINE_FIELDS: usize = 16;
/// Room a response's header map keeps beyond its own fields. The
/// downstream HTTP/1.1 server (the gateway's own path, as hyper's does)
/// hands the map of each response it writes to the next request head it
/// parses on that connection, where the proxy adds
/// `x-forwarded-for` and `x-forwarded-proto`: without this room a typical
/// request grew (reallocated and rehashed) its map on every request.
const MAP_ROOM: usize = 6;
/// Trailer fields per chunked body.
const MAX_TRAILERS: usize = 32;
/// A chunk-size line (size and extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 4096;

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

/// A parsed response head.
pub(crate) struct ResponseHead {
    /// Status, version and headers (the body comes later).
    pub(crate) response: Response<()>,
    /// How its body is framed.
    pub(crate) framing: BodyFraming,
    /// Whether the connection may carry another exchange afterwards.
    pub(crate) keep_alive: bool,
}

/// Parses the final response head at the front of `buf`, skipping interim
/// (1xx) responses other than 101, and removes it from `buf`. `None`: the
/// head is not complete yet. Header values share one frozen copy of the
/// head's bytes (no allocation per header).
pub(crate) fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, WireError> {
    // httparse's defaults: strict about the head's syntax.
    let parser = httparse::ParserConfig::default();
    loop {
        let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let length = match parser.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields)
        {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(err) => return Err(WireError::Head(err.to_string())),
        };
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| WireError::Head(format!("status code {code}")))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            buf.advance(length);
            continue;
        }
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where the fields lie, so their values can be sliced out of the
        // frozen head once httparse's borrow of `buf` ends. A head with
        // more fields than that is parsed again from the frozen copy.
        let count = parsed.headers.len();
        let base = buf.as_ptr() as usize;
        let mut spans = [(0usize, 0usize, 0usize, 0usize); INLINE_FIELDS];
        let inline = count <= INLINE_FIELDS;
        if inline {
            for (span, field) in spans.iter_mut().zip(parsed.headers.iter()) {
                *span = (
                    field.name.as_ptr() as usize - base,
                    field.name.len(),
                    field.value.as_ptr() as usize - base,
                    field.value.len(),
                );
            }
        }
        let head = buf.split_to(length).freeze();
        let mut headers = crate::pool::http::spare_maps::header_map(count + MAP_ROOM);
        let mut framing_fields = FramingFields::default();
        if inline {
            for &(name_at, name_len, value_at, value_len) in &spans[..count] {
                let name = &head[name_at..name_at + name_len];
                let value = head.slice(value_at..value_at + value_len);
                add_field(&mut headers, &mut framing_fields, name, value)?;
            }
        } else {
            let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut []);
            parser
                .parse_response_with_uninit_headers(&mut parsed, &head, &mut fields)
                .map_err(|err| WireError::Head(err.to_string()))?;
            for field in parsed.headers.iter() {
                let value = head.slice_ref(field.value);
                add_field(
                    &mut headers,
                    &mut framing_fields,
                    field.name.as_bytes(),
                    value,
                )?;
            }
        }
        let framing = framing_fields.body_framing(method, status)?;
        // After a 101 the connection speaks something else.
        let keep_alive = framing_fields.keep_alive(version)
            && status != StatusCode::SWITCHING_PROTOCOLS
            && framing != BodyFraming::UntilClose;
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(ResponseHead {
            response,
            framing,
            keep_alive,
        }));
    }
}

fn add_field(
    headers: &mut HeaderMap,
    framing: &mut FramingFields,
    name: &[u8],
    value: Bytes,
) -> Result<(), WireError> {
    let name =
        HeaderName::from_bytes(name).map_err(|_| WireError::Head("invalid header name".into()))?;
    let value = HeaderValue::from_maybe_shared(value)
        .map_err(|_| WireError::Head(format!("invalid value of header {name}")))?;
    framing.note(&name, &value)?;
    headers.append(name, value);
    Ok(())
}

/// What the framing fields of a response head said, gathered as the
/// fields are read (no lookups afterwards).
#[derive(Default)]
struct FramingFields {
    /// `transfer-encoding` was present; `Some(true)` when its last coding
    /// is chunked.
    transfer_encoding: Option<bool>,
    content_length: Option<u64>,
    /// `Connection` tokens.
    close: bool,
    keep_alive: bool,
}

impl FramingFields {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<(), WireError> {
        let items = || {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .filter(|item| !item.is_empty())
        };
        if name == TRANSFER_ENCODING {
            let last = items().next_back();
            let chunked = last.is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
            // Only the final coding of the last field counts.
            if last.is_some() || self.transfer_encoding.is_none() {
                self.transfer_encoding = Some(chunked);
            }
        } else if name == CONTENT_LENGTH {
            for item in value.as_bytes().split(|&b| b == b',') {
                let parsed = parse_decimal(item.trim_ascii())
                    .ok_or_else(|| WireError::Head("invalid content-length".into()))?;
                if self.content_length.is_some_and(|seen| seen != parsed) {
                    return Err(WireError::Head("conflicting content-length values".into()));
                }
                self.content_length = Some(parsed);
            }
        } else if name == CONNECTION {
            for token in items() {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    /// RFC 9112 §6.3: a response body's length.
    fn body_framing(&self, method: &Method, status: StatusCode) -> Result<BodyFraming, WireError> {
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok(BodyFraming::Empty);
        }
        Ok(match (self.transfer_encoding, self.content_length) {
            (Some(true), _) => BodyFraming::Chunked,
            (Some(false), _) | (None, None) => BodyFraming::UntilClose,
            (None, Some(0)) => BodyFraming::Empty,
            (None, Some(length)) => BodyFraming::Length(length),
        })
    }

    /// HTTP/1.1 keeps the connection unless `Connection: close`; HTTP/1.0
    /// only with `Connection: keep-alive`. Both `transfer-encoding` and
    /// `content-length` (a smuggling attempt, or a broken server): not
    /// reused.
    fn keep_alive(&self, version: Version) -> bool {
        let persistent = if version == Version::HTTP_10 {
            self.keep_alive
        } else {
            !self.close
        };
        persistent && !(self.transfer_encoding.is_some() && self.content_length.is_some())
    }
}

/// A `Content-Length` value: decimal digits only (no sign, no spaces, no
/// list), at most 19 of them so it fits a `u64`. The gateway's HTTP/1.1
/// server reads request lengths with it too.
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        digit
            .is_ascii_digit()
            .then(|| total * 10 + u64::from(digit - b'0'))
    })
}

/// One step of a chunked body.
#[derive(Debug)]
pub(crate) enum ChunkStep {
    /// Body bytes.
    Data(Bytes),
    /// The trailer section (only when it has fields).
    Trailers(HeaderMap),
    /// The body is over.
    End,
    /// More bytes are needed from the socket.
    NeedMore,
}

/// The chunked decoder's place in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
    /// Over.
    Done,
}

impl Chunked {
    /// Decodes what it can from the front of `buf`. `limit` bounds the
    /// trailer section.
    pub(crate) fn step(
        &mut self,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Result<ChunkStep, WireError> {
        // Each turn consumes a size line or a CRLF, or returns.
        loop {
            match *self {
                Chunked::Size => {
                    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(WireError::Chunk("chunk-size line too long"));
                        }
                        return Ok(ChunkStep::NeedMore);
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 1);
                    *self = if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(ChunkStep::NeedMore);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    };
                    return Ok(ChunkStep::Data(buf.split_to(take).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(ChunkStep::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Chunk("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
                    let (length, trailers) = match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((length, fields))) => {
                            let mut trailers = HeaderMap::with_capacity(fields.len());
                            for field in fields.iter() {
                                let name = HeaderName::from_bytes(field.name.as_bytes())
                                    .map_err(|_| WireError::Chunk("invalid trailer name"))?;
                                let value = HeaderValue::from_bytes(field.value)
                                    .map_err(|_| WireError::Chunk("invalid trailer value"))?;
                                trailers.append(name, value);
                            }
                            (length, trailers)
                        }
                        Ok(httparse::Status::Partial) if buf.len() <= limit => {
                            return Ok(ChunkStep::NeedMore);
                        }
                        Ok(httparse::Status::Partial) => {
                            return Err(WireError::Chunk("trailer section too large"));
                        }
                        Err(_) => return Err(WireError::Chunk("invalid trailer section")),
                    };
                    buf.advance(length);
                    *self = Chunked::Done;
                    if !trailers.is_empty() {
                        return Ok(ChunkStep::Trailers(trailers));
                    }
                }
                Chunked::Done => return Ok(ChunkStep::End),
            }
        }
    }
}

/// A chunk-size line without its LF: hex digits, then optional
/// extensions (ignored), then CR.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(WireError::Chunk("chunk-size line not ended by CRLF"))?;
    let digits = line
        .iter()
        .position(|&b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 16 {
        return Err(WireError::Chunk("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(WireError::Chunk("invalid chunk size"));
    }
    let hex =
        std::str::from_utf8(&line[..digits]).map_err(|_| WireError::Chunk("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| WireError::Chunk("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request").into_parts().0
    }

    fn encoded(head: &http::request::Parts, framing: SendFraming) -> String {
        let mut dst = BytesMut::new();
        encode_head(&LentHead::of(head), framing, &mut dst);
        String::from_utf8(dst.to_vec()).expect("ascii")
    }

    #[test]
    fn request_heads_carry_the_origin_form_and_the_body_framing() {
        let get = request(Method::GET, "/a?b=c", &[("host", "svc"), ("x-id", "1")]);
        assert_eq!(
            encoded(&get, SendFraming::Empty),
            "GET /a?b=c HTTP/1.1\r\nhost: svc\r\nx-id: 1\r\n\r\n"
        );
        let absolute = request(
            Method::POST,
            "http://svc:8080/p",
            &[("content-length", "9")],
        );
        assert_eq!(
            encoded(&absolute, SendFraming::Length(3)),
            "POST /p HTTP/1.1\r\nhost: svc:8080\r\ncontent-length: 3\r\n\r\n"
        );
        let post = request(Method::POST, "/", &[("transfer-encoding", "chunked")]);
        assert_eq!(
            encoded(&post, SendFraming::Empty),
            "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            encoded(&post, SendFraming::Chunked),
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let backend = HeaderValue::from_static("backend:80");
        let mut replaced = BytesMut::new();
        let client = request(Method::GET, "/", &[("host", "client"), ("host", "again")]);
        let lent = LentHead {
            host: Some(&backend),
            ..LentHead::of(&client)
        };
        encode_head(&lent, SendFraming::Empty, &mut replaced);
        assert_eq!(&replaced[..], b"GET / HTTP/1.1\r\nhost: backend:80\r\n\r\n");
        let appended = [(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("10.0.0.1"),
        )];
        let mut with_more = BytesMut::new();
        let lent = LentHead {
            appended: &appended,
            ..LentHead::of(&client)
        };
        encode_head(&lent, SendFraming::Length(2), &mut with_more);
        assert_eq!(
            &with_more[..],
            b"GET / HTTP/1.1\r\nhost: client\r\nhost: again\r\nx-forwarded-for: 10.0.0.1\r\ncontent-length: 2\r\n\r\n"
        );
        let mut chunks = BytesMut::new();
        encode_chunk(b"hello world, this is", &mut chunks);
        encode_chunk(b"", &mut chunks);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        encode_last_chunk(Some(&trailers), &mut chunks);
        assert_eq!(
            &chunks[..],
            b"14\r\nhello world, this is\r\n0\r\ngrpc-status: 0\r\n\r\n"
        );
    }

    fn parse(bytes: &[u8], method: &Method) -> Result<Option<ResponseHead>, WireError> {
        parse_response(&mut BytesMut::from(bytes), method)
    }

    #[test]
    fn response_heads_give_status_headers_framing_and_keep_alive() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"[..],
        );
        let head = parse_response(&mut buf, &Method::GET)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.response.status(), StatusCode::OK);
        let values: Vec<_> = head.response.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"hello");

        let chunked = parse(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            &Method::GET,
        );
        assert_eq!(
            chunked.expect("valid").expect("complete").framing,
            BodyFraming::Chunked
        );
        let close = parse(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
            &Method::GET,
        )
        .expect("valid")
        .expect("complete");
        assert!(!close.keep_alive);
        let old = parse(b"HTTP/1.0 200 OK\r\n\r\n", &Method::GET)
            .expect("valid")
            .expect("complete");
        assert_eq!(
            (old.framing, old.keep_alive),
            (BodyFraming::UntilClose, false)
        );
        let head_request = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
            &Method::HEAD,
        );
        assert_eq!(
            head_request.expect("valid").expect("complete").framing,
            BodyFraming::Empty
        );
        let no_content = parse(b"HTTP/1.1 204 No Content\r\n\r\n", &Method::GET);
        assert_eq!(
            no_content.expect("valid").expect("complete").framing,
            BodyFraming::Empty
        );
        assert!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
                .expect("valid")
                .is_none()
        );
        let smuggled = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            &Method::GET,
        )
        .expect("valid")
        .expect("complete");
        assert_eq!(
            (smuggled.framing, smuggled.keep_alive),
            (BodyFraming::Chunked, false)
        );
        // More fields than are parsed in one pass: the second pass.
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("x-field-{i}: value {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"content-length: 2\r\n\r\nok");
        let mut buf = BytesMut::from(&many[..]);
        let head = parse_response(&mut buf, &Method::GET)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.response.headers().len(), 41);
        assert_eq!(head.response.headers()["x-field-39"], "value 39");
        assert_eq!(
            (head.framing, &buf[..]),
            (BodyFraming::Length(2), &b"ok"[..])
        );
    }

    #[test]
    fn malformed_response_heads_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        ] {
            assert!(
                parse(bad, &Method::GET).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>), WireError> {
        let mut buf = BytesMut::from(wire);
        let mut state = Chunked::Size;
        let (mut body, mut trailers) = (Vec::new(), None);
        loop {
            match state.step(&mut buf, 1024)? {
                ChunkStep::Data(data) => body.extend_from_slice(&data),
                ChunkStep::Trailers(fields) => trailers = Some(fields),
                ChunkStep::End => return Ok((body, trailers)),
                ChunkStep::NeedMore => return Err(WireError::Closed("mid-body")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let (body, trailers) =
            decode_all(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").expect("valid");
        assert_eq!(
            (body.as_slice(), trailers.is_none()),
            (&b"hello world"[..], true)
        );
        let (body, trailers) =
            decode_all(b"2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n").expect("valid");
        assert_eq!(body, b"ok");
        assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"5\n",
            b"11111111111111111\r\n",
        ] {
            assert!(decode_all(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn chunked_decoding_resumes_across_reads() {
        let wire = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\nx-t: 1\r\n\r\n";
        let mut state = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut ended = false;
        for &byte in wire {
            buf.put_u8(byte);
            loop {
                match state.step(&mut buf, 1024).expect("valid") {
                    ChunkStep::Data(data) => body.extend_from_slice(&data),
                    ChunkStep::Trailers(fields) => assert_eq!(fields["x-t"], "1"),
                    ChunkStep::End => {
                        ended = true;
                        break;
                    }
                    ChunkStep::NeedMore => break,
                }
            }
        }
        assert!(ended);
        assert_eq!(body, b"abcdefg");
    }

    proptest::proptest! {
        /// Whatever an upstream sends, the parser and the chunked decoder
        /// answer (a head, an error, or a request for more) without
        /// panicking, and the decoder always makes progress or stops.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(
            head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
            wire.extend_from_slice(&head);
            let _ = parse_response(&mut BytesMut::from(&head[..]), &Method::GET);
            let _ = parse_response(&mut BytesMut::from(&wire[..]), &Method::GET);
            let mut buf = BytesMut::from(&body[..]);
            let mut state = Chunked::Size;
            for _ in 0..=body.len() + 2 {
                let before = (buf.len(), state);
                match state.step(&mut buf, 256) {
                    Ok(ChunkStep::Data(_) | ChunkStep::Trailers(_)) => {
                        proptest::prop_assert!(before != (buf.len(), state));
                    }
                    Ok(ChunkStep::End | ChunkStep::NeedMore) | Err(_) => break,
                }
            }
        }
    }
}
