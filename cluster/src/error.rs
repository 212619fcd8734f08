//! Problems found while building clusters from configuration.
//!
//! Building never stops at the first problem: `meshgate validate` has to
//! list every one of them, each with the JSON path it sits at and, where we
//! can say more than "wrong", a hint. Paths are relative to MOSN's
//! `cluster_manager` object (`clusters[1].hosts[0].address`); the gateway,
//! which assembles the whole document, prefixes them.

use std::fmt;

/// One problem in the `cluster_manager` section (paths relative to it,
/// such as `clusters[1].hosts[0].address`): the shared config issue type.
pub use meshgate_gocompat::Issue as ConfigIssue;

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
        let issues = meshgate_gocompat::Issues {
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
        };
        issues.write_report(f, "cluster configuration")
    }
}

/// Collects issues while building; turned into a result at the end.
pub(crate) use meshgate_gocompat::Issues;

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
             error: clusters[0].name: a cluster needs a name\n    hint: add \"name\": \"my_cluster\"\n  \
             warning: clusters[0].hosts: no hosts"
        );
    }
}
