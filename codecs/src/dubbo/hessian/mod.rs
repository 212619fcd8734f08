//! The hessian2 subset the Dubbo codec reads: strings and ints where the
//! request head and the attachments need values, and a structural skipper
//! for everything else (the arguments between the head and the attachments).
//!
//! Nothing here builds values or copies bytes: strings come back as byte
//! ranges of the body ([`StrSpan`]), the skipper only moves a cursor. The
//! only state is what hessian2 scopes to one body: the field counts of the
//! class definitions seen so far (a small inline table, bounded by
//! [`MAX_CLASS_DEFS`] and by the body length) and the number of type names
//! seen so far (a counter). Errors are [`CodecError::Malformed`] with a
//! static message, so a hostile body costs no allocation either.
//!
//! Bounds enforced on any input: no read past the body, nesting depth
//! ([`MAX_DEPTH`]), class-definition and type references that exist, counts
//! no larger than the bytes left (every value takes at least one byte), and
//! UTF-8 lead bytes that hessian2 allows. Work is linear in the body length.
//!
//! Inside the module, readers fail with `Bad`, one pointer to the static
//! message, so every `Result` they pass around fits in registers; the
//! [`CodecError`] is built once, at the public entry points, in a cold
//! function. The strings heads and attachments are made of (ASCII, in the
//! compact forms or `S`) are read by an inlined fast path; everything else
//! takes the general one.

mod request;
mod response;
mod skip;
#[cfg(test)]
mod tests;

/// Hessian 2.0 strings, written by the crate's shared hessian2 writer.
pub use crate::hessian2::write_string;
pub(crate) use crate::hessian2::write_string_bytes;
pub use request::{
    Attachment, Attachments, AttachmentsForm, Head, RequestHead, read_attachments, read_head,
    read_request, read_request_head,
};
pub(crate) use request::{attachments, count_args_in, head};
pub use response::{
    RESPONSE_NULL_VALUE, RESPONSE_VALUE, RESPONSE_WITH_EXCEPTION, ResponseBody, WITH_ATTACHMENTS,
    read_response,
};

use crate::CodecError;
use smallvec::SmallVec;
use std::ops::Range;

/// How many containers (lists, maps, objects) may be open at once while
/// skipping. Deeper input is rejected instead of exhausting anything.
pub const MAX_DEPTH: usize = 64;

/// How many class definitions one body may carry.
pub const MAX_CLASS_DEFS: usize = 4096;

/// The largest chunk hessian2 writers emit, in UTF-16 units.
#[cfg(test)]
pub(crate) const CHUNK_CHARS: usize = crate::hessian2::CHUNK_UNITS;

/// A malformed body as the readers report it inside the module: what is
/// wrong, as the static text of the [`CodecError::Malformed`] it becomes
/// ([`Bad::error`]). One pointer wide, so `Result<usize, Bad>` and smaller
/// come back in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bad(pub(crate) &'static &'static str);

impl Bad {
    /// The codec error for this failure. Cold: only malformed input gets
    /// here, and keeping it out of line keeps the readers small.
    #[cold]
    #[inline(never)]
    pub(crate) fn error(self) -> CodecError {
        malformed(self.0)
    }
}

/// The readers' result.
pub(crate) type Res<T> = Result<T, Bad>;

/// The most common failure: a value or length running past the body.
const PAST_END: Bad = Bad(&"hessian value past the body end");

/// Where a hessian string's characters are in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrSpan {
    /// Unchunked: the UTF-8 bytes of the characters. Chunked: every chunk,
    /// tags included (see [`StrSpan::for_each_chunk`]).
    pub range: Range<usize>,
    /// True when the string was sent in `R` chunks, so its characters are
    /// not contiguous in the body.
    pub chunked: bool,
}

impl StrSpan {
    /// An unchunked string at `range`.
    pub(crate) fn plain(range: Range<usize>) -> StrSpan {
        StrSpan {
            range,
            chunked: false,
        }
    }

