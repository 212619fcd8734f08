//! Encoding from fields, patching ids in place, and the frames the codec
//! builds itself (pongs, pings, error replies).

use super::decode::assemble;
use super::exception;
use super::head::{self, Head};
use super::header_map;
use super::{CMD_HEARTBEAT, CMD_RESPONSE, PROTO_V1, PROTO_V2, TYPE_REQUEST, TYPE_RESPONSE};
use crate::error::CodecError;
use crate::frame::{Frame, FrameKind};
use crate::status::ReplyStatus;
use crate::wire::Wire;
use bytes::{BufMut, BytesMut};

/// Bolt status `CODEC_EXCEPTION`.
pub(super) const STATUS_CODEC_EXCEPTION: u16 = 0x0009;

/// The `codec` byte of hessian2 content.
const CODEC_HESSIAN2: u8 = 1;

/// Appends `frame` encoded from its fields.
///
/// A frame that still has wire bytes but a changed header view keeps its
/// original fixed header (type, command, codec, timeout or status, version
/// bytes) and takes the id, class, header map and body from its fields; a
/// frame built in memory is encoded from its fields alone, in bolt version
/// `meta.version` (0 means `default_proto`).
pub(super) fn encode_fields(
    frame: &Frame,
    default_proto: u8,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let original = frame
        .wire()
        .and_then(|wire| Head::parse(wire.head()).ok().flatten());
    let mut head = match original {
        Some(head) => head,
        None => head_from_fields(frame, default_proto)?,
    };
    let protocol = head::protocol_name(head.proto);
    // Ids wider than the wire are truncated, as `set_request_id` does.
    head.id = frame.request_id as u32;
    head.class_len = u16::try_from(frame.class().len()).map_err(|_| {
        CodecError::malformed(
            protocol,
            format!(
                "class name of {} bytes does not fit the u16 class_len",
                frame.class().len()
            ),
        )
    })?;
    head.header_len = header_map::encoded_len(frame.headers(), protocol)?;
    head.content_len = u32::try_from(frame.body().len()).map_err(|_| {
        CodecError::malformed(
            protocol,
            format!(
                "body of {} bytes does not fit the u32 content_len",
                frame.body().len()
            ),
        )
    })?;

    // Every check is done: from here on nothing fails, so `dst` never holds
    // half a frame.
    let start = dst.len();
    let frame_len = usize::try_from(head.frame_len()).unwrap_or(0);
    dst.reserve(frame_len);
    head.write(dst);
    dst.put_slice(frame.class());
    header_map::write(frame.headers(), dst);
    dst.put_slice(frame.body());
    if head.has_crc() {
        let crc = crc32fast::hash(dst.get(start..).unwrap_or_default());
        dst.put_u32(crc);
    }
    Ok(())
}

/// The fixed header a frame built in memory asks for. Lengths are filled
/// in by the caller.
fn head_from_fields(frame: &Frame, default_proto: u8) -> Result<Head, CodecError> {
    let proto = match frame.meta.version {
        0 => default_proto,
        version @ (PROTO_V1 | PROTO_V2) => version,
        version => {
            return Err(CodecError::unsupported(
                "bolt",
                format!("bolt version {version} (meta.version must be 0, 1 or 2)"),
            ));
        }
    };
    let v2 = proto == PROTO_V2;
    let (cmd_type, cmd) = head::wire_kind(frame.kind);
    let status = match (cmd_type, frame.status) {
        (TYPE_RESPONSE, Some(status)) => u16::try_from(status.code).map_err(|_| {
            CodecError::malformed(
                head::protocol_name(proto),
                format!(
                    "status {} does not fit bolt's u16 status field",
                    status.code
                ),
            )
        })?,
        // A response without a status is a success, as in Java's default.
        _ => 0,
    };
    Ok(Head {
        proto,
        // ver1 0 is not a bolt v2 version; frames built without one get 1.
        ver1: match (v2, frame.meta.sub_version) {
            (false, _) => 0,
            (true, 0) => 1,
            (true, ver1) => ver1,
        },
        cmd_type,
        cmd,
        // The command version: 1 in every implementation.
        ver2: 1,
        id: frame.request_id as u32,
        codec: frame.meta.serialization,
        switch: if v2 { frame.meta.flags } else { 0 },
        // Timeouts past i32::MAX are clamped rather than turned negative
        // (which would mean "no timeout").
        timeout: frame
            .timeout_ms()
            .map_or(-1, |ms| i32::try_from(ms).unwrap_or(i32::MAX)),
        status,
        class_len: 0,
        header_len: 0,
        content_len: 0,
    })
}

