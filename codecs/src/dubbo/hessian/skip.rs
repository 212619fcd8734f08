//! The structural skipper: moves past hessian2 values by their length rules
//! alone, building nothing.
//!
//! Nesting is tracked on a fixed array of [`MAX_DEPTH`] pending containers
//! instead of the call stack, so `W W W W ...` a hundred thousand levels
//! deep is a clean error, not a stack overflow.

use super::{Bad, MAX_CLASS_DEFS, MAX_DEPTH, Reader, Res, is_string_tag};
use crate::CodecError;

/// What an open container still expects.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// A fixed number of values (fixed-length lists, object fields).
    Values(usize),
    /// Values until a `Z` (variable-length lists, maps).
    UntilEnd,
}

impl Reader<'_> {
    /// Moves past one value (a class definition in front of it included).
    pub fn skip_value(&mut self) -> Result<(), CodecError> {
        self.skip_n(1).map_err(Bad::error)
    }

    /// Moves past `count` consecutive values.
    pub fn skip_values(&mut self, count: usize) -> Result<(), CodecError> {
        self.skip_n(count).map_err(Bad::error)
    }

    /// Moves past `count` consecutive values.
    pub(crate) fn skip_n(&mut self, count: usize) -> Res<()> {
        if count > self.remaining() {
            return Err(Bad(&"more hessian values than body bytes"));
        }
        for _ in 0..count {
            // Strings are most arguments: the fast path first.
            if self.ascii_str().is_some() {
                continue;
            }
            if let Some(open) = self.skip_one()? {
                self.skip_contents(open)?;
            }
        }
        Ok(())
    }

    /// Moves past the contents of a container just opened, and of every
    /// container inside it, keeping the open ones on a fixed array.
    #[inline(never)]
    fn skip_contents(&mut self, open: Pending) -> Res<()> {
        let mut stack = [Pending::Values(0); MAX_DEPTH];
        stack[0] = open;
        let mut depth: usize = 1;
        while let Some(top) = depth.checked_sub(1).and_then(|i| stack.get_mut(i)) {
            match *top {
                Pending::Values(0) => {
                    depth -= 1;
                    continue;
                }
                Pending::Values(n) => *top = Pending::Values(n - 1),
                Pending::UntilEnd => {
                    if self.peek() == Some(b'Z') {
                        self.pos += 1;
                        depth -= 1;
                        continue;
                    }
                }
            }
            if let Some(open) = self.skip_one()? {
                let slot = stack
                    .get_mut(depth)
                    .ok_or(Bad(&"hessian nesting too deep"))?;
                *slot = open;
                depth += 1;
            }
        }
        Ok(())
    }

    /// Moves past one value; a container's opening returns what its
    /// contents are, for the caller to skip.
    fn skip_one(&mut self) -> Res<Option<Pending>> {
        let mut tag = self.byte()?;
        // A class definition is not a value: the value follows it.
        while tag == b'C' {
            self.class_def()?;
            tag = self.byte()?;
        }
        let open = match tag {
            b'N' | b'T' | b'F' => None,
            // ints
            0x80..=0xBF => None,
            0xC0..=0xCF => self.skip(1)?,
            0xD0..=0xD7 => self.skip(2)?,
            b'I' => self.skip(4)?,
            // longs
            0xD8..=0xEF => None,
            0xF0..=0xFF => self.skip(1)?,
            0x38..=0x3F => self.skip(2)?,
            b'Y' => self.skip(4)?,
            b'L' => self.skip(8)?,
            // doubles
            0x5B | 0x5C => None,
            0x5D => self.skip(1)?,
            0x5E => self.skip(2)?,
            0x5F => self.skip(4)?,
            b'D' => self.skip(8)?,
            // dates
            b'J' => self.skip(8)?,
            b'K' => self.skip(4)?,
            _ if is_string_tag(tag) => {
                self.string_after(self.pos - 1, tag)?;
                None
            }
            0x20..=0x2F | 0x34..=0x37 | b'A' | b'B' => {
                self.binary(tag)?;
                None
            }
            // A back-reference: its target was skipped already.
            b'Q' => {
                self.int()?;
                None
            }
            b'O' => {
                let def = usize::try_from(self.int()?).ok();
                Some(Pending::Values(self.fields_of(def)?))
            }
            0x60..=0x6F => Some(Pending::Values(
                self.fields_of(Some(usize::from(tag - 0x60)))?,
            )),
            b'U' => {
                self.skip_type()?;
                Some(Pending::UntilEnd)
            }
            b'V' => {
                self.skip_type()?;
                Some(Pending::Values(self.count()?))
            }
            b'W' | b'H' => Some(Pending::UntilEnd),
            b'X' => Some(Pending::Values(self.count()?)),
            0x70..=0x77 => {
                self.skip_type()?;
                Some(Pending::Values(usize::from(tag - 0x70)))
            }
            0x78..=0x7F => Some(Pending::Values(usize::from(tag - 0x78))),
            b'M' => {
                self.skip_type()?;
                Some(Pending::UntilEnd)
            }
            _ => return Err(Bad(&"unknown hessian tag")),
        };
        Ok(open.filter(|p| !matches!(p, Pending::Values(0))))
    }

    fn skip(&mut self, n: usize) -> Res<Option<Pending>> {
        self.advance(n).map(|()| None)
    }

    /// `C name field-count field-name*`: remembers the field count.
    #[inline(never)]
    fn class_def(&mut self) -> Res<()> {
        self.string()?;
        let fields = self.count()?;
        for _ in 0..fields {
            self.string()?;
        }
        if self.classes.len() >= MAX_CLASS_DEFS {
            return Err(Bad(&"too many hessian class definitions"));
        }
        // `count` bounded `fields` by the body length, which is < 2^31.
        let fields = u32::try_from(fields).map_err(|_| Bad(&"hessian class too wide"))?;
        self.classes.push(fields);
        Ok(())
    }

    /// The field count of class definition `def`, which must exist.
    fn fields_of(&self, def: Option<usize>) -> Res<usize> {
        def.and_then(|i| self.classes.get(i))
            .map(|&fields| fields as usize)
            .ok_or(Bad(&"hessian object of an undefined class"))
    }

    /// A type: a new type name (string) or the index of an earlier one.
    pub(super) fn skip_type(&mut self) -> Res<()> {
        let tag = self.peek().ok_or(Bad(&"hessian type past the body end"))?;
        if is_string_tag(tag) {
            self.string()?;
            self.types = self.types.saturating_add(1);
            return Ok(());
        }
        let index = self.int()?;
        if u32::try_from(index).map_or(true, |i| i >= self.types) {
            return Err(Bad(&"hessian reference to an undefined type"));
        }
        Ok(())
    }

    /// Binary data in any form, following `A` chunks to the final one.
    fn binary(&mut self, mut tag: u8) -> Res<()> {
        loop {
            let (len, last) = match tag {
                0x20..=0x2F => (usize::from(tag - 0x20), true),
                0x34..=0x37 => (
                    (usize::from(tag - 0x34) << 8) | usize::from(self.byte()?),
                    true,
                ),
                b'B' => (self.u16()?, true),
                b'A' => (self.u16()?, false),
                _ => return Err(Bad(&"hessian binary chunk expected")),
            };
            self.advance(len)?;
            if last {
                return Ok(());
            }
            tag = self.byte()?;
        }
    }
}
