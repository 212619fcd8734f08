//! The response head as the pool reads it: parsed with `httparse`, its
//! header values sliced out of the read buffer rather than copied, and
//! how long its body is (RFC 9112 §6.3).

use super::{BodyFraming, WireError};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
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
