//! Decoding: framing by the 16-byte header; the header view of hessian2
//! calls (and successful responses) is read from the body in one pass the
//! first time it is asked for.

use super::hessian::{self, Bad, Reader, StrSpan, Value, malformed};
use super::{
    FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_LEN, MAGIC, NAME, SERIALIZATION_HESSIAN2,
    SERIALIZATION_MASK, STATUS_OK,
};
use crate::{
    CodecError, FixedFields, Frame, FrameKind, HeaderReader, Headers, Limits, Status, Wire,
    WireMeta, keys,
};
use bytes::BytesMut;
use std::ops::Range;

/// The fixed header's fields.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub(super) flag: u8,
    pub(super) status: u8,
    pub(super) id: u64,
    pub(super) body_len: u32,
}

impl Header {
    /// Parses a complete header; `None` before 16 bytes. The magic must
    /// already be checked.
    #[inline]
    pub(super) fn parse(bytes: &[u8]) -> Option<Header> {
        let h = bytes.first_chunk::<HEADER_LEN>()?;
        Some(Header {
            flag: h[2],
            status: h[3],
            id: u64::from_be_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]),
            body_len: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        })
    }

    /// A request that is not an event: its body is an invocation.
    fn is_call(self) -> bool {
        self.flag & (FLAG_REQUEST | FLAG_EVENT) == FLAG_REQUEST
    }
}

/// Fails on a wrong magic as soon as its bytes are there, so a stream that
/// is not Dubbo errors at once instead of waiting for 16 bytes.
pub(super) fn check_magic(prefix: &[u8]) -> Result<(), CodecError> {
    let n = prefix.len().min(MAGIC.len());
    if prefix.get(..n) != MAGIC.get(..n) {
        return Err(malformed("bad magic (not 0xDABB)"));
    }
    Ok(())
}

/// The `decode` of the codec; see [`crate::FrameCodec::decode`].
///
/// Framing only: the header is checked and the frame split off the read
/// buffer. The header view of a hessian2 call (and of a successful
/// hessian2 response) is read from the body the first time it is asked
/// for ([`read_call_section`], [`read_response_section`]).
pub(super) fn decode(src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
    check_magic(src)?;
    let Some(header) = Header::parse(src) else {
        return Ok(None);
    };
    // Java reads the length as a signed int: the top bit set is a negative
    // length, malformed whatever limit is configured.
    if header.body_len > i32::MAX as u32 {
        return Err(malformed("negative body length"));
    }
    let frame_len = HEADER_LEN as u64 + u64::from(header.body_len);
    limits.check(NAME, frame_len)?;
    let frame_len =
        usize::try_from(frame_len).map_err(|_| malformed("frame longer than memory"))?;
    if src.len() < frame_len {
        crate::codec::reserve_for_frame(src, frame_len);
        return Ok(None);
    }
    let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
    Ok(Some(frame_from(header, wire)))
}

/// The frame over `wire`, whose fixed header is `header`: what `decode`
/// returns, and what the frames the codec builds start from.
#[inline]
pub(super) fn frame_from(header: Header, wire: Wire) -> Frame {
    let body = 0..wire.rest().len();
    let kind = kind_of(header.flag);
    let serialization = header.flag & SERIALIZATION_MASK;
    let status = (header.flag & FLAG_REQUEST == 0).then(|| status_of(header.status));
    let hessian2 = serialization == SERIALIZATION_HESSIAN2;
    let reader: Option<HeaderReader> = if hessian2 && header.is_call() {
        Some(read_call_section)
    } else if hessian2
        && status.is_some_and(|s| s.code == u32::from(STATUS_OK))
        && kind == FrameKind::Response
    {
        Some(read_response_section)
    } else {
        None
    };
    let fixed = FixedFields {
        kind,
        request_id: header.id,
        status,
        timeout_ms: None,
        meta: WireMeta {
            flags: header.flag,
            serialization,
            ..WireMeta::default()
        },
        body,
        class: 0..0,
    };
    Frame::decoded(wire, reader, fixed)
}

/// The header reader of hessian2 calls ([`crate::HeaderReader`]): see
/// [`read_call`].
fn read_call_section(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
    let body = wire.rest();
    let timeout_ms = read_call(body, headers).map_err(Bad::error)?;
    headers.bind(body.clone());
    Ok(timeout_ms)
}

