//! The protocol-neutral frame every framed codec decodes into and encodes
//! from: MOSN's header / data / trailer split as plain fields.

use crate::error::CodecError;
use crate::headers::Headers;
use crate::wire::Wire;
use bytes::Bytes;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

/// What a frame is, in terms the proxy acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A request that expects exactly one response with the same id.
    Request,
    /// A request that never gets a response (bolt type 2, Dubbo without the
    /// two-way bit). Never answered, not even with an error.
    Oneway,
    /// The answer to a request.
    Response,
    /// A keep-alive ping (`reply: false`) or its pong (`reply: true`). The
    /// connection driver answers pings itself; they never reach the proxy.
    Heartbeat {
        /// True for the pong.
        reply: bool,
    },
    /// The peer asks to stop sending new requests on this connection (MOSN
    /// bolt GoAway, Dubbo's read-only event, x_example type 2); in-flight
    /// requests may still complete.
    GoAway,
}

impl FrameKind {
    /// True for the kinds a peer must answer (request and ping).
    pub fn expects_reply(self) -> bool {
        matches!(
            self,
            FrameKind::Request | FrameKind::Heartbeat { reply: false }
        )
    }

    /// True for frames travelling from the caller to the callee.
    pub fn is_request_side(self) -> bool {
        matches!(
            self,
            FrameKind::Request | FrameKind::Oneway | FrameKind::Heartbeat { reply: false }
        )
    }
}

/// A response status: the protocol's own code and MOSN's protocol-neutral,
/// HTTP-like code (200 success, 404, 500, 502, 503, 504, ...), which stats
/// and cross-protocol mapping use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    /// The value on the wire (bolt 0..0x12, Dubbo 20..100, ...).
    pub code: u32,
    /// The neutral code.
    pub neutral: u16,
}

impl Status {
    /// A status with wire value `code` and neutral code `neutral`.
    pub const fn new(code: u32, neutral: u16) -> Status {
        Status { code, neutral }
    }

    /// True when the neutral code says success.
    pub fn is_success(self) -> bool {
        self.neutral == 200
    }
}

/// Fixed-header fields that have no neutral meaning but must survive a
/// re-encode of a frame built or changed in memory. Each codec documents its
/// use; a codec forwarding original bytes never reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WireMeta {
    /// Protocol version (bolt: 1 or 2; Dubbo: unused).
    pub version: u8,
    /// Serialization of the body (bolt `codec`, Dubbo `flag & 0x1F`).
    pub serialization: u8,
    /// Protocol flag bits (bolt v2: the `switch` byte; Dubbo: the flag byte).
    pub flags: u8,
    /// Secondary version byte (bolt v2: `ver1`).
    pub sub_version: u8,
}

/// Reads a frame's header section (bolt's header map, Dubbo's invocation
/// head and attachments) from its wire bytes into an empty header view,
/// the first time the view is asked for (see [`Frame::lazy`]), and returns
/// the timeout the section declares, if the protocol carries one there
/// (Dubbo's `timeout` attachment). `Err` when the section is malformed.
pub type HeaderReader = fn(&Wire, &mut Headers) -> Result<Option<u32>, CodecError>;

/// Where a frame's body (or class name) is.
#[derive(Clone, Debug)]
enum Slice {
    /// No bytes (no handle to drop, unlike an empty `Bytes`).
    Empty,
    /// Bytes of its own (frames built in memory).
    Owned(Bytes),
    /// A range of the wire's shared middle part (decoded frames).
    InWire(Range<usize>),
}

/// What a decoder reads from a frame's fixed header, for
/// [`Frame::decoded`]. Ranges index the wire's shared middle part
/// ([`Wire::rest`]).
#[derive(Clone, Debug)]
pub struct FixedFields {
    /// What the frame is.
    pub kind: FrameKind,
    /// The multiplexing id.
    pub request_id: u64,
    /// Responses: the status.
    pub status: Option<Status>,
    /// The timeout the fixed header carries, if any.
    pub timeout_ms: Option<u32>,
    /// Protocol fields with no neutral name.
    pub meta: WireMeta,
    /// Where the body is.
    pub body: Range<usize>,
    /// Where the payload's type name is (empty when there is none).
    pub class: Range<usize>,
}

/// A header view read through a shared reference (see [`Frame::headers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct LateView {
    headers: Headers,
    timeout_ms: Option<u32>,
    error: Option<CodecError>,
}

