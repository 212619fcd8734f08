//! Decoding: framing by the 16-byte header, then (for hessian2 calls only)
//! the header view read from the body in one pass.

use super::hessian::{self, Reader, StrSpan, Value, malformed};
use super::{
    FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_LEN, MAGIC, NAME, SERIALIZATION_HESSIAN2,
    SERIALIZATION_MASK,
};
use crate::{CodecError, Frame, FrameKind, Headers, Limits, Status, Wire, keys};
use bytes::BytesMut;

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

    /// A call whose body this codec reads (hessian2).
    fn is_hessian_call(self) -> bool {
        self.is_call() && self.flag & SERIALIZATION_MASK == SERIALIZATION_HESSIAN2
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
        src.reserve(frame_len - src.len());
        return Ok(None);
    }
    let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
    let mut frame = frame_from(header, wire);
    if header.is_hessian_call()
        && let Err(err) = read_call(&mut frame)
    {
        // Put the frame back in front of what follows it, so the error
        // reply can be addressed from the buffer. Corrupt streams are
        // closed next: this copy is not on any hot path.
        if let Some(wire) = &frame.wire {
            let mut restored = BytesMut::with_capacity(wire.len() + src.len());
            wire.write_to(&mut restored);
            restored.extend_from_slice(src);
            *src = restored;
        }
        return Err(err);
    }
    Ok(Some(frame))
}

/// A frame from its wire bytes, with an empty header view (all a response,
/// an event or a non-hessian2 call gets, and what frames the codec builds
/// start from).
pub(super) fn frame_from(header: Header, wire: Wire) -> Frame {
    let mut frame = Frame::new(kind_of(header.flag), header.id);
    frame.body = wire.rest().clone();
    frame.meta.flags = header.flag;
    frame.meta.serialization = header.flag & SERIALIZATION_MASK;
    if header.flag & FLAG_REQUEST == 0 {
        frame.status = Some(status_of(header.status));
    }
    frame.wire = Some(wire);
    frame
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

/// Fills the header view and timeout of a hessian2 call from its body:
/// the head's routing keys, every string attachment, then `service` again
/// from `interface` so it wins the last-wins lookup. Spans point into
/// `frame.body` (the frame's `wire.rest()`), so nothing is copied unless a
/// string was sent in chunks.
fn read_call(frame: &mut Frame) -> Result<(), CodecError> {
    let body = frame.body.clone();
    let headers = &mut frame.headers;
    *headers = Headers::over(body.clone());
    let mut reader = Reader::new(&body);
    let head = hessian::read_head(&mut reader)?;
    derived(headers, &body, "dubbo", head.dubbo.as_ref());
    derived(headers, &body, keys::SERVICE, head.service.as_ref());
    match &head.version {
        Some(version) => derived(headers, &body, keys::VERSION, Some(version)),
        None => headers.push_derived(keys::VERSION, 0..0),
    }
    derived(headers, &body, keys::METHOD, head.method.as_ref());

    let mut interface = None;
    let mut timeout_ms = None;
    hessian::read_attachments(&mut reader, |att| {
        let is_key = |want: &[u8]| match &att.key {
            Value::Str(k) if !k.chunked => body.get(k.range.clone()) == Some(want),
            Value::Str(k) => k.eq_bytes(&body, want),
            _ => false,
        };
        if let Some((key, value)) = att.string_pair() {
            if key.chunked || value.chunked {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                key.collect_into(&body, &mut k);
                value.collect_into(&body, &mut v);
                headers.push_owned(&k, &v);
            } else {
                headers.push_wire(key.range.clone(), value.range.clone());
            }
            if is_key(b"interface") {
                interface = Some(value.clone());
            }
        }
        if is_key(b"timeout") {
            // Java clients send a string, dubbo2.js a hessian int.
            let ms = match &att.value {
                Value::Str(s) => s.contiguous(&body).and_then(parse_ms),
                Value::Int(n) => u32::try_from(*n).ok(),
                _ => None,
            };
            if let Some(ms) = ms.filter(|ms| *ms > 0) {
                timeout_ms = Some(ms);
            }
        }
    })?;
    derived(headers, &body, keys::SERVICE, interface.as_ref());
    frame.timeout_ms = timeout_ms;
    Ok(())
}

fn parse_ms(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn derived(headers: &mut Headers, body: &[u8], key: &'static str, value: Option<&StrSpan>) {
    match value {
        Some(s) if s.chunked => {
            let mut owned = Vec::new();
            s.collect_into(body, &mut owned);
            headers.push_derived_owned(key, &owned);
        }
        Some(s) => headers.push_derived(key, s.range.clone()),
        None => {}
    }
}
