//! A tiny framed protocol for pool and driver tests (Envoy's `fake_codec`
//! idea): trivially correct, so a failing test points at the code under
//! test, and configurable where the real codecs are fixed: the request id
//! space (to force wrap-around) and the pool mode (to test ping-pong pools).
//!
//! ```text
//!  0     1     2                             10                   14
//!  +-----+-----+-----------------------------+--------------------+--------+
//!  | 'T' | kind|      request id (u64)       |  body len (u32)    |  body  |
//!  +-----+-----+-----------------------------+--------------------+--------+
//!  kind: 0 request, 1 oneway, 2 response (ok), 3 ping, 4 pong,
//!        5 GoAway, 6 response (error)
//! ```
//!
//! Integers are big-endian. The wire always carries a full u64 id;
//! [`TestCodec::with_max_request_id`] only changes what the codec tells
//! pools, so a test can shrink the id space without truncating the
//! downstream ids it restores.

use bytes::{BufMut, Bytes, BytesMut};
use meshgate_codecs::{
    CodecError, Detect, Frame, FrameCodec, FrameKind, Limits, PoolMode, ReplyStatus, Status, Wire,
};

const MAGIC: u8 = b'T';
const HEADER_LEN: usize = 14;
const NAME: &str = "test";

/// The test protocol's codec. See the module docs for the layout.
#[derive(Debug, Clone, Copy)]
pub struct TestCodec {
    max_request_id: u64,
    pool_mode: PoolMode,
    heartbeats: bool,
}

impl Default for TestCodec {
    fn default() -> TestCodec {
        TestCodec::new()
    }
}

impl TestCodec {
    /// Multiplexed, full u64 id space, with heartbeats.
    pub fn new() -> TestCodec {
        TestCodec {
            max_request_id: u64::MAX,
            pool_mode: PoolMode::Multiplex,
            heartbeats: true,
        }
    }

    /// Tells pools that ids wrap after `max` (ids are still sent whole).
    pub fn with_max_request_id(mut self, max: u64) -> TestCodec {
        self.max_request_id = max;
        self
    }

    /// Declares [`PoolMode::PingPong`].
    pub fn ping_pong(mut self) -> TestCodec {
        self.pool_mode = PoolMode::PingPong;
        self
    }

    /// A protocol without heartbeats (`heartbeat_request` returns `None`).
    pub fn without_heartbeats(mut self) -> TestCodec {
        self.heartbeats = false;
        self
    }

    /// A frame of `kind` with `id` and `body`, wire bytes included (as if
    /// decoded).
    pub fn frame(&self, kind: FrameKind, id: u64, body: impl Into<Bytes>) -> Frame {
        let mut frame = Frame::new(kind, id);
        frame.set_body(body.into());
        frame.status = match kind {
            FrameKind::Response => Some(Status::new(0, 200)),
            _ => None,
        };
        with_wire(frame)
    }

    /// A two-way request with wire bytes.
    pub fn request(&self, id: u64, body: impl Into<Bytes>) -> Frame {
        self.frame(FrameKind::Request, id, body)
    }
}

fn kind_byte(frame: &Frame) -> u8 {
    match frame.kind {
        FrameKind::Request => 0,
        FrameKind::Oneway => 1,
        FrameKind::Response if frame.status.is_some_and(|s| !s.is_success()) => 6,
        FrameKind::Response => 2,
        FrameKind::Heartbeat { reply: false } => 3,
        FrameKind::Heartbeat { reply: true } => 4,
        FrameKind::GoAway => 5,
    }
}

fn kind_of(byte: u8) -> Option<(FrameKind, Option<Status>)> {
    Some(match byte {
        0 => (FrameKind::Request, None),
        1 => (FrameKind::Oneway, None),
        2 => (FrameKind::Response, Some(Status::new(0, 200))),
        3 => (FrameKind::Heartbeat { reply: false }, None),
        4 => (FrameKind::Heartbeat { reply: true }, None),
        5 => (FrameKind::GoAway, None),
        6 => (FrameKind::Response, Some(Status::new(1, 500))),
        _ => return None,
    })
}

