//! The bolt header map: `i32 length` + bytes for each key and value, pairs
//! back to back up to `header_len`, no count prefix. Length `-1` is a null
//! string (its pair is skipped, as Java drops it); any other negative length,
//! or a string running past the map, is malformed.

use crate::error::CodecError;
use crate::headers::Headers;
use bytes::{BufMut, BytesMut};

/// Reads a whole header map in one pass, appending every non-null pair to
/// `headers` as a wire span, then the derived routing keys: `method` from
/// the last `sofa_head_method_name`, and `service` from the last
/// `sofa_head_target_service` when the map has no `service` field.
///
/// `map` is the `header_len` bytes after the class name; spans are pushed
/// relative to the buffer `headers` will be bound to, in which the map
/// starts at `offset`. On `Err` (the first malformed string) `headers` may
/// hold the pairs before it; the caller drops it.
pub(super) fn read(
    map: &[u8],
    offset: usize,
    protocol: &'static str,
    headers: &mut Headers,
) -> Result<(), CodecError> {
    let mut at = 0;
    let mut method = None;
    let mut target_service = None;
    let mut has_service = false;
    while at < map.len() {
        let key = string(map, &mut at).ok_or_else(|| bad_string(map, at, "key", protocol))?;
        let value = string(map, &mut at).ok_or_else(|| bad_string(map, at, "value", protocol))?;
        // A pair with a null key or value is dropped, as Java does.
        let (Some((key_start, key_end)), Some((value_start, value_end))) = (key, value) else {
            continue;
        };
        let key_bytes = map.get(key_start..key_end).unwrap_or_default();
        // Lengths first: most keys are none of the three.
        match key_bytes.len() {
            7 => has_service |= key_bytes == b"service",
            21 if *key_bytes == *b"sofa_head_method_name" => {
                method = Some((value_start, value_end));
            }
            24 if *key_bytes == *b"sofa_head_target_service" => {
                target_service = Some((value_start, value_end));
            }
            _ => {}
        }
        headers.push_wire(
            offset + key_start..offset + key_end,
            offset + value_start..offset + value_end,
        );
    }
    if let Some((start, end)) = method {
        headers.push_derived(crate::keys::METHOD, offset + start..offset + end);
    }
    if let (false, Some((start, end))) = (has_service, target_service) {
        headers.push_derived(crate::keys::SERVICE, offset + start..offset + end);
    }
    Ok(())
}

/// One string at `*at`: `Some(None)` for a null, `Some(Some((start, end)))`
/// (bounds of its bytes in `map`) otherwise, and `None` when its length is
/// cut off, negative (other than -1) or runs past the map. Moves `*at` past
/// the string only on success.
#[inline(always)]
fn string(map: &[u8], at: &mut usize) -> Option<Option<(usize, usize)>> {
    let tail = map.get(*at..)?;
    let (len, bytes) = tail.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len);
    let start = *at + 4;
    if len == u32::MAX {
        // -1: a null string.
        *at = start;
        return Some(None);
    }
    // Negative lengths are over 2^31 as u32, so one comparison rejects
    // them and lengths past the map alike.
    if len as usize > bytes.len() {
        return None;
    }
    let end = start + len as usize;
    *at = end;
    Some(Some((start, end)))
}

/// The error for the string at `at` that [`string`] rejected.
#[cold]
#[inline(never)]
fn bad_string(map: &[u8], at: usize, what: &str, protocol: &'static str) -> CodecError {
    let header_len = map.len();
    let len = map
        .get(at..)
        .and_then(|tail| tail.first_chunk::<4>())
        .map(|len| i32::from_be_bytes(*len));
    let what = match len {
        None => format!("header map: {what} length at byte {at} runs past header_len {header_len}"),
        Some(len) => format!(
            "header map: {what} of length {len} at byte {at} does not fit header_len {header_len}"
        ),
    };
    CodecError::malformed(protocol, what)
}

/// The encoded size of `headers`' wire fields, if it fits bolt's u16
/// `header_len`.
pub(super) fn encoded_len(headers: &Headers, protocol: &'static str) -> Result<u16, CodecError> {
    let len: usize = headers
        .wire_fields()
        .map(|(key, value)| 8 + key.len() + value.len())
        .sum();
    u16::try_from(len).map_err(|_| {
        CodecError::malformed(
            protocol,
            format!("header map of {len} bytes does not fit the u16 header_len"),
        )
    })
}

/// Appends `headers`' wire fields (derived routing keys left out). Lengths
/// fit i32 because [`encoded_len`] bounded the total to u16.
pub(super) fn write(headers: &Headers, dst: &mut BytesMut) {
    for (key, value) in headers.wire_fields() {
        for string in [key, value] {
            dst.put_u32(string.len() as u32);
            dst.put_slice(string);
        }
    }
}
