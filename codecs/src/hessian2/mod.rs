//! Writing the few hessian2 values the codecs produce themselves: Dubbo's
//! error messages and re-encoded attachments, and bolt's error replies (an
//! `RpcServerException` object).
//!
//! Two dialects of "hessian2" are on the wire, and they agree only on part
//! of the grammar:
//!
//! | | Hessian 2.0 ([`write_string`]) | the 2.0 draft ([`draft`]) |
//! |---|---|---|
//! | spoken by | Caucho Hessian 4, Dubbo's hessian-lite, dubbo-remoting, dubbo-ssl-python | Caucho Hessian 3.1.x, SOFA's Java hessian, hessian.js-1 (sofa-hessian-node's default `3.0` mode, which sofa-bolt-node uses) |
//! | int | `0x80..=0xd7` compact forms, `I` + 4 bytes | the same ([`write_int`]) |
//! | null | `N` | the same ([`NULL`]) |
//! | string ≤ 31 units | `0x00..=0x1f` + UTF-8 | the same |
//! | string 32..=1023 units | `0x30..=0x33` + 1 byte | `S` + u16 |
//! | non-final chunk | `R` + u16 | `s` + u16 |
//! | class definition | `C` string int string* | `O` int(type length) type int string* |
//! | object instance | `O` int, or `0x60 + ref` | `o` int |
//!
//! Lengths count UTF-16 units, as Java's `String.length()`. No value is
//! ever written that the other dialect's readers are asked to read: Dubbo
//! replies use the 2.0 forms, bolt replies the draft.

pub(crate) mod draft;
#[cfg(test)]
mod tests;

use bytes::{BufMut, BytesMut};

/// The largest chunk hessian2 writers emit, in UTF-16 units.
pub(crate) const CHUNK_UNITS: usize = 0x8000;

/// The null value, in both dialects.
pub(crate) const NULL: u8 = b'N';

/// Appends `n` as a hessian int, in the shortest form (the same in both
/// dialects): one byte for -16..=47, two for -2048..=2047, three for
/// -262144..=262143, else `I` and four bytes.
pub(crate) fn write_int(dst: &mut BytesMut, n: i32) {
    // Every cast below keeps the low byte(s) the form stores.
    match n {
        -0x10..=0x2F => dst.put_u8((0x90 + n) as u8),
        -0x800..=0x7FF => {
            dst.put_u8((0xC8 + (n >> 8)) as u8);
            dst.put_u8(n as u8);
        }
        -0x4_0000..=0x3_FFFF => {
            dst.put_u8((0xD4 + (n >> 16)) as u8);
            dst.put_u8((n >> 8) as u8);
            dst.put_u8(n as u8);
        }
        _ => {
            dst.put_u8(b'I');
            dst.put_i32(n);
        }
    }
}

/// Appends `s` as a Hessian 2.0 string, in the shortest form for its
/// length in UTF-16 units, and in `R` chunks of at most 0x8000 units (never
/// splitting a surrogate pair) when longer, as Java's `Hessian2Output` does.
pub fn write_string(dst: &mut BytesMut, s: &str) {
    let mut rest = s;
    loop {
        let (units, split) = prefix_units(rest, CHUNK_UNITS);
        let (chunk, tail) = rest.split_at(split);
        if tail.is_empty() {
            write_final(dst, units, chunk);
            return;
        }
        dst.put_u8(b'R');
        // `prefix_units` stops at CHUNK_UNITS, which fits 16 bits.
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
    // `units` is at most CHUNK_UNITS here, so every cast below is exact.
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
