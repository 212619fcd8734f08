//! Built-in stream filters and the factory that builds them from a
//! listener's `stream_filters` entries.

mod fault;
mod header_mutation;

use super::filter::StreamFilter;
use serde_json::Value;
use std::sync::Arc;

/// The stream filter `type`s meshgate builds.
pub const BUILTIN: &[&str] = &["fault", "header_mutation"];

/// What the factory made of one `{"type", "config"}` entry.
#[derive(Debug)]
pub enum Built {
    /// A filter.
    Filter(Arc<dyn StreamFilter>),
    /// A type meshgate does not know: skipped (MOSN would fail to start
    /// on an unregistered filter; we warn instead, as the config rules say).
    Unknown,
}

/// A config problem: path relative to the entry's `config`, and message.
pub type FactoryError = (String, String);

/// Builds the filter for `kind` from `config` (read Go-style; unknown keys
/// come back as warnings with paths relative to `config`).
pub fn build(
    kind: &str,
    config: Value,
) -> Result<(Built, Vec<meshgate_gocompat::Warning>), FactoryError> {
    fn read<T: serde::de::DeserializeOwned>(
        config: Value,
    ) -> Result<meshgate_gocompat::Parsed<T>, FactoryError> {
        let config = if config.is_null() {
            Value::Object(Default::default())
        } else {
            config
        };
        meshgate_gocompat::from_value(config).map_err(|e| (e.path, e.message))
    }
    match kind {
        "fault" => {
            let parsed = read::<fault::FaultConfig>(config)?;
            let filter = fault::Fault::build(parsed.value)?;
            Ok((Built::Filter(Arc::new(filter)), parsed.warnings))
        }
        "header_mutation" => {
            let parsed = read::<header_mutation::HeaderMutationConfig>(config)?;
            let filter = header_mutation::HeaderMutation::build(parsed.value)?;
            Ok((Built::Filter(Arc::new(filter)), parsed.warnings))
        }
        _ => Ok((Built::Unknown, Vec::new())),
    }
}
