//! SOFARPC bolt, v1 and v2: the TCP framing of SOFARPC (sofa-bolt in Java,
//! sofa-bolt-node, the `bolt` / `boltv2` codecs of MOSN).
//!
//! All integers are big-endian. A 32-bit request id pairs each response with
//! its request on a multiplexed connection. Requests carry a timeout where
//! responses carry a status, so the two directions have fixed headers of
//! different lengths: read `type` before any length.
//!
//! ```text
//! bolt v1 request / oneway / ping (22-byte fixed header)
//!  0     1     2     3     4     5     6     7     8     9    10    11    12    13
//! +-----+-----+-----------+-----+-----------------------+-----+-----------------------+
//! |proto| type| cmd_code  | ver2|      request_id       |codec|    timeout (i32 ms)   |
//! +-----+-----+-----------+-----+-----------------------+-----+-----------------------+
//!  14    15    16    17    18    19    20    21    22
//! +-----------+-----------+-----------------------+-------+---------+-------------+
//! | class_len | header_len|      content_len      | class | headers |   content   |
//! +-----------+-----------+-----------------------+-------+---------+-------------+
//!
//! bolt v1 response / pong (20-byte fixed header)
//!  0     1     2     3     4     5     6     7     8     9    10    11
//! +-----+-----+-----------+-----+-----------------------+-----+-----------+
//! |proto| type| cmd_code  | ver2|      request_id       |codec|  status   |
//! +-----+-----+-----------+-----+-----------------------+-----+-----------+
//!  12    13    14    15    16    17    18    19    20
//! +-----------+-----------+-----------------------+-------+---------+-------------+
//! | class_len | header_len|      content_len      | class | headers |   content   |
//! +-----------+-----------+-----------------------+-------+---------+-------------+
//!
//! bolt v2 request (24-byte fixed header; `ver1` after proto, `switch` after codec)
//!  0     1     2     3     4     5     6     7     8     9    10    11
//! +-----+-----+-----+-----------+-----+-----------------------+-----+------+
//! |proto| ver1| type| cmd_code  | ver2|      request_id       |codec|switch|
//! +-----+-----+-----+-----------+-----+-----------------------+-----+------+
//!  12    13    14    15    16    17    18    19    20    21    22    23    24
//! +-----------------------+-----------+-----------+-----------------------+
//! |    timeout (i32 ms)   | class_len | header_len|      content_len      |
//! +-----------------------+-----------+-----------+-----------------------+
//! +-------+---------+-------------+ - - - - - - - - - - +
//! | class | headers |   content   | crc32 (optional, 4) |
//! +-------+---------+-------------+ - - - - - - - - - - +
//!
//! bolt v2 response (22-byte fixed header)
//!  0     1     2     3     4     5     6     7     8     9    10    11
//! +-----+-----+-----+-----------+-----+-----------------------+-----+------+
//! |proto| ver1| type| cmd_code  | ver2|      request_id       |codec|switch|
//! +-----+-----+-----+-----------+-----+-----------------------+-----+------+
//!  12    13    14    15    16    17    18    19    20    21    22
//! +-----------+-----------+-----------+-----------------------+
//! |  status   | class_len | header_len|      content_len      |  then as the request
//! +-----------+-----------+-----------+-----------------------+
//!
//! proto     0x01 v1, 0x02 v2
//! ver1      v2 protocol version: 1, or 2 = CRC allowed
//! type      0 response, 1 request, 2 oneway request
//! cmd_code  0 heartbeat, 1 request, 2 response, 100 GoAway (MOSN)
//! ver2      command version, always 1
//! codec     serializer of the content: 1 hessian2, 2 java, 11 protobuf, 12 json
//! switch    bit 0: CRC on (other bits unused)
//! timeout   i32 ms the caller waits; -1 = none
//! status    u16 response status: 0 success, 6 no processor, 9 codec exception, ...
//! headers   (i32 length + bytes) strings, key then value, up to header_len; -1 = null
//! crc32     CRC-32 (IEEE) of proto..content, present iff ver1 == 2 && switch & 1
//! ```
//!
//! # How frames map to [`Frame`]
//!
//! | frame | from |
//! |---|---|
//! | `kind` | (type, cmd_code): (1,1) request, (2,1) oneway, (0,2) response, (1,0) ping, (0,0) pong, (1,100) GoAway; other pairs are malformed |
//! | `request_id` | request_id |
//! | `headers()` | the header map, as spans into the wire, read on first use; plus derived `method` (from `sofa_head_method_name`) and `service` (from `sofa_head_target_service` when there is no `service` field) |
//! | `body()` | content, a range of the wire |
//! | `class()` | class name, a range of the wire |
//! | `status` | responses and pongs: `code` = status, `neutral` 0→200, 4→503, 7→504, 0x10→502, else 500 |
//! | `timeout_ms` | request side: timeout when ≥ 0 |
//! | `meta` | `version` = proto, `sub_version` = ver1, `serialization` = codec, `flags` = switch |
//! | `wire` | head = fixed header (id patched here), rest = class + headers + content, tail = CRC |
//!
//! # Forwarding and re-encoding
//!
//! A decoded frame is forwarded as its wire bytes: `set_request_id`
//! rewrites the 4 id bytes in the wire head and, for a CRC frame, the CRC
//! in the wire tail, with no allocation and no copy. A frame whose header
//! view changed keeps its original fixed header and re-encodes class,
//! header map and body. A frame without wire bytes is encoded from its
//! fields, which reproduces the original bytes except for values the fields
//! cannot hold: `ver2` is always written as 1, a negative timeout as -1, a
//! v2 `ver1` of 0 as 1, and a timeout over `i32::MAX` ms as `i32::MAX`.
//!
//! Decoding allocates nothing beyond what `BytesMut::split_to` needs to
//! share the read buffer, and holds one reference count on it: class and
//! body are ranges of the frame. `decode` checks the fixed header, the
//! lengths and the CRC; the header map is read the first time the frame's
//! header view is asked for (entries are spans, inline up to twelve), and a
//! malformed map is then the reader's error (see
//! [`FrameCodec::decode_checked`]).
//!
//! Both codecs, [`BoltCodec::v1`] (`bolt`) and [`BoltCodec::v2`]
//! (`boltv2`), decode and encode frames of either version (one connection
//! may mix them, as MOSN allows: the version is byte 0 of every frame). They
//! differ only in detection and in the version of the pings they build.
//!
//! Facts and vectors: `shared/protocols/bolt.md`.

