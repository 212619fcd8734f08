//! Why a configuration was refused. Each problem is a
//! [`meshgate_gocompat::Issue`] (path, message, hint), the type every
//! config-owning crate reports with.

pub use meshgate_gocompat::Issue;
use std::fmt;

/// Every error of a refused configuration, and the warnings met on the way
/// (so `validate` shows both).
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// Problems that stop the configuration from being used.
    pub errors: Vec<Issue>,
    /// Problems tolerated the way MOSN tolerates them.
    pub warnings: Vec<Issue>,
}

impl From<meshgate_gocompat::Issues> for ConfigErrors {
    fn from(issues: meshgate_gocompat::Issues) -> ConfigErrors {
        ConfigErrors {
            errors: issues.errors,
            warnings: issues.warnings,
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issues = meshgate_gocompat::Issues {
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
        };
        issues.write_report(f, "configuration")
    }
}
