//! Go's case-insensitive matching of struct field names, as a deserializer
//! wrapper: see [`CaseFold`].

use serde::de::{Deserializer, Visitor};

mod nested;

use nested::{StructVisitor, Wrap};

/// A deserializer wrapper matching struct field names the way Go does.
///
/// Go's `encoding/json` decodes an object key into the struct field whose
/// name equals it exactly, or failing that into the first field whose name
/// equals it under Unicode simple case folding. [`CaseFold`] gives a serde
/// type the same matching: it intercepts `deserialize_struct` (and struct
/// variants), and for each key that is not exactly one of the struct's field
/// names but folds to one, presents the canonical field name instead. Every
/// other call is forwarded with the visitor wrapped, so the values nested in
/// sequences, maps, options, newtypes and enums are read through `CaseFold`
/// too.
///
/// What is folded and what is not:
///
/// - Only the keys of a *struct* are folded. The keys of maps
///   (`HashMap`, `BTreeMap`, `serde_json::Value`: metadata, headers) reach
///   the map unchanged, as Go leaves map keys alone.
/// - An exact match wins over a folded one, as in Go.
/// - Enum variant names (`"LB_RANDOM"`) are compared exactly: they are Go
///   string values, not field names.
/// - Folding is Go's simple folding restricted to what a Rust field name can
///   meet: ASCII letters fold to each other, and the two non-ASCII letters
///   that fold to ASCII ones in Go (`K` KELVIN SIGN to `k`, `ſ` LONG S to
///   `s`) do too. Non-ASCII field names compare by single-char lowercase,
///   which is close to, but not exactly, Go's folding.
///
/// Two more Go habits are applied to a struct's keys, because only here is
/// it known that the object is a struct:
///
/// - `null` for a known field is dropped, so the field keeps its default
///   (Go leaves the field untouched). `null` for an unknown key is kept, so
///   it is still reported as unknown.
/// - When two keys name the same field (`"name"` and `"Name"`, or the same
///   key twice when the inner deserializer streams), the last one wins
///   instead of serde's "duplicate field" error.
///
/// To do both, a struct's entries are buffered (in the order the input gives
/// them, with the input's error type) and read again from the buffer. The
/// buffer holds what JSON holds: a struct's keys must be strings.
///
/// # Serde attributes to avoid
///
/// `#[serde(flatten)]`, `#[serde(untagged)]` and internally or adjacently
/// tagged enums (`#[serde(tag = "...")]`) make serde buffer the input in its
/// own private form and read it again without this wrapper: keys below them
/// are not folded and unknown keys below them are not reported. Config types
/// read with this crate should not use them; keep polymorphic blobs as
/// `serde_json::Value` and read them in a second step instead.
#[derive(Debug)]
pub struct CaseFold<D>(pub D);

impl<D> CaseFold<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        CaseFold(inner)
    }
}

/// Whether `key` equals `field` under Go-like simple case folding.
pub fn fold_eq(key: &str, field: &str) -> bool {
    let mut a = key.chars();
    let mut b = field.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y || fold_char(x) == fold_char(y) => {}
            _ => return false,
        }
    }
}

fn fold_char(c: char) -> char {
    match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        c if c.is_ascii() => c.to_ascii_lowercase(),
        c => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

/// The field a struct key names: the exact field if there is one, else the
/// first field it folds to.
pub(crate) fn field_for(key: &str, fields: &'static [&'static str]) -> Option<&'static str> {
    fields
        .iter()
        .copied()
        .find(|f| *f == key)
        .or_else(|| fields.iter().copied().find(|f| fold_eq(key, f)))
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for CaseFold<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_struct(name, fields, StructVisitor::new(visitor, fields))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert!(fold_eq("BIND_PORT", "bind_port"));
        assert!(fold_eq("Name", "name"));
        assert!(fold_eq("\u{212A}ind", "kind"));
        assert!(fold_eq("\u{017F}tat", "stat"));
        assert!(!fold_eq("name_", "name"));
        assert!(!fold_eq("nam", "name"));
        assert!(!fold_eq("bindport", "bind_port"));
    }

    #[test]
    fn exact_field_wins_over_folded() {
        const FIELDS: &[&str] = &["Name", "name"];
        assert_eq!(field_for("name", FIELDS), Some("name"));
        assert_eq!(field_for("Name", FIELDS), Some("Name"));
        assert_eq!(field_for("NAME", FIELDS), Some("Name"));
        assert_eq!(field_for("other", FIELDS), None);
    }
}
