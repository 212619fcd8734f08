//! The wrappers that carry [`CaseFold`] into nested values: visitors,
//! sequence, map and enum accesses, seeds; and the struct visitor that folds
//! a struct's keys.

use super::{CaseFold, field_for};
use crate::buffer::{Content, ContentDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;

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
pub(crate) struct Wrap<V>(pub(crate) V);

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
pub(crate) struct StructVisitor<V> {
    inner: V,
    fields: &'static [&'static str],
}

impl<V> StructVisitor<V> {
    pub(crate) fn new(inner: V, fields: &'static [&'static str]) -> Self {
        StructVisitor { inner, fields }
    }

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
        self.0
            .struct_variant(fields, StructVisitor::new(visitor, fields))
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
