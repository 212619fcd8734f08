//! Headers for frames built in memory: frames encoded from their fields,
//! heartbeats, and the error replies the gateway answers with. The rules
//! are in the module docs of [`crate::generic`] ("Frames built in memory").

use super::PROTOCOL;
use super::error::GenericConfigError;
use super::layout::{Layout, MarkerKind, Spec};
use crate::codec::Limits;
use crate::error::CodecError;
use crate::frame::{Frame, FrameKind, Status};
use crate::wire::Wire;
use bytes::BytesMut;

/// What a built header says.
#[derive(Clone, Copy, Debug)]
pub(super) struct HeaderArgs<'a> {
    pub(super) kind: FrameKind,
    pub(super) request_id: u64,
    /// Responses: the raw status (`None`: the success value).
    pub(super) status: Option<u32>,
    pub(super) body_len: usize,
    /// A header to start from instead of zeros (same length only).
    pub(super) template: Option<&'a [u8]>,
    /// The request header `reply_copy` reads.
    pub(super) copy_from: Option<&'a [u8]>,
}

/// True for kinds travelling in the response direction. GoAway frames are
/// built in the request direction (x_example sends them with dir 0).
pub(super) fn is_response_kind(kind: FrameKind) -> bool {
    matches!(
        kind,
        FrameKind::Response | FrameKind::Heartbeat { reply: true }
    )
}

impl Spec {
    /// Writes the direction and marker bits of `kind` into `head`; `Err`
    /// says why the config cannot express that kind.
    ///
    /// Markers are tested in precedence order, so only those before the
    /// kind's own marker (all of them for a plain request or response) must
    /// be made not to match; each is cleared without touching the direction
    /// bits or the kind's marker bits where they share its byte.
    fn write_kind(&self, head: &mut [u8], kind: FrameKind) -> Result<(), String> {
        let is_response = is_response_kind(kind);
        if is_response {
            self.direction.set(head);
        } else {
            self.direction.clear(head, 0);
        }
        let wanted = MarkerKind::of(kind);
        let markers = self.markers(is_response);
        let target = markers
            .iter()
            .flatten()
            .find(|(_, k)| Some(*k) == wanted)
            .map(|(field, _)| *field);
        if let (Some(wanted), None) = (wanted, target) {
            return Err(format!("no {wanted:?} marker is configured"));
        }
        // Setting the kind's marker can make an earlier one match again
        // when they share a byte: settle in a few rounds, then check.
        for _ in 0..3 {
            for (field, k) in markers.iter().flatten() {
                if Some(*k) == wanted {
                    field.set(head);
                    break;
                }
                if field.matches(head) {
                    let keep = self.direction.bits_in_byte_of(field)
                        | target.map_or(0, |t| t.bits_in_byte_of(field));
                    field.clear(head, keep);
                }
            }
            if self.direction.matches(head) == is_response
                && self.classify(head, is_response) == kind
            {
                return Ok(());
            }
        }
        let got = self.classify(head, self.direction.matches(head));
        Err(format!(
            "a {kind:?} frame cannot be written: its direction and marker bits read back as {got:?}"
        ))
    }

    /// A complete header for `args`, or why it cannot be written.
    pub(super) fn header(&self, args: HeaderArgs<'_>) -> Result<BytesMut, CodecError> {
        let is_response = is_response_kind(args.kind);
        let layout = self.layout(is_response);
        let mut head = match args.template {
            Some(t) if t.len() == layout.header_len => BytesMut::from(t),
            _ => BytesMut::zeroed(layout.header_len),
        };
        if let Some(src) = args.copy_from {
            for copy in &self.reply_copy {
                for i in copy.offset..copy.offset.saturating_add(copy.len) {
                    if let (Some(s), Some(d)) = (src.get(i), head.get_mut(i)) {
                        *d = (*d & !copy.mask) | (s & copy.mask);
                    }
                }
            }
        }
        if let Some(magic) = &self.magic {
            let end = magic.offset.saturating_add(magic.bytes.len());
            if let Some(dst) = head.get_mut(magic.offset..end) {
                dst.copy_from_slice(&magic.bytes);
            }
        }
        self.write_kind(&mut head, args.kind)
            .map_err(|what| CodecError::unsupported(PROTOCOL, format!("{}: {what}", self.name)))?;
        if let Some(id) = self.request_id {
            id.write(&mut head, args.request_id);
        }
        if is_response && let Some(status) = layout.status {
            let code = args.status.unwrap_or(status.success);
            if u64::from(code) > status.field.max() {
                return Err(CodecError::malformed(
                    PROTOCOL,
                    format!("{}: status {code} does not fit its field", self.name),
                ));
            }
            status.field.write(&mut head, u64::from(code));
        }
        let length = self.length_for(layout, args.body_len)?;
        layout.length.write(&mut head, length);
        Ok(head)
    }

