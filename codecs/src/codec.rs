//! The contract a framed RPC protocol implements.

use crate::error::CodecError;
use crate::frame::Frame;
use crate::status::ReplyStatus;
use bytes::BytesMut;
use std::fmt;

/// A detector's answer about a connection's first bytes (MOSN's
/// MatchSuccess / MatchFailed / MatchAgain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detect {
    /// These bytes start this protocol.
    Match,
    /// These bytes cannot start this protocol.
    NoMatch,
    /// Not enough bytes to tell; read more.
    NeedMore,
}

impl Detect {
    /// The answer for a protocol recognised by a fixed leading `magic`:
    /// `NoMatch` as soon as a buffered byte differs, `NeedMore` while
    /// `prefix` is a shorter start of it.
    pub fn magic(prefix: &[u8], magic: &[u8]) -> Detect {
        let n = prefix.len().min(magic.len());
        if prefix[..n] != magic[..n] {
            Detect::NoMatch
        } else if n < magic.len() {
            Detect::NeedMore
        } else {
            Detect::Match
        }
    }
}

/// How upstream connections carry requests for a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// Many requests in flight per connection, paired by request id.
    Multiplex,
    /// One request at a time per connection (no request id on the wire).
    PingPong,
}

/// Makes room in a read buffer for a whole frame of `frame_len` bytes
/// (already checked against the limits), for a decoder about to return
/// `Ok(None)`.
///
/// `BytesMut::reserve` grows by doubling, so a peer declaring a frame just
/// over half the buffer could make a connection hold nearly twice the
/// frame limit: this reuses space the buffer owns when it can, and
/// otherwise allocates one frame's worth, but never less than
/// [`MIN_READ_BUFFER`]. (A buffer cut to the size of one small frame would
/// stay that small: every later read would carry a single frame and
/// allocate again.)
pub fn reserve_for_frame(src: &mut BytesMut, frame_len: usize) {
    let additional = frame_len.saturating_sub(src.len());
    if src.capacity() >= frame_len || src.try_reclaim(additional) {
        return;
    }
    let mut grown = BytesMut::with_capacity(frame_len.max(MIN_READ_BUFFER));
    grown.extend_from_slice(src);
    *src = grown;
}

/// The smallest buffer [`reserve_for_frame`] allocates: a read then
/// carries many small frames.
pub const MIN_READ_BUFFER: usize = 8 * 1024;

/// Bounds decode enforces before buffering or allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes (whole frame, headers included).
    pub max_frame_len: usize,
}

impl Limits {
    /// 16 MiB, the default frame limit.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;
    /// The largest limit that can be configured (1 GiB): offsets inside a
    /// frame then always fit the header view's 30-bit spans.
    pub const CEILING: usize = 1 << 30;

    /// Limits with `max_frame_len` clamped to [`Limits::CEILING`].
    pub fn new(max_frame_len: usize) -> Limits {
        Limits {
            max_frame_len: max_frame_len.min(Limits::CEILING),
        }
    }

