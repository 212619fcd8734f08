//! Reading a serde type from JSON the way Go's `encoding/json` reads it:
//! see the crate documentation.

use crate::casefold::CaseFold;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;
use std::fmt;

/// A value read from JSON, and what was ignored on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The value.
    pub value: T,
    /// Unknown keys, each with its path, in the order met (see [`from_str`]
    /// and [`from_value`]).
    pub warnings: Vec<Warning>,
}

/// Something in the input that was skipped, such as an unknown key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where: `servers[0].listeners[1].filter_chains[0].foo`.
    pub path: String,
    /// What: `unknown key, ignored`.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.path, &self.message)
    }
}

/// Why the input could not be read.
///
/// Displays as `path: message`, such as
/// `servers[0].listeners[0].bind_port: invalid type: string "x", expected u16`,
/// or as the message alone when there is no path (syntax errors, whose
/// message ends with `at line L column C`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Located(.path, .message))]
pub struct ReadError {
    /// Path of the value at fault; empty for the document itself.
    pub path: String,
    /// serde's or serde_json's description of the problem.
    pub message: String,
}

struct Located<'a>(&'a str, &'a str);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, self.0, self.1)
    }
}

fn write_located(f: &mut fmt::Formatter<'_>, path: &str, message: &str) -> fmt::Result {
    if path.is_empty() {
        f.write_str(message)
    } else {
        write!(f, "{path}: {message}")
    }
}

/// Reads `T` from JSON text; see the [crate documentation](crate).
///
/// The text is read as a stream, not through a `serde_json::Value`, so keys
/// are met in the order written: warnings come in file order, and of keys
/// naming one field (`"name"` then `"NAME"`) the one written last wins, as
/// in Go.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<Parsed<T>, ReadError> {
    from_str_at(text, "")
}

/// Like [`from_str`], for a document that sits at `base` in a larger one:
/// warnings and errors name paths starting with `base`.
pub fn from_str_at<T: DeserializeOwned>(text: &str, base: &str) -> Result<Parsed<T>, ReadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = read(&mut de, base).map_err(|(path, e)| ReadError {
        path,
        message: without_position(&e),
    })?;
    de.end().map_err(|e| ReadError {
        path: base.to_owned(),
        message: e.to_string(),
    })?;
    Ok(parsed)
}

/// Reads `T` from a parsed JSON value; see the [crate documentation](crate).
///
/// A `serde_json::Value` keeps an object's keys sorted, not in the order
/// written: warnings come in that order, and of keys differing only in case
/// that name one field, the one sorting last wins. Prefer [`from_str`] for
/// whole files.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<Parsed<T>, ReadError> {
    from_value_at(value, "")
}

/// Like [`from_value`], for a value that sits at `base` in a larger
/// document, such as a cluster read on its own:
/// `from_value_at(cluster, "cluster_manager.clusters[2]")` reports an unknown
/// key as `cluster_manager.clusters[2].foo`.
pub fn from_value_at<T: DeserializeOwned>(
    value: Value,
    base: &str,
) -> Result<Parsed<T>, ReadError> {
    read(value, base).map_err(|(path, e)| ReadError {
        path,
        message: e.to_string(),
    })
}

/// The message of a streamed error. A syntax error keeps its line and
/// column. A data error has a path instead: its position would only be where
/// the enclosing object ended, since a struct's entries are checked after
/// they have all been buffered.
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if !e.is_data() {
        return message;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => message,
    }
}

/// The reading stack: `serde_path_to_error`, then `serde_ignored`, then
/// [`CaseFold`] next to the JSON (see the crate documentation for why).
fn read<'de, T, D>(de: D, base: &str) -> Result<Parsed<T>, (String, D::Error)>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    read_tracked(de, base).map_err(|(path, e)| (error_path(base, &path), e))
}

/// [`read`], with the error's path as `serde_path_to_error` recorded it
/// (relative to the input, not to `base`).
pub(crate) fn read_tracked<'de, T, D>(
    de: D,
    base: &str,
) -> Result<Parsed<T>, (serde_path_to_error::Path, D::Error)>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let mut warnings = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let mut on_ignored = |path: serde_ignored::Path<'_>| {
            warnings.push(ignored_warning(base, &path));
        };
        let de = serde_ignored::Deserializer::new(CaseFold::new(de), &mut on_ignored);
        let de = serde_path_to_error::Deserializer::new(de, &mut track);
        T::deserialize(de)
    };
    match result {
        Ok(value) => Ok(Parsed { value, warnings }),
        Err(e) => Err((track.path(), e)),
    }
}

/// One step of a path, before it is written out.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
    Unknown,
}

/// Writes `steps` after `base` in the `a.b[0].c` form. A key that is not a
/// plain name (`[A-Za-z0-9_-]+`) is written quoted in brackets, so map keys
/// such as `"x.y"` stay unambiguous: `metadata["x.y"]`.
fn write_path<'a>(base: &str, steps: impl IntoIterator<Item = Step<'a>>) -> String {
    let mut out = base.to_owned();
    for step in steps {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k) if is_plain(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => {
                let quoted = serde_json::to_string(k).unwrap_or_else(|_| format!("{k:?}"));
                out.push_str(&format!("[{quoted}]"));
            }
            Step::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn error_path(base: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    write_path(
        base,
        path.iter().map(|segment| match segment {
            Segment::Seq { index } => Step::Index(*index),
            Segment::Map { key } => Step::Key(key),
            Segment::Enum { variant } => Step::Key(variant),
            Segment::Unknown => Step::Unknown,
        }),
    )
}

fn ignored_warning(base: &str, path: &serde_ignored::Path<'_>) -> Warning {
    let mut steps = Vec::new();
    let mut at = path;
    loop {
        at = match at {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                steps.push(Step::Index(*index));
                parent
            }
            serde_ignored::Path::Map { parent, key } => {
                steps.push(Step::Key(key));
                parent
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => parent,
        };
    }
    let message = match steps.first() {
        Some(Step::Index(_)) => "extra element, ignored",
        _ => "unknown key, ignored",
    };
    steps.reverse();
    Warning {
        path: write_path(base, steps),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_forms() {
        let steps = [
            Step::Key("servers"),
            Step::Index(0),
            Step::Key("metadata"),
            Step::Key("x.y"),
        ];
        assert_eq!(write_path("", steps), r#"servers[0].metadata["x.y"]"#);
        assert_eq!(write_path("a[2]", [Step::Key("b")]), "a[2].b");
        assert_eq!(write_path("a", [Step::Index(1)]), "a[1]");
        assert_eq!(
            write_path("", [Step::Index(1), Step::Key("")]),
            r#"[1][""]"#
        );
        assert_eq!(write_path("", []), "");
    }

    #[test]
    fn display() {
        let e = ReadError {
            path: "a.b".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.b: bad");
        let e = ReadError {
            path: String::new(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "bad");
    }
}
