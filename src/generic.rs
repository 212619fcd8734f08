//! Loading generic x-protocol codecs from their JSON descriptions, so a user
//! can carry a custom binary RPC with a config file and no code.

use meshgate_codecs::Registry;
use meshgate_codecs::generic::{GenericCodec, GenericConfig, GenericConfigError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a generic codec file could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum GenericLoadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a generic codec description.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why the JSON does not fit.
        source: serde_json::Error,
    },
    /// The description is inconsistent.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field at fault and how to fix it.
        source: GenericConfigError,
    },
    /// The registry refused the codec (usually a duplicate name).
    #[error("{path}: {source}")]
    Register {
        /// The file.
        path: PathBuf,
        /// Why.
        source: meshgate_codecs::RegistryError,
    },
}

/// Reads a generic codec description (see `examples/generic/`) and
/// registers the codec after the protocols already in `registry`.
pub fn register_from_file(registry: &mut Registry, path: &Path) -> Result<(), GenericLoadError> {
    let path_buf = path.to_path_buf();
    let text = std::fs::read_to_string(path).map_err(|source| GenericLoadError::Read {
        path: path_buf.clone(),
        source,
    })?;
    let config: GenericConfig =
        serde_json::from_str(&text).map_err(|source| GenericLoadError::Parse {
            path: path_buf.clone(),
            source,
        })?;
    let codec = GenericCodec::new(config).map_err(|source| GenericLoadError::Invalid {
        path: path_buf.clone(),
        source,
    })?;
    registry
        .register(Arc::new(codec))
        .map_err(|source| GenericLoadError::Register {
            path: path_buf,
            source,
        })
}
