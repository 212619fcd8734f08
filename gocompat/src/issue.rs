//! A problem found in a configuration: where (its JSON path), what, and how
//! to fix it. Shared by every crate that builds runtime types from config,
//! so `meshgate validate` prints them all alike.

use std::fmt;

/// One problem, error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// JSON path, such as `cluster_manager.clusters[1].hosts[0].address`
    /// (crates building a sub-document use paths relative to it; the
    /// gateway re-roots them with [`Issue::under`]).
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Issue {
    /// An issue at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Issue {
        Issue {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Issue {
        self.hint = Some(hint.into());
        self
    }

    /// The same issue with its path re-rooted under `base`.
    pub fn under(mut self, base: &str) -> Issue {
        self.path = join_path(base, &self.path);
        self
    }
}

/// `base` + `path` in the `a.b[0].c` form (`path` may start with `[`).
pub fn join_path(base: &str, path: &str) -> String {
    match (base.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) if path.starts_with('[') => format!("{base}{path}"),
        (false, false) => format!("{base}.{path}"),
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// Errors and warnings collected while building (never only the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issues {
    /// Problems that stop the configuration from being used.
    pub errors: Vec<Issue>,
    /// Problems tolerated (usually the way MOSN tolerates them).
    pub warnings: Vec<Issue>,
}

impl Issues {
    /// Records an error.
    pub fn error(&mut self, issue: Issue) {
        self.errors.push(issue);
    }

    /// Records a warning.
    pub fn warn(&mut self, issue: Issue) {
        self.warnings.push(issue);
    }

    /// Writes `title` ("3 errors in the configuration"), then every error and
    /// warning on its own line; the `Display` of each crate's error type.
    pub fn write_report(&self, f: &mut fmt::Formatter<'_>, what: &str) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the {what}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_hints_print_on_their_own_line() {
        assert_eq!(
            join_path("servers[0]", "routers[1]"),
            "servers[0].routers[1]"
        );
        assert_eq!(join_path("hosts", "[2].address"), "hosts[2].address");
        assert_eq!(join_path("", "a"), "a");
        let issue = Issue::new("address", "bad")
            .hint("write ip:port")
            .under("hosts[0]");
        assert_eq!(
            issue.to_string(),
            "hosts[0].address: bad\n    hint: write ip:port"
        );
    }
}
