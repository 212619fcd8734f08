//! A buffered JSON value that keeps object keys in the order written.
//!
//! [`CaseFold`](crate::CaseFold) has to see all of a struct's entries before
//! handing them on (to fold keys, drop nulls and keep the last of duplicate
//! keys). `serde_json::Value` would do as a buffer but sorts object keys,
//! losing the order in which the file wrote them, which decides which of
//! two keys naming one field wins and the order of warnings. [`Content`]
//! keeps it, and reads back with any error type, so the buffered values
//! fail with the same errors as the streamed ones.
//!
//! It holds what JSON holds: objects must have string keys.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// One JSON value, with object entries in input order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    Seq(Vec<Content>),
    Map(Vec<(String, Content)>),
}

impl Content {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Content::Null)
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Content::Null => Unexpected::Unit,
            Content::Bool(b) => Unexpected::Bool(*b),
            Content::U64(n) => Unexpected::Unsigned(*n),
            Content::I64(n) => Unexpected::Signed(*n),
            Content::F64(n) => Unexpected::Float(*n),
            Content::String(s) => Unexpected::Str(s),
            Content::Seq(_) => Unexpected::Seq,
            Content::Map(_) => Unexpected::Map,
        }
    }
}

impl<'de> de::Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Content, D::Error> {
        d.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Content;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Content, E> {
        Ok(Content::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Content, E> {
        Ok(Content::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Content, E> {
        Ok(Content::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Content, E> {
        Ok(Content::F64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Content, E> {
        Ok(Content::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Content, E> {
        Ok(Content::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Content, E> {
        Ok(Content::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Content, E> {
        Ok(Content::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Content, D::Error> {
        de::Deserialize::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Content, D::Error> {
        de::Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Content::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Content, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(entry) = map.next_entry::<String, Content>()? {
            entries.push(entry);
        }
        Ok(Content::Map(entries))
    }
}

/// Reads a [`Content`] back, with the error type `E` of the deserializer it
/// was buffered from.
#[derive(Debug)]
pub(crate) struct ContentDeserializer<E> {
    content: Content,
    error: PhantomData<E>,
}

impl<E> ContentDeserializer<E> {
    pub(crate) fn new(content: Content) -> Self {
        ContentDeserializer {
            content,
            error: PhantomData,
        }
    }
}

impl<'de, E: de::Error> IntoDeserializer<'de, E> for Content {
    type Deserializer = ContentDeserializer<E>;

    fn into_deserializer(self) -> ContentDeserializer<E> {
        ContentDeserializer::new(self)
    }
}

impl<'de, E: de::Error> Deserializer<'de> for ContentDeserializer<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.content {
            Content::Null => visitor.visit_unit(),
            Content::Bool(b) => visitor.visit_bool(b),
            Content::U64(n) => visitor.visit_u64(n),
            Content::I64(n) => visitor.visit_i64(n),
            Content::F64(n) => visitor.visit_f64(n),
            Content::String(s) => visitor.visit_string(s),
            Content::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Content::Map(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        match self.content {
            Content::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, E> {
        visitor.visit_newtype_struct(self)
    }

    /// As `serde_json::Value` does: a string is a unit variant, an object
    /// with a single key is a variant with content.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.content {
            Content::String(variant) => visitor.visit_enum(EnumContent {
                variant,
                value: None,
                error: PhantomData,
            }),
            Content::Map(entries) => {
                let mut entries = entries.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(EnumContent {
                        variant,
                        value: Some(value),
                        error: PhantomData,
                    }),
                    _ => Err(E::invalid_value(Unexpected::Map, &"map with a single key")),
                }
            }
            other => Err(E::invalid_type(other.unexpected(), &"string or map")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct EnumContent<E> {
    variant: String,
    value: Option<Content>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> EnumAccess<'de> for EnumContent<E> {
    type Error = E;
    type Variant = VariantContent<E>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantContent<E>), E> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((
            variant,
            VariantContent {
                value: self.value,
                error: PhantomData,
            },
        ))
    }
}

struct VariantContent<E> {
    value: Option<Content>,
    error: PhantomData<E>,
}

impl<'de, E: de::Error> VariantAccess<'de> for VariantContent<E> {
    type Error = E;

    fn unit_variant(self) -> Result<(), E> {
        match self.value {
            None | Some(Content::Null) => Ok(()),
            Some(other) => Err(E::invalid_type(other.unexpected(), &"unit variant")),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, E> {
        match self.value {
            Some(value) => seed.deserialize(ContentDeserializer::new(value)),
            None => Err(E::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, E> {
        match self.value {
            Some(value @ Content::Seq(_)) => {
                ContentDeserializer::new(value).deserialize_any(visitor)
            }
            Some(other) => Err(E::invalid_type(other.unexpected(), &"tuple variant")),
            None => Err(E::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, E> {
        match self.value {
            Some(value @ Content::Map(_)) => {
                ContentDeserializer::new(value).deserialize_any(visitor)
            }
            Some(other) => Err(E::invalid_type(other.unexpected(), &"struct variant")),
            None => Err(E::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    type De = ContentDeserializer<serde_json::Error>;

    #[test]
    fn keeps_key_order() {
        let c: Content =
            serde_json::from_str(r#"{"b": 1, "a": [true, null, -2, 1.5, "s"]}"#).unwrap();
        let Content::Map(entries) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(entries[0].0, "b");
        assert_eq!(entries[1].0, "a");
        let v = serde_json::Value::deserialize(De::new(c)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [true, null, -2, 1.5, "s"], "b": 1})
        );
    }

    #[test]
    fn reads_enums_like_serde_json() {
        #[derive(Debug, Deserialize, PartialEq)]
        enum E {
            A,
            B(u8),
            C { x: u8 },
        }
        let read = |text: &str| {
            let c: Content = serde_json::from_str(text).unwrap();
            E::deserialize(De::new(c))
        };
        assert_eq!(read(r#""A""#).unwrap(), E::A);
        assert_eq!(read(r#"{"B": 3}"#).unwrap(), E::B(3));
        assert_eq!(read(r#"{"C": {"x": 4}}"#).unwrap(), E::C { x: 4 });
        assert!(read(r#"{"A": 1, "B": 2}"#).is_err());
        assert!(read("5").is_err());
    }
}
