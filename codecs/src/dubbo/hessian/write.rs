//! Writing hessian2 strings, the only value the codec ever produces (error
//! messages and re-encoded attachments).

use super::CHUNK_CHARS;
use bytes::{BufMut, BytesMut};

/// Appends `s` as a hessian2 string, in the shortest form for its length
/// in UTF-16 units, and in `R` chunks of at most 0x8000 units (never
/// splitting a surrogate pair) when longer, as Java's `Hessian2Output` does.
pub fn write_string(dst: &mut BytesMut, s: &str) {
    let mut rest = s;
    loop {
        let (units, split) = prefix_units(rest, CHUNK_CHARS);
        let (chunk, tail) = rest.split_at(split);
        if tail.is_empty() {
            write_final(dst, units, chunk);
            return;
        }
        dst.put_u8(b'R');
        // `prefix_units` stops at CHUNK_CHARS, which fits 16 bits.
        dst.put_u16(u16::try_from(units).unwrap_or(u16::MAX));
        dst.extend_from_slice(chunk.as_bytes());
        rest = tail;
    }
}

/// Like [`write_string`] for bytes that should be UTF-8; invalid sequences
/// become U+FFFD, since a hessian string cannot carry them.
pub(crate) fn write_string_bytes(dst: &mut BytesMut, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => write_string(dst, s),
        Err(_) => write_string(dst, &String::from_utf8_lossy(bytes)),
    }
}

/// The UTF-16 length and byte length of the longest prefix of `s` that
/// holds at most `max` UTF-16 units.
fn prefix_units(s: &str, max: usize) -> (usize, usize) {
    if s.is_ascii() && s.len() <= max {
        return (s.len(), s.len());
    }
    let mut units = 0;
    for (at, c) in s.char_indices() {
        if units + c.len_utf16() > max {
            return (units, at);
        }
        units += c.len_utf16();
    }
    (units, s.len())
}

fn write_final(dst: &mut BytesMut, units: usize, chunk: &str) {
    // `units` is at most CHUNK_CHARS here, so every cast below is exact.
    match units {
        0..=0x1F => dst.put_u8(units as u8),
        0x20..=0x3FF => {
            dst.put_u8(0x30 + (units >> 8) as u8);
            dst.put_u8(units as u8);
        }
        _ => {
            dst.put_u8(b'S');
            dst.put_u16(units as u16);
        }
    }
    dst.extend_from_slice(chunk.as_bytes());
}
