//! Decoding: fixed header, size check, CRC, then one split of the read
//! buffer into the frame's [`Wire`] (no copy of class, header map or
//! content). The header map is read from the wire bytes on first use
//! ([`read_section`]).

use super::head::{self, Head};
use super::header_map;
use crate::codec::Limits;
use crate::error::CodecError;
use crate::frame::{FixedFields, Frame, FrameKind, Status, WireMeta};
use crate::headers::Headers;
use crate::wire::Wire;
use bytes::BytesMut;

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
    Ok(Some(assemble(&head, kind, src.split_to(frame_len))))
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

/// Builds the frame over its bytes: `buf` is exactly one frame whose fixed
/// header is `head`. Class and body are slices of the wire's shared middle
/// part; the header map is left to [`read_section`].
#[inline(always)]
pub(super) fn assemble(head: &Head, kind: FrameKind, buf: BytesMut) -> Frame {
    let wire = Wire::split(buf, head.fixed_len(), head.crc_len());
    let rest = wire.rest();
    let class_len = usize::from(head.class_len);
    let body_start = class_len + usize::from(head.header_len);
    debug_assert!(body_start <= rest.len(), "lengths checked before split");
    let body = body_start.min(rest.len())..rest.len();
    let class = 0..class_len.min(rest.len());
    let response_side = head.cmd_type == super::TYPE_RESPONSE;
    let fixed = FixedFields {
        kind,
        request_id: u64::from(head.id),
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
        },
        body,
        class,
    };
    Frame::decoded(wire, Some(read_section), fixed)
}

/// The header reader of bolt frames ([`crate::HeaderReader`]): the header
/// map between the class name and the content, as spans into the wire's
/// middle part, plus the derived routing keys (see [`header_map::read`]).
fn read_section(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
    // The wire head is exactly the fixed header, which ends with class_len
    // (u16), header_len (u16) and content_len (u32) in every layout.
    let head = wire.head();
    let protocol = head::protocol_name(head.first().copied().unwrap_or_default());
    let lens = head
        .len()
        .checked_sub(8)
        .and_then(|at| head.get(at..at + 4))
        .ok_or_else(|| CodecError::malformed(protocol, "wire head shorter than a fixed header"))?;
    let class_len = usize::from(u16::from_be_bytes([lens[0], lens[1]]));
    let header_len = usize::from(u16::from_be_bytes([lens[2], lens[3]]));
    if header_len == 0 {
        return Ok(None);
    }
    let rest = wire.rest();
    let map = rest
        .get(class_len..class_len + header_len)
        .ok_or_else(|| CodecError::malformed(protocol, "header map runs past the frame"))?;
    header_map::read(map, class_len, protocol, headers)?;
    headers.bind(rest.clone());
    Ok(None)
}
