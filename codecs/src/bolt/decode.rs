//! Decoding: fixed header, size check, CRC, header map, then one split of
//! the read buffer into the frame's [`Wire`] (no copy of class, header map
//! or content).

use super::head::{self, Head};
use super::header_map;
use crate::codec::Limits;
use crate::error::CodecError;
use crate::frame::{Frame, FrameKind, Status, WireMeta};
use crate::headers::Headers;
use crate::wire::Wire;
use bytes::{Bytes, BytesMut};

/// The decode half of [`crate::FrameCodec::decode`] for both versions; see
/// there for the `Ok(None)` / `Err` contract. Every check runs before
/// `src` is split, so an error leaves `src` exactly as it was.
pub(super) fn decode(src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
    let Some((head, kind)) = Head::parse_kind(src)? else {
        return Ok(None);
    };
    let protocol = head::protocol_name(head.proto);
    let declared = head.frame_len();
    limits.check(protocol, declared)?;
    // The limit is at most 1 GiB, so the length fits usize.
    let frame_len = usize::try_from(declared).map_err(|_| CodecError::FrameTooLarge {
        protocol,
        len: declared,
        max: limits.max_frame_len,
    })?;
    if src.len() < frame_len {
        crate::codec::reserve_for_frame(src, frame_len);
        return Ok(None);
    }

    if head.has_crc() {
        check_crc(src.get(..frame_len).unwrap_or_default(), protocol)?;
    }
    split_frame(src, &head, kind, frame_len)
}

/// Reads the header map of the whole frame at the front of `src` and, if
/// it is well formed, splits the frame off.
///
/// One pass over the map while the frame is still in `src`: the spans
/// index the wire's middle part (class, map, content), which starts after
/// the fixed header. On error nothing is split off.
fn split_frame(
    src: &mut BytesMut,
    head: &Head,
    kind: FrameKind,
    frame_len: usize,
) -> Result<Option<Frame>, CodecError> {
    let class_len = usize::from(head.class_len);
    let map_start = head.fixed_len() + class_len;
    let map = src
        .get(map_start..map_start + usize::from(head.header_len))
        .unwrap_or_default();
    let mut headers = Headers::new();
    header_map::read(
        map,
        class_len,
        head::protocol_name(head.proto),
        &mut headers,
    )?;
    Ok(Some(assemble_with(
        head,
        kind,
        src.split_to(frame_len),
        headers,
    )))
}

/// Compares the trailing big-endian CRC-32 with the CRC of every byte
/// before it (proto to the end of the content).
fn check_crc(frame: &[u8], protocol: &'static str) -> Result<(), CodecError> {
    let (data, trailer) = frame.split_at(frame.len().saturating_sub(head::CRC_LEN));
    let expected = <[u8; 4]>::try_from(trailer)
        .map(u32::from_be_bytes)
        .map_err(|_| CodecError::malformed(protocol, "frame too short for its CRC"))?;
    let actual = crc32fast::hash(data);
    if expected != actual {
        return Err(CodecError::ChecksumMismatch {
            protocol,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Builds the frame over its bytes: `buf` is exactly one frame whose
/// fixed header is `head` and whose header map is empty.
pub(super) fn assemble(head: Head, kind: FrameKind, buf: BytesMut) -> Frame {
    assemble_with(&head, kind, buf, Headers::new())
}

/// Builds the frame over its bytes: `buf` is exactly one frame whose fixed
/// header is `head`, and `headers` holds its header map as spans relative
/// to the wire's middle part (class, map, content). Header values, class
/// and body are slices of that shared part.
#[inline(always)]
fn assemble_with(head: &Head, kind: FrameKind, buf: BytesMut, mut headers: Headers) -> Frame {
    let wire = Wire::split(buf, head.fixed_len(), head.crc_len());
    let rest = wire.rest();
    let class_len = usize::from(head.class_len);
    let body_start = class_len + usize::from(head.header_len);
    debug_assert!(body_start <= rest.len(), "lengths checked before split");
    // Each slice is one more handle on the shared buffer; empty parts need
    // none.
    let slice = |from: usize, to: usize| {
        if from < to && to <= rest.len() {
            rest.slice(from..to)
        } else {
            Bytes::new()
        }
    };
    if !headers.is_empty() {
        headers.bind(rest.clone());
    }
    let response_side = head.cmd_type == super::TYPE_RESPONSE;
    Frame {
        kind,
        request_id: u64::from(head.id),
        headers,
        body: slice(body_start, rest.len()),
        trailers: None,
        status: response_side.then(|| Status {
            code: u32::from(head.status),
            neutral: head::neutral_status(head.status),
        }),
        // Negative timeouts (Java's -1) mean "no timeout".
        timeout_ms: (!response_side)
            .then(|| u32::try_from(head.timeout).ok())
            .flatten(),
        meta: WireMeta {
            version: head.proto,
            serialization: head.codec,
            flags: head.switch,
            sub_version: head.ver1,
            class: slice(0, class_len),
        },
        wire: Some(wire),
    }
}
