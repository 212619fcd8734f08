//! The wire layer of meshgate: one protocol-neutral [`Frame`] model, the
//! [`FrameCodec`] trait every framed RPC protocol implements, the ordered
//! protocol [`Registry`] with first-bytes detection, and the built-in codecs:
//! SOFARPC bolt (v1 and v2), Dubbo 2 (with the hessian2 subset its request
//! head needs) and a config-driven generic codec for simple custom protocols.
//!
//! What this crate deliberately does not do:
//! - no I/O and no async runtime: every call is synchronous over a buffer, so
//!   fuzz targets, benches and tools call `decode` directly;
//! - no HTTP codecs: HTTP/1 and HTTP/2 are served by hyper and h2 in the
//!   gateway; this crate only *detects* them so one listener can tell all
//!   protocols apart;
//! - no routing, load balancing or connection management.
//!
//! The decode contract follows `tokio_util::codec::Decoder`: `Ok(None)` means
//! "need more bytes" and consumes nothing, `Ok(Some(frame))` consumes exactly
//! one frame, `Err(_)` means the stream is corrupt and the connection should
//! be answered (see [`FrameCodec::decode_error_reply`]) and closed. Length
//! fields are checked against [`Limits`] before any byte is buffered for them.
//!
//! `decode` frames a message and reads its fixed header; the header section
//! (the header view a router matches on) is read from the frame's wire
//! bytes the first time something asks ([`Frame::headers`]), so forwarding
//! a frame whose headers nobody reads costs no parse.
//! [`FrameCodec::decode_checked`], what a server-side driver calls, reads a
//! request's header section at once, so a malformed one is a decode error.

pub mod bolt;
mod codec;
pub mod dubbo;
mod error;
mod frame;
pub mod generic;
mod headers;
mod hessian2;
pub mod http;
mod registry;
mod spare_frames;
mod status;
mod wire;

pub use codec::{Detect, FrameCodec, Limits, MIN_READ_BUFFER, PoolMode, reserve_for_frame};
pub use error::{CodecError, RegistryError};
pub use frame::{FixedFields, Frame, FrameFields, FrameKind, HeaderReader, Status, WireMeta};
pub use headers::{Headers, keys};
pub use registry::{AUTO, Detection, Protocol, ProtocolSet, Registry};
pub use status::ReplyStatus;
pub use wire::Wire;
