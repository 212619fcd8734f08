//! One multiplexed connection's write buffer: requests are encoded into it
//! by the tasks that send them (under the connection's book lock), and the
//! connection's writer takes it whole, one batch per socket write.
//!
//! Batches are numbered. A request remembers the batch it was encoded
//! into; once the writer has taken that batch, the request counts as
//! written (the upstream may have it). While its batch is still open, its
//! bytes can be cut out again (the caller gave up), so a request whose
//! caller gave up before its batch left never reaches the upstream.

use bytes::BytesMut;
use meshgate_codecs::{CodecError, Frame, FrameCodec};
use std::ops::Range;

/// Bytes buffered past which requests wait for the writer to take the
/// batch before they are encoded. One frame always fits an empty buffer,
/// however large.
pub(super) const HIGH_WATER: usize = 1024 * 1024;

/// A write buffer larger than this is released once written, so one huge
/// frame does not pin its memory for the connection's life.
const KEEP_CAPACITY: usize = 256 * 1024;

/// Where a registered request's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Queued {
    /// Not encoded yet: its caller waits for room in the buffer.
    Waiting,
    /// Encoded into batch `batch`, at `at` while that batch is open.
    Encoded { batch: u64, at: Range<usize> },
}

/// The buffer the connection's next socket write takes.
#[derive(Debug)]
pub(super) struct Outbox {
    buf: BytesMut,
    /// The number of the open batch (`buf`); every lower number was taken
    /// by the writer.
    batch: u64,
    /// Bytes of the open batch cut out (requests abandoned before their
    /// batch left), skipped when the writer takes it. Rare.
    holes: Vec<Range<usize>>,
    high_water: usize,
}

impl Outbox {
    /// An empty buffer that takes frames while below `high_water` bytes.
    pub(super) fn new(high_water: usize) -> Outbox {
        Outbox {
            buf: BytesMut::new(),
            batch: 0,
            holes: Vec::new(),
            high_water,
        }
    }

    /// True while another frame may be encoded.
    pub(super) fn has_room(&self) -> bool {
        self.buf.len() < self.high_water
    }

    /// True when nothing waits for the writer (the writer must be woken
    /// after the first frame of a batch).
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Encodes `frame` into the open batch. On error nothing of it stays.
    pub(super) fn encode(
        &mut self,
        codec: &dyn FrameCodec,
        frame: &Frame,
    ) -> Result<Queued, CodecError> {
        let start = self.buf.len();
        match codec.encode(frame, &mut self.buf) {
            Ok(()) => Ok(Queued::Encoded {
                batch: self.batch,
                at: start..self.buf.len(),
            }),
            Err(err) => {
                self.buf.truncate(start);
                Err(err)
            }
        }
    }

    /// The number of the open batch.
    #[cfg(test)]
    pub(super) fn open_batch(&self) -> u64 {
        self.batch
    }

    /// True when a request queued as `queued` was taken by the writer.
    pub(super) fn written(&self, queued: &Queued) -> bool {
        matches!(queued, Queued::Encoded { batch, .. } if *batch < self.batch)
    }

    /// Takes back a request's bytes if its batch is still open; false if
    /// it was already taken (the request is written).
    pub(super) fn withdraw(&mut self, queued: &Queued) -> bool {
        match queued {
            Queued::Waiting => true,
            Queued::Encoded { batch, at } if *batch == self.batch => {
                self.holes.push(at.clone());
                true
            }
            Queued::Encoded { .. } => false,
        }
    }

    /// Hands the open batch to the writer: `spare` (written and cleared
    /// by the writer) becomes the new open buffer, and `spare` gets the
    /// batch's bytes, without the holes. Returns whether the buffer was
    /// full (callers may be waiting for room).
    pub(super) fn take(&mut self, spare: &mut BytesMut) -> bool {
        debug_assert!(spare.is_empty(), "the writer hands back an empty buffer");
        let was_full = !self.has_room();
        if spare.capacity() > KEEP_CAPACITY {
            *spare = BytesMut::new();
        }
        std::mem::swap(&mut self.buf, spare);
        self.batch += 1;
        if !self.holes.is_empty() {
            let mut holes = std::mem::take(&mut self.holes);
            holes.sort_unstable_by_key(|hole| hole.start);
            let mut kept = BytesMut::with_capacity(spare.len());
            let mut from = 0;
            for hole in holes {
                kept.extend_from_slice(spare.get(from..hole.start).unwrap_or_default());
                from = hole.end;
            }
            kept.extend_from_slice(spare.get(from..).unwrap_or_default());
            *spare = kept;
        }
        was_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshgate_codecs::FrameKind;
    use meshgate_codecs::bolt::BoltCodec;

    fn request(id: u64, body: &'static [u8]) -> Frame {
        let mut frame = Frame::new(FrameKind::Request, id);
        frame.set_body(bytes::Bytes::from_static(body));
        frame
    }

    fn decode_all(mut bytes: BytesMut) -> Vec<(u64, Vec<u8>)> {
        let codec = BoltCodec::v1();
        let limits = meshgate_codecs::Limits::default();
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut bytes, &limits).expect("decodes") {
            out.push((frame.request_id, frame.body().to_vec()));
        }
        assert!(bytes.is_empty(), "whole frames only");
        out
    }

    #[test]
    fn batches_number_the_writes_and_withdrawn_requests_never_leave() {
        let codec = BoltCodec::v1();
        let mut out = Outbox::new(HIGH_WATER);
        assert!(out.is_empty());
        let a = out.encode(&codec, &request(1, b"a")).expect("encodes");
        let b = out.encode(&codec, &request(2, b"bb")).expect("encodes");
        let c = out.encode(&codec, &request(3, b"ccc")).expect("encodes");
        assert!(!out.written(&a), "still in the open batch");
        assert!(out.withdraw(&b), "its batch is open: cut out");
        let mut spare = BytesMut::new();
        assert!(!out.take(&mut spare), "was not full");
        assert!(out.written(&a) && out.written(&c));
        assert!(!out.withdraw(&a), "taken: too late to withdraw");
        assert!(out.is_empty());
        assert_eq!(
            decode_all(spare),
            vec![(1, b"a".to_vec()), (3, b"ccc".to_vec())]
        );
        // A request that waits for room is never written.
        assert!(!out.written(&Queued::Waiting));
        assert!(out.withdraw(&Queued::Waiting));
    }

    #[test]
    fn the_high_water_mark_holds_frames_back_but_one_always_fits() {
        let codec = BoltCodec::v1();
        let mut out = Outbox::new(16);
        assert!(out.has_room());
        out.encode(&codec, &request(1, &[7; 64]))
            .expect("one frame fits, however large");
        assert!(!out.has_room());
        let mut spare = BytesMut::new();
        assert!(
            out.take(&mut spare),
            "was full: wake those waiting for room"
        );
        assert!(out.has_room());
    }

    #[test]
    fn a_frame_that_cannot_be_encoded_leaves_nothing() {
        let codec = BoltCodec::v1();
        let mut out = Outbox::new(HIGH_WATER);
        out.encode(&codec, &request(1, b"ok")).expect("encodes");
        let mut bad = request(2, b"bad");
        bad.meta.version = 9;
        assert!(out.encode(&codec, &bad).is_err());
        let mut spare = BytesMut::new();
        out.take(&mut spare);
        assert_eq!(decode_all(spare), vec![(1, b"ok".to_vec())]);
    }
}
