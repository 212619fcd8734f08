//! The protocol-neutral frame every framed codec decodes into and encodes
//! from: MOSN's header / data / trailer split as plain fields.

use crate::headers::Headers;
use crate::wire::Wire;
use bytes::Bytes;

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireMeta {
    /// Protocol version (bolt: 1 or 2; Dubbo: unused).
    pub version: u8,
    /// Serialization of the body (bolt `codec`, Dubbo `flag & 0x1F`).
    pub serialization: u8,
    /// Protocol flag bits (bolt v2: the `switch` byte; Dubbo: the flag byte).
    pub flags: u8,
    /// Secondary version byte (bolt v2: `ver1`).
    pub sub_version: u8,
    /// The payload's type name where the protocol carries one (bolt class).
    pub class: Bytes,
}

/// One message of a framed protocol. See the crate docs for the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: FrameKind,
    /// The multiplexing id, widened to u64 whatever the wire width.
    pub request_id: u64,
    /// The header view: routing keys (`service`, `method`, `version`,
    /// `group`) plus the protocol's own header fields.
    pub headers: Headers,
    /// The body, opaque (a slice of the wire bytes for decoded frames).
    pub body: Bytes,
    /// Trailing header fields, where the protocol has them. Boxed: framed
    /// RPC protocols have none, and a `Frame` is moved on every hop.
    pub trailers: Option<Box<Headers>>,
    /// Responses: the status, raw and neutral.
    pub status: Option<Status>,
    /// How long the caller waits, if the frame says (bolt `timeout`, Dubbo
    /// `timeout` attachment).
    pub timeout_ms: Option<u32>,
    /// Protocol fields with no neutral name.
    pub meta: WireMeta,
    /// The frame's bytes as read (ids patched in place by
    /// [`crate::FrameCodec::set_request_id`]); `None` for frames built in
    /// memory, which the codec encodes from the fields above.
    pub wire: Option<Wire>,
}

impl Frame {
    /// An empty frame of `kind` with id `request_id`, built in memory.
    pub fn new(kind: FrameKind, request_id: u64) -> Frame {
        Frame {
            kind,
            request_id,
            headers: Headers::new(),
            body: Bytes::new(),
            trailers: None,
            status: None,
            timeout_ms: None,
            meta: WireMeta::default(),
            wire: None,
        }
    }

    /// The original bytes, if they can be forwarded as they are: the frame
    /// was decoded (or built by a codec) and its header view was not
    /// changed since. Codecs write these instead of re-encoding.
    pub fn unchanged_wire(&self) -> Option<&Wire> {
        self.wire.as_ref().filter(|_| !self.headers.is_modified())
    }

    /// Shorthand for the `service` routing key.
    pub fn service(&self) -> Option<&str> {
        self.headers.get_str(crate::keys::SERVICE)
    }

    /// Shorthand for the `method` routing key.
    pub fn method(&self) -> Option<&str> {
        self.headers.get_str(crate::keys::METHOD)
    }
}
