//! Raw config → validated [`Spec`]. Every check names the JSON path of the
//! field it rejects. Arithmetic on user numbers is checked: any `u64` or
//! `i64` a config holds is rejected cleanly, never overflowed.

mod fields;
mod layouts;

use super::config::{GenericConfig, MarkerConfig};
use super::error::GenericConfigError as E;
use super::layout::{BitField, CopyRange, Layout, Magic, Spec, UintField};
use crate::codec::Limits;
use crate::registry::ProtocolSet;
use fields::{byte, hex_bytes, marker_bits, span, uint, width};
use layouts::{layout, resolve_layouts};

/// A fixed header longer than this is a configuration mistake.
const MAX_HEADER_LEN: u64 = 64 * 1024;
const WIDTHS: &[u64] = &[1, 2, 4, 8];
const WIDTHS_TEXT: &str = "1, 2, 4 or 8";
const STATUS_WIDTHS: &[u64] = &[1, 2, 4];
const STATUS_WIDTHS_TEXT: &str = "1, 2 or 4";

/// One resolved layout with the name its fields are reported under.
pub(super) struct Named {
    /// `request`, `response` or `layout` (shared).
    pub(super) prefix: &'static str,
    pub(super) layout: Layout,
}

pub(super) fn build(c: &GenericConfig) -> Result<Spec, E> {
    let name = name(&c.name)?;
    let (req_prefix, req_raw, resp_prefix, resp_raw) = resolve_layouts(c)?;
    let request = Named {
        prefix: req_prefix,
        layout: layout(req_raw, req_prefix, false)?,
    };
    let response = Named {
        prefix: resp_prefix,
        layout: layout(resp_raw, resp_prefix, true)?,
    };
    let both = [&request, &response];

    let magic = magic(c, &both)?;
    let direction = marker_bits(
        "direction",
        c.direction.as_ref().map(|d| (d.offset, &d.mask, &d.response)),
        "response",
        &both,
    )?
    .ok_or_else(|| {
        E::missing(
            "direction",
            "give {\"offset\": N, \"mask\": \"0x80\", \"response\": 0}: the bits telling a response from a request",
        )
    })?;
    let request_id = request_id(c, &both)?;
    let heartbeat = marker("heartbeat", &c.heartbeat, &both)?;
    let goaway = marker("goaway", &c.goaway, &both)?;
    let oneway = marker("oneway", &c.oneway, &[&request])?;
    let heartbeat_payload = heartbeat_payload(c)?;
    check_overlaps(
        &both,
        magic.as_ref(),
        request_id.as_ref(),
        [Some(direction), heartbeat, goaway],
        oneway,
    )?;
    let max_frame_len = max_frame_len(c, &both)?;
    let error_status = error_status(c, &response)?;
    let reply_copy = reply_copy(c, &request, &response)?;

    let spec = Spec {
        name,
        magic,
        direction,
        request: request.layout,
        response: response.layout,
        request_id,
        heartbeat,
        heartbeat_payload,
        goaway,
        oneway,
        max_frame_len,
        error_status,
        reply_copy,
    };
    spec.check_expressible()?;
    Ok(spec)
}

fn request_id(c: &GenericConfig, both: &[&Named]) -> Result<Option<UintField>, E> {
    let Some(id) = &c.request_id else {
        return Ok(None);
    };
    let offset = id
        .offset
        .ok_or_else(|| E::missing("request_id.offset", "the byte where the request id starts"))?;
    let width = width(id.width, 4, "request_id.width", WIDTHS, WIDTHS_TEXT)?;
    uint("request_id.offset", offset, width, id.endian, both).map(Some)
}

fn marker(
    path: &'static str,
    raw: &Option<MarkerConfig>,
    on: &[&Named],
) -> Result<Option<BitField>, E> {
    if path != "heartbeat" && raw.as_ref().is_some_and(|m| m.payload.is_some()) {
        return Err(E::invalid(
            format!("{path}.payload"),
            "only heartbeats carry a configured payload",
            "move it to heartbeat.payload or remove it",
        ));
    }
    let bits = raw.as_ref().map(|m| (m.offset, &m.mask, &m.value));
    marker_bits(path, bits, "value", on)
}

fn heartbeat_payload(c: &GenericConfig) -> Result<Vec<u8>, E> {
    match c.heartbeat.as_ref().and_then(|h| h.payload.as_ref()) {
        Some(hex) => hex_bytes(hex, "heartbeat.payload"),
        None => Ok(Vec::new()),
    }
}

fn max_frame_len(c: &GenericConfig, both: &[&Named]) -> Result<Option<u64>, E> {
    let largest_header = both.iter().map(|n| n.layout.header_len).max().unwrap_or(0);
    match c.max_frame_len {
        Some(max) if max < largest_header as u64 || max > Limits::CEILING as u64 => {
            Err(E::invalid(
                "max_frame_len",
                format!(
                    "{max} is outside {largest_header}..={} (the largest header up to the 1 GiB ceiling)",
                    Limits::CEILING
                ),
                "raise it to at least the header length, or lower it to 1073741824 at most",
            ))
        }
        max => Ok(max),
    }
}