mod decode;
mod encode;
mod exception;
mod head;
mod header_map;

use crate::codec::{Detect, FrameCodec, Limits};
use crate::error::CodecError;
use crate::frame::{Frame, FrameKind};
use crate::status::ReplyStatus;
use bytes::BytesMut;

const PROTO_V1: u8 = 0x01;
const PROTO_V2: u8 = 0x02;

const TYPE_RESPONSE: u8 = 0;
const TYPE_REQUEST: u8 = 1;
const TYPE_ONEWAY: u8 = 2;

const CMD_HEARTBEAT: u16 = 0;
const CMD_REQUEST: u16 = 1;
const CMD_RESPONSE: u16 = 2;
const CMD_GOAWAY: u16 = 100;

/// The bolt codec; one value per configuration name (`bolt`, `boltv2`).
/// Stateless and cheap: every connection shares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoltCodec {
    name: &'static str,
    proto: u8,
}

impl BoltCodec {
    /// `bolt`: detects connections starting with `0x01`, pings in v1.
    pub fn v1() -> BoltCodec {
        BoltCodec {
            name: "bolt",
            proto: PROTO_V1,
        }
    }

    /// `boltv2`: detects connections starting with `0x02`, pings in v2
    /// (`ver1` 1, no CRC).
    pub fn v2() -> BoltCodec {
        BoltCodec {
            name: "boltv2",
            proto: PROTO_V2,
        }
    }
}

impl FrameCodec for BoltCodec {
    fn name(&self) -> &str {
        self.name
    }

