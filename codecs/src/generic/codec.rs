//! [`GenericCodec`]: the [`FrameCodec`] over a validated layout.

use super::PROTOCOL;
use super::build::{HeaderArgs, truncate_utf8};
use super::config::GenericConfig;
use super::error::GenericConfigError;
use super::layout::{Layout, Spec};
use super::validate;
use crate::codec::{Detect, FrameCodec, Limits, PoolMode};
use crate::error::CodecError;
use crate::frame::{Frame, FrameKind};
use crate::status::ReplyStatus;
use crate::wire::Wire;
use bytes::BytesMut;

/// A codec for a simple length-prefixed RPC protocol described by a
/// [`GenericConfig`]. Stateless; share it as `Arc<dyn FrameCodec>`.
#[derive(Clone, Debug)]
pub struct GenericCodec {
    spec: Spec,
    config: GenericConfig,
}

impl GenericCodec {
    /// Validates `config` into a codec. The error names the offending
    /// field by its JSON path and says how to fix it.
    pub fn new(config: GenericConfig) -> Result<GenericCodec, GenericConfigError> {
        let spec = validate::build(&config)?;
        Ok(GenericCodec { spec, config })
    }

    /// The configuration this codec was built from (for config dumps).
    pub fn config(&self) -> &GenericConfig {
        &self.config
    }

    /// The declared length of the frame whose complete header is `head`,
    /// checked against the configured and the decode limits.
    fn frame_len(
        &self,
        layout: &Layout,
        head: &[u8],
        limits: &Limits,
    ) -> Result<usize, CodecError> {
        let length = layout.length.read(head);
        let frame_len = i128::from(length) + i128::from(layout.length_adjust);
        let Ok(frame_len) = u64::try_from(frame_len) else {
            return Err(self.malformed(format!(
                "length {length} with adjustment {} gives a negative frame length",
                layout.length_adjust
            )));
        };
        if let Some(max) = self.spec.max_frame_len
            && frame_len > max
        {
            return Err(CodecError::FrameTooLarge {
                protocol: PROTOCOL,
                len: frame_len,
                max: usize::try_from(max).unwrap_or(usize::MAX),
            });
        }
        limits.check(PROTOCOL, frame_len)?;
        let frame_len = usize::try_from(frame_len)
            .map_err(|_| self.malformed(format!("frame length {frame_len} does not fit memory")))?;
        if frame_len < layout.header_len {
            return Err(self.malformed(format!(
                "frame length {frame_len} is shorter than its {}-byte header",
                layout.header_len
            )));
        }
        Ok(frame_len)
    }

    fn malformed(&self, what: String) -> CodecError {
        CodecError::malformed(PROTOCOL, format!("{}: {what}", self.spec.name))
    }

    /// The error reply to the request whose header is `head`.
    fn error_reply_to(
        &self,
        head: &[u8],
        request_id: u64,
        status: ReplyStatus,
        msg: &str,
    ) -> Option<Frame> {
        let msg = if msg.is_empty() {
            status.message()
        } else {
            msg
        };
        let msg = truncate_utf8(msg, self.spec.payload_room(&self.spec.response));
        let args = HeaderArgs {
            kind: FrameKind::Response,
            request_id,
            status: self.spec.error_status,
            body_len: msg.len(),
            template: None,
            copy_from: Some(head),
        };
        self.spec
            .built(args, status.neutral_code(), msg.as_bytes())
            .ok()
    }
}

impl FrameCodec for GenericCodec {
    fn name(&self) -> &str {
        &self.spec.name
    }