/// One message of a framed protocol. See the crate docs for the contract.
///
/// The header view is read lazily: a codec's `decode` frames the message
/// and reads its fixed header, and leaves the header section (bolt's
/// header map, Dubbo's invocation head and attachments) to be read from
/// the wire bytes the first time something asks for a header. A frame that
/// is only forwarded (a response, a request routed without looking at its
/// headers) never pays for it. Holding the frame mutably,
/// [`Frame::read_headers_mut`] (or [`crate::FrameCodec::decode_checked`])
/// reads it in place; a first read through a shared reference
/// ([`Frame::headers`]) keeps the view in a separate heap cell.
///
/// The fields live in a box of their own ([`FrameFields`], reached through
/// `Deref`): a frame is moved a few dozen times between its decode and its
/// encode (into and out of every future on the way), and moving eight
/// bytes instead of half a kilobyte was about a third of a bolt request's
/// instructions. Boxes are reused: a dropped frame's box goes to a small
/// per-thread store (`spare_frames.rs`, which passes boxes between threads
/// in batches) that the next frame built takes, so the forward path still
/// allocates nothing per request.
pub struct Frame {
    /// `None` only while the frame is being dropped.
    fields: Option<Box<FrameFields>>,
}

impl std::ops::Deref for Frame {
    type Target = FrameFields;

    #[inline(always)]
    fn deref(&self) -> &FrameFields {
        match &self.fields {
            Some(fields) => fields,
            None => unreachable!("a frame's fields go only when it is dropped"),
        }
    }
}

impl std::ops::DerefMut for Frame {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut FrameFields {
        match &mut self.fields {
            Some(fields) => fields,
            None => unreachable!("a frame's fields go only when it is dropped"),
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Some(fields) = self.fields.take() {
            crate::spare_frames::give_back(fields);
        }
    }
}

impl Clone for Frame {
    fn clone(&self) -> Frame {
        let mut fields = crate::spare_frames::blank();
        *fields = FrameFields::clone(self);
        Frame {
            fields: Some(fields),
        }
    }
}

/// A frame's fields; see [`Frame`], which derefs to them.
#[derive(Clone)]
pub struct FrameFields {
    /// What the frame is.
    pub kind: FrameKind,
    /// The multiplexing id, widened to u64 whatever the wire width.
    pub request_id: u64,
    /// Trailing header fields, where the protocol has them. Boxed: framed
    /// RPC protocols have none, and a `Frame` is moved on every hop.
    pub trailers: Option<Box<Headers>>,
    /// Responses: the status, raw and neutral.
    pub status: Option<Status>,
    /// Protocol fields with no neutral name.
    pub meta: WireMeta,
    /// How long the caller waits, when the fixed header says (bolt
    /// `timeout`) or the frame was built with one; see [`Frame::timeout_ms`].
    timeout_ms: Option<u32>,
    /// The timeout the header section declared, once read in place.
    section_timeout_ms: Option<u32>,
    /// The frame's bytes as read (ids patched in place by
    /// [`crate::FrameCodec::set_request_id`]); `None` for frames built in
    /// memory, which the codec encodes from the fields above.
    wire: Option<Wire>,
    /// The body, opaque: bytes of its own, or (decoded frames) a range of
    /// the wire's shared middle part, which costs no reference count.
    body: Slice,
    /// The payload's type name where the protocol carries one (bolt's
    /// class), held like the body.
    class: Slice,
    /// While the header section is unread: the codec's reader for it.
    reader: Option<HeaderReader>,
    /// The header view, once `reader` is `None`.
    headers: Headers,
    /// Why the header section could not be read in place, if it could not.
    error: Option<Box<CodecError>>,
    /// The view read through a shared reference while `reader` was set.
    late: OnceLock<Box<LateView>>,
}

impl FrameFields {
    /// The fields of an empty frame of `kind` with id `request_id`.
    #[inline(always)]
    pub(crate) fn new(kind: FrameKind, request_id: u64) -> FrameFields {
        FrameFields {
            kind,
            request_id,
            trailers: None,
            status: None,
            meta: WireMeta::default(),
            timeout_ms: None,
            section_timeout_ms: None,
            wire: None,
            body: Slice::Empty,
            class: Slice::Empty,
            reader: None,
            headers: Headers::new(),
            error: None,
            late: OnceLock::new(),
        }
    }
}

impl Frame {
    /// An empty frame of `kind` with id `request_id`, built in memory.
    #[inline]
    pub fn new(kind: FrameKind, request_id: u64) -> Frame {
        let mut fields = crate::spare_frames::blank();
        fields.kind = kind;
        fields.request_id = request_id;
        Frame {
            fields: Some(fields),
        }
    }

