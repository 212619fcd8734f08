//! The gateway's configuration: MOSN's v2 JSON document read as MOSN (Go)
//! reads it, then built into validated runtime types.
//!
//! Two layers (STYLE §5): `raw` mirrors MOSN's JSON; `build` checks every
//! reference and value and produces [`GatewayConfig`], collecting every
//! problem with its JSON path and a hint. `meshgate validate` and
//! `meshgate start` run the same code. Deliberate differences from MOSN are
//! listed in `docs/mosn-compatibility.md`.

mod build;
mod issues;
pub mod raw;

pub use build::{GatewayConfig, ListenerLimits, ListenerSpec, build};
pub use issues::{ConfigErrors, Issue};

use meshgate_cluster::ClusterManager;
use std::path::Path;

/// Reads and builds the configuration in `text`. `previous` is the running
/// cluster manager on reload (hosts that stay keep their stats).
pub fn load_str(
    text: &str,
    previous: Option<&ClusterManager>,
) -> Result<GatewayConfig, ConfigErrors> {
    let parsed =
        meshgate_gocompat::from_str::<raw::MosnConfig>(text).map_err(|e| ConfigErrors {
            errors: vec![
                Issue::new(e.path, e.message).hint("the file must be MOSN's v2 JSON configuration"),
            ],
            warnings: Vec::new(),
        })?;
    let warnings = parsed
        .warnings
        .into_iter()
        .map(|w| Issue::new(w.path, w.message))
        .collect();
    build(parsed.value, warnings, previous)
}

/// Reads and builds the configuration file at `path`.
pub fn load_file(
    path: &Path,
    previous: Option<&ClusterManager>,
) -> Result<GatewayConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        errors: vec![Issue::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )],
        warnings: Vec::new(),
    })?;
    load_str(&text, previous)
}
