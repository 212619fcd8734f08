//! Problems found in a configuration: each with its JSON path, what is
//! wrong, and (when there is something useful to say) how to fix it.

use std::fmt;

/// One problem, error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Full JSON path in the document, such as
    /// `servers[0].listeners[1].filter_chains[0].filters[0].config.router_config_name`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
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

    /// A value that could not be read as its field's type.
    pub(crate) fn unreadable(e: &meshgate_gocompat::ReadError) -> Issue {
        let hint = if e.message.contains("invalid duration") {
            "write a Go duration such as \"300ms\", \"1.5s\" or \"1h2m\""
        } else {
            "the value has the wrong type for this field (MOSN's v2 configuration); the rest of the file was checked as if it were unset"
        };
        Issue::new(&e.path, &e.message).hint(hint)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Issue {
        self.hint = Some(hint.into());
        self
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

/// Why a configuration was refused: every error, and the warnings met on
/// the way (so `validate` shows both).
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// Problems that stop the configuration from being used.
    pub errors: Vec<Issue>,
    /// Problems tolerated the way MOSN tolerates them.
    pub warnings: Vec<Issue>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the configuration",
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

/// Collects issues while walking the document.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) errors: Vec<Issue>,
    pub(crate) warnings: Vec<Issue>,
    /// Paths of values that could not be read (and were read as unset).
    pub(crate) unread: Vec<String>,
}

impl Collector {
    /// Records an error, unless it is about a value already reported as
    /// unreadable (an unset value may fail a later check of its own).
    pub(crate) fn error(&mut self, issue: Issue) {
        if !self.unread.contains(&issue.path) {
            self.errors.push(issue);
        }
    }

    /// Records a value that could not be read.
    pub(crate) fn unreadable(&mut self, e: &meshgate_gocompat::ReadError) {
        self.errors.push(Issue::unreadable(e));
        self.unread.push(e.path.clone());
    }

    pub(crate) fn warn(&mut self, issue: Issue) {
        self.warnings.push(issue);
    }

    /// Issues whose path is relative to `base` (sub-documents read or built
    /// by another crate).
    pub(crate) fn prefixed(base: &str, path: &str) -> String {
        match (base.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (false, true) => base.to_owned(),
            (false, false) if path.starts_with('[') => format!("{base}{path}"),
            (false, false) => format!("{base}.{path}"),
        }
    }
}
