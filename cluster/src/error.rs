//! Problems found while building clusters from configuration.
//!
//! Building never stops at the first problem: `meshgate validate` has to
//! list every one of them, each with the JSON path it sits at and, where we
//! can say more than "wrong", a hint. Paths are relative to MOSN's
//! `cluster_manager` object (`clusters[1].hosts[0].address`); the gateway,
//! which assembles the whole document, prefixes them.

use std::fmt;

/// One problem in the `cluster_manager` section: where it is, what is wrong
/// and, when we know, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// JSON path relative to `cluster_manager`, such as
    /// `clusters[1].hosts[0].address`.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl ConfigIssue {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Why a set of cluster configs could not be built: every error found, plus
/// the warnings gathered on the way (so `validate` can print both).
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ClusterConfigErrors {
    /// Problems that stop the clusters from being built.
    pub errors: Vec<ConfigIssue>,
    /// Problems that were tolerated the way MOSN tolerates them.
    pub warnings: Vec<ConfigIssue>,
}

impl fmt::Display for ClusterConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the cluster configuration",
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.errors {
            write!(f, "\n  error: {issue}")?;
        }
        for issue in &self.warnings {
            write!(f, "\n  warning: {issue}")?;
        }
        Ok(())
    }
}

/// Collects issues while building; turned into a result at the end.
#[derive(Debug, Default)]
pub(crate) struct Issues {
    pub(crate) errors: Vec<ConfigIssue>,
    pub(crate) warnings: Vec<ConfigIssue>,
}

impl Issues {
    pub(crate) fn error(&mut self, issue: ConfigIssue) {
        self.errors.push(issue);
    }

    pub(crate) fn warn(&mut self, issue: ConfigIssue) {
        self.warnings.push(issue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_errors_then_warnings() {
        let errs = ClusterConfigErrors {
            errors: vec![
                ConfigIssue::new("clusters[0].name", "a cluster needs a name")
                    .hint("add \"name\": \"my_cluster\""),
            ],
            warnings: vec![ConfigIssue::new("clusters[0].hosts", "no hosts")],
        };
        assert_eq!(
            errs.to_string(),
            "1 error in the cluster configuration\n  \
             error: clusters[0].name: a cluster needs a name (hint: add \"name\": \"my_cluster\")\n  \
             warning: clusters[0].hosts: no hosts"
        );
    }
}
