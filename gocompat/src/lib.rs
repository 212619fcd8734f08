//! Reading MOSN's configuration the way MOSN (Go) reads it.
//!
//! MOSN's JSON is decoded by Go's `encoding/json`, which differs from serde
//! in ways a user's existing config file relies on. This crate holds what
//! every config-owning crate (router, cluster, the gateway) needs to read
//! such files unchanged:
//!
//! - [`GoDuration`]: Go duration strings (`"300ms"`, `"1.5s"`, `"1h2m"`).
//! - [`CaseFold`]: a deserializer wrapper matching struct field names the
//!   way Go does (case-insensitively, exact match first).
//!
//! It deliberately knows nothing of MOSN's document shape; each crate owns
//! the serde types of its own section.

mod buffer;
mod casefold;
mod duration;

pub use casefold::{CaseFold, fold_eq};
pub use duration::{GoDuration, ParseDurationError, parse_go_duration};