fn encode_fields(frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
    let len = u32::try_from(frame.body().len())
        .map_err(|_| CodecError::malformed(NAME, "body over 4 GiB"))?;
    dst.reserve(HEADER_LEN + frame.body().len());
    dst.put_u8(MAGIC);
    dst.put_u8(kind_byte(frame));
    dst.put_u64(frame.request_id);
    dst.put_u32(len);
    dst.put_slice(frame.body());
    Ok(())
}

/// Gives a frame built in memory its wire bytes.
fn with_wire(mut frame: Frame) -> Frame {
    let mut buf = BytesMut::new();
    if encode_fields(&frame, &mut buf).is_ok() {
        let wire = Wire::split(buf, HEADER_LEN, 0);
        let body = 0..wire.rest().len();
        frame.set_wire(Some(wire));
        frame.set_body_in_wire(body);
    }
    frame
}

impl FrameCodec for TestCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn detect(&self, prefix: &[u8]) -> Detect {
        match prefix.first() {
            None => Detect::NeedMore,
            Some(&MAGIC) => Detect::Match,
            Some(_) => Detect::NoMatch,
        }
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        if src[0] != MAGIC {
            return Err(CodecError::malformed(NAME, "bad magic"));
        }
        let (kind, status) =
            kind_of(src[1]).ok_or_else(|| CodecError::malformed(NAME, "bad kind"))?;
        let id = u64::from_be_bytes(src[2..10].try_into().unwrap_or_default());
        let body_len = u32::from_be_bytes(src[10..14].try_into().unwrap_or_default()) as usize;
        let frame_len = HEADER_LEN + body_len;
        limits.check(NAME, frame_len as u64)?;
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            return Ok(None);
        }
        let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
        let mut frame = Frame::new(kind, id);
        frame.status = status;
        let body = 0..wire.rest().len();
        frame.set_wire(Some(wire));
        frame.set_body_in_wire(body);
        Ok(Some(frame))
    }

    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_fields(frame, dst)
    }

    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id;
        if let Some(wire) = frame.wire_mut() {
            wire.head_mut()[2..10].copy_from_slice(&id.to_be_bytes());
        }
    }

    fn max_request_id(&self) -> u64 {
        self.max_request_id
    }

    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        (ping.kind == FrameKind::Heartbeat { reply: false })
            .then(|| self.frame(FrameKind::Heartbeat { reply: true }, ping.request_id, ""))
    }

    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        self.heartbeats
            .then(|| self.frame(FrameKind::Heartbeat { reply: false }, id, ""))
    }

    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame> {
        if req.kind != FrameKind::Request {
            return None;
        }
        let text = if msg.is_empty() {
            status.message()
        } else {
            msg
        };
        let mut frame = Frame::new(FrameKind::Response, req.request_id);
        frame.status = Some(Status::new(1, status.neutral_code()));
        frame.set_body(Bytes::copy_from_slice(text.as_bytes()));
        Some(with_wire(frame))
    }

    fn pool_mode(&self) -> PoolMode {
        self.pool_mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_patch() {
        let codec = TestCodec::new();
        let mut frame = codec.request(7, &b"hello"[..]);
        codec.set_request_id(&mut frame, 0x0102_0304_0506_0708);
        let mut buf = BytesMut::new();
        codec.encode(&frame, &mut buf).unwrap();
        let limits = Limits::default();
        let back = codec.decode(&mut buf, &limits).unwrap().unwrap();
        assert_eq!(back.request_id, 0x0102_0304_0506_0708);
        assert_eq!(back.body(), b"hello");
        assert_eq!(back.kind, FrameKind::Request);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_consume_nothing() {
        let codec = TestCodec::new();
        let mut buf = BytesMut::new();
        codec
            .encode(&codec.request(1, &b"abc"[..]), &mut buf)
            .unwrap();
        let mut part = BytesMut::from(&buf[..HEADER_LEN + 1]);
        assert!(
            codec
                .decode(&mut part, &Limits::default())
                .unwrap()
                .is_none()
        );
        assert_eq!(part.len(), HEADER_LEN + 1);
    }
}
