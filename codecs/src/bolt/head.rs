//! The fixed header of a bolt frame: parsing, validation and writing, for
//! both versions and both directions (the four layouts of the module docs).

use super::{CMD_GOAWAY, CMD_HEARTBEAT, CMD_REQUEST, CMD_RESPONSE, PROTO_V1, PROTO_V2};
use super::{TYPE_ONEWAY, TYPE_REQUEST, TYPE_RESPONSE};
use crate::error::CodecError;
use crate::frame::FrameKind;
use bytes::{BufMut, BytesMut};

/// Length of the CRC-32 trailer of a checksummed v2 frame.
pub(super) const CRC_LEN: usize = 4;

/// The longest fixed header (a v2 request).
const MAX_FIXED_LEN: usize = 24;

/// The config name a frame of this protocol byte belongs to, for errors.
pub(super) fn protocol_name(proto: u8) -> &'static str {
    if proto == PROTO_V2 { "boltv2" } else { "bolt" }
}

/// Offset of the `type` byte: v2 inserts `ver1` before it.
pub(super) fn type_offset(proto: u8) -> usize {
    if proto == PROTO_V2 { 2 } else { 1 }
}

/// Offset of the 4-byte request id.
pub(super) fn id_offset(proto: u8) -> usize {
    type_offset(proto) + 4
}

/// Fixed header length for a protocol byte and a `type` byte: responses
/// carry a 2-byte status where requests carry a 4-byte timeout.
pub(super) fn fixed_len(proto: u8, cmd_type: u8) -> usize {
    let v2 = usize::from(proto == PROTO_V2);
    let status_or_timeout = if cmd_type == TYPE_RESPONSE { 2 } else { 4 };
    // proto, [ver1], type, cmd_code(2), ver2, id(4), codec, [switch],
    // status|timeout, class_len(2), header_len(2), content_len(4).
    1 + v2 + 1 + 2 + 1 + 4 + 1 + v2 + status_or_timeout + 2 + 2 + 4
}

/// Rejects a protocol byte that is neither v1 nor v2.
pub(super) fn check_proto(proto: u8) -> Result<(), CodecError> {
    if proto == PROTO_V1 || proto == PROTO_V2 {
        Ok(())
    } else {
        Err(unknown_proto(proto))
    }
}

#[cold]
#[inline(never)]
fn unknown_proto(proto: u8) -> CodecError {
    CodecError::malformed(
        "bolt",
        format!("unknown protocol code {proto:#04x} (valid: 0x01 bolt v1, 0x02 bolt v2)"),
    )
}

/// True for the `type` bytes bolt defines (0 response, 1 request, 2 oneway).
pub(super) fn is_valid_type(cmd_type: u8) -> bool {
    matches!(cmd_type, TYPE_RESPONSE | TYPE_REQUEST | TYPE_ONEWAY)
}

/// True for the `cmd_code` values bolt defines, plus MOSN's GoAway.
pub(super) fn is_valid_cmd(cmd: u16) -> bool {
    matches!(cmd, CMD_HEARTBEAT | CMD_REQUEST | CMD_RESPONSE | CMD_GOAWAY)
}

/// Rejects a `type` byte outside 0..=2.
pub(super) fn check_type(proto: u8, cmd_type: u8) -> Result<(), CodecError> {
    if is_valid_type(cmd_type) {
        Ok(())
    } else {
        Err(unknown_type(proto, cmd_type))
    }
}

#[cold]
#[inline(never)]
fn unknown_type(proto: u8, cmd_type: u8) -> CodecError {
    CodecError::malformed(
        protocol_name(proto),
        format!("unknown cmd type {cmd_type} (valid: 0 response, 1 request, 2 oneway)"),
    )
}

/// Rejects a `cmd_code` outside {0, 1, 2, 100}.
pub(super) fn check_cmd(proto: u8, cmd: u16) -> Result<(), CodecError> {
    if is_valid_cmd(cmd) {
        Ok(())
    } else {
        Err(unknown_cmd(proto, cmd))
    }
}

#[cold]
#[inline(never)]
fn unknown_cmd(proto: u8, cmd: u16) -> CodecError {
    CodecError::malformed(
        protocol_name(proto),
        format!("unknown cmd code {cmd} (valid: 0 heartbeat, 1 request, 2 response, 100 goaway)"),
    )
}

