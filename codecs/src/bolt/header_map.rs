//! The bolt header map: `i32 length` + bytes for each key and value, pairs
//! back to back up to `header_len`, no count prefix. Length `-1` is a null
//! string (its pair is skipped, as Java drops it); any other negative length,
//! or a string running past the map, is malformed.

use crate::error::CodecError;
use crate::headers::Headers;
use bytes::{BufMut, BytesMut};
use std::ops::Range;

/// One pair of the map, as byte ranges relative to the map's first byte;
/// `None` for a null string.
pub(super) type Pair = (Option<Range<usize>>, Option<Range<usize>>);

/// Walks a header map without copying. Yields `Err` once at the first
/// malformed string, then stops.
pub(super) struct Pairs<'a> {
    map: &'a [u8],
    at: usize,
    protocol: &'static str,
}

impl<'a> Pairs<'a> {
    /// A walker over `map`, the `header_len` bytes after the class name.
    pub(super) fn new(map: &'a [u8], protocol: &'static str) -> Pairs<'a> {
        Pairs {
            map,
            at: 0,
            protocol,
        }
    }

    /// Checks the whole map; `Ok` means every later walk yields no error.
    pub(super) fn validate(map: &[u8], protocol: &'static str) -> Result<(), CodecError> {
        Pairs::new(map, protocol).try_for_each(|pair| pair.map(drop))
    }

    fn string(&mut self, what: &str) -> Result<Option<Range<usize>>, CodecError> {
        let len_bytes = self
            .map
            .get(self.at..self.at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or_else(|| {
                CodecError::malformed(
                    self.protocol,
                    format!(
                        "header map: {what} length at byte {} runs past header_len {}",
                        self.at,
                        self.map.len()
                    ),
                )
            })?;
        let len = i32::from_be_bytes(len_bytes);
        let start = self.at + 4;
        if len == -1 {
            self.at = start;
            return Ok(None);
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|end| *end <= self.map.len())
            .ok_or_else(|| {
                CodecError::malformed(
                    self.protocol,
                    format!(
                        "header map: {what} of length {len} at byte {} does not fit header_len {}",
                        self.at,
                        self.map.len()
                    ),
                )
            })?;
        self.at = end;
        Ok(Some(start..end))
    }
}

impl Iterator for Pairs<'_> {
    type Item = Result<Pair, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.map.len() {
            return None;
        }
        let pair = self
            .string("key")
            .and_then(|key| Ok((key, self.string("value")?)));
        if pair.is_err() {
            // Stop after the first error: the rest cannot be framed.
            self.at = self.map.len();
        }
        Some(pair)
    }
}

/// Pushes every non-null pair of a map that starts at `offset` in
/// `headers.wire()` as a wire span (no copy), then the derived routing keys:
/// `method` from `sofa_head_method_name`, and `service` from
/// `sofa_head_target_service` when the map has no `service` field. The map
/// must have passed [`Pairs::validate`].
pub(super) fn push_pairs(headers: &mut Headers, offset: usize, map_len: usize) {
    // A second handle on the same buffer (a reference-count bump), so the
    // map can be read while `headers` is extended.
    let wire = headers.wire().clone();
    let Some(map) = wire.get(offset..offset + map_len) else {
        debug_assert!(false, "header map outside the wire");
        return;
    };
    let mut method = None;
    let mut target_service = None;
    let mut has_service = false;
    for pair in Pairs::new(map, "bolt") {
        let Ok((Some(key), Some(value))) = pair else {
            debug_assert!(pair.is_ok(), "header map not validated");
            continue;
        };
        match map.get(key.clone()).unwrap_or_default() {
            b"service" => has_service = true,
            b"sofa_head_method_name" => method = Some(value.clone()),
            b"sofa_head_target_service" => target_service = Some(value.clone()),
            _ => {}
        }
        headers.push_wire(shift(key, offset), shift(value, offset));
    }
    if let Some(value) = method {
        headers.push_derived(crate::keys::METHOD, shift(value, offset));
    }
    if let (false, Some(value)) = (has_service, target_service) {
        headers.push_derived(crate::keys::SERVICE, shift(value, offset));
    }
}

fn shift(range: Range<usize>, by: usize) -> Range<usize> {
    range.start + by..range.end + by
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