/// The header reader of successful hessian2 responses: the attachments
/// after the result (types 3 to 5), as string pairs; see the `encode`
/// module for how a changed view is written back.
fn read_response_section(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
    let body = wire.rest();
    headers.bind(body.clone());
    hessian::read_response(body, |att| {
        if let Some((key, value)) = att.string_pair() {
            if key.chunked || value.chunked {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                key.collect_into(body, &mut k);
                value.collect_into(body, &mut v);
                headers.push_owned(&k, &v);
            } else {
                headers.push_wire(key.range.clone(), value.range.clone());
            }
        }
    })?;
    Ok(None)
}

fn kind_of(flag: u8) -> FrameKind {
    let two_way = flag & FLAG_TWO_WAY != 0;
    match (flag & FLAG_REQUEST != 0, flag & FLAG_EVENT != 0) {
        (true, false) if two_way => FrameKind::Request,
        (true, false) => FrameKind::Oneway,
        (true, true) if two_way => FrameKind::Heartbeat { reply: false },
        // The read-only event (body "R"): the provider is shutting down this
        // connection. Not a heartbeat, whatever MOSN makes of it.
        (true, true) => FrameKind::GoAway,
        (false, true) => FrameKind::Heartbeat { reply: true },
        (false, false) => FrameKind::Response,
    }
}

/// A Dubbo response status with MOSN's neutral code.
fn status_of(code: u8) -> Status {
    let neutral = match code {
        20 => 200,
        30 | 31 => 504,
        35 => 502,
        40 | 90 => 400,
        60 => 404,
        100 => 503,
        _ => 500,
    };
    Status {
        code: u32::from(code),
        neutral,
    }
}

/// Reads the header view and timeout of a hessian2 call from its body:
/// the head's routing keys, every string attachment, then `service` again
/// from `interface` so it wins the last-wins lookup. An attachment named
/// like a head key (`dubbo`, `service`, `version`, `method`: dubbo-remoting
/// sends `service` = `Interface:version` and `dubbo`/`version` too) stays a
/// wire field but does not shadow the key: the head's value is pushed again
/// after the attachments, so the same call routes the same whichever
/// client sent it. Spans are offsets into `body`, for the view to be bound
/// to the body's bytes once they are split off; nothing is copied unless a
/// string was sent in chunks.
fn read_call(body: &[u8], headers: &mut Headers) -> Result<Option<u32>, Bad> {
    let mut reader = Reader::new(body);
    let head = match read_ascii_head(&mut reader, body, headers)? {
        Some(head) => head,
        None => {
            reader = Reader::new(body);
            read_head(&mut reader, body, headers)?
        }
    };
    let mut call = Call {
        body,
        headers,
        interface: None,
        timeout_ms: None,
        shadows: Default::default(),
    };
    hessian::attachments(&mut reader, |reader| {
        match reader.ascii_str() {
            Some(key) => match reader.ascii_str() {
                Some(value) => call.string_pair(key, value),
                None => {
                    let value = reader.value()?;
                    call.pair(Value::Str(StrSpan::plain(key)), value);
                }
            },
            None => {
                let key = reader.value()?;
                let value = reader.value()?;
                call.pair(key, value);
            }
        }
        Ok(())
    })?;
    if call.shadows.iter().any(Option::is_some) {
        restore_head_keys(&mut call, &head);
    }
    derived(call.headers, body, keys::SERVICE, call.interface.as_ref());
    Ok(call.timeout_ms)
}

/// The head's routing keys, where they are in the body.
struct HeadKeys {
    dubbo: Option<StrSpan>,
    service: Option<StrSpan>,
    /// `None`: a null version, which the view holds as `""`.
    version: Option<StrSpan>,
    method: Option<StrSpan>,
}

/// Bits of the head keys, for [`push_head_keys`]; their trailing zeros
/// index [`Call::shadows`].
const SHADOW_DUBBO: u8 = 1;
const SHADOW_SERVICE: u8 = 2;
const SHADOW_VERSION: u8 = 4;
const SHADOW_METHOD: u8 = 8;

/// The head key an attachment named `name` repeats, as its bit; 0 for
/// any other name.
#[inline(always)]
fn shadow_bit(name: &[u8]) -> u8 {
    match name {
        b"dubbo" => SHADOW_DUBBO,
        b"service" => SHADOW_SERVICE,
        b"version" => SHADOW_VERSION,
        b"method" => SHADOW_METHOD,
        _ => 0,
    }
}

