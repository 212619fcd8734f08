//! Encoding from fields, and the frames the codec builds itself
//! (heartbeats and error replies).

use super::decode::{Header, frame_from};
use super::hessian::{self, malformed, write_string};
use super::{
    FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_LEN, MAGIC, NAME, SERIALIZATION_HESSIAN2,
    SERIALIZATION_MASK, STATUS_OK,
};
use crate::{CodecError, Frame, FrameKind, Headers, Wire};
use bytes::{BufMut, BytesMut};
use smallvec::SmallVec;
use std::ops::Range;

/// The hessian2 null: the body of every heartbeat.
const HESSIAN_NULL: u8 = crate::hessian2::NULL;

/// The longest error message a reply carries, in bytes: a consumer logs
/// it, and a runaway message must not make a runaway frame.
const MAX_MESSAGE: usize = 64 * 1024;

/// The `encode_fields` of the codec; see [`crate::FrameCodec::encode_fields`].
pub(super) fn encode_fields(frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
    let flag = flag_of(frame);
    let status = if flag & FLAG_REQUEST == 0 {
        match frame.status {
            Some(status) => u8::try_from(status.code)
                .map_err(|_| malformed("status code does not fit the status byte"))?,
            None => STATUS_OK,
        }
    } else {
        0
    };
    let start = dst.len();
    dst.reserve(HEADER_LEN + frame.body().len());
    put_header(dst, flag, status, frame.request_id);
    let headers = frame.headers();
    let written = if headers.is_modified() && flag & (FLAG_REQUEST | FLAG_EVENT) == 0 {
        write_response_body(flag, status, frame.body(), headers, dst);
        Ok(())
    } else if headers.is_modified() {
        rewrite_attachments(flag, frame.body(), headers, dst)
    } else {
        dst.extend_from_slice(frame.body());
        Ok(())
    };
    let body_len = dst.len() - start - HEADER_LEN;
    let result = written.and_then(|()| {
        let len = i32::try_from(body_len).map_err(|_| CodecError::FrameTooLarge {
            protocol: NAME,
            len: (HEADER_LEN + body_len) as u64,
            max: HEADER_LEN + i32::MAX as usize,
        })?;
        dst[start + 12..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        Ok(())
    });
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// [`Wire::write_to`] for a Dubbo frame: the fixed header is copied as
/// sixteen bytes (no `memcpy` call), and the tail, always empty, is not.
#[inline]
pub(super) fn write_wire(wire: &Wire, dst: &mut BytesMut) {
    let [head, rest, tail] = wire.chunks();
    dst.reserve(wire.len());
    match head.first_chunk::<HEADER_LEN>() {
        Some(fixed) if head.len() == HEADER_LEN => dst.extend_from_slice(fixed),
        _ => dst.extend_from_slice(head),
    }
    dst.extend_from_slice(rest);
    if !tail.is_empty() {
        dst.extend_from_slice(tail);
    }
}

/// The flag byte: as decoded, or for frames built in memory (flags 0),
/// the usual one for the kind with hessian2 serialization.
fn flag_of(frame: &Frame) -> u8 {
    if frame.meta.flags != 0 {
        return frame.meta.flags;
    }
    let bits = match frame.kind {
        FrameKind::Request => FLAG_REQUEST | FLAG_TWO_WAY,
        FrameKind::Oneway => FLAG_REQUEST,
        FrameKind::Heartbeat { reply: false } => FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT,
        FrameKind::GoAway => FLAG_REQUEST | FLAG_EVENT,
        FrameKind::Heartbeat { reply: true } => FLAG_EVENT,
        FrameKind::Response => 0,
    };
    bits | SERIALIZATION_HESSIAN2
}

/// The header with a zero body length (patched once the body is written).
fn put_header(dst: &mut BytesMut, flag: u8, status: u8, id: u64) {
    dst.reserve(HEADER_LEN);
    dst.extend_from_slice(&MAGIC);
    dst.put_u8(flag);
    dst.put_u8(status);
    dst.put_u64(id);
    dst.put_u32(0);
}

/// Writes `body` with its attachments map rebuilt from the header view.
///
/// Everything up to the attachments is copied as it is. The new map keeps
/// the original opening (`H`, or `M` and its type) and, byte for byte and
/// first, every pair that is not string-to-string (such as dubbo2.js's
/// int `timeout`): they are not in the header view, and they may define
/// classes or types later pairs refer to. Then every wire field of
/// `headers` follows as strings, so a header set by a filter wins over an
/// original non-string value for the same key (Java maps keep the last).
fn rewrite_attachments(
    flag: u8,
    body: &[u8],
    headers: &Headers,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let hessian_call = flag & (FLAG_REQUEST | FLAG_EVENT) == FLAG_REQUEST
        && flag & SERIALIZATION_MASK == SERIALIZATION_HESSIAN2;
    if !hessian_call {
        return Err(CodecError::unsupported(
            NAME,
            "changed headers on a frame without a hessian2 invocation body",
        ));
    }
    let mut kept: SmallVec<[Range<usize>; 4]> = SmallVec::new();
    let layout = hessian::read_request(body, |att| {
        if att.string_pair().is_none() {
            kept.push(att.raw.clone());
        }
    })?
    .attachments;
    let slice = |range: Range<usize>| {
        body.get(range)
            .ok_or_else(|| malformed("attachment range outside the body"))
    };
    dst.extend_from_slice(slice(0..layout.range.start)?);
    match layout.form {
        hessian::AttachmentsForm::Map => {
            dst.extend_from_slice(slice(layout.range.start..layout.pairs_at)?);
        }
        _ => dst.put_u8(b'H'),
    }
    for range in kept {
        dst.extend_from_slice(slice(range)?);
    }
    for (key, value) in headers.wire_fields() {
        hessian::write_string_bytes(dst, key);
        hessian::write_string_bytes(dst, value);
    }
    dst.put_u8(b'Z');
    dst.extend_from_slice(slice(layout.range.end..body.len())?);
    Ok(())
}

/// Writes a response's body with its attachments rebuilt from the header
/// view (see [`crate::FrameCodec::fill_headers`], which reads the view of
/// a response first).
///
/// Only a successful hessian2 response has attachments: its result type
/// becomes the one with attachments (0, 1, 2 → 3, 4, 5), the result is
/// copied as it is, and the map is written like a request's (see
/// [`rewrite_attachments`]): the original opening and non-string pairs,
/// then every wire field of the view. When the view was never read from
/// this body, the original string pairs the view does not set are kept
/// too, so nothing is lost. Any other response (an error status, whose
/// body is a message; another serialization; a body this codec cannot
/// read) has nowhere to put attachments: it is written unchanged, because
/// dropping the reply would be worse than dropping the header change.
fn write_response_body(flag: u8, status: u8, body: &[u8], headers: &Headers, dst: &mut BytesMut) {
    let start = dst.len();
    if status != STATUS_OK
        || flag & SERIALIZATION_MASK != SERIALIZATION_HESSIAN2
        || write_response_attachments(body, headers, dst).is_err()
    {
        dst.truncate(start);
        dst.extend_from_slice(body);
    }
}

fn write_response_attachments(
    body: &[u8],
    headers: &Headers,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let view_read = !headers.wire().is_empty();
    let mut kept: SmallVec<[Range<usize>; 4]> = SmallVec::new();
    let layout = hessian::read_response(body, |att| match att.string_pair() {
        None => kept.push(att.raw.clone()),
        Some((key, _)) if !view_read => {
            let mut name = Vec::new();
            key.collect_into(body, &mut name);
            let set = std::str::from_utf8(&name).is_ok_and(|name| headers.contains(name));
            if !set {
                kept.push(att.raw.clone());
            }
        }
        Some(_) => {}
    })?;
    let slice = |range: Range<usize>| {
        body.get(range)
            .ok_or_else(|| malformed("response range outside the body"))
    };
    // Hessian's compact int: 0x90 + n for 0 to 47.
    dst.put_u8(0x90 + layout.kind_with_attachments());
    dst.extend_from_slice(slice(layout.result.clone())?);
    let rest_at = match &layout.attachments {
        Some(map) => {
            dst.extend_from_slice(slice(map.range.start..map.pairs_at)?);
            map.range.end
        }
        None => {
            dst.put_u8(b'H');
            layout.result.end
        }
    };
    for range in kept {
        dst.extend_from_slice(slice(range)?);
    }
    for (key, value) in headers.wire_fields() {
        hessian::write_string_bytes(dst, key);
        hessian::write_string_bytes(dst, value);
    }
    dst.put_u8(b'Z');
    dst.extend_from_slice(slice(rest_at..body.len())?);
    Ok(())
}

/// A frame the codec builds: header, body, and the decoded view of them.
pub(super) fn build(flag: u8, status: u8, id: u64, body: impl FnOnce(&mut BytesMut)) -> Frame {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + 32);
    put_header(&mut buf, flag, status, id);
    body(&mut buf);
    // Built bodies are a null or one message of at most MAX_MESSAGE bytes,
    // so the length always fits.
    let len = u32::try_from(buf.len() - HEADER_LEN).unwrap_or(u32::MAX);
    buf[12..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    let header = Header {
        flag,
        status,
        id,
        body_len: len,
    };
    frame_from(header, Wire::split(buf, HEADER_LEN, 0))
}

/// The pong for ping `id`.
pub(super) fn heartbeat_reply(id: u64) -> Frame {
    build(FLAG_EVENT | SERIALIZATION_HESSIAN2, STATUS_OK, id, |b| {
        b.put_u8(HESSIAN_NULL)
    })
}

/// A ping with id `id`.
pub(super) fn heartbeat_request(id: u64) -> Frame {
    let flag = FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT | SERIALIZATION_HESSIAN2;
    build(flag, 0, id, |b| b.put_u8(HESSIAN_NULL))
}

/// An error response to request `id`: status `status`, body the message
/// as one hessian2 string, cut to [`MAX_MESSAGE`] bytes.
pub(super) fn error_response(id: u64, status: u8, message: &str) -> Frame {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = message.get(..end).unwrap_or_default();
    build(SERIALIZATION_HESSIAN2, status, id, |b| {
        write_string(b, message)
    })
}