    /// The string's bytes when they are contiguous in `body`.
    pub fn contiguous<'a>(&self, body: &'a [u8]) -> Option<&'a [u8]> {
        if self.chunked {
            None
        } else {
            body.get(self.range.clone())
        }
    }

    /// Calls `f` with the UTF-8 bytes of every chunk, in order.
    pub fn for_each_chunk(&self, body: &[u8], mut f: impl FnMut(&[u8])) {
        if !self.chunked {
            f(body.get(self.range.clone()).unwrap_or_default());
            return;
        }
        // The span was validated when it was read, so re-reading it cannot
        // fail; an error here would only cut the value short.
        let mut reader = Reader::new(body.get(..self.range.end).unwrap_or_default());
        reader.pos = self.range.start;
        while let Ok(tag) = reader.byte() {
            match reader.string_chunk(tag) {
                Ok((data, last)) => {
                    f(body.get(data).unwrap_or_default());
                    if last {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }

    /// The string's bytes appended to `out` (copies; for chunked strings).
    pub fn collect_into(&self, body: &[u8], out: &mut Vec<u8>) {
        self.for_each_chunk(body, |chunk| out.extend_from_slice(chunk));
    }

    /// True when the string's bytes equal `want`.
    #[inline]
    pub fn eq_bytes(&self, body: &[u8], want: &[u8]) -> bool {
        if let Some(bytes) = self.contiguous(body) {
            return bytes == want;
        }
        self.eq_chunks(body, want)
    }

    /// [`StrSpan::eq_bytes`] for a chunked string.
    #[cold]
    fn eq_chunks(&self, body: &[u8], want: &[u8]) -> bool {
        let mut rest = want;
        let mut equal = true;
        self.for_each_chunk(body, |chunk| {
            equal &= rest.starts_with(chunk);
            rest = rest.get(chunk.len()..).unwrap_or_default();
        });
        equal && rest.is_empty()
    }
}

/// A value as the head and attachment readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `N`.
    Null,
    /// Any string form.
    Str(StrSpan),
    /// Any 32-bit int form.
    Int(i32),
    /// Anything else; skipped.
    Other,
}

/// A cursor over one hessian2 body, with the body's class and type tables.
#[derive(Debug)]
pub struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
    /// Field count of each class definition, in definition order.
    classes: SmallVec<[u32; 8]>,
    /// How many type names (`M`, `U`, `V`, `70`-`77`) were defined.
    types: u32,
}

/// A [`CodecError::Malformed`] for the dubbo codec with a static message.
pub(crate) fn malformed(what: &'static str) -> CodecError {
    CodecError::malformed(super::NAME, what)
}

/// True for the tags that start a string (or its first chunk).
pub(crate) fn is_string_tag(tag: u8) -> bool {
    matches!(tag, 0x00..=0x1F | 0x30..=0x33 | b'R' | b'S')
}

impl<'a> Reader<'a> {
    /// A reader at the start of `body`, with empty tables.
    pub fn new(body: &'a [u8]) -> Reader<'a> {
        Reader {
            body,
            pos: 0,
            classes: SmallVec::new(),
            types: 0,
        }
    }

    /// The offset of the next unread byte.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// True when every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.body.len()
    }

    /// The next byte, not consumed.
    pub fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    /// Reads an int in any of its four forms.
    pub fn read_int(&mut self) -> Result<i32, CodecError> {
        self.int().map_err(Bad::error)
    }

    /// Reads a string in any form, following `R` chunks to the final one.
    pub fn read_string(&mut self) -> Result<StrSpan, CodecError> {
        self.string().map_err(Bad::error)
    }

    /// Reads one value for the head or attachment readers: strings, ints and
    /// null are returned, anything else is skipped.
    pub fn read_value(&mut self) -> Result<Value, CodecError> {
        self.value().map_err(Bad::error)
    }

    fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    #[inline]
    fn byte(&mut self) -> Res<u8> {
        let byte = *self.body.get(self.pos).ok_or(PAST_END)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Moves past `n` bytes, which must exist.
    #[inline]
    fn advance(&mut self, n: usize) -> Res<()> {
        if n > self.remaining() {
            return Err(PAST_END);
        }
        self.pos += n;
        Ok(())
    }

    #[inline]
    fn bytes<const N: usize>(&mut self) -> Res<[u8; N]> {
        let bytes = self
            .body
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .ok_or(PAST_END)?;
        self.pos += N;
        Ok(bytes)
    }

    fn u16(&mut self) -> Res<usize> {
        Ok(usize::from(u16::from_be_bytes(self.bytes::<2>()?)))
    }

    /// Reads an int in any of its four forms.
    pub(crate) fn int(&mut self) -> Res<i32> {
        let tag = self.byte()?;
        self.int_after(tag)
    }

    fn int_after(&mut self, tag: u8) -> Res<i32> {
        Ok(match tag {
            0x80..=0xBF => i32::from(tag) - 0x90,
            0xC0..=0xCF => ((i32::from(tag) - 0xC8) << 8) | i32::from(self.byte()?),
            0xD0..=0xD7 => {
                let [b1, b2] = self.bytes::<2>()?;
                ((i32::from(tag) - 0xD4) << 16) | (i32::from(b1) << 8) | i32::from(b2)
            }
            b'I' => i32::from_be_bytes(self.bytes::<4>()?),
            _ => return Err(Bad(&"hessian int expected")),
        })
    }

    /// Reads a non-negative int that counts values or fields: each of them
    /// takes at least one byte, so a count over the bytes left is malformed
    /// (and never makes anyone loop or allocate for it).
    fn count(&mut self) -> Res<usize> {
        let n = usize::try_from(self.int()?).map_err(|_| Bad(&"negative hessian length"))?;
        if n > self.remaining() {
            return Err(Bad(&"hessian length past the body end"));
        }
        Ok(n)
    }

    /// Reads a string in any form, following `R` chunks to the final one.
    pub(crate) fn string(&mut self) -> Res<StrSpan> {
        let start = self.pos;
        let tag = self.byte()?;
        if !is_string_tag(tag) {
            return Err(Bad(&"hessian string expected"));
        }
        self.string_after(start, tag)
    }

    fn string_after(&mut self, start: usize, tag: u8) -> Res<StrSpan> {
        let (data, mut last) = self.string_chunk(tag)?;
        if last {
            return Ok(StrSpan {
                range: data,
                chunked: false,
            });
        }
        while !last {
            let tag = self.byte()?;
            if !is_string_tag(tag) {
                return Err(Bad(&"hessian string chunk expected"));
            }
            (_, last) = self.string_chunk(tag)?;
        }
        Ok(StrSpan {
            range: start..self.pos,
            chunked: true,
        })
    }

    /// One string chunk after its tag: the bytes of its characters, and
    /// whether it is the final chunk.
    fn string_chunk(&mut self, tag: u8) -> Res<(Range<usize>, bool)> {
        let (chars, last) = match tag {
            0x00..=0x1F => (usize::from(tag), true),
            0x30..=0x33 => (
                (usize::from(tag - 0x30) << 8) | usize::from(self.byte()?),
                true,
            ),
            b'S' => (self.u16()?, true),
            b'R' => (self.u16()?, false),
            _ => return Err(Bad(&"hessian string expected")),
        };
        let start = self.pos;
        self.pos = self.skip_chars(start, chars)?;
        Ok((start..self.pos, last))
    }

    /// The offset after `chars` UTF-16 units of UTF-8 starting at `pos`.
    ///
    /// Hessian counts characters, not bytes, so the end of a string is only
    /// found by walking its lead bytes. Most strings are ASCII, where a
    /// character is a byte: an all-ASCII string is one [`all_ascii`] test,
    /// and in the others runs of ASCII are measured sixteen bytes at a time
    /// and only the other characters are walked one by one.
    #[inline]
    fn skip_chars(&self, pos: usize, chars: usize) -> Res<usize> {
        // The common case first: the next `chars` bytes are all ASCII.
        if let Some(end) = pos.checked_add(chars)
            && self.body.get(pos..end).is_some_and(all_ascii)
        {
            return Ok(end);
        }
        self.skip_chars_slow(pos, chars)
    }

    #[inline(never)]
    fn skip_chars_slow(&self, mut pos: usize, mut chars: usize) -> Res<usize> {
        let body = self.body;
        loop {
            let window = body.get(pos..).unwrap_or_default();
            let ascii = ascii_prefix(window.get(..chars).unwrap_or(window));
            pos += ascii;
            chars -= ascii;
            if chars == 0 {
                return Ok(pos);
            }
            // Non-ASCII text comes in runs too: walk the whole run.
            loop {
                (pos, chars) = utf8_step(body, pos, chars)?;
                if chars == 0 || body.get(pos).is_none_or(u8::is_ascii) {
                    break;
                }
            }
        }
    }

    /// The fast path for the strings heads and attachments are made of: an
    /// unchunked string (compact, two-byte or `S` form) of ASCII, read with
    /// one bounds check and one [`all_ascii`]. `None` (nothing consumed)
    /// for anything else, which takes the general path.
    #[inline(always)]
    fn ascii_string(&mut self, tag: u8) -> Option<Range<usize>> {
        let at = self.pos;
        let (start, chars) = match tag {
            0x00..=0x1F => (at + 1, usize::from(tag)),
            0x30..=0x33 => {
                let low = *self.body.get(at + 1)?;
                (at + 2, (usize::from(tag - 0x30) << 8) | usize::from(low))
            }
            b'S' => {
                let len = self.body.get(at + 1..)?.first_chunk::<2>()?;
                (at + 3, usize::from(u16::from_be_bytes(*len)))
            }
            _ => return None,
        };
        let end = start + chars;
        if !all_ascii(self.body.get(start..end)?) {
            return None;
        }
        self.pos = end;
        Some(start..end)
    }

    /// An unchunked ASCII string at the reader, read by the fast path:
    /// the range of its bytes. `None` (nothing consumed) for anything else.
    #[inline(always)]
    pub(crate) fn ascii_str(&mut self) -> Option<Range<usize>> {
        let tag = *self.body.get(self.pos)?;
        self.ascii_string(tag)
    }

    /// Reads one value for the head or attachment readers: strings, ints and
    /// null are returned, anything else is skipped.
    #[inline(always)]
    pub(crate) fn value(&mut self) -> Res<Value> {
        let tag = *self.body.get(self.pos).ok_or(PAST_END)?;
        if let Some(range) = self.ascii_string(tag) {
            return Ok(Value::Str(StrSpan::plain(range)));
        }
        self.value_slow(tag)
    }

    /// [`Reader::value`] for everything but unchunked ASCII strings.
    #[inline(never)]
    fn value_slow(&mut self, tag: u8) -> Res<Value> {
        let start = self.pos;
        if is_string_tag(tag) {
            self.pos += 1;
            return self.string_after(start, tag).map(Value::Str);
        }
        match tag {
            b'N' => {
                self.pos += 1;
                Ok(Value::Null)
            }
            0x80..=0xD7 | b'I' => self.int().map(Value::Int),
            _ => self.skip_n(1).map(|()| Value::Other),
        }
    }
}

/// The high bit of each of eight bytes.
pub(crate) const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// True when every byte of `bytes` is ASCII. Up to 64 bytes (head values,
/// attachments) take two or four overlapping loads and no loop; longer
/// runs are OR-ed together in 64-byte blocks with no early exit, which
/// vectorizes.
#[inline]
pub(crate) fn all_ascii(bytes: &[u8]) -> bool {
    let word = |chunk: Option<&[u8; 8]>| chunk.map_or(0, |c| u64::from_le_bytes(*c));
    let high = match bytes.len() {
        // The first, middle and last byte are all of one to three.
        0..=3 => [bytes.first(), bytes.get(bytes.len() / 2), bytes.last()]
            .into_iter()
            .fold(0, |acc, b| acc | b.map_or(0, |b| u64::from(*b))),
        4..=7 => {
            let half = |chunk: Option<&[u8; 4]>| chunk.map_or(0, |c| u32::from_le_bytes(*c));
            u64::from(half(bytes.first_chunk()) | half(bytes.last_chunk()))
        }
        8..=16 => word(bytes.first_chunk()) | word(bytes.last_chunk()),
        17..=32 => {
            let high = wide(bytes.first_chunk()) | wide(bytes.last_chunk());
            return high & WIDE_HIGH_BITS == 0;
        }
        33..=64 => {
            let (first, last) = (bytes.first_chunk::<32>(), bytes.last_chunk::<32>());
            return (halves(first) | halves(last)) & WIDE_HIGH_BITS == 0;
        }
        _ => return long_ascii(bytes),
    };
    high & HIGH_BITS == 0
}

/// The high bit of each of sixteen bytes.
const WIDE_HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080_8080_8080;

/// A sixteen-byte word, or 0 for none.
#[inline(always)]
fn wide(chunk: Option<&[u8; 16]>) -> u128 {
    chunk.map_or(0, |c| u128::from_le_bytes(*c))
}

/// Thirty-two bytes OR-ed into sixteen, or 0 for none.
#[inline(always)]
fn halves(chunk: Option<&[u8; 32]>) -> u128 {
    chunk.map_or(0, |c| wide(c.first_chunk()) | wide(c.last_chunk()))
}

/// [`all_ascii`] for over 64 bytes: 64-byte blocks OR-ed into eight
/// words with no early exit (which vectorizes), then the last 64 bytes.
fn long_ascii(bytes: &[u8]) -> bool {
    let (blocks, _) = bytes.as_chunks::<64>();
    let mut acc = [0u64; 8];
    for block in blocks {
        let (words, _) = block.as_chunks::<8>();
        for (acc, word) in acc.iter_mut().zip(words) {
            *acc |= u64::from_le_bytes(*word);
        }
    }
    let last = bytes.last_chunk::<64>().map_or(0, |c| {
        let (first, last) = (c.first_chunk::<32>(), c.last_chunk::<32>());
        halves(first) | halves(last)
    });
    let words = acc.iter().fold(0, |x, a| x | a);
    (last | u128::from(words)) & WIDE_HIGH_BITS == 0
}

/// How many bytes at the start of `bytes` are ASCII.
fn ascii_prefix(bytes: &[u8]) -> usize {
    let (blocks, _) = bytes.as_chunks::<8>();
    let mut n = 0;
    for block in blocks {
        if u64::from_ne_bytes(*block) & HIGH_BITS != 0 {
            break;
        }
        n += 8;
    }
    let rest = bytes.get(n..).unwrap_or_default();
    n + rest.iter().take_while(|b| b.is_ascii()).count()
}

/// Moves past one UTF-8 character: `(new pos, chars left)`.
fn utf8_step(body: &[u8], pos: usize, chars: usize) -> Res<(usize, usize)> {
    const PAST_STRING: Bad = Bad(&"hessian string past the body end");
    let lead = *body.get(pos).ok_or(PAST_STRING)?;
    // A 4-byte sequence is a supplementary character: two UTF-16 units.
    let (len, units) = match lead {
        0x00..=0x7F => (1, 1),
        0xC0..=0xDF => (2, 1),
        0xE0..=0xEF => (3, 1),
        0xF0..=0xF7 => (4, 2),
        _ => return Err(Bad(&"bad UTF-8 lead byte in hessian string")),
    };
    if units > chars {
        return Err(Bad(&"surrogate pair split by a hessian string length"));
    }
    if len > body.len() - pos {
        return Err(PAST_STRING);
    }
    Ok((pos + len, chars - units))
}
