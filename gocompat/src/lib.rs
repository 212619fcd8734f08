//! Reading MOSN's configuration the way MOSN (Go) reads it.
//!
//! MOSN's JSON is decoded by Go's `encoding/json`, which differs from serde
//! in ways a user's existing config file relies on. This crate holds what
//! every config-owning crate (router, cluster, the gateway) needs to read
//! such files unchanged:
//!
//! - [`GoDuration`]: Go duration strings (`"300ms"`, `"1.5s"`, `"1h2m"`).
//! - [`from_str`] / [`from_value`] (and their `_at` forms for a sub-document):
//!   read any `serde` type with Go's habits (struct field names matched
//!   case-insensitively, the last of duplicate keys winning, `null` leaving
//!   a field at its default), unknown keys returned as [`Warning`]s with
//!   their JSON path, and errors as a [`ReadError`] naming the path.
//! - [`CaseFold`]: the deserializer wrapper doing the field-name matching,
//!   for callers composing their own stack.
//!
//! Config types read this way should avoid `#[serde(flatten)]`,
//! `#[serde(untagged)]` and tagged enums: see [`CaseFold`].
//!
//! It deliberately knows nothing of MOSN's document shape; each crate owns
//! the serde types of its own section.
//!
//! ```
//! # use serde::Deserialize;
//! #[derive(Debug, Deserialize)]
//! struct Listener {
//!     name: String,
//!     #[serde(default)]
//!     bind_port: bool,
//! }
//! #[derive(Debug, Deserialize)]
//! struct Server {
//!     listeners: Vec<Listener>,
//! }
//! let parsed: meshgate_gocompat::Parsed<Server> = meshgate_gocompat::from_str(
//!     r#"{"Listeners": [{"NAME": "egress", "bind_port": null, "reuse_port": true}]}"#,
//! )?;
//! assert_eq!(parsed.value.listeners[0].name, "egress");
//! assert!(!parsed.value.listeners[0].bind_port);
//! assert_eq!(
//!     parsed.warnings[0].to_string(),
//!     "listeners[0].reuse_port: unknown key, ignored"
//! );
//!
//! let err = meshgate_gocompat::from_str::<Server>(r#"{"listeners": [{"name": 7}]}"#)
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "listeners[0].name: invalid type: integer `7`, expected a string"
//! );
//! # Ok::<(), meshgate_gocompat::ReadError>(())
//! ```
//!
//! # Reading the Go way
//!
//! | Go habit | here |
//! |---|---|
//! | struct field names match case-insensitively | [`CaseFold`] (exact match first) |
//! | a duplicate key takes the last value | the last written wins: [`CaseFold`] for struct fields (also keys differing only in case), maps and `serde_json::Value` by their own insert |
//! | `null` leaves a field as it was | [`CaseFold`] drops `null` for known struct fields |
//! | unknown keys are ignored | each is a [`Warning`] with its path (`serde_ignored`) |
//!
//! Errors are [`ReadError`]s carrying the path of the value at fault
//! (`serde_path_to_error`); syntax errors also carry line and column.
//!
//! The wrapping order matters: `serde_path_to_error` outermost, then
//! `serde_ignored`, then [`CaseFold`] next to the JSON. Key strings travel
//! from the JSON outwards, so the two path recorders see the keys after
//! `CaseFold` has replaced them with canonical field names: paths read
//! `servers[0].listeners[0].bind_port` even when the file wrote
//! `"BIND_PORT"`.
//!
//! Paths are written `a.b[0].c`; a key that is not a plain name
//! (`[A-Za-z0-9_-]+`) is quoted in brackets: `metadata["x.y"]`.
//!
//! Where this differs from Go, in rare inputs:
//!
//! - Read through a `serde_json::Value` ([`from_value`]), an object's keys
//!   are in sorted order, not the order written, so of keys differing only
//!   in case that name one field the one sorting last wins. [`from_str`]
//!   reads the text as a stream and keeps Go's order.
//! - `null` as an array element, or as a map value, is not dropped: it reads
//!   as `None` into an `Option`, and is a type error into anything else (Go
//!   would store the zero value).
//! - A JSON array is accepted for a struct, element by element in field
//!   order (serde's habit); Go rejects it.
//! - A warning inside a variant of an externally tagged enum
//!   (`{"fixed": {...}}`) lacks the variant's key in its path, which
//!   `serde_ignored` does not record; errors have it. MOSN's enums are plain
//!   strings (`"LB_RANDOM"`), so its configs do not meet this.
//! - Error messages are serde's, not Go's. Type errors carry a path but no
//!   line and column (a struct's entries are checked on a buffered copy, see
//!   [`CaseFold`]); syntax errors carry line and column.

mod buffer;
mod casefold;
mod collect;
mod duration;
mod issue;
mod reader;

pub use casefold::{CaseFold, fold_eq};
pub use collect::{Collected, from_value_collecting_at};
pub use duration::{GoDuration, ParseDurationError, parse_go_duration};
pub use issue::{Issue, Issues, join_path};
pub use reader::{Parsed, ReadError, Warning, from_str, from_str_at, from_value, from_value_at};
