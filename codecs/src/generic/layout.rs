//! The validated runtime form of a generic protocol config: plain offsets
//! and widths that [`super::validate`] has proven to lie inside their
//! headers. Readers still bounds-check (a miss reads as 0 and writes are
//! dropped) so no input can panic even if an invariant were broken.

use crate::frame::{FrameKind, Status};

/// An unsigned integer field of 1, 2, 4 or 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UintField {
    pub(super) offset: usize,
    pub(super) width: usize,
    pub(super) big_endian: bool,
}

impl UintField {
    /// One past the field's last byte.
    pub(super) fn end(&self) -> usize {
        self.offset.saturating_add(self.width)
    }

    /// The largest value the field holds.
    pub(super) fn max(&self) -> u64 {
        match self.width {
            0 => 0,
            1..=7 => (1u64 << (8 * self.width)) - 1,
            _ => u64::MAX,
        }
    }

    /// The field's value in `head` (0 if `head` is too short).
    pub(super) fn read(&self, head: &[u8]) -> u64 {
        let Some(bytes) = head.get(self.offset..self.end()) else {
            return 0;
        };
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        if self.big_endian {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        }
    }

    /// Writes `value` truncated to the field's width.
    pub(super) fn write(&self, head: &mut [u8], value: u64) {
        let end = self.end();
        let Some(bytes) = head.get_mut(self.offset..end) else {
            return;
        };
        let le = value.to_le_bytes();
        for (i, byte) in bytes.iter_mut().enumerate() {
            let index = if self.big_endian {
                self.width - 1 - i
            } else {
                i
            };
            *byte = le.get(index).copied().unwrap_or(0);
        }
    }
}

/// Some bits of one byte: the field matches when `byte & mask == value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BitField {
    pub(super) offset: usize,
    pub(super) mask: u8,
    pub(super) value: u8,
}

impl BitField {
    pub(super) fn matches(&self, head: &[u8]) -> bool {
        head.get(self.offset)
            .is_some_and(|b| b & self.mask == self.value)
    }

    /// Makes the field match.
    pub(super) fn set(&self, head: &mut [u8]) {
        self.put(head, self.value);
    }

    /// Makes the field not match by flipping one bit of its mask, the
    /// lowest one outside `keep` (bits another field needs as they are),
    /// leaving the other bits under the mask alone. For x_example's type
    /// byte (mask `ff`, heartbeat `00`) this writes `01`, a message; for
    /// Dubbo's oneway marker (mask `c0`, value `80`, keeping the direction
    /// bit `80`) it sets the two-way bit `40`.
    pub(super) fn clear(&self, head: &mut [u8], keep: u8) {
        let free = match self.mask & !keep {
            0 => self.mask,
            free => free,
        };
        let lowest = free & free.wrapping_neg();
        self.put(head, self.value ^ lowest);
    }

    /// The bits of this field that sit in `other`'s byte.
    pub(super) fn bits_in_byte_of(&self, other: &BitField) -> u8 {
        if self.offset == other.offset {
            self.mask
        } else {
            0
        }
    }

    fn put(&self, head: &mut [u8], value: u8) {
        if let Some(byte) = head.get_mut(self.offset) {
            *byte = (*byte & !self.mask) | (value & self.mask);
        }
    }
}

/// Where a response's status is and which value means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct StatusField {
    pub(super) field: UintField,
    pub(super) success: u32,
}

impl StatusField {
    /// The status of a response header: raw code, and MOSN's neutral code
    /// (200 for the success value, 500 for anything else).
    pub(super) fn read(&self, head: &[u8]) -> Status {
        // Widths are at most 4 bytes (validated), so the value fits.
        let code = u32::try_from(self.field.read(head)).unwrap_or(u32::MAX);
        Status {
            code,
            neutral: if code == self.success { 200 } else { 500 },
        }
    }
}

/// One fixed header: its length, length field and (responses) status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) header_len: usize,
    pub(super) length: UintField,
    pub(super) length_adjust: i64,
    pub(super) status: Option<StatusField>,
}

/// A `reply_copy` range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CopyRange {
    pub(super) offset: usize,
    pub(super) len: usize,
    pub(super) mask: u8,
}

/// The magic bytes and where they sit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Magic {
    pub(super) offset: usize,
    pub(super) bytes: Vec<u8>,
}

/// Everything the codec needs, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Spec {
    pub(super) name: String,
    pub(super) magic: Option<Magic>,
    /// Matches responses.
    pub(super) direction: BitField,
    pub(super) request: Layout,
    pub(super) response: Layout,
    pub(super) request_id: Option<UintField>,
    pub(super) heartbeat: Option<BitField>,
    pub(super) heartbeat_payload: Vec<u8>,
    pub(super) goaway: Option<BitField>,
    pub(super) oneway: Option<BitField>,
    pub(super) max_frame_len: Option<u64>,
    pub(super) error_status: Option<u32>,
    pub(super) reply_copy: Vec<CopyRange>,
}

