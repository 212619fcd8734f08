//! Parsers for single config values: byte markers, integer fields placed
//! in a header, widths, bytes and hex strings. Each reports the JSON path
//! it was given.

use super::Named;
use crate::generic::config::{ByteValue, Endian};
use crate::generic::error::GenericConfigError as E;
use crate::generic::layout::{BitField, UintField};

pub(super) type RawBits<'a> = (Option<u64>, &'a Option<ByteValue>, &'a Option<ByteValue>);

/// A `{offset, mask, <value_key>}` marker, which must lie in every header
/// of `on`.
pub(super) fn marker_bits(
    path: &'static str,
    raw: Option<RawBits<'_>>,
    value_key: &'static str,
    on: &[&Named],
) -> Result<Option<BitField>, E> {
    let Some((offset, mask, value)) = raw else {
        return Ok(None);
    };
    let offset =
        offset.ok_or_else(|| E::missing(format!("{path}.offset"), "the byte holding the bits"))?;
    let mask_path = format!("{path}.mask");
    let mask = byte(mask.as_ref(), &mask_path)?.unwrap_or(0xFF);
    if mask == 0 {
        return Err(E::invalid(
            mask_path,
            "0 selects no bits",
            "give the bits to compare, e.g. \"0x80\" (default 0xff)",
        ));
    }
    let value_path = format!("{path}.{value_key}");
    let value = byte(value.as_ref(), &value_path)?
        .ok_or_else(|| E::missing(value_path.clone(), "the masked value to compare with"))?;
    if value & !mask != 0 {
        return Err(E::invalid(
            value_path,
            format!("{value:#04x} has bits outside the mask {mask:#04x}, so it never matches"),
            format!("use a value within the mask, e.g. {:#04x}", value & mask),
        ));
    }
    let mut at = 0;
    for named in on {
        at = span(&format!("{path}.offset"), offset, 1, named)?.0;
    }
    Ok(Some(BitField {
        offset: at,
        mask,
        value,
    }))
}

/// A whole-byte field that must lie in every header of `on`.
pub(super) fn uint(
    path: &str,
    offset: u64,
    width: usize,
    endian: Endian,
    on: &[&Named],
) -> Result<UintField, E> {
    let mut field = None;
    for named in on {
        let header_len = named.layout.header_len;
        field = Some(field_in(
            path,
            offset,
            width,
            endian,
            named.prefix,
            header_len,
        )?);
    }
    field.ok_or_else(|| E::missing(path, "a layout to place the field in"))
}

pub(super) fn field_in(
    path: &str,
    offset: u64,
    width: usize,
    endian: Endian,
    header: &'static str,
    header_len: usize,
) -> Result<UintField, E> {
    let (offset, width) = within(path, offset, width as u64, header, header_len)?;
    Ok(UintField {
        offset,
        width,
        big_endian: endian == Endian::Big,
    })
}

/// `len` bytes at `offset` inside `named`'s header, as usizes.
pub(super) fn span(path: &str, offset: u64, len: u64, named: &Named) -> Result<(usize, usize), E> {
    within(path, offset, len, named.prefix, named.layout.header_len)
}

pub(super) fn within(
    path: &str,
    offset: u64,
    len: u64,
    header: &'static str,
    header_len: usize,
) -> Result<(usize, usize), E> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= header_len as u64 => Ok((offset as usize, len as usize)),
        _ => Err(E::OutsideHeader {
            path: path.to_owned(),
            start: offset,
            end: end.unwrap_or(u64::MAX),
            header,
            header_len: header_len as u64,
        }),
    }
}

pub(super) fn width(
    value: Option<u64>,
    default: u64,
    path: &str,
    allowed: &[u64],
    text: &'static str,
) -> Result<usize, E> {
    let width = value.unwrap_or(default);
    if !allowed.contains(&width) {
        return Err(E::Width {
            path: path.to_owned(),
            width,
            allowed: text,
        });
    }
    Ok(width as usize)
}

/// A byte given as a number or a `0x` hex string; `None` when absent.
pub(super) fn byte(value: Option<&ByteValue>, path: &str) -> Result<Option<u8>, E> {
    let parsed = match value {
        None => return Ok(None),
        Some(ByteValue::Int(n)) => u8::try_from(*n).ok(),
        Some(ByteValue::Hex(s)) => s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .filter(|h| !h.is_empty() && h.len() <= 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok()),
    };
    parsed.map(Some).ok_or_else(|| {
        E::invalid(
            path,
            format!("{value:?} is not a byte"),
            "write a number from 0 to 255, or a hex string such as \"0x80\"",
        )
    })
}

/// Hex text (optionally `0x`-prefixed) as bytes.
pub(super) fn hex_bytes(text: &str, path: &str) -> Result<Vec<u8>, E> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let bad = |problem: &str| {
        E::invalid(
            path,
            format!("{text:?} {problem}"),
            "write the bytes as pairs of hex digits, e.g. \"dabb\"",
        )
    };
    if !digits.len().is_multiple_of(2) {
        return Err(bad("has an odd number of hex digits"));
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let hex = std::str::from_utf8(pair).ok();
            hex.filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("is not hex"))
        })
        .collect()
}