    /// Decides on byte 0 (`0x01` / `0x02`, as MOSN); when more bytes are
    /// there, an impossible `type` or `cmd_code` is `NoMatch` too, so
    /// garbage that happens to start with 0x01 is not taken for bolt.
    fn detect(&self, prefix: &[u8]) -> Detect {
        let Some(&proto) = prefix.first() else {
            return Detect::NeedMore;
        };
        if proto != self.proto {
            return Detect::NoMatch;
        }
        let at = head::type_offset(proto);
        if prefix.get(at).is_some_and(|t| !head::is_valid_type(*t)) {
            return Detect::NoMatch;
        }
        let cmd = prefix.get(at + 1..at + 3).and_then(|b| b.try_into().ok());
        if cmd.is_some_and(|cmd| !head::is_valid_cmd(u16::from_be_bytes(cmd))) {
            return Detect::NoMatch;
        }
        Detect::Match
    }

    /// Decodes one v1 or v2 frame (see [`FrameCodec::decode`]). Waits for
    /// the fixed header (20/22 bytes v1, 22/24 v2), checks the declared
    /// length against `limits` before reserving room for it, verifies the
    /// v2 CRC and the header map, then splits the frame off without copying.
    /// An impossible protocol byte, `type` or `cmd_code` is an error as soon
    /// as it is buffered.
    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        decode::decode(src, limits)
    }

    /// Unchanged frames are written as they arrived, the fixed header
    /// copied as a block of its (constant) length.
    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match frame.unchanged_wire() {
            Some(wire) => {
                encode::write_wire(wire, dst);
                Ok(())
            }
            None => self.encode_fields(frame, dst),
        }
    }

    /// A decoded frame whose headers changed keeps its fixed header and
    /// re-encodes class, header map and body; a frame built in memory is
    /// encoded in `meta.version` (0: this codec's version), with a CRC when
    /// `meta` says v2, `ver1` 2 and switch bit 0. Fails, writing nothing,
    /// when a length does not fit its field.
    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode::encode_fields(frame, self.proto, dst)
    }

    /// Patches the id at offset 5 (v1) / 6 (v2) of the wire head and
    /// recomputes a v2 CRC, in place. Ids past `u32::MAX` are truncated.
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        let id = id as u32;
        frame.request_id = u64::from(id);
        if let Some(wire) = frame.wire_mut() {
            encode::patch_id(wire, id);
        }
    }

    fn max_request_id(&self) -> u64 {
        u64::from(u32::MAX)
    }

    /// A pong for a ping: same id, version and codec, status 0 (a v2 pong
    /// has `ver1` 1, switch 0). `None` for anything but a ping.
    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        encode::heartbeat_reply(ping, self.proto)
    }

    /// A ping with timeout -1 and codec 1 (hessian2), as Java sofa-bolt and
    /// MOSN send it: v1 for `bolt`, v2 (`ver1` 1, switch 0) for `boltv2`.
    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        encode::heartbeat_request(id, self.proto)
    }

    /// MOSN's GoAway: command 100, request id 0, no payload. Only MOSN
    /// peers know it, so the gateway sends it only when a listener enables
    /// it (`enable_bolt_goaway`).
    fn goaway(&self) -> Option<Frame> {
        Some(Frame::new(FrameKind::GoAway, 0))
    }

    /// A response with the request's id, version and codec and the status
    /// bolt.md §5 maps `status` to (see the table on `wire_status`); v2
    /// replies have `ver1` 1 and no CRC. For a hessian2 request and a
    /// non-empty `msg` the content is a hessian
    /// `com.alipay.remoting.rpc.exception.RpcServerException` whose message
    /// is `msg` (the class field names it too), as Java sofa-bolt and
    /// sofa-bolt-node send server errors: sofa-rpc-node then reports
    /// `com.alipay.remoting.rpc.exception.RpcServerException: <msg>`.
    /// Otherwise the response is empty (20 bytes v1, 22 v2), MOSN's form,
    /// which clients accept but show only as a generic error. `None`
    /// unless `req` is a two-way request.
    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame> {
        encode::error_reply(req, encode::wire_status(status), msg, self.proto)
    }

    /// A `CODEC_EXCEPTION` (9) response when `buffered` starts with the
    /// complete fixed header of a two-way request, in that request's
    /// version; `None` otherwise.
    fn decode_error_reply(&self, buffered: &[u8], err: &CodecError) -> Option<Frame> {
        let _ = err;
        encode::decode_error_reply(buffered)
    }
}
