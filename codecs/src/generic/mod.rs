//! The config-driven generic codec ("x-protocol"): carry a simple custom
//! binary RPC through the gateway with no code, by describing its frame in
//! JSON. The model mirrors tokio-util's `LengthDelimitedCodec::Builder`
//! (length offset, width, endianness, adjustment, maximum) plus a magic,
//! a direction bit, a request id and a few kind markers.
//!
//! ```text
//!  offset 0                                                header_len
//!  +--------+-------+----------+------------+--------+--------+---------------+
//!  | magic  | flags | id       | status     | length | (other | payload       |
//!  | (hex)  | byte  | (1/2/4/8)| (resp only)|(1/2/4/8)| bytes)| (opaque, body)|
//!  +--------+-------+----------+------------+--------+--------+---------------+
//!            |
//!            +-- direction: byte & mask == response → response, else request
//!            +-- goaway / heartbeat / oneway: byte & mask == value
//!
//!  frame_len = length + length_adjust      (header_len ≤ frame_len ≤ max_frame_len)
//! ```
//!
//! Fields can sit anywhere in the header and in any order; the picture is
//! only one arrangement. A protocol whose request and response headers
//! differ (x_example: 11 and 13 bytes, length at 7 or 9) gives a `request`
//! and a `response` layout; one with a single header (Dubbo) gives `layout`.
//! Decoding reads `direction.offset + 1` bytes to pick the layout, waits
//! for its `header_len`, reads the length and checks it against
//! `max_frame_len` and the decode [`crate::Limits`] before buffering more.
//!
//! A frame's kind comes from its direction and the first marker that
//! matches, tested in this order: `goaway` (either direction), `heartbeat`
//! (a ping as a request, a pong as a response), `oneway` (requests only);
//! otherwise it is a request or a response. The payload is opaque: it
//! becomes the frame body (a slice of the wire bytes) and the header view
//! stays empty, so routing can only use what the listener knows, not the
//! payload. Forwarding writes the original bytes with the id patched in
//! place.
//!
//! # Frames built in memory
//!
//! Forwarded frames keep their bytes. A frame without wire bytes (built by
//! a filter, or a pong or error reply built by this codec) gets a header
//! that starts as zeros, then receives in order: the `reply_copy` bytes of
//! the request (replies only), the magic, the direction and marker bits of
//! its kind, the request id, the status (response side: the frame's, else
//! `success_value`; error replies: `error_status`) and the length. **Every
//! other header byte is zero** (for Dubbo: the serialization bits of a
//! frame built from scratch, which `reply_copy` restores in replies). A
//! decoded frame whose header view was changed starts from its original
//! header instead of zeros.
//!
//! Marker bits of the kinds a frame is *not* are cleared by flipping one
//! bit of their mask (the lowest one neither the direction nor the frame's
//! own marker needs): a request built for x_example gets type `01`
//! (message) rather than `00` (heartbeat), a Dubbo request gets the two-way
//! bit. The header is then classified again, and a config that cannot
//! express a kind is refused when loaded. Pongs carry `heartbeat.payload`
//! (default empty); error replies carry the UTF-8 message, cut to what the
//! length field and `max_frame_len` allow.
//!
//! What the model deliberately cannot express: lengths that are sums of
//! several fields (bolt), checksums, variable-length headers, and payload
//! formats. Such protocols get a built-in codec.
//!
//! Registering one:
//!
//! ```
//! use meshgate_codecs::Registry;
//! use meshgate_codecs::generic::{GenericCodec, GenericConfig};
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config: GenericConfig = GenericConfig {
//! #     name: "x_example".into(),
//! #     magic: Some("78".into()),
//! #     direction: Some(meshgate_codecs::generic::DirectionConfig {
//! #         offset: Some(2), mask: None, response: Some(1u8.into()) }),
//! #     layout: Some(meshgate_codecs::generic::LayoutConfig {
//! #         header_len: Some(11), length_offset: Some(7), length_adjust: 11,
//! #         ..Default::default() }),
//! #     ..Default::default()
//! # };
//! let mut registry = Registry::builtin();
//! registry.register(Arc::new(GenericCodec::new(config)?))?;
//! # Ok(())
//! # }
//! ```

mod build;
mod codec;
mod config;
mod error;
mod layout;
mod validate;

pub use codec::GenericCodec;
pub use config::{
    ByteValue, CopyConfig, DirectionConfig, Endian, GenericConfig, LayoutConfig, MarkerConfig,
    RequestIdConfig,
};
pub use error::GenericConfigError;

/// The protocol name in [`crate::CodecError`]s (the configured name is in
/// their message).
const PROTOCOL: &str = "generic";
