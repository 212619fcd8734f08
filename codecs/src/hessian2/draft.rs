//! The Hessian 2.0 *draft* grammar, as Caucho Hessian 3.1.x's
//! `Hessian2Output` writes it and SOFA's Java hessian, hessian.js-1 and
//! sofa-bolt-node (sofa-hessian-node's default `3.0` mode) read it: the
//! bolt codec writes its error replies with it
//! (`testdata/vectors/bolt/v1_response_status_6_no_processor.bin` is one,
//! byte for byte).
//!
//! Strings: `0x00..=0x1f` + the characters for up to 31 UTF-16 units, else
//! `S` + u16 units, with `s` + u16 for each non-final chunk of 0x8000
//! units. Characters are written one UTF-16 unit at a time as Java does
//! (1 to 3 bytes each), so a character outside the basic plane becomes its
//! two surrogates, three bytes each (CESU-8): Java's reader takes nothing
//! else.

use super::{CHUNK_UNITS, write_int};
use bytes::{BufMut, BytesMut};

/// Appends `s` as a draft string (see the module docs).
pub(crate) fn write_string(dst: &mut BytesMut, s: &str) {
    let mut rest = s;
    loop {
        let (units, split) = super::prefix_units(rest, CHUNK_UNITS);
        let (chunk, tail) = rest.split_at(split);
        // `prefix_units` stops at CHUNK_UNITS, which fits 16 bits.
        let len = u16::try_from(units).unwrap_or(u16::MAX);
        if !tail.is_empty() {
            dst.put_u8(b's');
            dst.put_u16(len);
            write_chars(dst, chunk);
            rest = tail;
            continue;
        }
        if units <= 0x1F {
            dst.put_u8(len as u8);
        } else {
            dst.put_u8(b'S');
            dst.put_u16(len);
        }
        write_chars(dst, chunk);
        return;
    }
}

/// The characters of `s`, one UTF-16 unit at a time (CESU-8).
fn write_chars(dst: &mut BytesMut, s: &str) {
    if s.is_ascii() {
        dst.extend_from_slice(s.as_bytes());
        return;
    }
    let mut units = [0u16; 2];
    for c in s.chars() {
        for &unit in c.encode_utf16(&mut units).iter() {
            // Each arm's casts keep exactly the bits its bytes carry.
            match unit {
                0..=0x7F => dst.put_u8(unit as u8),
                0x80..=0x7FF => {
                    dst.put_u8(0xC0 | (unit >> 6) as u8);
                    dst.put_u8(0x80 | (unit & 0x3F) as u8);
                }
                _ => {
                    dst.put_u8(0xE0 | (unit >> 12) as u8);
                    dst.put_u8(0x80 | ((unit >> 6) & 0x3F) as u8);
                    dst.put_u8(0x80 | (unit & 0x3F) as u8);
                }
            }
        }
    }
}

/// Appends the UTF-16 length of a type or class name as an int, then its
/// characters: how the draft writes a class definition's name.
fn write_type_name(dst: &mut BytesMut, name: &str) {
    let units = name.encode_utf16().count();
    write_int(dst, i32::try_from(units).unwrap_or(i32::MAX));
    write_chars(dst, name);
}

/// Appends a class definition: `O`, the class name, the field count and
/// the field names. The first definition of a body is reference 0, the
/// next 1, and so on ([`write_object`]).
pub(crate) fn write_class_def(dst: &mut BytesMut, class: &str, fields: &[&str]) {
    dst.put_u8(b'O');
    write_type_name(dst, class);
    write_int(dst, i32::try_from(fields.len()).unwrap_or(i32::MAX));
    for field in fields {
        write_string(dst, field);
    }
}

/// Starts an instance of class definition `class_ref`: `o` and the
/// reference; the field values follow, in the definition's order.
pub(crate) fn write_object(dst: &mut BytesMut, class_ref: u32) {
    dst.put_u8(b'o');
    write_int(dst, i32::try_from(class_ref).unwrap_or(i32::MAX));
}

/// Starts a list of `len` values of type `type_name` (e.g.
/// `[java.lang.StackTraceElement` for a Java array): `V`, then `t`, the
/// name's u16 length and the name, then `n` and one byte for fewer than
/// 256 values, or `l` and four bytes. The values follow, then
/// [`write_list_end`].
pub(crate) fn write_list_begin(dst: &mut BytesMut, type_name: &str, len: usize) {
    dst.put_u8(b'V');
    dst.put_u8(b't');
    let units = type_name.encode_utf16().count();
    dst.put_u16(u16::try_from(units).unwrap_or(u16::MAX));
    write_chars(dst, type_name);
    match u8::try_from(len) {
        Ok(n) => {
            dst.put_u8(b'n');
            dst.put_u8(n);
        }
        Err(_) => {
            dst.put_u8(b'l');
            dst.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
        }
    }
}

/// Ends a list: `z`.
pub(crate) fn write_list_end(dst: &mut BytesMut) {
    dst.put_u8(b'z');
}