/// Writes `id` into the wire's fixed header and recomputes a CRC trailer,
/// in place. Wire bytes that are not a bolt header are left alone.
/// [`Wire::write_to`] for a bolt frame: the fixed header is copied as a
/// block of its layout's length (a `memcpy` call for a few bytes cost
/// 5 % of a forwarded frame's time), and an empty tail not at all.
#[inline]
pub(super) fn write_wire(wire: &Wire, dst: &mut BytesMut) {
    let [head, rest, tail] = wire.chunks();
    dst.reserve(wire.len());
    if let Ok(v1_request) = <&[u8; 22]>::try_from(head) {
        dst.extend_from_slice(v1_request);
    } else if let Ok(v1_response) = <&[u8; 20]>::try_from(head) {
        dst.extend_from_slice(v1_response);
    } else if let Ok(v2_request) = <&[u8; 24]>::try_from(head) {
        dst.extend_from_slice(v2_request);
    } else {
        dst.extend_from_slice(head);
    }
    dst.extend_from_slice(rest);
    if !tail.is_empty() {
        dst.extend_from_slice(tail);
    }
}

pub(super) fn patch_id(wire: &mut Wire, id: u32) {
    let Some(&proto) = wire.head().first() else {
        return;
    };
    if proto != PROTO_V1 && proto != PROTO_V2 {
        return;
    }
    let at = head::id_offset(proto);
    if let Some(slot) = wire.head_mut().get_mut(at..at + 4) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
    if wire.tail().len() == head::CRC_LEN {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(wire.head());
        hasher.update(wire.rest());
        let crc = hasher.finalize();
        wire.tail_mut().copy_from_slice(&crc.to_be_bytes());
    }
}

/// The bolt version of a frame: its `meta.version`, or `default_proto`
/// for frames built in memory without one.
fn version_of(frame: &Frame, default_proto: u8) -> u8 {
    match frame.meta.version {
        version @ (PROTO_V1 | PROTO_V2) => version,
        _ => default_proto,
    }
}

/// A header-only frame built by the codec (carrying its wire bytes).
fn build(head: Head) -> Option<Frame> {
    let kind = head::kind_of(head.proto, head.cmd_type, head.cmd).ok()?;
    let mut buf = BytesMut::with_capacity(head.fixed_len());
    head.write(&mut buf);
    Some(assemble(&head, kind, buf))
}

/// A header-only frame of `proto` (v2: `ver1` 1, switch 0, no CRC).
fn bare(proto: u8, cmd_type: u8, cmd: u16, id: u32, codec: u8) -> Head {
    Head {
        proto,
        ver1: if proto == PROTO_V2 { 1 } else { 0 },
        cmd_type,
        cmd,
        ver2: 1,
        id,
        codec,
        switch: 0,
        timeout: -1,
        status: 0,
        class_len: 0,
        header_len: 0,
        content_len: 0,
    }
}

/// bolt.md §6: the pong has the ping's id, version and codec, status 0.
pub(super) fn heartbeat_reply(ping: &Frame, default_proto: u8) -> Option<Frame> {
    if ping.kind != (FrameKind::Heartbeat { reply: false }) {
        return None;
    }
    build(bare(
        version_of(ping, default_proto),
        TYPE_RESPONSE,
        CMD_HEARTBEAT,
        ping.request_id as u32,
        ping.meta.serialization,
    ))
}