/// After the attachments: pushes again each head key whose last repeating
/// attachment holds another value, so the head's value wins the last-wins
/// lookup. An equal value (Java and dubbo-remoting repeat `dubbo` and
/// `version` as they are in the head) needs nothing, which keeps the view
/// inline. `service` needs nothing when an `interface` attachment names it.
#[cold]
#[inline(never)]
fn restore_head_keys(call: &mut Call<'_, '_>, head: &HeadKeys) {
    let body = call.body;
    let head_values = [&head.dubbo, &head.service, &head.version, &head.method];
    let mut which = 0;
    for (i, (shadow, head_value)) in call.shadows.iter().zip(head_values).enumerate() {
        let Some(shadow) = shadow else { continue };
        let same = match (shadow.contiguous(body), head_value) {
            (Some(value), Some(head_value)) => head_value.contiguous(body) == Some(value),
            // A null version is `""` in the view.
            (Some(value), None) => i == 2 && value.is_empty(),
            (None, _) => false,
        };
        if !same {
            which |= 1 << i;
        }
    }
    if call.interface.is_some() {
        which &= !SHADOW_SERVICE;
    }
    push_head_keys(call.headers, body, head, which);
}

/// Pushes the head keys in `which` (`SHADOW_*` bits) as derived entries.
fn push_head_keys(headers: &mut Headers, body: &[u8], head: &HeadKeys, which: u8) {
    if which & SHADOW_DUBBO != 0 {
        derived(headers, body, "dubbo", head.dubbo.as_ref());
    }
    if which & SHADOW_SERVICE != 0 {
        derived(headers, body, keys::SERVICE, head.service.as_ref());
    }
    if which & SHADOW_VERSION != 0 {
        match &head.version {
            Some(version) => derived(headers, body, keys::VERSION, Some(version)),
            None => headers.push_derived(keys::VERSION, 0..0),
        }
    }
    if which & SHADOW_METHOD != 0 {
        derived(headers, body, keys::METHOD, head.method.as_ref());
    }
}

/// The head when its five values are unchunked ASCII strings, as every
/// Java client sends them: their ranges go straight into the view. `None`,
/// with nothing pushed, when one is not.
#[inline(always)]
fn read_ascii_head(
    reader: &mut Reader<'_>,
    body: &[u8],
    headers: &mut Headers,
) -> Result<Option<HeadKeys>, Bad> {
    let mut next = || reader.ascii_str();
    let (Some(dubbo), Some(service), Some(version), Some(method), Some(desc)) =
        (next(), next(), next(), next(), next())
    else {
        return Ok(None);
    };
    headers.push_derived("dubbo", dubbo.clone());
    headers.push_derived(keys::SERVICE, service.clone());
    headers.push_derived(keys::VERSION, version.clone());
    headers.push_derived(keys::METHOD, method.clone());
    let args = hessian::count_args_in(body.get(desc).unwrap_or_default())?;
    reader.skip_n(args)?;
    Ok(Some(HeadKeys {
        dubbo: Some(StrSpan::plain(dubbo)),
        service: Some(StrSpan::plain(service)),
        version: Some(StrSpan::plain(version)),
        method: Some(StrSpan::plain(method)),
    }))
}

/// The head in any form (null values, chunked or non-ASCII strings).
#[inline(never)]
fn read_head(reader: &mut Reader<'_>, body: &[u8], headers: &mut Headers) -> Result<HeadKeys, Bad> {
    let head = hessian::head(reader)?;
    let keys = HeadKeys {
        dubbo: head.dubbo,
        service: head.service,
        version: head.version,
        method: head.method,
    };
    push_head_keys(
        headers,
        body,
        &keys,
        SHADOW_DUBBO | SHADOW_SERVICE | SHADOW_VERSION | SHADOW_METHOD,
    );
    Ok(keys)
}

/// The attachments as [`read_call`] takes them in.
struct Call<'b, 'h> {
    body: &'b [u8],
    headers: &'h mut Headers,
    /// The last string `interface` attachment.
    interface: Option<StrSpan>,
    /// The last positive `timeout` attachment.
    timeout_ms: Option<u32>,
    /// For each head key (`dubbo`, `service`, `version`, `method`), the
    /// value of the last string attachment of that name.
    shadows: [Option<StrSpan>; 4],
}

