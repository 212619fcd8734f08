//! A protocol of our own, "minirpc", added to meshgate with one type and one
//! `registry.register(Arc::new(MiniRpc))` call. Read top to bottom: it is
//! the tutorial that `docs/writing-a-codec.md` walks through.
//!
//! ```text
//!  0    2      3         4            8           12         12+svc_len
//!  +----+------+---------+------------+-----------+----------+--------+
//!  | MR | kind | svc_len | request id | body_len  | service  | body   |
//!  +----+------+---------+------------+-----------+----------+--------+
//!  kind: 0 request, 1 reply, 2 error reply, 3 ping, 4 pong, 5 oneway
//! ```
//! Integers are big-endian. The id sits in the fixed 12-byte header, so
//! forwarding a frame only ever patches those bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use meshgate_codecs::{
    CodecError, Detect, Frame, FrameCodec, FrameKind, Headers, Limits, ReplyStatus, Status, Wire,
};

const MAGIC: &[u8; 2] = b"MR";
const HEADER_LEN: usize = 12;

/// The minirpc codec. Stateless: one value serves every connection.
#[derive(Debug, Default)]
pub struct MiniRpc;

impl FrameCodec for MiniRpc {
    fn name(&self) -> &str {
        "minirpc"
    }

    // Decide as early as possible: a wrong first byte is already a NoMatch.
    fn detect(&self, prefix: &[u8]) -> Detect {
        Detect::magic(prefix, MAGIC)
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        if src.len() < HEADER_LEN {
            return Ok(None); // Not even the fixed header: consume nothing.
        }
        let mut fixed = &src[..HEADER_LEN];
        if fixed.get_u16() != u16::from_be_bytes(*MAGIC) {
            return Err(CodecError::malformed("minirpc", "bad magic"));
        }
        let (flags, svc_len) = (fixed.get_u8(), usize::from(fixed.get_u8()));
        let (id, body_len) = (fixed.get_u32(), fixed.get_u32());
        let (kind, status) = kind_of(flags)
            .ok_or_else(|| CodecError::malformed("minirpc", format!("kind {flags}")))?;
        let frame_len = (HEADER_LEN + svc_len) as u64 + u64::from(body_len);
        limits.check("minirpc", frame_len)?; // Before reserving a single byte for it.
        let frame_len = frame_len as usize; // At most the limit, so it fits.
        if src.len() < frame_len {
            meshgate_codecs::reserve_for_frame(src, frame_len);
            return Ok(None);
        }
        // Split the frame off the read buffer, no copy: the header stays
        // patchable; the header view is read from the rest when something
        // first asks (a router), so a frame only forwarded never pays for it.
        let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
        let mut frame = Frame::lazy(kind, u64::from(id), wire, read_headers);
        (frame.meta.flags, frame.status) = (flags, status);
        frame.set_body_in_wire(svc_len..frame_len - HEADER_LEN); // Bytes of the wire, no handle.
        Ok(Some(frame))
    }

    // Frames built in memory (replies, pings). A decoded frame is forwarded
    // by the trait's `encode` as its original bytes, the id patched in place.
    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let service = frame.service().unwrap_or_default();
        let too_long = |what| CodecError::malformed("minirpc", format!("{what} too long"));
        let svc_len = u8::try_from(service.len()).map_err(|_| too_long("service"))?;
        let body_len = u32::try_from(frame.body().len()).map_err(|_| too_long("body"))?;
        dst.put_slice(MAGIC);
        dst.put_slice(&[frame.meta.flags, svc_len]);
        dst.put_u32(frame.request_id as u32);
        dst.put_u32(body_len);
        dst.put_slice(service.as_bytes());
        dst.put_slice(frame.body());
        Ok(())
    }

    // Patch the id in the header bytes: no re-encode, no allocation.
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id & self.max_request_id();
        if let Some(wire) = frame.wire_mut() {
            wire.head_mut()[4..8].copy_from_slice(&(id as u32).to_be_bytes());
        }
    }

    fn max_request_id(&self) -> u64 {
        u64::from(u32::MAX)
    }

    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        build(4, ping.request_id, "")
    }

    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        build(3, id, "")
    }

    // Oneway requests (and anything that is not a request) never get a reply.
    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame> {
        let text = Some(msg)
            .filter(|m| !m.is_empty())
            .unwrap_or(status.message());
        (req.kind == FrameKind::Request).then(|| build(2, req.request_id, text))?
    }
}

/// The header view, read on first use: the service name, a span of the wire.
fn read_headers(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
    headers.bind(wire.rest().clone());
    headers.push_derived("service", 0..usize::from(wire.head()[3]));
    Ok(None) // minirpc carries no timeout.
}

/// Builds a frame the gateway sends on its own. It has no wire bytes, so
/// `encode` writes it from these fields.
fn build(kind_byte: u8, id: u64, body: &str) -> Option<Frame> {
    let (kind, status) = kind_of(kind_byte)?;
    let mut frame = Frame::new(kind, id);
    (frame.meta.flags, frame.status) = (kind_byte, status);
    frame.set_body(Bytes::copy_from_slice(body.as_bytes()));
    Some(frame)
}

/// What a kind byte means: the frame kind and, for replies, the status.
fn kind_of(kind_byte: u8) -> Option<(FrameKind, Option<Status>)> {
    Some(match kind_byte {
        0 => (FrameKind::Request, None),
        1 => (FrameKind::Response, Some(Status::new(0, 200))),
        2 => (FrameKind::Response, Some(Status::new(1, 500))),
        3 => (FrameKind::Heartbeat { reply: false }, None),
        4 => (FrameKind::Heartbeat { reply: true }, None),
        5 => (FrameKind::Oneway, None),
        _ => return None,
    })
}