    /// The length field value for a payload of `body_len` bytes.
    fn length_for(&self, layout: &Layout, body_len: usize) -> Result<u64, CodecError> {
        let frame_len = (layout.header_len as u64).saturating_add(body_len as u64);
        if let Some(max) = self.max_frame_len
            && frame_len > max
        {
            return Err(CodecError::FrameTooLarge {
                protocol: PROTOCOL,
                len: frame_len,
                max: usize::try_from(max).unwrap_or(usize::MAX),
            });
        }
        let length = i128::from(frame_len) - i128::from(layout.length_adjust);
        u64::try_from(length)
            .ok()
            .filter(|l| *l <= layout.length.max())
            .ok_or_else(|| {
                CodecError::malformed(
                    PROTOCOL,
                    format!(
                        "{}: a {body_len}-byte payload gives length {length}, which the length field cannot hold",
                        self.name
                    ),
                )
            })
    }

    /// The most payload bytes a frame of `layout` can carry.
    pub(super) fn payload_room(&self, layout: &Layout) -> usize {
        let header = layout.header_len as i128;
        let by_field = i128::from(layout.length.max()) + i128::from(layout.length_adjust);
        let by_max = i128::from(self.max_frame_len.unwrap_or(Limits::CEILING as u64));
        usize::try_from((by_field.min(by_max) - header).max(0)).unwrap_or(usize::MAX)
    }

    /// A frame built from scratch: header from `args`, then `payload`.
    /// `neutral` is the neutral status code for a response-side frame.
    pub(super) fn built(
        &self,
        args: HeaderArgs<'_>,
        neutral: u16,
        payload: &[u8],
    ) -> Result<Frame, CodecError> {
        let head = self.header(HeaderArgs {
            body_len: payload.len(),
            ..args
        })?;
        let layout = self.layout(is_response_kind(args.kind));
        let mut bytes = BytesMut::with_capacity(head.len() + payload.len());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(payload);
        let wire = Wire::split(bytes, layout.header_len, 0);
        let mut frame = Frame::new(args.kind, args.request_id & self.max_request_id());
        if is_response_kind(args.kind) {
            frame.status = layout.status.map(|s| Status {
                code: args.status.unwrap_or(s.success),
                neutral,
            });
        }
        let body = 0..wire.rest().len();
        frame.set_wire(Some(wire));
        frame.set_body_in_wire(body);
        Ok(frame)
    }

    /// Load-time check that every kind the config names can be written,
    /// and that the heartbeat payload fits its frames.
    pub(super) fn check_expressible(&self) -> Result<(), GenericConfigError> {
        let mut kinds = vec![
            (FrameKind::Request, "direction"),
            (FrameKind::Response, "direction"),
        ];
        if self.heartbeat.is_some() {
            kinds.push((FrameKind::Heartbeat { reply: false }, "heartbeat"));
            kinds.push((FrameKind::Heartbeat { reply: true }, "heartbeat"));
        }
        if self.goaway.is_some() {
            kinds.push((FrameKind::GoAway, "goaway"));
        }
        if self.oneway.is_some() {
            kinds.push((FrameKind::Oneway, "oneway"));
        }
        for (kind, path) in kinds {
            let mut head = vec![0; self.layout(is_response_kind(kind)).header_len];
            self.write_kind(&mut head, kind).map_err(|problem| {
                GenericConfigError::invalid(
                    path,
                    problem,
                    "give each marker bits that the direction and the other markers do not \
                     force (markers are tested goaway, heartbeat, oneway, in that order)",
                )
            })?;
            if matches!(kind, FrameKind::Heartbeat { .. }) {
                let layout = self.layout(is_response_kind(kind));
                let len = self.heartbeat_payload.len();
                if let Err(err) = self.length_for(layout, len) {
                    return Err(GenericConfigError::invalid(
                        "heartbeat.payload",
                        format!("heartbeats cannot be built: {err}"),
                        "pick a payload whose length the length field can carry \
                         (header_len + payload - length_adjust must fit it, within max_frame_len)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `text` cut to at most `room` bytes, at a character boundary.
pub(super) fn truncate_utf8(text: &str, room: usize) -> &str {
    if text.len() <= room {
        return text;
    }
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
