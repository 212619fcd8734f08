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

use bytes::{BufMut, Bytes, BytesMut};
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
        let n = prefix.len().min(2);
        match (prefix[..n] == MAGIC[..n], n == 2) {
            (false, _) => Detect::NoMatch,
            (true, true) => Detect::Match,
            (true, false) => Detect::NeedMore,
        }
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        if src.len() < HEADER_LEN {
            return Ok(None); // Not even the fixed header: consume nothing.
        }
        if &src[..2] != MAGIC {
            return Err(CodecError::malformed("minirpc", "bad magic"));
        }
        let (kind, status) = kind_of(src[2])
            .ok_or_else(|| CodecError::malformed("minirpc", format!("kind {}", src[2])))?;
        let svc_len = usize::from(src[3]);
        let frame_len = HEADER_LEN + svc_len + be_u32(&src[8..12]) as usize;
        limits.check("minirpc", frame_len as u64)?; // Before reserving a single byte for it.
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            return Ok(None);
        }
        // Split the frame off the read buffer, no copy: the header stays
        // patchable; the header view is read from the rest when something
        // first asks (a router), so a frame only forwarded never pays for it.
        let wire = Wire::split(src.split_to(frame_len), HEADER_LEN, 0);
        let (id, flags) = (u64::from(be_u32(&wire.head()[4..8])), wire.head()[2]);
        let mut frame = Frame::lazy(kind, id, wire, read_headers);
        (frame.meta.flags, frame.status) = (flags, status);
        frame.set_body_in_wire(svc_len..frame_len - HEADER_LEN); // Bytes of the wire, no handle.
        Ok(Some(frame))
    }

    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        if let Some(wire) = frame.unchanged_wire() {
            wire.write_to(dst); // The forward path: original bytes, id patched in place.
            return Ok(());
        }
        let service = frame.service().unwrap_or_default();
        let svc_len = u8::try_from(service.len())
            .map_err(|_| CodecError::malformed("minirpc", "service > 255 bytes"))?;
        let body_len = u32::try_from(frame.body().len())
            .map_err(|_| CodecError::malformed("minirpc", "body > 4 GiB"))?;
        dst.put_slice(MAGIC);
        dst.put_u8(frame.meta.flags);
        dst.put_u8(svc_len);
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
        (req.kind == FrameKind::Request)
            .then(|| build(2, req.request_id, text))
            .flatten()
    }
}

/// The header view, read on first use: the service name, a span of the wire.
fn read_headers(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
    headers.bind(wire.rest().clone());
    headers.push_derived("service", 0..usize::from(wire.head()[3]));
    Ok(None) // minirpc carries no timeout.
}

/// Builds a frame the gateway sends on its own, wire bytes included.
fn build(kind_byte: u8, id: u64, body: &str) -> Option<Frame> {
    let (kind, status) = kind_of(kind_byte)?;
    let mut frame = Frame::new(kind, id);
    (frame.meta.flags, frame.status) = (kind_byte, status);
    frame.set_body(Bytes::copy_from_slice(body.as_bytes()));
    let mut buf = BytesMut::new();
    MiniRpc.encode(&frame, &mut buf).ok()?;
    frame.set_wire(Some(Wire::split(buf, HEADER_LEN, 0)));
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

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