/// A ping as Java sofa-bolt and MOSN send it: timeout -1, hessian2 codec.
pub(super) fn heartbeat_request(id: u64, proto: u8) -> Option<Frame> {
    build(bare(
        proto,
        TYPE_REQUEST,
        CMD_HEARTBEAT,
        id as u32,
        CODEC_HESSIAN2,
    ))
}

/// The bolt status a local reply for `status` carries (bolt.md §5, MOSN's
/// mapping; bolt has no code for rate limiting or permission denial).
pub(super) fn wire_status(status: ReplyStatus) -> u16 {
    match status {
        ReplyStatus::NoRoute | ReplyStatus::NoHealthyUpstream | ReplyStatus::ConnectFailed => {
            0x0006 // NO_PROCESSOR
        }
        ReplyStatus::Overloaded => 0x0004, // SERVER_THREADPOOL_BUSY
        ReplyStatus::RateLimited => 0x0003, // UNKNOWN
        ReplyStatus::Timeout => 0x0007,    // TIMEOUT
        ReplyStatus::PermissionDenied => 0x0002, // SERVER_EXCEPTION
        ReplyStatus::UpstreamReset => 0x0010, // CONNECTION_CLOSED
        ReplyStatus::CodecError => STATUS_CODEC_EXCEPTION,
        ReplyStatus::DeserializeError => 0x0012, // SERVER_DESERIAL_EXCEPTION
        ReplyStatus::Internal => 0x0003,         // UNKNOWN
    }
}

/// bolt.md §8: a response of the request's version and codec, same id,
/// with the mapped status. Empty (20 bytes v1, 22 v2) when `msg` is empty
/// or the request is not hessian2; otherwise class
/// `com.alipay.remoting.rpc.exception.RpcServerException` and that
/// exception, with `msg` as its message, as the content
/// ([`super::exception`]). Only two-way requests get one.
pub(super) fn error_reply(req: &Frame, status: u16, msg: &str, default_proto: u8) -> Option<Frame> {
    if req.kind != FrameKind::Request {
        return None;
    }
    let mut head = bare(
        version_of(req, default_proto),
        TYPE_RESPONSE,
        CMD_RESPONSE,
        req.request_id as u32,
        req.meta.serialization,
    );
    head.status = status;
    if msg.is_empty() || req.meta.serialization != CODEC_HESSIAN2 {
        return build(head);
    }
    let class = exception::CLASS.as_bytes();
    let mut content = BytesMut::new();
    exception::write(&mut content, msg, exception::GATEWAY_FRAME);
    // The class is a constant and the message is cut to 64 KiB, so both
    // lengths fit their fields.
    head.class_len = u16::try_from(class.len()).ok()?;
    head.content_len = u32::try_from(content.len()).ok()?;
    let kind = head::kind_of(head.proto, head.cmd_type, head.cmd).ok()?;
    let mut buf = BytesMut::with_capacity(head.fixed_len() + class.len() + content.len());
    head.write(&mut buf);
    buf.put_slice(class);
    buf.put_slice(&content);
    Some(assemble(&head, kind, buf))
}

/// A `CODEC_EXCEPTION` reply to the two-way request whose fixed header
/// starts `buffered`, if there is one.
pub(super) fn decode_error_reply(buffered: &[u8]) -> Option<Frame> {
    let request = Head::parse(buffered).ok().flatten()?;
    if request.cmd_type != TYPE_REQUEST || request.cmd != super::CMD_REQUEST {
        return None;
    }
    let mut head = bare(
        request.proto,
        TYPE_RESPONSE,
        CMD_RESPONSE,
        request.id,
        request.codec,
    );
    head.status = STATUS_CODEC_EXCEPTION;
    build(head)
}
