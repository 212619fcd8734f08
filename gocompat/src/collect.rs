//! Reading a document with several bad values: every one reported, not
//! only the first.
//!
//! serde stops at the first value of the wrong type, so a file with a bad
//! duration in one cluster and a number for a name in another would show
//! only the first problem, fix by fix. [`from_value_collecting_at`] reads
//! the document, and on an error records it, sets the value at fault to
//! `null` (which the Go-style reader takes as "leave the default", like an
//! absent key) and reads again, until the document reads or nothing more
//! can be unset. The caller gets every error and, when the rest of the
//! document reads, the value with the bad fields at their defaults, so it
//! can go on checking what the types alone cannot (references, addresses).

use crate::casefold::fold_eq;
use crate::reader::{Parsed, ReadError, error_path, read_tracked};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

/// The most errors one document reports (each costs one more read).
const MAX_ERRORS: usize = 200;

/// What [`from_value_collecting_at`] made of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected<T> {
    /// The value read with every bad value unset, and the warnings of that
    /// read; `None` when a bad value could not be unset (an array element of
    /// the wrong type, an error at the document itself).
    pub parsed: Option<Parsed<T>>,
    /// Every value that could not be read, in reading order (an object's
    /// keys sorted, as a `serde_json::Value` keeps them).
    pub errors: Vec<ReadError>,
}

/// Reads `T` from `value` (at `base` in a larger document), collecting
/// every type error instead of stopping at the first; see the module docs.
/// With no bad value it gives what [`crate::from_value_at`] gives.
pub fn from_value_collecting_at<T: DeserializeOwned>(mut value: Value, base: &str) -> Collected<T> {
    let mut errors = Vec::new();
    while errors.len() < MAX_ERRORS {
        match read_tracked::<T, _>(value.clone(), base) {
            Ok(parsed) => {
                return Collected {
                    parsed: Some(parsed),
                    errors,
                };
            }
            Err((path, e)) => {
                errors.push(ReadError {
                    path: error_path(base, &path),
                    message: e.to_string(),
                });
                let segments: Vec<&Segment> = path.iter().collect();
                if !unset(&mut value, &segments) {
                    break;
                }
            }
        }
    }
    Collected {
        parsed: None,
        errors,
    }
}

/// Sets the value at `path` to `null`, or removes its key when it already
/// is `null` (a field that rejects `null`). False when there is nothing
/// left to unset there.
fn unset(value: &mut Value, path: &[&Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for segment in parents {
        match step(at, segment) {
            Some(next) => at = next,
            None => return false,
        }
    }
    match (at, *last) {
        (Value::Object(map), Segment::Map { key } | Segment::Enum { variant: key }) => {
            let keys = matching_keys(map, key);
            if keys.is_empty() {
                return false;
            }
            let all_null = keys.iter().all(|k| map.get(k).is_some_and(Value::is_null));
            for k in keys {
                if all_null {
                    map.remove(&k);
                } else {
                    map.insert(k, Value::Null);
                }
            }
            true
        }
        (Value::Array(items), Segment::Seq { index }) => match items.get_mut(*index) {
            Some(item) if !item.is_null() => {
                *item = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The value one path segment leads to.
fn step<'v>(value: &'v mut Value, segment: &Segment) -> Option<&'v mut Value> {
    match (value, segment) {
        (Value::Object(map), Segment::Map { key } | Segment::Enum { variant: key }) => {
            let found = matching_keys(map, key).pop()?;
            map.get_mut(&found)
        }
        (Value::Array(items), Segment::Seq { index }) => items.get_mut(*index),
        _ => None,
    }
}

/// The keys of `map` a path key names: itself, or else (struct fields
/// match case-insensitively) those equal to it under case folding.
fn matching_keys(map: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    if map.contains_key(key) {
        return vec![key.to_owned()];
    }
    map.keys().filter(|k| fold_eq(k, key)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GoDuration;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Host {
        address: String,
        weight: u32,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Cluster {
        name: String,
        timeout: Option<GoDuration>,
        hosts: Vec<Host>,
        tags: Vec<String>,
    }

    #[test]
    fn every_bad_value_is_reported_and_the_rest_read() {
        let doc = json!([
            { "name": "a", "timeout": "3parsecs", "hosts": [{ "address": "x", "weight": "heavy" }] },
            { "NAME": 7, "timeout": "1s", "colour": "blue" }
        ]);
        let got = from_value_collecting_at::<Vec<Cluster>>(doc, "clusters");
        let paths: Vec<_> = got.errors.iter().map(|e| e.path.as_str()).collect();
        // In reading order: a `Value` object's keys are sorted.
        assert_eq!(
            paths,
            [
                "clusters[0].hosts[0].weight",
                "clusters[0].timeout",
                "clusters[1].name"
            ]
        );
        let parsed = got.parsed.expect("the rest reads");
        assert_eq!(parsed.value[0].hosts[0].address, "x");
        assert_eq!(parsed.value[0].timeout, None);
        assert_eq!(parsed.value[1].timeout.map(|d| d.get().as_secs()), Some(1));
        assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    }

    #[test]
    fn a_good_document_reads_as_usual() {
        let got = from_value_collecting_at::<Cluster>(json!({ "name": "a" }), "");
        assert!(got.errors.is_empty());
        assert_eq!(got.parsed.unwrap().value.name, "a");
    }

    #[test]
    fn an_array_element_of_the_wrong_type_stops_the_read() {
        // `null` is not a String: the element cannot be unset.
        let got = from_value_collecting_at::<Cluster>(json!({ "tags": ["a", 1] }), "");
        assert_eq!(got.errors[0].path, "tags[1]");
        assert!(got.parsed.is_none());
        assert_eq!(
            got.errors.len(),
            2,
            "the null element is reported once more"
        );
    }

    #[test]
    fn the_document_itself_of_the_wrong_type_stops_at_once() {
        let got = from_value_collecting_at::<Cluster>(json!(42), "");
        assert_eq!(got.errors.len(), 1);
        assert!(got.parsed.is_none());
    }
}
