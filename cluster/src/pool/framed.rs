//! The tokio-util codec adapter over a [`FrameCodec`]: upstream pools and
//! the gateway's downstream driver both read with
//! `FramedRead<_, FramedCodec>` and write with `FramedWrite<_, FramedCodec>`
//! (`feed` many frames, `flush` once: one write for a batch).

use bytes::BytesMut;
use meshgate_codecs::{CodecError, Frame, FrameCodec, Limits};
use std::io;
use std::sync::Arc;
use tokio_util::codec::{Decoder, Encoder};

/// [`Decoder`] and [`Encoder`] for `Frame`s over a shared codec. Cheap to
/// clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct FramedCodec {
    codec: Arc<dyn FrameCodec>,
    limits: Limits,
}

/// A framed stream's error: the bytes (decode: the stream is corrupt,
/// answer with `decode_error_reply` from `FramedRead::read_buffer` and
/// close; encode: only that frame failed, nothing of it was buffered) or
/// the socket.
#[derive(Debug, thiserror::Error)]
pub enum FramedError {
    /// The codec refused the bytes or the frame.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The socket failed (or closed in the middle of a frame).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FramedCodec {
    /// An adapter decoding with `limits`.
    pub fn new(codec: Arc<dyn FrameCodec>, limits: Limits) -> FramedCodec {
        FramedCodec { codec, limits }
    }

    /// The codec.
    pub fn codec(&self) -> &Arc<dyn FrameCodec> {
        &self.codec
    }
}

impl Decoder for FramedCodec {
    type Item = Frame;
    type Error = FramedError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramedError> {
        Ok(self.codec.decode(src, &self.limits)?)
    }
}

impl Encoder<Frame> for FramedCodec {
    type Error = FramedError;

    /// Appends the frame; on error `dst` is left as it was, so the stream
    /// never carries half a frame.
    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FramedError> {
        let start = dst.len();
        self.codec.encode(&frame, dst).map_err(|err| {
            dst.truncate(start);
            FramedError::Codec(err)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshgate_codecs::FrameKind;
    use meshgate_codecs::bolt::BoltCodec;

    #[test]
    fn round_trips_and_never_buffers_half_a_frame() {
        let mut framed = FramedCodec::new(Arc::new(BoltCodec::v1()), Limits::default());
        let mut req = Frame::new(FrameKind::Request, 9);
        req.set_body(bytes::Bytes::from_static(b"payload"));
        let mut buf = BytesMut::new();
        framed.encode(req, &mut buf).expect("encodes");
        let len = buf.len();

        // A frame the codec refuses leaves the buffer as it was.
        let mut bad = Frame::new(FrameKind::Request, 10);
        bad.meta.version = 9;
        let err = framed
            .encode(bad, &mut buf)
            .expect_err("bolt has no version 9");
        assert!(matches!(err, FramedError::Codec(_)));
        assert_eq!(buf.len(), len);

        let back = framed.decode(&mut buf).expect("decodes").expect("whole");
        assert_eq!((back.request_id, back.body()), (9, &b"payload"[..]));
        assert!(framed.decode(&mut buf).expect("empty").is_none());
    }

    #[test]
    fn decode_enforces_the_limits() {
        let mut framed = FramedCodec::new(Arc::new(BoltCodec::v1()), Limits::new(64));
        let mut req = Frame::new(FrameKind::Request, 1);
        req.set_body(bytes::Bytes::from(vec![0u8; 1000]));
        let mut buf = BytesMut::new();
        BoltCodec::v1().encode(&req, &mut buf).expect("encodes");
        let err = framed.decode(&mut buf).expect_err("too large");
        assert!(matches!(
            err,
            FramedError::Codec(CodecError::FrameTooLarge { .. })
        ));
    }
}