/// The frame kind of a `type` / `cmd_code` pair. Only the pairs the
/// implementations send are accepted: each kind then maps back to exactly
/// one pair, so a frame re-encoded from its fields keeps its bytes.
pub(super) fn kind_of(proto: u8, cmd_type: u8, cmd: u16) -> Result<FrameKind, CodecError> {
    Ok(match (cmd_type, cmd) {
        (TYPE_REQUEST, CMD_REQUEST) => FrameKind::Request,
        (TYPE_ONEWAY, CMD_REQUEST) => FrameKind::Oneway,
        (TYPE_RESPONSE, CMD_RESPONSE) => FrameKind::Response,
        (TYPE_REQUEST, CMD_HEARTBEAT) => FrameKind::Heartbeat { reply: false },
        (TYPE_RESPONSE, CMD_HEARTBEAT) => FrameKind::Heartbeat { reply: true },
        (TYPE_REQUEST, CMD_GOAWAY) => FrameKind::GoAway,
        _ => return Err(impossible_pair(proto, cmd_type, cmd)),
    })
}

#[cold]
#[inline(never)]
fn impossible_pair(proto: u8, cmd_type: u8, cmd: u16) -> CodecError {
    CodecError::malformed(
        protocol_name(proto),
        format!("cmd code {cmd} cannot travel in a frame of cmd type {cmd_type}"),
    )
}

/// The `type` / `cmd_code` pair that carries `kind` (inverse of [`kind_of`]).
pub(super) fn wire_kind(kind: FrameKind) -> (u8, u16) {
    match kind {
        FrameKind::Request => (TYPE_REQUEST, CMD_REQUEST),
        FrameKind::Oneway => (TYPE_ONEWAY, CMD_REQUEST),
        FrameKind::Response => (TYPE_RESPONSE, CMD_RESPONSE),
        FrameKind::Heartbeat { reply: false } => (TYPE_REQUEST, CMD_HEARTBEAT),
        FrameKind::Heartbeat { reply: true } => (TYPE_RESPONSE, CMD_HEARTBEAT),
        FrameKind::GoAway => (TYPE_REQUEST, CMD_GOAWAY),
    }
}

/// MOSN's protocol-neutral code for a bolt response status.
pub(super) fn neutral_status(status: u16) -> u16 {
    match status {
        0x0000 => 200,
        0x0004 => 503,
        0x0007 => 504,
        0x0010 => 502,
        _ => 500,
    }
}