impl Call<'_, '_> {
    /// Notes an attachment `name` = `value` that repeats a head key.
    #[inline(always)]
    fn shadow(&mut self, name: &[u8], value: &StrSpan) {
        let bit = shadow_bit(name);
        if bit != 0 {
            self.shadows[bit.trailing_zeros() as usize] = Some(value.clone());
        }
    }
}

impl Call<'_, '_> {
    /// A pair of unchunked strings (every pair Java sends): a wire field,
    /// and maybe the interface or the timeout.
    #[inline(always)]
    fn string_pair(&mut self, key: Range<usize>, value: Range<usize>) {
        let name = self.body.get(key.clone()).unwrap_or_default();
        self.headers.push_wire(key, value.clone());
        match name.len() {
            9 if name == b"interface" => self.interface = Some(StrSpan::plain(value)),
            7 if name == b"timeout" => {
                if let Some(ms) = self.body.get(value).and_then(parse_ms) {
                    self.timeout_ms = Some(ms);
                }
            }
            5..=7 => self.shadow(name, &StrSpan::plain(value)),
            _ => {}
        }
    }

    /// Any other pair: chunked strings are copied into the view, pairs
    /// that are not two strings are left out of it (but an int `timeout`,
    /// which dubbo2.js sends, is read).
    #[inline(never)]
    fn pair(&mut self, key: Value, value: Value) {
        let body = self.body;
        let Value::Str(key) = key else {
            return;
        };
        match value {
            Value::Str(value) => {
                if key.chunked || value.chunked {
                    push_chunked(self.headers, body, &key, &value);
                } else {
                    self.headers
                        .push_wire(key.range.clone(), value.range.clone());
                }
                match key.contiguous(body) {
                    Some(name) => self.shadow(name, &value),
                    None => {
                        let mut name = Vec::new();
                        key.collect_into(body, &mut name);
                        self.shadow(&name, &value);
                    }
                }
                if key.eq_bytes(body, b"interface") {
                    self.interface = Some(value);
                } else if key.eq_bytes(body, b"timeout")
                    && let Some(ms) = value.contiguous(body).and_then(parse_ms)
                {
                    self.timeout_ms = Some(ms);
                }
            }
            Value::Int(n) if key.eq_bytes(body, b"timeout") => {
                if let Some(ms) = u32::try_from(n).ok().filter(|ms| *ms > 0) {
                    self.timeout_ms = Some(ms);
                }
            }
            _ => {}
        }
    }
}

/// A string attachment sent in chunks: copied into the view.
#[cold]
fn push_chunked(headers: &mut Headers, body: &[u8], key: &StrSpan, value: &StrSpan) {
    let (mut k, mut v) = (Vec::new(), Vec::new());
    key.collect_into(body, &mut k);
    value.collect_into(body, &mut v);
    headers.push_owned(&k, &v);
}

/// A positive number of milliseconds, as `u32::from_str` reads it
/// (an optional `+`, then decimal digits), without the UTF-8 pass.
#[inline(always)]
fn parse_ms(text: &[u8]) -> Option<u32> {
    let digits = text.strip_prefix(b"+").unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    let mut ms: u64 = 0;
    for &digit in digits {
        let value = digit.wrapping_sub(b'0');
        if value > 9 {
            return None;
        }
        // At most u32::MAX * 10 + 9: no overflow in u64.
        ms = ms * 10 + u64::from(value);
        if ms > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(ms).ok().filter(|ms| *ms > 0)
}

#[inline]
fn derived(headers: &mut Headers, body: &[u8], key: &'static str, value: Option<&StrSpan>) {
    match value {
        Some(s) if s.chunked => derived_chunked(headers, body, key, s),
        Some(s) => headers.push_derived(key, s.range.clone()),
        None => {}
    }
}

#[cold]
fn derived_chunked(headers: &mut Headers, body: &[u8], key: &'static str, value: &StrSpan) {
    let mut owned = Vec::new();
    value.collect_into(body, &mut owned);
    headers.push_derived_owned(key, &owned);
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn timeouts_parse_as_u32_from_str_does() {
        for text in [
            "3000",
            "+3000",
            "0",
            "",
            "+",
            "++1",
            "-1",
            "4294967295",
            "4294967296",
            "00000000000000000012",
            "12a",
            " 1",
            "99999999999999999999999",
        ] {
            let want = text.parse::<u32>().ok().filter(|ms| *ms > 0);
            assert_eq!(parse_ms(text.as_bytes()), want, "{text:?}");
        }
    }
}
