//! The bytes a frame arrived as (or will leave as), split so the few bytes a
//! proxy rewrites can be patched in place.
//!
//! ```text
//!  +----------------+---------------------------------+---------------+
//!  | head (inline)  | rest (Bytes, shared, read-only) | tail (inline) |
//!  +----------------+---------------------------------+---------------+
//!   fixed header:     class names, header maps, body    checksums
//!   request id lives  (header views and the body are     (bolt v2 CRC)
//!   here               slices of this part)
//! ```
//!
//! `rest` is a view into the allocation the frame was read into: taking it
//! costs one reference count, not a copy. `head` and `tail` are copied out
//! (a few dozen bytes, inline in the `Wire`), so rewriting the request id
//! (and a checksum) needs neither an allocation nor a second handle on the
//! shared buffer.

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;
use std::fmt;

/// Patchable bytes kept inline: every built-in codec's fixed header fits
/// (bolt v2 requests have the longest, 24 bytes); a generic x-protocol
/// layout with a longer header spills it to the heap.
const INLINE_HEAD: usize = 32;

/// A frame's wire bytes as three contiguous parts: `head ++ rest ++ tail`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Wire {
    head: SmallVec<[u8; INLINE_HEAD]>,
    rest: Bytes,
    tail: SmallVec<[u8; 4]>,
}

impl Wire {
    /// Splits one whole frame into `head_len` patchable bytes, the shared
    /// middle, and `tail_len` patchable bytes at the end.
    ///
    /// If `head_len + tail_len` exceeds the frame, `tail` gets what is left
    /// after `head` (a codec bug, caught by a debug assertion).
    #[inline]
    pub fn split(mut frame: BytesMut, head_len: usize, tail_len: usize) -> Wire {
        debug_assert!(
            head_len + tail_len <= frame.len(),
            "wire split past the frame"
        );
        let head_len = head_len.min(frame.len());
        let tail_len = tail_len.min(frame.len() - head_len);
        let tail_start = frame.len() - tail_len;
        let head = copy_head(&frame, head_len);
        // Bounds moves only: `frame` stays the one handle on the read
        // buffer. (`Bytes::advance` is the cheaper of the two advances.)
        let tail = match tail_len {
            0 => SmallVec::new(),
            _ => {
                let tail = SmallVec::from_slice(frame.get(tail_start..).unwrap_or_default());
                frame.truncate(tail_start);
                tail
            }
        };
        let mut rest = frame.freeze();
        rest.advance(head_len);
        Wire { head, rest, tail }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.rest.len() + self.tail.len()
    }

    /// True when the frame has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The patchable fixed header.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Mutable access to the fixed header, for patching ids in place.
    pub fn head_mut(&mut self) -> &mut [u8] {
        &mut self.head
    }

    /// The shared middle part.
    pub fn rest(&self) -> &Bytes {
        &self.rest
    }

    /// The patchable suffix (empty for most protocols).
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// Mutable access to the suffix, for rewriting a checksum.
    pub fn tail_mut(&mut self) -> &mut [u8] {
        &mut self.tail
    }

    /// The three parts in wire order, for vectored writes.
    pub fn chunks(&self) -> [&[u8]; 3] {
        [&self.head, &self.rest, &self.tail]
    }

    /// Appends the frame to a write buffer: the whole "encode" of a frame
    /// that is forwarded unchanged.
    #[inline]
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        dst.extend_from_slice(self.head());
        dst.extend_from_slice(&self.rest);
        // Most protocols have no tail: no copy call for nothing.
        if !self.tail.is_empty() {
            dst.extend_from_slice(&self.tail);
        }
    }

    /// A contiguous copy of the frame (tools and tests; not the hot path).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in self.chunks() {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// The byte at `index` across the three parts, if in bounds.
    pub fn byte(&self, index: usize) -> Option<u8> {
        let mut index = index;
        for chunk in self.chunks() {
            if index < chunk.len() {
                return Some(chunk[index]);
            }
            index -= chunk.len();
        }
        None
    }
}

/// The first `len` bytes of `frame`. A frame that holds `INLINE_HEAD`
/// bytes (every frame with a body) is copied as one fixed-size block, not
/// through a variable-length `memcpy` call: that call's narrow stores,
/// read back as wide loads when the `Wire` moves next, stalled the store
/// buffer for a tenth of a forwarded frame's time.
#[inline(always)]
fn copy_head(frame: &[u8], len: usize) -> SmallVec<[u8; INLINE_HEAD]> {
    match frame.first_chunk::<INLINE_HEAD>() {
        Some(block) if len <= INLINE_HEAD => SmallVec::from_buf_and_len(*block, len),
        _ => SmallVec::from_slice(frame.get(..len).unwrap_or_default()),
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("head", &self.head.len())
            .field("rest", &self.rest.len())
            .field("tail", &self.tail.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_order_and_length() {
        let wire = Wire::split(BytesMut::from(&b"hhhrrrrtt"[..]), 3, 2);
        assert_eq!(wire.head(), b"hhh");
        assert_eq!(&wire.rest()[..], b"rrrr");
        assert_eq!(wire.tail(), b"tt");
        assert_eq!(wire.to_vec(), b"hhhrrrrtt");
        assert_eq!(wire.byte(7), Some(b't'));
        assert_eq!(wire.byte(9), None);
    }

    #[test]
    fn patching_the_head_does_not_touch_a_shared_buffer() {
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        let frame = buf.split_to(6);
        let mut wire = Wire::split(frame, 2, 0);
        wire.head_mut()[0] = b'X';
        assert_eq!(wire.to_vec(), b"X12345");
        assert_eq!(&buf[..], b"6789");
    }

    #[test]
    fn write_to_appends_all_parts() {
        let wire = Wire::split(BytesMut::from(&b"abcdef"[..]), 1, 1);
        let mut dst = BytesMut::from(&b">"[..]);
        wire.write_to(&mut dst);
        assert_eq!(&dst[..], b">abcdef");
    }
}