    /// Compares the magic: `NeedMore` while the prefix is too short but
    /// agrees so far, `NoMatch` at the first differing byte (and always
    /// without a magic), `Match` once every magic byte agrees.
    fn detect(&self, prefix: &[u8]) -> Detect {
        let Some(magic) = &self.spec.magic else {
            return Detect::NoMatch;
        };
        for (i, want) in magic.bytes.iter().enumerate() {
            match prefix.get(magic.offset.saturating_add(i)) {
                None => return Detect::NeedMore,
                Some(got) if got != want => return Detect::NoMatch,
                Some(_) => {}
            }
        }
        Detect::Match
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, CodecError> {
        let spec = &self.spec;
        if let Some((at, want, got)) = spec.magic_mismatch(src) {
            return Err(self.malformed(format!(
                "byte {at} is {got:#04x}, not the magic byte {want:#04x}"
            )));
        }
        if src.len() < spec.direction_need() {
            return Ok(None);
        }
        let is_response = spec.direction.matches(src);
        let layout = spec.layout(is_response);
        let Some(head) = src.get(..layout.header_len) else {
            return Ok(None);
        };
        let frame_len = self.frame_len(layout, head, limits)?;
        if src.len() < frame_len {
            crate::codec::reserve_for_frame(src, frame_len);
            return Ok(None);
        }
        let wire = Wire::split(src.split_to(frame_len), layout.header_len, 0);
        let head = wire.head();
        let kind = spec.classify(head, is_response);
        let request_id = spec.request_id.map_or(0, |f| f.read(head));
        let mut frame = Frame::new(kind, request_id);
        if is_response {
            frame.status = layout.status.map(|s| s.read(head));
        }
        let body = 0..wire.rest().len();
        frame.set_wire(Some(wire));
        frame.set_body_in_wire(body);
        Ok(Some(frame))
    }

    /// Builds the header from the layout (see "Frames built in memory" in
    /// the [module docs](crate::generic) for which bytes are then zero) and
    /// appends the body. `Err(Unsupported)` for a kind the config has no
    /// marker for (a oneway frame without `oneway`), and `Err` for a status
    /// or payload the fields cannot hold.
    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let head = self.spec.header(HeaderArgs {
            kind: frame.kind,
            request_id: frame.request_id,
            status: frame.status.map(|s| s.code),
            body_len: frame.body().len(),
            // The header view is not carried on the wire, so a changed view
            // keeps the original header's unmodelled bytes.
            template: frame.wire().map(Wire::head),
            copy_from: None,
        })?;
        dst.reserve(head.len() + frame.body().len());
        dst.extend_from_slice(&head);
        dst.extend_from_slice(frame.body());
        Ok(())
    }

    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        let id = id & self.spec.max_request_id();
        frame.request_id = id;
        if let (Some(field), Some(wire)) = (self.spec.request_id, frame.wire_mut()) {
            field.write(wire.head_mut(), id);
        }
    }

    fn max_request_id(&self) -> u64 {
        self.spec.max_request_id()
    }

    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        if ping.kind != (FrameKind::Heartbeat { reply: false }) {
            return None;
        }
        self.spec.heartbeat?;
        let args = HeaderArgs {
            kind: FrameKind::Heartbeat { reply: true },
            request_id: ping.request_id,
            status: None,
            body_len: 0,
            template: None,
            copy_from: ping.wire().map(Wire::head),
        };
        self.spec
            .built(args, 200, &self.spec.heartbeat_payload)
            .ok()
    }

    /// The configured GoAway marker's frame, when the layout has one.
    fn goaway(&self) -> Option<Frame> {
        let frame = Frame::new(FrameKind::GoAway, 0);
        let mut scratch = BytesMut::new();
        self.encode(&frame, &mut scratch).ok().map(|()| frame)
    }

    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        self.spec.heartbeat?;
        let args = HeaderArgs {
            kind: FrameKind::Heartbeat { reply: false },
            request_id: id,
            status: None,
            body_len: 0,
            template: None,
            copy_from: None,
        };
        self.spec
            .built(args, 200, &self.spec.heartbeat_payload)
            .ok()
    }

    /// A response with the request's id, `error_status` and the UTF-8
    /// message (`msg`, or MOSN's text for `status` when `msg` is empty,
    /// cut to what the length field can carry), plus the `reply_copy`
    /// bytes. Only two-way requests get one.
    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame> {
        if req.kind != FrameKind::Request {
            return None;
        }
        let head = req.wire().map_or(&[][..], Wire::head);
        self.error_reply_to(head, req.request_id, status, msg)
    }

    /// An error reply when the buffered bytes start with the complete
    /// header of a two-way request of this protocol.
    fn decode_error_reply(&self, buffered: &[u8], err: &CodecError) -> Option<Frame> {
        let spec = &self.spec;
        if buffered.len() < spec.direction_need()
            || spec.magic_mismatch(buffered).is_some()
            || spec.direction.matches(buffered)
        {
            return None;
        }
        let head = buffered.get(..spec.request.header_len)?;
        if spec.classify(head, false) != FrameKind::Request {
            return None;
        }
        let request_id = spec.request_id.map_or(0, |f| f.read(head));
        self.error_reply_to(head, request_id, ReplyStatus::CodecError, &err.to_string())
    }

    fn pool_mode(&self) -> PoolMode {
        if self.spec.request_id.is_some() {
            PoolMode::Multiplex
        } else {
            PoolMode::PingPong
        }
    }
}