    /// A decoded frame over `wire` whose header view `reader` reads from
    /// those bytes the first time it is asked for (a codec's `decode`).
    #[inline]
    pub fn lazy(kind: FrameKind, request_id: u64, wire: Wire, reader: HeaderReader) -> Frame {
        let mut frame = Frame::new(kind, request_id);
        frame.wire = Some(wire);
        frame.reader = Some(reader);
        frame
    }

    /// A decoded frame over `wire`, every fixed-header field given at once
    /// so the frame is built in place (a codec's `decode` on its hot path;
    /// [`Frame::lazy`] plus setters builds the same frame). `reader` reads
    /// the header section on first use; `None` when the frame has none.
    #[inline(always)]
    pub fn decoded(wire: Wire, reader: Option<HeaderReader>, fixed: FixedFields) -> Frame {
        // Field by field into a blank box: building the fields whole and
        // moving them in would copy them once more.
        let mut frame = Frame::new(fixed.kind, fixed.request_id);
        let fields: &mut FrameFields = &mut frame;
        fields.status = fixed.status;
        fields.meta = fixed.meta;
        fields.timeout_ms = fixed.timeout_ms;
        fields.wire = Some(wire);
        fields.body = Slice::InWire(fixed.body);
        fields.class = Slice::InWire(fixed.class);
        fields.reader = reader;
        frame
    }

    /// The header view: routing keys (`service`, `method`, `version`,
    /// `group`) plus the protocol's own header fields. Read from the wire
    /// bytes on first call; a malformed header section reads as an empty
    /// view (see [`Frame::read_headers`] for the error).
    #[inline]
    pub fn headers(&self) -> &Headers {
        match self.reader {
            None => &self.headers,
            Some(reader) => &self.late(reader).headers,
        }
    }

    /// The header view, for changing it (see [`Headers::insert`]); read
    /// first if it was not yet.
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.fill();
        &mut self.headers
    }

    /// Replaces the header view (frames built in memory, codecs that read
    /// a view eagerly). A decoded frame keeps its wire bytes; whether they
    /// are still forwarded as they are follows [`Headers::is_modified`].
    pub fn set_headers(&mut self, headers: Headers) {
        self.fill();
        self.headers = headers;
        self.error = None;
    }

    /// Reads the header view now, reporting a malformed header section
    /// (which [`Frame::headers`] shows as an empty view). Cheap once read.
    pub fn read_headers(&self) -> Result<&Headers, CodecError> {
        let (headers, error) = match self.reader {
            None => (&self.headers, self.error.as_deref()),
            Some(reader) => {
                let late = self.late(reader);
                (&late.headers, late.error.as_ref())
            }
        };
        match error {
            Some(error) => Err(error.clone()),
            None => Ok(headers),
        }
    }

    /// [`Frame::read_headers`] for a caller holding the frame mutably (a
    /// connection driver right after decode): reads the view in place, with
    /// no allocation and no synchronization.
    #[inline]
    pub fn read_headers_mut(&mut self) -> Result<&Headers, CodecError> {
        self.fill();
        match &self.error {
            Some(error) => Err(CodecError::clone(error)),
            None => Ok(&self.headers),
        }
    }

    /// True once the header view was read (or set): tells whether
    /// [`Frame::headers`] costs a parse.
    #[inline]
    pub fn headers_read(&self) -> bool {
        self.reader.is_none() || self.late.get().is_some()
    }

    /// How long the caller waits, if the frame says: from the fixed header
    /// (bolt `timeout`), or from the header section (Dubbo's `timeout`
    /// attachment, which reads the header view).
    #[inline]
    pub fn timeout_ms(&self) -> Option<u32> {
        self.timeout_ms.or_else(|| match self.reader {
            None => self.section_timeout_ms,
            Some(reader) => self.late(reader).timeout_ms,
        })
    }

    /// Sets the timeout a frame built in memory carries (or a decoder
    /// read from its fixed header).
    pub fn set_timeout_ms(&mut self, timeout_ms: Option<u32>) {
        self.fill();
        self.timeout_ms = timeout_ms;
        self.section_timeout_ms = None;
    }

    /// The body, opaque (for decoded frames, bytes of the wire).
    #[inline]
    pub fn body(&self) -> &[u8] {
        self.resolve(&self.body)
    }

    /// The body as a shared handle (a slice of the wire bytes for decoded
    /// frames: one reference count, no copy), for callers that keep it
    /// beyond the frame.
    pub fn body_bytes(&self) -> Bytes {
        self.handle(&self.body)
    }

    /// Replaces the body.
    #[inline]
    pub fn set_body(&mut self, body: impl Into<Bytes>) {
        self.body = Slice::Owned(body.into());
    }

