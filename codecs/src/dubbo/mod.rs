//! Dubbo 2 (`dubbo://`, the classic Java `ExchangeCodec` + `DubboCodec`
//! framing) with the hessian2 subset its request head needs.
//!
//! ```text
//!  0      1      2      3      4                              12             16
//!  +------+------+------+------+------------------------------+--------------+
//!  | 0xDA | 0xBB | flag |status|  request id (u64, BE)        | body_len u32 |
//!  +------+------+------+------+------------------------------+--------------+
//!  | body: body_len bytes, serialized as `flag & 0x1F` says                  |
//!  +-------------------------------------------------------------------------+
//!
//!  flag:  bit 7  0x80  request (clear: response)
//!         bit 6  0x40  two-way (the request expects a response)
//!         bit 5  0x20  event (heartbeat; read-only when not two-way)
//!         bits 0-4     serialization id (2 = hessian2)
//!
//!  C2 request    82 oneway    E2 heartbeat    A2 read-only event (GoAway)
//!  02 response   22 heartbeat response
//! ```
//!
//! `status` matters in responses only (20 OK, 30/31 timeouts, 40 bad
//! request, 60 service not found, 70 service error, 80 server error,
//! 100 thread pool exhausted, ...). The gateway's own error replies use
//! MOSN's statuses and messages: 60 for no route / no healthy upstream,
//! 40 for overflow and rate limiting, 30 for timeouts, 80 for permission
//! denied, 70 otherwise (table in `docs/writing-a-codec.md`). A hessian2 request body is the
//! invocation: five strings (Dubbo version, service path, service version,
//! method, parameter descriptor), the arguments, then the attachments map
//! ([`hessian::read_request`] walks it).
//!
//! What this codec reads, and what it leaves alone:
//! - Framing needs the header only; the body stays opaque and is forwarded
//!   as the bytes that arrived (only the id is patched in place).
//! - For hessian2 requests and oneways it reads the head and attachments
//!   into the header view, the first time the view is asked for (the
//!   server side's [`FrameCodec::decode_checked`] asks at once): routing keys `dubbo`, `service`, `version`,
//!   `method` (borrowed from the body), every string attachment (`group`
//!   is only there), and `service` again from an `interface` attachment.
//!   An attachment named like one of the four head keys (dubbo-remoting
//!   sends `service` = `Interface:version`) stays a wire field but does not
//!   shadow the key: a route on the interface name matches every client.
//!   The arguments are skipped structurally, never decoded. A malformed
//!   head or attachments map is the reader's error: `decode_checked` fails
//!   on it, `headers()` reads it as an empty view.
//! - Requests in other serializations are forwarded with no header view
//!   (MOSN fails them instead; a gateway that cannot route them by header
//!   can still route them by listener or default route).
//! - A successful hessian2 response's header view is its attachments, read
//!   on demand (a response filter asks, [`FrameCodec::fill_headers`]);
//!   `encode` writes a changed view back as the response's attachments.
//!   Events and error responses have no view.
//!
//! How the header maps to [`Frame`] fields:
//!
//! | flag bits (request, two-way, event) | kind |
//! |---|---|
//! | 1 1 0 | `Request` |
//! | 1 0 0 | `Oneway` |
//! | 1 1 1 | `Heartbeat { reply: false }` |
//! | 1 0 1 | `GoAway`: the read-only event (body `"R"`), the only one-way event Dubbo 2 sends; MOSN takes it for a heartbeat |
//! | 0 x 1 | `Heartbeat { reply: true }` |
//! | 0 x 0 | `Response` |
//!
//! `meta.flags` is the flag byte and `meta.serialization` its low five
//! bits; responses carry `status` (`code` as on the wire, `neutral` 200 for
//! 20, 504 for 30/31, 502 for 35, 400 for 40/90, 404 for 60, 503 for 100,
//! 500 otherwise); `timeout_ms` comes from a positive `timeout` attachment.
//! Encoding from these fields gives the original bytes back, except for a
//! non-zero status byte in a request, which Dubbo ignores and which is
//! written as 0.

mod decode;
mod encode;
pub mod hessian;

use crate::{CodecError, Detect, Frame, FrameCodec, FrameKind, Limits, ReplyStatus};
use bytes::BytesMut;

/// The codec's configuration name.
const NAME: &str = "dubbo";
/// The two magic bytes every frame starts with.
const MAGIC: [u8; 2] = [0xDA, 0xBB];
/// The fixed header length.
const HEADER_LEN: usize = 16;
/// Flag bit: a request (clear for responses).
const FLAG_REQUEST: u8 = 0x80;
/// Flag bit: the request expects a response.
const FLAG_TWO_WAY: u8 = 0x40;
/// Flag bit: an event (heartbeat or read-only notice), not a call.
const FLAG_EVENT: u8 = 0x20;
/// The serialization id bits of the flag.
const SERIALIZATION_MASK: u8 = 0x1F;
/// Serialization id of hessian2, the only one the codec reads.
const SERIALIZATION_HESSIAN2: u8 = 2;
/// Response status OK.
const STATUS_OK: u8 = 20;
/// Response status BAD_REQUEST, for requests that cannot be decoded.
const STATUS_BAD_REQUEST: u8 = 40;