fn error_status(c: &GenericConfig, response: &Named) -> Result<Option<u32>, E> {
    let prefix = response.prefix;
    match (&response.layout.status, c.error_status) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(E::invalid(
            "error_status",
            format!("{prefix} has no status field to write it into"),
            format!("add {prefix}.status_offset or remove error_status"),
        )),
        (Some(_), None) => Err(E::missing(
            "error_status",
            "the status error replies carry, e.g. 1 for x_example or 70 for Dubbo",
        )),
        (Some(s), Some(v)) => u32::try_from(v)
            .ok()
            .filter(|v| u64::from(*v) <= s.field.max() && *v != s.success)
            .map(Some)
            .ok_or_else(|| {
                E::invalid(
                    "error_status",
                    format!("{v} is the success value or does not fit the status field"),
                    format!(
                        "use a value up to {} that differs from success_value {}",
                        s.field.max(),
                        s.success
                    ),
                )
            }),
    }
}

/// `reply_copy` ranges: each must lie in the request header (the source)
/// and in the response header (the destination).
fn reply_copy(c: &GenericConfig, request: &Named, response: &Named) -> Result<Vec<CopyRange>, E> {
    let mut ranges = Vec::with_capacity(c.reply_copy.len());
    for (i, copy) in c.reply_copy.iter().enumerate() {
        let path = format!("reply_copy[{i}]");
        let offset_path = format!("{path}.offset");
        let offset = copy.offset.ok_or_else(|| {
            E::missing(offset_path.clone(), "the first request-header byte to copy")
        })?;
        let len = copy.len.unwrap_or(1);
        if len == 0 {
            return Err(E::invalid(
                format!("{path}.len"),
                "copies nothing",
                "give at least 1 or remove the entry",
            ));
        }
        let mask = byte(copy.mask.as_ref(), &format!("{path}.mask"))?.unwrap_or(0xFF);
        let (offset, len) = span(&offset_path, offset, len, request)?;
        span(&offset_path, offset as u64, len as u64, response)?;
        ranges.push(CopyRange { offset, len, mask });
    }
    Ok(ranges)
}

/// Whole-byte fields (magic, length, status, id) may not share bytes;
/// marker bits may share a byte with each other (Dubbo's flag byte) but not
/// with a whole-byte field.
fn check_overlaps(
    both: &[&Named; 2],
    magic: Option<&Magic>,
    request_id: Option<&UintField>,
    markers: [Option<BitField>; 3],
    oneway: Option<BitField>,
) -> Result<(), E> {
    const MARKER_PATHS: [&str; 3] = ["direction.offset", "heartbeat.offset", "goaway.offset"];
    for named in both {
        let mut fields: Vec<(String, usize, usize)> = Vec::new();
        if let Some(m) = magic {
            fields.push(("magic".into(), m.offset, m.offset + m.bytes.len()));
        }
        let l = &named.layout;
        fields.push((
            format!("{}.length_offset", named.prefix),
            l.length.offset,
            l.length.end(),
        ));
        if let Some(s) = &l.status {
            let f = s.field;
            fields.push((format!("{}.status_offset", named.prefix), f.offset, f.end()));
        }
        if let Some(f) = request_id {
            fields.push(("request_id.offset".into(), f.offset, f.end()));
        }
        let whole = fields.len();
        let on_requests = oneway.filter(|_| named.prefix != "response");
        let bits = MARKER_PATHS
            .into_iter()
            .zip(markers)
            .chain([("oneway.offset", on_requests)]);
        for (path, bit) in bits {
            if let Some(b) = bit {
                fields.push((path.into(), b.offset, b.offset + 1));
            }
        }
        for (i, (path, start, end)) in fields.iter().enumerate().skip(1) {
            let earlier = fields.iter().take(i.min(whole));
            if let Some((other, ..)) = earlier.into_iter().find(|f| f.1 < *end && *start < f.2) {
                return Err(E::Overlap {
                    path: path.clone(),
                    other: other.clone(),
                    start: *start as u64,
                    end: *end as u64,
                });
            }
        }
    }
    Ok(())
}

fn name(name: &str) -> Result<String, E> {
    if name.is_empty() {
        return Err(E::missing(
            "name",
            "the protocol's registry name, e.g. \"x_example\"",
        ));
    }
    if name == crate::registry::AUTO || name.contains(',') || name.trim() != name {
        return Err(E::invalid(
            "name",
            format!("{name:?} cannot name a protocol (reserved, has a comma or spaces)"),
            "pick another name",
        ));
    }
    Ok(name.to_owned())
}

fn magic(c: &GenericConfig, on: &[&Named]) -> Result<Option<Magic>, E> {
    let Some(hex) = &c.magic else {
        if c.magic_offset.is_some() {
            return Err(E::invalid(
                "magic_offset",
                "is set but magic is not",
                "add magic, or remove magic_offset",
            ));
        }
        return Ok(None);
    };
    let bytes = hex_bytes(hex, "magic")?;
    if bytes.is_empty() {
        return Err(E::invalid(
            "magic",
            "is empty",
            "give the magic bytes in hex, e.g. \"dabb\", or remove magic (no auto-detection)",
        ));
    }
    let offset = c.magic_offset.unwrap_or(0);
    let mut start = 0;
    for named in on {
        start = span("magic", offset, bytes.len() as u64, named)?.0;
    }
    if start + bytes.len() > ProtocolSet::DETECT_MAX_BYTES {
        return Err(E::invalid(
            "magic_offset",
            format!(
                "the magic ends at byte {}, past the {} bytes detection reads",
                start + bytes.len(),
                ProtocolSet::DETECT_MAX_BYTES
            ),
            "use magic bytes that end within the first 64 bytes",
        ));
    }
    Ok(Some(Magic {
        offset: start,
        bytes,
    }))
}