    /// Makes the body the bytes at `range` of the wire's shared middle part
    /// ([`Wire::rest`]): what a decoder does (after [`Frame::lazy`] or
    /// [`Frame::set_wire`]), so a decoded frame holds one handle on the
    /// read buffer, not two. A range outside the wire bytes reads as an
    /// empty body.
    #[inline]
    pub fn set_body_in_wire(&mut self, range: Range<usize>) {
        self.body = Slice::InWire(range);
    }

    /// The payload's type name, where the protocol carries one (bolt's
    /// class name); empty otherwise.
    #[inline]
    pub fn class(&self) -> &[u8] {
        self.resolve(&self.class)
    }

    /// Replaces the type name.
    #[inline]
    pub fn set_class(&mut self, class: impl Into<Bytes>) {
        self.class = Slice::Owned(class.into());
    }

    /// Makes the type name the bytes at `range` of [`Wire::rest`], like
    /// [`Frame::set_body_in_wire`].
    #[inline]
    pub fn set_class_in_wire(&mut self, range: Range<usize>) {
        self.class = Slice::InWire(range);
    }

    /// The bytes `slice` stands for.
    #[inline]
    fn resolve<'a>(&'a self, slice: &'a Slice) -> &'a [u8] {
        match slice {
            Slice::Empty => &[],
            Slice::Owned(bytes) => bytes,
            Slice::InWire(range) => self
                .wire
                .as_ref()
                .and_then(|wire| wire.rest().get(range.clone()))
                .unwrap_or_default(),
        }
    }

    /// A shared handle on the bytes `slice` stands for.
    fn handle(&self, slice: &Slice) -> Bytes {
        match slice {
            Slice::Empty => Bytes::new(),
            Slice::Owned(bytes) => bytes.clone(),
            Slice::InWire(range) => self
                .wire
                .as_ref()
                .and_then(|wire| {
                    let rest = wire.rest();
                    (range.start <= range.end && range.end <= rest.len())
                        .then(|| rest.slice(range.clone()))
                })
                .unwrap_or_default(),
        }
    }

    /// The bytes the frame arrived as (ids patched in place), if it was
    /// decoded or built by a codec.
    #[inline]
    pub fn wire(&self) -> Option<&Wire> {
        self.wire.as_ref()
    }

    /// The wire bytes, for patching ids in place
    /// ([`crate::FrameCodec::set_request_id`]).
    #[inline]
    pub fn wire_mut(&mut self) -> Option<&mut Wire> {
        self.wire.as_mut()
    }

    /// Replaces the wire bytes (`None`: the frame is encoded from its
    /// fields from now on). The header view is read from the old bytes
    /// first, so it never changes or gets lost with them.
    pub fn set_wire(&mut self, wire: Option<Wire>) {
        self.fill();
        if let Slice::InWire(_) = self.body {
            self.body = Slice::Owned(self.body_bytes());
        }
        if let Slice::InWire(_) = self.class {
            self.class = Slice::Owned(self.handle(&self.class));
        }
        self.wire = wire;
    }

    /// The original bytes, if they can be forwarded as they are: the frame
    /// was decoded (or built by a codec) and its header view was not
    /// changed since. Codecs write these instead of re-encoding. Does not
    /// read the header view.
    #[inline]
    pub fn unchanged_wire(&self) -> Option<&Wire> {
        let modified = self.reader.is_none() && self.headers.is_modified();
        self.wire.as_ref().filter(|_| !modified)
    }

    /// Shorthand for the `service` routing key.
    #[inline]
    pub fn service(&self) -> Option<&str> {
        self.headers().get_str(crate::keys::SERVICE)
    }

    /// Shorthand for the `method` routing key.
    #[inline]
    pub fn method(&self) -> Option<&str> {
        self.headers().get_str(crate::keys::METHOD)
    }

    /// Reads the header section in place, if it is still unread (taking
    /// over a view already read through a shared reference).
    #[inline]
    fn fill(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        if let Some(late) = self.late.take() {
            let LateView {
                headers,
                timeout_ms,
                error,
            } = *late;
            self.headers = headers;
            self.section_timeout_ms = timeout_ms;
            self.error = error.map(Box::new);
            return;
        }
        // One borrow of the fields, split between the wire and the view.
        let fields: &mut FrameFields = self;
        let Some(wire) = &fields.wire else {
            return;
        };
        match reader(wire, &mut fields.headers) {
            Ok(timeout_ms) => fields.section_timeout_ms = timeout_ms,
            Err(error) => {
                fields.headers = Headers::new();
                fields.error = Some(Box::new(error));
            }
        }
    }

