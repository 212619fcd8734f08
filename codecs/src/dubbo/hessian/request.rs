//! The body of a hessian2 Dubbo request: the five head strings, the
//! arguments (skipped), and the attachments map.
//!
//! ```text
//!  "2.0.2"  "a.b.Service"  "1.0.0"|N  "method"  "Ljava/lang/String;I"  arg arg  H k v k v ... Z
//!  dubbo    service path   version    method    parameter descriptor   n args   attachments
//! ```

use super::{Bad, HIGH_BITS, Reader, Res, StrSpan, Value};
use crate::CodecError;
use std::ops::Range;

/// What a request body holds where the attachments belong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachmentsForm {
    /// A map: `H` or `M type`, pairs, `Z`.
    Map,
    /// `N`: no attachments.
    Null,
    /// The body ends after the arguments.
    Absent,
}

/// The head of a request body. Offsets are body offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Value 1, the Dubbo protocol version (`None` for null).
    pub dubbo: Option<StrSpan>,
    /// Value 2, the service path.
    pub service: Option<StrSpan>,
    /// Value 3, the service version (`None` for null).
    pub version: Option<StrSpan>,
    /// Value 4, the method name.
    pub method: Option<StrSpan>,
    /// Value 5, the JVM parameter descriptor.
    pub descriptor: Option<StrSpan>,
    /// How many arguments the descriptor declares.
    pub arg_count: usize,
}

/// Where the attachments are. Offsets are body offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachments {
    /// The whole value: the map (from `H`/`M` to `Z`), the `N`, or an empty
    /// range at the body end when absent.
    pub range: Range<usize>,
    /// Where the map's first pair starts (after `H`, or `M` and its type).
    pub pairs_at: usize,
    /// Which form the attachments took.
    pub form: AttachmentsForm,
}

/// The routing-relevant layout of a whole request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The five head values and the argument count.
    pub head: Head,
    /// The attachments after the arguments.
    pub attachments: Attachments,
}

/// One attachment pair as found in the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The key (a string in every known client).
    pub key: Value,
    /// The value: a string in Dubbo 2, anything in Dubbo 3 and dubbo2.js.
    pub value: Value,
    /// The pair's bytes, key and value, for copying it as it is.
    pub raw: Range<usize>,
}

impl Attachment {
    /// Key and value when both are strings: the pairs the header view shows.
    pub fn string_pair(&self) -> Option<(&StrSpan, &StrSpan)> {
        match (&self.key, &self.value) {
            (Value::Str(key), Value::Str(value)) => Some((key, value)),
            _ => None,
        }
    }
}

/// Reads a whole request body: the head, the arguments (skipped), and the
/// attachments, handing each pair to `on_attachment` in wire order.
///
/// Bytes after the attachments are not read (they are forwarded as they
/// are). Allocates nothing unless the body defines more than eight classes.
pub fn read_request(
    body: &[u8],
    mut on_attachment: impl FnMut(&Attachment),
) -> Result<RequestHead, CodecError> {
    let mut read = || {
        let mut reader = Reader::new(body);
        let head = head(&mut reader)?;
        let attachments = attachments(&mut reader, |reader| {
            on_attachment(&attachment(reader)?);
            Ok(())
        })?;
        Ok(RequestHead { head, attachments })
    };
    read().map_err(Bad::error)
}

/// [`read_request`] without looking at the attachments: validates the
/// whole body and returns its layout (the fuzz target's entry point).
pub fn read_request_head(body: &[u8]) -> Result<RequestHead, CodecError> {
    read_request(body, |_| {})
}

/// Reads the five head values from the start of a body and skips the
/// arguments the descriptor declares, leaving `reader` at the attachments.
pub fn read_head(reader: &mut Reader<'_>) -> Result<Head, CodecError> {
    head(reader).map_err(Bad::error)
}

/// Reads the attachments at `reader` (a map, `N`, or nothing at the body
/// end), handing each pair to `on_attachment` in wire order.
pub fn read_attachments(
    reader: &mut Reader<'_>,
    mut on_attachment: impl FnMut(&Attachment),
) -> Result<Attachments, CodecError> {
    attachments(reader, |reader| {
        on_attachment(&attachment(reader)?);
        Ok(())
    })
    .map_err(Bad::error)
}

/// [`read_head`] inside the module.
#[inline]
pub(crate) fn head(reader: &mut Reader<'_>) -> Res<Head> {
    let dubbo = head_string(reader)?;
    let service = head_string(reader)?;
    let version = head_string(reader)?;
    let method = head_string(reader)?;
    let descriptor = head_string(reader)?;
    let arg_count = match &descriptor {
        Some(desc) => count_args(reader.body, desc)?,
        None => 0,
    };
    reader.skip_n(arg_count)?;
    Ok(Head {
        dubbo,
        service,
        version,
        method,
        descriptor,
        arg_count,
    })
}

