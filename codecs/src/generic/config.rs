//! The raw, serde-facing configuration of a generic protocol: it mirrors the
//! JSON a user writes, field for field. Nothing here is checked; that is
//! [`crate::generic::GenericCodec::new`]'s job, which turns a
//! [`GenericConfig`] into the validated runtime layout or says which field
//! (by its JSON path) is wrong and how to fix it.
//!
//! Every field has a default (an absent key, or `null`, leaves it), and
//! unknown keys are accepted: the gateway's config loader warns about them.
//! Required values are `Option`s so a missing one is reported with its path
//! instead of as a serde error.

use serde::{Deserialize, Serialize};

/// A generic length-prefixed protocol, described by offsets. See the
/// [module docs](crate::generic) for the model and `examples/generic/` for
/// `x_example` and Dubbo written this way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericConfig {
    /// The protocol's registry name (what `downstream_protocol` names).
    pub name: String,
    /// Bytes identifying the protocol, in hex (`"78"`, `"dabb"`). Without
    /// them the protocol cannot be auto-detected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magic: Option<String>,
    /// Where the magic starts (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magic_offset: Option<u64>,
    /// The bits telling a response from a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<DirectionConfig>,
    /// One layout shared by requests and responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutConfig>,
    /// The layout of requests (overrides `layout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<LayoutConfig>,
    /// The layout of responses (overrides `layout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<LayoutConfig>,
    /// Where the multiplexing id is; absent means one request per
    /// connection at a time (ping-pong pool) and request id 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestIdConfig>,
    /// The bits marking a heartbeat (ping, or pong in the response
    /// direction), and the payload built heartbeats carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<MarkerConfig>,
    /// The bits marking a "stop using this connection" frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goaway: Option<MarkerConfig>,
    /// The bits marking a request that takes no response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oneway: Option<MarkerConfig>,
    /// Largest frame accepted, header included (decode's `Limits` bound it
    /// too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_len: Option<u64>,
    /// The status value written in error replies the gateway builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u64>,
    /// Request-header bytes copied into every reply the gateway builds
    /// (x_example's type byte, Dubbo's serialization bits).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reply_copy: Vec<CopyConfig>,
}

/// Byte order of a multi-byte field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Most significant byte first (network order; the default).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

/// A byte-sized value written either as a JSON number (`128`) or as a hex
/// string (`"0x80"`), since JSON has no hex literals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ByteValue {
    /// A plain number.
    Int(u64),
    /// A `0x`-prefixed hex string.
    Hex(String),
}

impl From<u8> for ByteValue {
    fn from(value: u8) -> ByteValue {
        ByteValue::Int(u64::from(value))
    }
}

/// `direction`: a response is a frame whose byte at `offset`, masked with
/// `mask`, equals `response`; every other frame is a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectionConfig {
    /// The byte holding the direction bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The direction bits (default `0xff`, the whole byte).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<ByteValue>,
    /// The masked value meaning "response".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ByteValue>,
}

/// A fixed header: where its length field is and how it maps to the frame
/// length, and (responses) where the status is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LayoutConfig {
    /// Bytes of fixed header; decode waits for them before reading the
    /// length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_len: Option<u64>,
    /// Where the length field starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_offset: Option<u64>,
    /// Length field width: 1, 2, 4 (default) or 8 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_width: Option<u64>,
    /// Length field byte order (default big).
    pub length_endian: Endian,
    /// `frame_len = length + length_adjust` (signed; `header_len` when the
    /// length counts only the payload, 0 when it counts the whole frame).
    pub length_adjust: i64,
    /// Where the status field starts (responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_offset: Option<u64>,
    /// Status field width: 1 (default), 2 or 4 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_width: Option<u64>,
    /// Status field byte order (default big).
    pub status_endian: Endian,
    /// The status value meaning success (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_value: Option<u64>,
}

/// `request_id`: where the multiplexing id is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestIdConfig {
    /// Where the id starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Id width: 1, 2, 4 (default) or 8 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u64>,
    /// Id byte order (default big).
    pub endian: Endian,
}

/// A frame-kind marker: the byte at `offset`, masked with `mask`, equals
/// `value`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarkerConfig {
    /// The byte holding the marker bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The marker bits (default `0xff`, the whole byte).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<ByteValue>,
    /// The masked value that marks the frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<ByteValue>,
    /// Heartbeats only: the payload of heartbeats the gateway builds, in hex
    /// (default empty; Dubbo peers expect `"4e"`, a hessian null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// One `reply_copy` entry: `len` request-header bytes at `offset` copied to
/// the same offset of a built reply, keeping only the `mask` bits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyConfig {
    /// First byte copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bytes copied (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Bits copied of each byte (default `0xff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<ByteValue>,
}