/// The Dubbo 2 codec (`dubbo`). Stateless; share one instance.
#[derive(Debug, Default)]
pub struct DubboCodec {
    _private: (),
}

impl DubboCodec {
    /// The Dubbo codec.
    pub fn new() -> DubboCodec {
        DubboCodec::default()
    }
}

/// The Dubbo status for a local reply: MOSN's mapping (dubbo.md §8).
/// Overload and rate limiting answer 40 (BAD_REQUEST) with
/// `503|upstream overflow` / `509|limit exceeded`, as MOSN does, not 100
/// (thread pool exhausted): dubbo-ssl-python has no entry for 100, so a
/// Python consumer would wait for its timeout instead of raising the
/// message (tests/interop/README.md). Two choices of our own: a failed
/// connect answers 60 like a missing healthy host (nothing was sent), and
/// a reset answers 70 (the upstream may have run the call).
fn reply_code(status: ReplyStatus) -> u8 {
    match status {
        ReplyStatus::NoRoute | ReplyStatus::NoHealthyUpstream | ReplyStatus::ConnectFailed => 60,
        ReplyStatus::Overloaded | ReplyStatus::RateLimited => STATUS_BAD_REQUEST,
        ReplyStatus::Timeout => 30,
        ReplyStatus::PermissionDenied => 80,
        ReplyStatus::UpstreamReset
        | ReplyStatus::CodecError
        | ReplyStatus::DeserializeError
        | ReplyStatus::Internal => 70,
    }
}

impl FrameCodec for DubboCodec {
    fn name(&self) -> &str {
        NAME
    }

    /// `Match` at two bytes (`DA BB`), `NoMatch` at the first wrong byte.
    fn detect(&self, prefix: &[u8]) -> Detect {
        Detect::magic(prefix, &MAGIC)
    }

    /// Frames by the header (a length with the sign bit set is malformed,
    /// one over `limits` is too large, both before buffering) and splits
    /// the frame off. The body is `wire.rest()`: no copy. The header view
    /// (of hessian2 calls and successful responses) is read from the body
    /// on first use.
    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        decode::decode(src, limits)
    }

    /// Unchanged frames are written as they arrived, the fixed header
    /// copied as sixteen bytes.
    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match frame.unchanged_wire() {
            Some(wire) => {
                encode::write_wire(wire, dst);
                Ok(())
            }
            None => encode::encode_fields(frame, dst),
        }
    }

    /// The header comes from the fields (`meta.flags`, or the kind's usual
    /// flag with hessian2 when it is 0; `status`, or 20 for responses) and
    /// the body is `frame.body`, with the attachments map rewritten from
    /// the header view's wire fields when the headers were changed (an
    /// error when the body is not a hessian2 invocation the codec can
    /// read).
    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode::encode_fields(frame, dst)
    }

    /// Patches bytes 4..12 in place: no allocation, no re-encode.
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id;
        if let Some(bytes) = frame
            .wire_mut()
            .and_then(|wire| wire.head_mut().get_mut(4..12))
        {
            bytes.copy_from_slice(&id.to_be_bytes());
        }
    }

    /// Flag `0x22`, status 20, the ping's id, body one hessian null, which
    /// is what Java compares a heartbeat response body with.
    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        (ping.kind == FrameKind::Heartbeat { reply: false })
            .then(|| encode::heartbeat_reply(ping.request_id))
    }

    /// Flag `0xE2`, status 0, body one hessian null.
    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        Some(encode::heartbeat_request(id))
    }

    /// The read-only event a provider sends when it shuts down: flag
    /// `0xA2` (request, event, not two-way), body the hessian string `"R"`;
    /// consumers stop sending on the channel.
    fn goaway(&self) -> Option<Frame> {
        let mut frame = Frame::new(FrameKind::GoAway, 0);
        frame.set_body(bytes::Bytes::from_static(&[0x01, b'R']));
        Some(frame)
    }

    /// A response (flag `0x02`) whose body is one hessian string: `msg`, or
    /// MOSN's text for `status` when `msg` is empty. Hessian2 even for a
    /// request in another serialization: every Dubbo consumer reads it, and
    /// the codec writes no other. `None` unless `req` is a two-way request.
    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame> {
        if req.kind != FrameKind::Request {
            return None;
        }
        let message = if msg.is_empty() {
            status.message()
        } else {
            msg
        };
        Some(encode::error_response(
            req.request_id,
            reply_code(status),
            message,
        ))
    }

    /// Status 40 (BAD_REQUEST) with the error text, when `buffered` starts
    /// with the complete header of a two-way request. A two-way event (a
    /// ping with an absurd length, `tricky/dubbo_absurd_length.bin`) is
    /// answered too: its sender waits for that id like for any call.
    fn decode_error_reply(&self, buffered: &[u8], err: &CodecError) -> Option<Frame> {
        decode::check_magic(buffered).ok()?;
        let header = decode::Header::parse(buffered)?;
        if header.flag & (FLAG_REQUEST | FLAG_TWO_WAY) != FLAG_REQUEST | FLAG_TWO_WAY {
            return None;
        }
        Some(encode::error_response(
            header.id,
            STATUS_BAD_REQUEST,
            &err.to_string(),
        ))
    }
}