    /// The view read through a shared reference.
    #[cold]
    fn late(&self, reader: HeaderReader) -> &LateView {
        self.late.get_or_init(|| {
            let mut headers = Headers::new();
            let read = match &self.wire {
                Some(wire) => reader(wire, &mut headers),
                None => Ok(None),
            };
            Box::new(match read {
                Ok(timeout_ms) => LateView {
                    headers,
                    timeout_ms,
                    error: None,
                },
                Err(error) => LateView {
                    headers: Headers::new(),
                    timeout_ms: None,
                    error: Some(error),
                },
            })
        })
    }
}

impl PartialEq for Frame {
    /// Equal when every field and the header views are (reading both).
    fn eq(&self, other: &Frame) -> bool {
        self.kind == other.kind
            && self.request_id == other.request_id
            && self.body() == other.body()
            && self.trailers == other.trailers
            && self.status == other.status
            && self.meta == other.meta
            && self.class() == other.class()
            && self.timeout_ms() == other.timeout_ms()
            && self.wire == other.wire
            && self.headers() == other.headers()
    }
}

impl Eq for Frame {}

impl fmt::Debug for FrameFields {
    /// The fields are shown through their frame's `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameFields")
            .field("kind", &self.kind)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind)
            .field("request_id", &self.request_id)
            .field("headers", self.headers())
            .field("body", &Bytes::copy_from_slice(self.body()))
            .field("trailers", &self.trailers)
            .field("status", &self.status)
            .field("timeout_ms", &self.timeout_ms())
            .field("meta", &self.meta)
            .field("class", &Bytes::copy_from_slice(self.class()))
            .field("wire", &self.wire)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// A frame `HHHH` + `k=v` + body whose reader takes bytes 0..1 / 2..3
    /// of the rest as one header (or fails when the rest starts with `!`).
    fn frame(rest: &[u8]) -> Frame {
        fn reader(wire: &Wire, headers: &mut Headers) -> Result<Option<u32>, CodecError> {
            if wire.rest().first() == Some(&b'!') {
                return Err(CodecError::malformed("test", "bang"));
            }
            headers.bind(wire.rest().clone());
            headers.push_wire(0..1, 2..3);
            Ok(Some(7))
        }
        let mut bytes = BytesMut::from(&b"HHHH"[..]);
        bytes.extend_from_slice(rest);
        let wire = Wire::split(bytes, 4, 0);
        let len = wire.rest().len();
        let mut frame = Frame::lazy(FrameKind::Request, 1, wire, reader);
        frame.set_body_in_wire(3..len);
        frame
    }

    #[test]
    fn the_view_is_read_on_first_use_through_either_reference() {
        let shared = frame(b"k=vBODY");
        assert!(!shared.headers_read());
        assert!(
            shared.unchanged_wire().is_some(),
            "forwarding reads nothing"
        );
        assert!(!shared.headers_read());
        assert_eq!(shared.headers().get_str("k"), Some("v"));
        assert_eq!(shared.timeout_ms(), Some(7));
        assert!(shared.headers_read());

        let mut taken_over = shared.clone();
        taken_over.headers_mut().insert("k", b"w");
        assert_eq!(taken_over.headers().get_str("k"), Some("w"));
        assert!(
            taken_over.unchanged_wire().is_none(),
            "a changed view re-encodes"
        );
        assert_eq!(taken_over.timeout_ms(), Some(7));

        let mut in_place = frame(b"k=vBODY");
        assert!(in_place.read_headers_mut().is_ok());
        assert_eq!(in_place.headers().get_str("k"), Some("v"));
        assert_eq!(in_place.body(), b"BODY");
    }

    #[test]
    fn a_malformed_section_reads_empty_and_reports_why() {
        let shared = frame(b"!=vBODY");
        assert!(shared.headers().is_empty());
        assert!(shared.read_headers().is_err());
        let mut owned = shared.clone();
        assert!(
            owned.read_headers_mut().is_err(),
            "the error survives a take-over"
        );
        let mut in_place = frame(b"!=vBODY");
        assert!(in_place.read_headers_mut().is_err());
        assert!(in_place.headers().is_empty());
    }

    #[test]
    fn dropping_the_wire_keeps_view_and_body() {
        let mut frame = frame(b"k=vBODY");
        frame.set_wire(None);
        assert_eq!(frame.headers().get_str("k"), Some("v"));
        assert_eq!(frame.body(), b"BODY");
        assert_eq!(frame.body_bytes(), Bytes::from_static(b"BODY"));
        assert!(frame.wire().is_none());
    }
}