    /// `Err(FrameTooLarge)` when a declared frame length is over the limit.
    pub fn check(&self, protocol: &'static str, len: u64) -> Result<(), CodecError> {
        if len > self.max_frame_len as u64 {
            return Err(CodecError::FrameTooLarge {
                protocol,
                len,
                max: self.max_frame_len,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new(Limits::DEFAULT_MAX_FRAME_LEN)
    }
}

/// One framed RPC protocol. Implementations are stateless values shared by
/// every connection (`Arc<dyn FrameCodec>`); per-connection state, if a
/// protocol ever needs it, belongs to the connection driver.
///
/// Adding a protocol is one type implementing this trait plus one
/// [`crate::Registry::register`] call; nothing else in meshgate changes.
pub trait FrameCodec: Send + Sync + fmt::Debug + 'static {
    /// The protocol's configuration name (`bolt`, `dubbo`, a user name).
    fn name(&self) -> &str;

    /// Looks at a connection's first bytes. Pure: never consumes, and must
    /// decide within a few dozen bytes (detection waits at most
    /// [`crate::ProtocolSet::DETECT_MAX_BYTES`]).
    fn detect(&self, prefix: &[u8]) -> Detect;

    /// Takes one whole frame off the front of `src`.
    ///
    /// - `Ok(None)`: the frame is incomplete; nothing was consumed. Call again
    ///   when more bytes arrived. The codec may `reserve` room in `src` for
    ///   the rest of a frame whose length it already checked.
    /// - `Ok(Some(frame))`: exactly the frame's bytes were consumed; they are
    ///   now [`Frame::wire`], and the body borrows from them. The header view
    ///   is read from them on first use (see [`FrameCodec::fill_headers`]).
    /// - `Err(_)`: the stream is corrupt. `src` is left as it was, so
    ///   [`FrameCodec::decode_error_reply`] can address an error reply.
    ///
    /// A declared length over `limits.max_frame_len` is an error before any
    /// byte of that frame is buffered.
    fn decode(
        &self,
        src: &mut BytesMut,
        limits: &crate::Limits,
    ) -> Result<Option<Frame>, CodecError>;

    /// Appends `frame` to `dst`. A frame with [`Frame::unchanged_wire`]
    /// is written as those bytes (the zero-copy forward path); any other
    /// goes to [`FrameCodec::encode_fields`]. A codec overrides this only
    /// for a faster forward path of its own.
    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match frame.unchanged_wire() {
            Some(wire) => {
                wire.write_to(dst);
                Ok(())
            }
            None => self.encode_fields(frame, dst),
        }
    }

    /// Appends `frame` encoded from its fields: frames built in memory
    /// (error replies, pings) and decoded frames whose header view was
    /// changed ([`crate::Headers::is_modified`]), which still have their
    /// wire bytes and may keep what the fields do not model. Writes nothing
    /// on error.
    fn encode_fields(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError>;

    /// Sets the request id, in `frame.request_id` and in the wire bytes
    /// (recomputing any checksum), without re-encoding. Ids wider than the
    /// wire (see [`FrameCodec::max_request_id`]) are truncated.
    fn set_request_id(&self, frame: &mut Frame, id: u64);

    /// The largest request id the wire can carry; connection pools wrap
    /// their id counters here.
    fn max_request_id(&self) -> u64 {
        u64::MAX
    }

    /// Reads the header view of `frame` now and reports whether its header
    /// section is well formed. [`FrameCodec::decode`] only frames a message;
    /// its header view (bolt's header map, Dubbo's invocation head and
    /// attachments, the attachments of a Dubbo response) is read from the
    /// wire bytes the first time something asks ([`Frame::headers`]), and a
    /// malformed section then reads as an empty view. Callers that must
    /// tell "no such header" from "unreadable headers" (the proxy, before a
    /// filter reads or changes a response's headers) call this first. The
    /// frame is still forwarded as it is when this fails. Default: the
    /// frame's own lazy reader ([`Frame::read_headers`]).
    fn fill_headers(&self, frame: &mut Frame) -> Result<(), CodecError> {
        frame.read_headers_mut().map(drop)
    }

    /// [`FrameCodec::decode`], then, for a frame travelling from the caller
    /// ([`crate::FrameKind::is_request_side`]), its header view read at
    /// once: a malformed header section is then an error like any other
    /// malformed frame, and the frame's bytes are put back in front of
    /// `src`, so [`FrameCodec::decode_error_reply`] can address the reply.
    /// What a server-side connection driver calls: a request whose headers
    /// cannot be read cannot be routed. (Responses and other frames a
    /// proxy only forwards keep their header section unread.)
    fn decode_checked(
        &self,
        src: &mut BytesMut,
        limits: &crate::Limits,
    ) -> Result<Option<Frame>, CodecError> {
        // Checked where it lies: a `Frame` is large, and moving it out of
        // the result and back would copy it twice per request.
        let mut decoded = self.decode(src, limits);
        if let Ok(Some(frame)) = &mut decoded
            && frame.kind.is_request_side()
            && let Err(error) = frame.read_headers_mut()
        {
            if let Some(wire) = frame.wire() {
                let mut restored = BytesMut::with_capacity(wire.len() + src.len());
                wire.write_to(&mut restored);
                restored.extend_from_slice(src);
                *src = restored;
            }
            return Err(error);
        }
        decoded
    }

    /// The pong for a received ping, answered by the connection driver
    /// (MOSN `Heartbeater::Reply`). `None` when the protocol has none.
    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame> {
        let _ = ping;
        None
    }

    /// A ping with id `id`, sent by pools to keep idle upstream connections
    /// alive and by health checks (MOSN `Trigger`). `None` when the protocol
    /// has none.
    fn heartbeat_request(&self, id: u64) -> Option<Frame> {
        let _ = id;
        None
    }

    /// The frame telling a peer this connection is closing and must carry
    /// no new request (MOSN's GoAway: bolt's command 100, Dubbo's
    /// read-only event), sent by the downstream driver before a graceful
    /// close. `None` when the protocol has none.
    fn goaway(&self) -> Option<Frame> {
        None
    }

    /// The protocol's own error response to `req` for `status`, with `msg`
    /// where the protocol carries a message. `None` when `req` takes no
    /// reply (oneway, events, responses).
    fn error_reply(&self, req: &Frame, status: ReplyStatus, msg: &str) -> Option<Frame>;

    /// An error reply for a stream that failed to decode with `err`, built
    /// from the bytes still buffered (their fixed header, if complete, says
    /// which request to answer). `None` when no request can be addressed;
    /// the driver then just closes.
    fn decode_error_reply(&self, buffered: &[u8], err: &CodecError) -> Option<Frame> {
        let _ = (buffered, err);
        None
    }

    /// How upstream connections carry this protocol.
    fn pool_mode(&self) -> PoolMode {
        PoolMode::Multiplex
    }
}

#[cfg(test)]
mod tests {
    use super::Detect;

    #[test]
    fn magic_decides_at_the_first_differing_byte() {
        let magic = [0xda, 0xbb];
        assert_eq!(Detect::magic(&[], &magic), Detect::NeedMore);
        assert_eq!(Detect::magic(&[0xda], &magic), Detect::NeedMore);
        assert_eq!(Detect::magic(&[0xdb], &magic), Detect::NoMatch);
        assert_eq!(Detect::magic(&[0xda, 0xbc], &magic), Detect::NoMatch);
        assert_eq!(Detect::magic(&[0xda, 0xbb], &magic), Detect::Match);
        assert_eq!(Detect::magic(&[0xda, 0xbb, 0, 1], &magic), Detect::Match);
    }
}
