//! Go's case-insensitive matching of struct field names, as a deserializer
//! wrapper.
//!
//! Go's `encoding/json` decodes an object key into the struct field whose
//! name equals it exactly, or failing that into the first field whose name
//! equals it under Unicode simple case folding. [`CaseFold`] gives a serde
//! type the same matching: it intercepts `deserialize_struct` (and struct
//! variants), and for each key that is not exactly one of the struct's field
//! names but folds to one, presents the canonical field name instead. Every
//! other call is forwarded with the visitor wrapped, so the values nested in
//! sequences, maps, options, newtypes and enums are read through `CaseFold`
//! too.
//!
//! What is folded and what is not:
//!
//! - Only the keys of a *struct* are folded. The keys of maps
//!   (`HashMap`, `BTreeMap`, `serde_json::Value`: metadata, headers) reach
//!   the map unchanged, as Go leaves map keys alone.
//! - An exact match wins over a folded one, as in Go.
//! - Enum variant names (`"LB_RANDOM"`) are compared exactly: they are Go
//!   string values, not field names.
//! - Folding is Go's simple folding restricted to what a Rust field name can
//!   meet: ASCII letters fold to each other, and the two non-ASCII letters
//!   that fold to ASCII ones in Go (`K` KELVIN SIGN to `k`, `ſ` LONG S to
//!   `s`) do too. Non-ASCII field names compare by single-char lowercase,
//!   which is close to, but not exactly, Go's folding.
//!
//! Two more Go habits are applied to a struct's keys, because only here is
//! it known that the object is a struct:
//!
//! - `null` for a known field is dropped, so the field keeps its default
//!   (Go leaves the field untouched). `null` for an unknown key is kept, so
//!   it is still reported as unknown.
//! - When two keys name the same field (`"name"` and `"Name"`, or the same
//!   key twice when the inner deserializer streams), the last one wins
//!   instead of serde's "duplicate field" error.
//!
//! To do both, a struct's entries are buffered (in the order the input gives
//! them, with the input's error type) and read again from the buffer. The
//! buffer holds what JSON holds: a struct's keys must be strings.
//!
//! # Serde attributes to avoid
//!
//! `#[serde(flatten)]`, `#[serde(untagged)]` and internally or adjacently
//! tagged enums (`#[serde(tag = "...")]`) make serde buffer the input in its
//! own private form and read it again without this wrapper: keys below them
//! are not folded and unknown keys below them are not reported. Config types
//! read with this crate should not use them; keep polymorphic blobs as
//! `serde_json::Value` and read them in a second step instead.

use crate::buffer::{Content, ContentDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;

/// A deserializer that matches struct field names the way Go does; see the
/// [module documentation](self).
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
fn field_for(key: &str, fields: &'static [&'static str]) -> Option<&'static str> {
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
        let visitor = StructVisitor {
            inner: visitor,
            fields,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Forwards every `visit_*` to `self.inner()`, wrapping what it hands on;
/// `visit_map` is left to the caller.
macro_rules! forward_visits {
    () => {
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.inner().expecting(f)
        }
        forward_visits! { @value
            visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
            visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
            visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
            visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
            visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            self.into_inner().visit_none()
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.into_inner().visit_unit()
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            self.into_inner().visit_some(CaseFold(d))
        }
        fn visit_newtype_struct<D2: Deserializer<'de>>(
            self,
            d: D2,
        ) -> Result<Self::Value, D2::Error> {
            self.into_inner().visit_newtype_struct(CaseFold(d))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            self.into_inner().visit_seq(FoldSeq(seq))
        }
        fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            self.into_inner().visit_enum(FoldEnum(data))
        }
    };
    (@value $($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.into_inner().$method(v)
        }
    )*};
}

/// The visitor wrapper for everything but structs: map keys untouched,
/// nested values wrapped.
struct Wrap<V>(V);

impl<V> Wrap<V> {
    fn inner(&self) -> &V {
        &self.0
    }
    fn into_inner(self) -> V {
        self.0
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    forward_visits!();

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(FoldMap(map))
    }
}

/// The visitor wrapper for a struct: keys folded to field names, nulls of
/// known fields dropped, later duplicates winning.
struct StructVisitor<V> {
    inner: V,
    fields: &'static [&'static str],
}

impl<V> StructVisitor<V> {
    fn inner(&self) -> &V {
        &self.inner
    }
    fn into_inner(self) -> V {
        self.inner
    }
}

/// A struct key after folding: a field name, or an unknown key as written.
enum Key {
    Field(&'static str),
    Other(String),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            Key::Field(f) => f,
            Key::Other(s) => s,
        }
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StructVisitor<V> {
    type Value = V::Value;

    forward_visits!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(Key, Content)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Content = map.next_value()?;
            let key = match field_for(&key, self.fields) {
                // Go leaves the field as it was, whether default or set by
                // an earlier key.
                Some(_) if value.is_null() => continue,
                Some(field) => Key::Field(field),
                None => Key::Other(key),
            };
            entries.retain(|(k, _)| k.as_str() != key.as_str());
            entries.push((key, value));
        }
        self.inner.visit_map(BufferedStruct {
            entries: entries.into_iter(),
            value: None,
            error: std::marker::PhantomData,
        })
    }
}

/// A struct's entries after folding, read back through [`CaseFold`].
struct BufferedStruct<E> {
    entries: std::vec::IntoIter<(Key, Content)>,
    value: Option<Content>,
    error: std::marker::PhantomData<E>,
}

impl<'de, E: de::Error> MapAccess<'de> for BufferedStruct<E> {
    type Error = E;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, E> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        match key {
            Key::Field(f) => seed
                .deserialize(de::value::BorrowedStrDeserializer::<E>::new(f))
                .map(Some),
            Key::Other(s) => seed.deserialize(s.into_deserializer()).map(Some),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, E> {
        let value = self
            .value
            .take()
            .ok_or_else(|| E::custom("value requested before its key"))?;
        seed.deserialize(CaseFold(ContentDeserializer::new(value)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Sequence elements read through [`CaseFold`].
struct FoldSeq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for FoldSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(FoldSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Map values read through [`CaseFold`]; map keys as they are.
struct FoldMap<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FoldMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(FoldSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Enum contents read through [`CaseFold`]; variant names as they are.
struct FoldEnum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for FoldEnum<A> {
    type Error = A::Error;
    type Variant = FoldVariant<A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (variant, access) = self.0.variant_seed(seed)?;
        Ok((variant, FoldVariant(access)))
    }
}

struct FoldVariant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for FoldVariant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(FoldSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(
            fields,
            StructVisitor {
                inner: visitor,
                fields,
            },
        )
    }
}

/// A seed whose deserializer is wrapped in [`CaseFold`].
struct FoldSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for FoldSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(CaseFold(d))
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