/// The big-endian u16 at `at` of a whole fixed header.
#[inline(always)]
fn u16_at(b: &[u8; MAX_FIXED_LEN], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The big-endian u32 at `at` of a whole fixed header.
#[inline(always)]
fn u32_at(b: &[u8; MAX_FIXED_LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A parsed fixed header. `ver1` and `switch` are 0 in v1 frames; `status`
/// is meaningful for responses (`type` 0) only, `timeout` for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) proto: u8,
    pub(super) ver1: u8,
    pub(super) cmd_type: u8,
    pub(super) cmd: u16,
    pub(super) ver2: u8,
    pub(super) id: u32,
    pub(super) codec: u8,
    pub(super) switch: u8,
    pub(super) timeout: i32,
    pub(super) status: u16,
    pub(super) class_len: u16,
    pub(super) header_len: u16,
    pub(super) content_len: u32,
}

/// Big-endian reads over a slice; `None` past its end (never panics).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.buf.get(self.at..self.at.checked_add(N)?)?;
        self.at += N;
        bytes.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
}

impl Head {
    /// Validates what of the fixed header `buf` holds so far: an impossible
    /// protocol byte, `type` or `cmd_code` is an error as soon as it is
    /// buffered, without waiting for the rest of the header.
    pub(super) fn check_prefix(buf: &[u8]) -> Result<(), CodecError> {
        let Some(&proto) = buf.first() else {
            return Ok(());
        };
        check_proto(proto)?;
        let at = type_offset(proto);
        let Some(&cmd_type) = buf.get(at) else {
            return Ok(());
        };
        check_type(proto, cmd_type)?;
        let cmd = buf.get(at + 1..at + 3).and_then(|b| b.try_into().ok());
        if let Some(cmd) = cmd {
            check_cmd(proto, u16::from_be_bytes(cmd))?;
        }
        Ok(())
    }

    /// Parses the fixed header at the start of `buf`: `Ok(None)` until it is
    /// all there, `Err` for an impossible protocol, type, cmd code or pair.
    pub(super) fn parse(buf: &[u8]) -> Result<Option<Head>, CodecError> {
        Ok(Head::parse_kind(buf)?.map(|(head, _)| head))
    }

    /// [`Head::parse`], with the frame kind its `type` / `cmd_code` pair
    /// names.
    #[inline]
    pub(super) fn parse_kind(buf: &[u8]) -> Result<Option<(Head, FrameKind)>, CodecError> {
        let head = match buf.first_chunk::<MAX_FIXED_LEN>() {
            // The usual case: the whole header is buffered, whatever its
            // layout.
            Some(whole) => Head::read_whole(whole)?,
            None => {
                Head::check_prefix(buf)?;
                let Some(&proto) = buf.first() else {
                    return Ok(None);
                };
                let Some(&cmd_type) = buf.get(type_offset(proto)) else {
                    return Ok(None);
                };
                // `read` is `None` exactly when the fixed header is incomplete.
                let Some(head) = Head::read(buf, proto, cmd_type) else {
                    return Ok(None);
                };
                head
            }
        };
        let kind = kind_of(head.proto, head.cmd_type, head.cmd)?;
        Ok(Some((head, kind)))
    }

    /// Parses a fixed header from bytes that hold the longest layout, with
    /// the checks of [`Head::check_prefix`] in the same order.
    #[inline(always)]
    fn read_whole(b: &[u8; MAX_FIXED_LEN]) -> Result<Head, CodecError> {
        match b[0] {
            PROTO_V1 => Head::read_layout::<0>(b),
            PROTO_V2 => Head::read_layout::<1>(b),
            proto => Err(unknown_proto(proto)),
        }
    }

    /// [`Head::read_whole`] for one version: `V2` is 1 for v2 (which adds
    /// `ver1` after the protocol byte and `switch` after `codec`), 0 for
    /// v1. Every offset is then a constant, so the reads compile to plain
    /// loads with no bounds checks.
    #[inline(always)]
    fn read_layout<const V2: usize>(b: &[u8; MAX_FIXED_LEN]) -> Result<Head, CodecError> {
        let proto = b[0];
        let cmd_type = b[1 + V2];
        let cmd = u16_at(b, 2 + V2);
        if !is_valid_type(cmd_type) || !is_valid_cmd(cmd) {
            check_type(proto, cmd_type)?;
            check_cmd(proto, cmd)?;
        }
        // Status or timeout follows codec (and the v2 switch byte); the
        // three lengths follow them.
        let after_codec = 10 + 2 * V2;
        let (timeout, status, lens) = if cmd_type == TYPE_RESPONSE {
            let lens = <&[u8; 8]>::try_from(&b[after_codec + 2..after_codec + 10]);
            (-1, u16_at(b, after_codec), lens)
        } else {
            let lens = <&[u8; 8]>::try_from(&b[after_codec + 4..after_codec + 12]);
            (u32_at(b, after_codec) as i32, 0, lens)
        };
        let lens = lens.copied().unwrap_or_default();
        Ok(Head {
            proto,
            ver1: if V2 == 1 { b[1] } else { 0 },
            cmd_type,
            cmd,
            ver2: b[4 + V2],
            id: u32_at(b, 5 + V2),
            codec: b[9 + V2],
            switch: if V2 == 1 { b[11] } else { 0 },
            timeout,
            status,
            class_len: u16::from_be_bytes([lens[0], lens[1]]),
            header_len: u16::from_be_bytes([lens[2], lens[3]]),
            content_len: u32::from_be_bytes([lens[4], lens[5], lens[6], lens[7]]),
        })
    }

    fn read(buf: &[u8], proto: u8, cmd_type: u8) -> Option<Head> {
        let v2 = proto == PROTO_V2;
        let mut r = Reader { buf, at: 1 };
        let ver1 = if v2 { r.u8()? } else { 0 };
        r.u8()?; // type, already known
        let cmd = r.u16()?;
        let ver2 = r.u8()?;
        let id = r.u32()?;
        let codec = r.u8()?;
        let switch = if v2 { r.u8()? } else { 0 };
        let (timeout, status) = if cmd_type == TYPE_RESPONSE {
            (-1, r.u16()?)
        } else {
            (r.i32()?, 0)
        };
        Some(Head {
            proto,
            ver1,
            cmd_type,
            cmd,
            ver2,
            id,
            codec,
            switch,
            timeout,
            status,
            class_len: r.u16()?,
            header_len: r.u16()?,
            content_len: r.u32()?,
        })
    }

    /// Fixed header length of this frame.
    pub(super) fn fixed_len(&self) -> usize {
        fixed_len(self.proto, self.cmd_type)
    }

    /// True when a CRC-32 trailer follows the content: Java sofa-bolt's rule,
    /// v2 with `ver1 == 2` and switch bit 0 set.
    pub(super) fn has_crc(&self) -> bool {
        self.proto == PROTO_V2 && self.ver1 == 2 && self.switch & 0x01 != 0
    }

    /// Length of the CRC trailer (0 or 4).
    pub(super) fn crc_len(&self) -> usize {
        if self.has_crc() { CRC_LEN } else { 0 }
    }

    /// The declared frame length, computed in u64 so no length field can
    /// overflow it.
    pub(super) fn frame_len(&self) -> u64 {
        self.fixed_len() as u64
            + u64::from(self.class_len)
            + u64::from(self.header_len)
            + u64::from(self.content_len)
            + self.crc_len() as u64
    }

    /// Appends the fixed header to `dst`.
    pub(super) fn write(&self, dst: &mut BytesMut) {
        let v2 = self.proto == PROTO_V2;
        dst.put_u8(self.proto);
        if v2 {
            dst.put_u8(self.ver1);
        }
        dst.put_u8(self.cmd_type);
        dst.put_u16(self.cmd);
        dst.put_u8(self.ver2);
        dst.put_u32(self.id);
        dst.put_u8(self.codec);
        if v2 {
            dst.put_u8(self.switch);
        }
        if self.cmd_type == TYPE_RESPONSE {
            dst.put_u16(self.status);
        } else {
            dst.put_i32(self.timeout);
        }
        dst.put_u16(self.class_len);
        dst.put_u16(self.header_len);
        dst.put_u32(self.content_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_lengths_match_the_four_layouts() {
        assert_eq!(fixed_len(PROTO_V1, TYPE_REQUEST), 22);
        assert_eq!(fixed_len(PROTO_V1, TYPE_ONEWAY), 22);
        assert_eq!(fixed_len(PROTO_V1, TYPE_RESPONSE), 20);
        assert_eq!(fixed_len(PROTO_V2, TYPE_REQUEST), 24);
        assert_eq!(fixed_len(PROTO_V2, TYPE_RESPONSE), 22);
    }

    #[test]
    fn every_kind_maps_back_to_its_pair() {
        for kind in [
            FrameKind::Request,
            FrameKind::Oneway,
            FrameKind::Response,
            FrameKind::Heartbeat { reply: false },
            FrameKind::Heartbeat { reply: true },
            FrameKind::GoAway,
        ] {
            let (cmd_type, cmd) = wire_kind(kind);
            assert_eq!(kind_of(PROTO_V1, cmd_type, cmd), Ok(kind));
        }
        assert!(kind_of(PROTO_V1, TYPE_REQUEST, CMD_RESPONSE).is_err());
        assert!(kind_of(PROTO_V1, TYPE_ONEWAY, CMD_HEARTBEAT).is_err());
    }

    #[test]
    fn write_then_parse_is_identity() {
        for (proto, cmd_type, cmd) in [
            (PROTO_V1, TYPE_REQUEST, CMD_REQUEST),
            (PROTO_V1, TYPE_RESPONSE, CMD_RESPONSE),
            (PROTO_V2, TYPE_ONEWAY, CMD_REQUEST),
            (PROTO_V2, TYPE_RESPONSE, CMD_HEARTBEAT),
        ] {
            let v2 = proto == PROTO_V2;
            let head = Head {
                proto,
                ver1: if v2 { 2 } else { 0 },
                cmd_type,
                cmd,
                ver2: 1,
                id: 0xDEAD_BEEF,
                codec: 11,
                switch: if v2 { 1 } else { 0 },
                timeout: if cmd_type == TYPE_RESPONSE { -1 } else { 3000 },
                status: if cmd_type == TYPE_RESPONSE { 0x12 } else { 0 },
                class_len: 3,
                header_len: 4,
                content_len: 5,
            };
            let mut buf = BytesMut::new();
            head.write(&mut buf);
            assert_eq!(buf.len(), head.fixed_len());
            assert_eq!(Head::parse(&buf), Ok(Some(head)));
            assert_eq!(Head::parse(&buf[..buf.len() - 1]), Ok(None));
            // Followed by more bytes, the header is read the fast way.
            buf.extend_from_slice(&[0xAB; MAX_FIXED_LEN]);
            assert_eq!(Head::parse(&buf), Ok(Some(head)));
        }
    }

    /// The whole-header fast path and the incremental path agree on any
    /// bytes, errors included.
    #[test]
    fn fast_and_incremental_reads_agree() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut b = [0u8; MAX_FIXED_LEN];
            for byte in &mut b {
                *byte = next() as u8;
            }
            // Mostly plausible headers, so every layout and error is hit.
            b[0] = [PROTO_V1, PROTO_V2, 3][round % 3];
            let at = type_offset(b[0]);
            b[at] = (next() % 4) as u8;
            b[at + 1] = if round % 5 == 0 { b[at + 1] } else { 0 };
            b[at + 2] = [0, 1, 2, 100, 7][round % 5];
            let incremental = Head::check_prefix(&b).and_then(|()| {
                let head = Head::read(&b, b[0], b[at]).expect("whole header");
                kind_of(head.proto, head.cmd_type, head.cmd).map(|kind| (head, kind))
            });
            assert_eq!(Head::parse_kind(&b), incremental.map(Some), "{b:?}");
        }
    }
}
