//! The `layout` / `request` / `response` sections: which layout each
//! direction uses, and the checks inside one layout.

use super::fields::{field_in, width};
use super::{MAX_HEADER_LEN, STATUS_WIDTHS, STATUS_WIDTHS_TEXT, WIDTHS, WIDTHS_TEXT};
use crate::generic::config::{GenericConfig, LayoutConfig};
use crate::generic::error::GenericConfigError as E;
use crate::generic::layout::{Layout, StatusField};

pub(super) fn resolve_layouts(
    c: &GenericConfig,
) -> Result<(&'static str, &LayoutConfig, &'static str, &LayoutConfig), E> {
    if c.layout.is_some() && c.request.is_some() && c.response.is_some() {
        return Err(E::invalid(
            "layout",
            "is unused: request and response both override it",
            "remove layout, or one of request/response",
        ));
    }
    let (rq, rq_raw) = side("request", &c.request, &c.layout)?;
    let (rs, rs_raw) = side("response", &c.response, &c.layout)?;
    Ok((rq, rq_raw, rs, rs_raw))
}

fn side<'c>(
    own: &'static str,
    raw: &'c Option<LayoutConfig>,
    shared: &'c Option<LayoutConfig>,
) -> Result<(&'static str, &'c LayoutConfig), E> {
    match (raw, shared) {
        (Some(l), _) => Ok((own, l)),
        (None, Some(l)) => Ok(("layout", l)),
        (None, None) => Err(E::missing(
            own,
            "give one shared \"layout\", or both \"request\" and \"response\"",
        )),
    }
}

pub(super) fn layout(
    raw: &LayoutConfig,
    prefix: &'static str,
    is_response: bool,
) -> Result<Layout, E> {
    let p = |field: &str| format!("{prefix}.{field}");
    let header_len = raw.header_len.ok_or_else(|| {
        E::missing(
            p("header_len"),
            "the fixed header's length in bytes (decode waits for it before reading the length)",
        )
    })?;
    if header_len == 0 || header_len > MAX_HEADER_LEN {
        return Err(E::invalid(
            p("header_len"),
            format!("{header_len} is outside 1..={MAX_HEADER_LEN}"),
            "give the fixed header's length in bytes",
        ));
    }
    let header_len = header_len as usize;
    let length_offset = raw
        .length_offset
        .ok_or_else(|| E::missing(p("length_offset"), "the byte where the length field starts"))?;
    let length_width = width(raw.length_width, 4, &p("length_width"), WIDTHS, WIDTHS_TEXT)?;
    let length = field_in(
        &p("length_offset"),
        length_offset,
        length_width,
        raw.length_endian,
        prefix,
        header_len,
    )?;
    let largest = i128::from(length.max()) + i128::from(raw.length_adjust);
    if largest < header_len as i128 {
        return Err(E::invalid(
            p("length_adjust"),
            format!(
                "with it the largest frame is {largest} bytes, shorter than the {header_len}-byte header"
            ),
            "use header_len when the length counts only the payload, 0 when it counts the whole frame",
        ));
    }

    let status = if let Some(offset) = raw.status_offset {
        if !is_response {
            if prefix == "request" {
                return Err(E::invalid(
                    p("status_offset"),
                    "requests carry no status",
                    "move the status fields to response",
                ));
            }
            // A shared layout's status applies to responses only.
            None
        } else {
            let w = width(
                raw.status_width,
                1,
                &p("status_width"),
                STATUS_WIDTHS,
                STATUS_WIDTHS_TEXT,
            )?;
            let field = field_in(
                &p("status_offset"),
                offset,
                w,
                raw.status_endian,
                prefix,
                header_len,
            )?;
            let success = raw.success_value.unwrap_or(0);
            let success = u32::try_from(success)
                .ok()
                .filter(|s| u64::from(*s) <= field.max())
                .ok_or_else(|| {
                    E::invalid(
                        p("success_value"),
                        format!("{success} does not fit the {w}-byte status field"),
                        format!("use a value up to {}", field.max()),
                    )
                })?;
            Some(StatusField { field, success })
        }
    } else {
        if raw.status_width.is_some() || raw.success_value.is_some() {
            return Err(E::missing(
                p("status_offset"),
                "status_width or success_value is set: give the status field's offset, or remove them",
            ));
        }
        None
    };
    Ok(Layout {
        header_len,
        length,
        length_adjust: raw.length_adjust,
        status,
    })
}
