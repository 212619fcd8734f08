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
    let mut rest = map;
    let mut method = None;
    let mut target_service = None;
    let mut has_service = false;
    // Positions in `map` are taken from how much of it is left.
    let end_of = |left: &[u8]| map.len() - left.len();
    while !rest.is_empty() {
        let (key, after_key) =
            string(rest).ok_or_else(|| bad_string(map, end_of(rest), "key", protocol))?;
        let (value, after_value) = string(after_key)
            .ok_or_else(|| bad_string(map, end_of(after_key), "value", protocol))?;
        rest = after_value;
        // A pair with a null key or value is dropped, as Java does.
        let (Some(key), Some(value)) = (key, value) else {
            continue;
        };
        let key_end = offset + end_of(after_key);
        let value_end = offset + end_of(after_value);
        let key_span = key_end - key.len()..key_end;
        let value_span = value_end - value.len()..value_end;
        // Lengths first: most keys are none of the three.
        match key.len() {
            7 => has_service |= key == b"service",
            21 if *key == *b"sofa_head_method_name" => method = Some(value_span.clone()),
            24 if *key == *b"sofa_head_target_service" => {
                target_service = Some(value_span.clone());
            }
            _ => {}
        }
        headers.push_wire(key_span, value_span);
    }
    if let Some(value) = method {
        headers.push_derived(crate::keys::METHOD, value);
    }
    if let (false, Some(value)) = (has_service, target_service) {
        headers.push_derived(crate::keys::SERVICE, value);
    }
    Ok(())
}

/// The string at the front of `rest` (`None` for a null) and what follows
/// it; `None` when its length is cut off, negative (other than -1) or runs
/// past the map.
#[inline(always)]
fn string(rest: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len);
    if len == u32::MAX {
        // -1: a null string.
        return Some((None, tail));
    }
    // Negative lengths are over 2^31 as u32, longer than any map, so the
    // one bounds check rejects them and lengths past the map alike.
    let (string, after) = tail.split_at_checked(usize::try_from(len).ok()?)?;
    Some((Some(string), after))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, len: i32, bytes: &[u8]) {
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn error_of(map: &[u8]) -> String {
        read(map, 0, "bolt", &mut Headers::new())
            .expect_err("malformed")
            .to_string()
    }

    #[test]
    fn errors_name_the_string_its_place_and_the_map_length() {
        let mut map = Vec::new();
        string(&mut map, 1, b"k");
        string(&mut map, 1, b"v");
        string(&mut map, 1, b"k");
        string(&mut map, -2, b"");
        assert_eq!(
            error_of(&map),
            "malformed bolt frame: header map: value of length -2 at byte 15 does not fit header_len 19"
        );
        let mut map = Vec::new();
        string(&mut map, 9, b"k");
        assert_eq!(
            error_of(&map),
            "malformed bolt frame: header map: key of length 9 at byte 0 does not fit header_len 5"
        );
        assert_eq!(
            error_of(&[0, 0, 0, 1, b'k', 0, 0]),
            "malformed bolt frame: header map: value length at byte 5 runs past header_len 7"
        );
    }

    #[test]
    fn spans_are_relative_to_the_bound_buffer() {
        let mut map = Vec::new();
        string(&mut map, 7, b"service");
        string(&mut map, 3, b"a.B");
        string(&mut map, -1, b"");
        string(&mut map, 1, b"x");
        string(&mut map, 21, b"sofa_head_method_name");
        string(&mut map, 2, b"m1");
        let mut wire = b"CLASS".to_vec();
        wire.extend_from_slice(&map);
        let mut headers = Headers::new();
        read(&map, 5, "bolt", &mut headers).expect("well formed");
        headers.bind(wire.into());
        let pairs: Vec<_> = headers.iter().collect();
        assert_eq!(
            pairs,
            [
                (&b"service"[..], &b"a.B"[..]),
                (b"sofa_head_method_name", b"m1"),
                (b"method", b"m1"),
            ]
        );
    }
}
