//! The gateway's configuration: MOSN's v2 JSON document read as MOSN (Go)
//! reads it, then built into validated runtime types.
//!
//! Two layers (STYLE §5): `raw` mirrors MOSN's JSON; `build` checks every
//! reference and value and produces [`GatewayConfig`], collecting every
//! problem with its JSON path and a hint. `meshgate validate` and
//! `meshgate start` run the same code. Deliberate differences from MOSN are
//! listed in `docs/mosn-compatibility.md`.

mod build;
pub mod http;
mod issues;
mod listener;
pub mod raw;
mod tcp_proxy;

pub use build::{GatewayConfig, build};
pub use issues::{ConfigErrors, Issue};
pub use listener::{ListenerLimits, ListenerSpec};
pub use tcp_proxy::{
    TcpProxyConfig, TcpProxyRole, TcpProxySpec, TcpProxyUse, TcpRoute, TcpRouteConfig,
};

use meshgate_cluster::ClusterManager;
use std::path::Path;

/// Reads and builds the configuration in `text`. `previous` is the running
/// cluster manager on reload (hosts that stay keep their stats).
pub fn load_str(
    text: &str,
    previous: Option<&ClusterManager>,
) -> Result<GatewayConfig, ConfigErrors> {
    match meshgate_gocompat::from_str::<raw::MosnConfig>(text) {
        Ok(parsed) => {
            let warnings = parsed
                .warnings
                .into_iter()
                .map(|w| Issue::new(w.path, w.message))
                .collect();
            let mut config = build(parsed.value, warnings, previous)?;
            // The text parsed as MOSN's document, so it is JSON.
            if let Ok(document) = serde_json::from_str(text) {
                config.document = std::sync::Arc::new(document);
            }
            Ok(config)
        }
        Err(first) => load_collecting(text, &first, previous),
    }
}

/// A document serde stopped reading at `first`: unless that is a syntax
/// error, every value of the wrong type is collected (each read as unset),
/// and what does read is built too, so one run reports every problem.
fn load_collecting(
    text: &str,
    first: &meshgate_gocompat::ReadError,
    previous: Option<&ClusterManager>,
) -> Result<GatewayConfig, ConfigErrors> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err(ConfigErrors {
            errors: vec![
                Issue::new(&first.path, &first.message)
                    .hint("the file must be MOSN's v2 JSON configuration"),
            ],
            warnings: Vec::new(),
        });
    };
    let collected = meshgate_gocompat::from_value_collecting_at::<raw::MosnConfig>(value, "");
    let mut errors: Vec<Issue> = collected.errors.iter().map(issues::unreadable).collect();
    if errors.is_empty() {
        errors.push(issues::unreadable(first));
    }
    let Some(parsed) = collected.parsed else {
        return Err(ConfigErrors {
            errors,
            warnings: Vec::new(),
        });
    };
    let warnings = parsed
        .warnings
        .into_iter()
        .map(|w| Issue::new(w.path, w.message))
        .collect();
    let warnings = match build(parsed.value, warnings, previous) {
        Ok(config) => config.warnings,
        Err(built) => {
            // An unset value may fail a check of its own: its type error
            // already says what is wrong there.
            let unread: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
            errors.extend(
                built
                    .errors
                    .into_iter()
                    .filter(|e| !unread.contains(&e.path)),
            );
            built.warnings
        }
    };
    Err(ConfigErrors { errors, warnings })
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
