//! Decoding: framing by the 16-byte header, then (for hessian2 calls only)
//! the header view read from the body in one pass.

use super::hessian::{self, StrSpan, Value, malformed};
use super::{
    FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_LEN, MAGIC, NAME, SERIALIZATION_HESSIAN2,
    SERIALIZATION_MASK,
};
use crate::{CodecError, Frame, FrameKind, Headers, Limits, Status, Wire, keys};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

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
    // Read the body before consuming anything, so an error leaves `src` as
    // it was for `decode_error_reply`.
    let call = match src.get(HEADER_LEN..frame_len) {
        Some(body) if header.is_hessian_call() => Some(read_call(body)?),
        _ => None,
    };
    let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
    let mut frame = frame_from(header, wire);
    if let Some(call) = call {
        frame.timeout_ms = call.timeout_ms;
        frame.headers = call.headers(&frame.body);
    }
    Ok(Some(frame))
}

/// A frame from its wire bytes, without a header view: every response and
/// event, non-hessian2 calls, and frames the codec builds.
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
pub(super) fn status_of(code: u8) -> Status {
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

/// What the body of a hessian2 call gave, as body offsets (the header view
/// is built from it once the frame owns its bytes).
struct Call {
    head: hessian::RequestHead,
    /// String-valued attachments in wire order; twelve inline, like Headers.
    pairs: SmallVec<[(StrSpan, StrSpan); 12]>,
    interface: Option<StrSpan>,
    timeout_ms: Option<u32>,
}

fn read_call(body: &[u8]) -> Result<Call, CodecError> {
    let mut pairs = SmallVec::new();
    let mut interface = None;
    let mut timeout_ms = None;
    let head = hessian::read_request(body, |att| {
        let is_key = |key: &[u8]| matches!(&att.key, Value::Str(k) if k.eq_bytes(body, key));
        if let Some((key, value)) = att.string_pair() {
            pairs.push((key.clone(), value.clone()));
            if is_key(b"interface") {
                interface = Some(value.clone());
            }
        }
        if is_key(b"timeout") {
            // Java clients send a string, dubbo2.js a hessian int.
            let ms = match &att.value {
                Value::Str(s) => s.contiguous(body).and_then(parse_ms),
                Value::Int(n) => u32::try_from(*n).ok(),
                _ => None,
            };
            if let Some(ms) = ms.filter(|ms| *ms > 0) {
                timeout_ms = Some(ms);
            }
        }
    })?;
    Ok(Call {
        head,
        pairs,
        interface,
        timeout_ms,
    })
}

fn parse_ms(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Call {
    /// The header view over `body` (the frame's `wire.rest()`): the head's
    /// routing keys, every string attachment, then `service` again from
    /// `interface` so it wins the last-wins lookup.
    fn headers(&self, body: &Bytes) -> Headers {
        let mut headers = Headers::over(body.clone());
        derived(&mut headers, body, "dubbo", self.head.dubbo.as_ref());
        derived(
            &mut headers,
            body,
            keys::SERVICE,
            self.head.service.as_ref(),
        );
        match &self.head.version {
            Some(version) => derived(&mut headers, body, keys::VERSION, Some(version)),
            None => headers.push_derived(keys::VERSION, 0..0),
        }
        derived(&mut headers, body, keys::METHOD, self.head.method.as_ref());
        for (key, value) in &self.pairs {
            if key.chunked || value.chunked {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                key.collect_into(body, &mut k);
                value.collect_into(body, &mut v);
                headers.push_owned(&k, &v);
            } else {
                headers.push_wire(key.range.clone(), value.range.clone());
            }
        }
        derived(&mut headers, body, keys::SERVICE, self.interface.as_ref());
        headers
    }
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