/// [`read_attachments`] inside the module: `read_pair` reads each pair
/// (key then value) at the reader, which stands at a pair's first byte.
#[inline]
pub(crate) fn attachments<'a>(
    reader: &mut Reader<'a>,
    mut read_pair: impl FnMut(&mut Reader<'a>) -> Res<()>,
) -> Res<Attachments> {
    let start = reader.pos();
    let form = match reader.peek() {
        None => AttachmentsForm::Absent,
        Some(b'N') => {
            reader.pos += 1;
            AttachmentsForm::Null
        }
        Some(b'H') => {
            reader.pos += 1;
            AttachmentsForm::Map
        }
        Some(b'M') => {
            reader.pos += 1;
            reader.skip_type()?;
            AttachmentsForm::Map
        }
        Some(_) => return Err(Bad(&"dubbo attachments are not a map")),
    };
    let pairs_at = reader.pos();
    if form == AttachmentsForm::Map {
        loop {
            match reader.peek() {
                Some(b'Z') => {
                    reader.pos += 1;
                    break;
                }
                None => return Err(Bad(&"dubbo attachments map has no end")),
                Some(_) => read_pair(reader)?,
            }
        }
    }
    Ok(Attachments {
        range: start..reader.pos(),
        pairs_at,
        form,
    })
}

/// Reads one pair for the [`Attachment`] callbacks.
pub(super) fn attachment(reader: &mut Reader<'_>) -> Res<Attachment> {
    let start = reader.pos();
    let key = reader.value()?;
    let value = reader.value()?;
    Ok(Attachment {
        key,
        value,
        raw: start..reader.pos(),
    })
}

#[inline(always)]
fn head_string(reader: &mut Reader<'_>) -> Res<Option<StrSpan>> {
    match reader.value()? {
        Value::Str(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(Bad(&"dubbo request head value is not a string")),
    }
}

/// Counts the arguments a JVM parameter descriptor declares: `[` prefixes
/// arrays, each of `Z B C D F I J S` (and `V`, which Dubbo's own pattern
/// accepts) is one argument, and `L` starts one that ends at `;`.
fn count_args(body: &[u8], desc: &StrSpan) -> Res<usize> {
    match desc.contiguous(body) {
        Some(bytes) => count_args_in(bytes),
        None => {
            let mut args = ArgCount::default();
            desc.for_each_chunk(body, |chunk| args.feed(chunk));
            args.finish()
        }
    }
}

/// [`count_args`] for a descriptor whose bytes are contiguous.
#[inline]
pub(crate) fn count_args_in(desc: &[u8]) -> Res<usize> {
    let mut args = ArgCount::default();
    args.feed(desc);
    args.finish()
}

/// The state of [`count_args`] between chunks.
#[derive(Default)]
struct ArgCount {
    count: usize,
    in_class: bool,
    bad: bool,
}

impl ArgCount {
    fn feed(&mut self, mut bytes: &[u8]) {
        loop {
            if self.in_class {
                // A class name: nothing in it counts until its `;`.
                match find_semicolon(bytes) {
                    Some(at) => {
                        self.in_class = false;
                        bytes = bytes.get(at + 1..).unwrap_or_default();
                    }
                    None => return,
                }
            }
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            match byte {
                b'[' => {}
                b'L' => {
                    self.in_class = true;
                    self.count += 1;
                }
                b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'V' => self.count += 1,
                _ => self.bad = true,
            }
        }
    }

    fn finish(self) -> Res<usize> {
        if self.bad || self.in_class {
            return Err(Bad(&"bad dubbo parameter descriptor"));
        }
        Ok(self.count)
    }
}

/// Where the first `;` of `bytes` is, eight bytes at a time (class names
/// run to tens of bytes).
pub(super) fn find_semicolon(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const SEMICOLONS: u64 = ONES * b';' as u64;
    let (words, tail) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        // Zero bytes of `x` are semicolons; the lowest one is flagged
        // exactly (borrows only disturb the bytes above it).
        let x = u64::from_le_bytes(*word) ^ SEMICOLONS;
        let found = x.wrapping_sub(ONES) & !x & HIGH_BITS;
        if found != 0 {
            return Some(i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let at = tail.iter().position(|&b| b == b';')?;
    Some(words.len() * 8 + at)
}