impl Spec {
    /// Bytes needed before the direction (hence the layout) is known.
    pub(super) fn direction_need(&self) -> usize {
        self.direction.offset.saturating_add(1)
    }

    pub(super) fn layout(&self, is_response: bool) -> &Layout {
        if is_response {
            &self.response
        } else {
            &self.request
        }
    }

    /// The first byte of `prefix` that contradicts the magic, if any.
    pub(super) fn magic_mismatch(&self, prefix: &[u8]) -> Option<(usize, u8, u8)> {
        let magic = self.magic.as_ref()?;
        magic
            .bytes
            .iter()
            .enumerate()
            .map(|(i, want)| (magic.offset.saturating_add(i), *want))
            .find_map(|(at, want)| match prefix.get(at) {
                Some(got) if *got != want => Some((at, want, *got)),
                _ => None,
            })
    }

    /// The markers checked on a frame of this direction, in precedence
    /// order: goaway, heartbeat, then (requests only) oneway.
    pub(super) fn markers(&self, is_response: bool) -> [Option<(BitField, MarkerKind)>; 3] {
        [
            self.goaway.map(|m| (m, MarkerKind::GoAway)),
            self.heartbeat.map(|m| (m, MarkerKind::Heartbeat)),
            self.oneway
                .filter(|_| !is_response)
                .map(|m| (m, MarkerKind::Oneway)),
        ]
    }

    /// The kind of a complete header of the given direction: the first
    /// marker that matches decides, else request or response.
    pub(super) fn classify(&self, head: &[u8], is_response: bool) -> FrameKind {
        let first = self
            .markers(is_response)
            .into_iter()
            .flatten()
            .find(|(field, _)| field.matches(head));
        match first {
            Some((_, MarkerKind::GoAway)) => FrameKind::GoAway,
            Some((_, MarkerKind::Heartbeat)) => FrameKind::Heartbeat { reply: is_response },
            Some((_, MarkerKind::Oneway)) => FrameKind::Oneway,
            None if is_response => FrameKind::Response,
            None => FrameKind::Request,
        }
    }

    /// The largest id the wire carries (0 without an id field).
    pub(super) fn max_request_id(&self) -> u64 {
        self.request_id.map_or(0, |f| f.max())
    }
}

/// Which marker matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MarkerKind {
    GoAway,
    Heartbeat,
    Oneway,
}

impl MarkerKind {
    /// The marker a frame of `kind` carries, if any.
    pub(super) fn of(kind: FrameKind) -> Option<MarkerKind> {
        match kind {
            FrameKind::GoAway => Some(MarkerKind::GoAway),
            FrameKind::Heartbeat { .. } => Some(MarkerKind::Heartbeat),
            FrameKind::Oneway => Some(MarkerKind::Oneway),
            FrameKind::Request | FrameKind::Response => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_fields_round_trip_both_orders() {
        for big_endian in [true, false] {
            for width in [1, 2, 4, 8] {
                let field = UintField {
                    offset: 1,
                    width,
                    big_endian,
                };
                let mut head = [0u8; 10];
                field.write(&mut head, 0x0102_0304_0506_0708);
                assert_eq!(field.read(&head), 0x0102_0304_0506_0708 & field.max());
                assert_eq!(head[0], 0);
                assert_eq!(head[9], 0);
            }
        }
        let field = UintField {
            offset: 0,
            width: 2,
            big_endian: true,
        };
        let mut head = [0u8; 2];
        field.write(&mut head, 0xABCD);
        assert_eq!(head, [0xAB, 0xCD]);
        assert_eq!(field.read(&[0xAB]), 0, "short heads read as 0");
    }

    #[test]
    fn bit_fields_set_and_clear_only_their_bits() {
        let oneway = BitField {
            offset: 0,
            mask: 0xC0,
            value: 0x80,
        };
        let mut head = [0x82u8];
        assert!(oneway.matches(&head));
        oneway.clear(&mut head, 0x80);
        assert_eq!(head, [0xC2]);
        oneway.clear(&mut head, 0x00);
        assert_eq!(head, [0xC2], "already cleared bits stay");
        let mut head = [0x82u8];
        oneway.clear(&mut head, 0xC0);
        assert_eq!(head, [0xC2], "with every bit kept, the lowest flips");
        oneway.set(&mut head);
        assert_eq!(head, [0x82]);
    }
}
