//! Why a configuration was refused. Each problem is a
//! [`meshgate_gocompat::Issue`] (path, message, hint), the type every
//! config-owning crate reports with. [`Collector`] gathers them while the
//! document is built, and reads each JSON blob Go-style into its type.

pub use meshgate_gocompat::Issue;
use std::fmt;

/// An issue for a value that could not be read as its field's type.
pub(crate) fn unreadable(e: &meshgate_gocompat::ReadError) -> Issue {
    let hint = if e.message.contains("invalid duration") {
        "write a Go duration such as \"300ms\", \"1.5s\" or \"1h2m\""
    } else {
        "the value has the wrong type for this field (MOSN's v2 configuration); the rest of the file was checked as if it were unset"
    };
    Issue::new(&e.path, &e.message).hint(hint)
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
        let issues = meshgate_gocompat::Issues {
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
        };
        issues.write_report(f, "configuration")
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
        self.errors.push(unreadable(e));
        self.unread.push(e.path.clone());
    }

    pub(crate) fn warn(&mut self, issue: Issue) {
        self.warnings.push(issue);
    }

    /// Reads a JSON blob Go-style at `path`, recording its warnings and
    /// errors. `None` only when what is there cannot be read at all.
    pub(crate) fn read<T: serde::de::DeserializeOwned>(
        &mut self,
        value: &serde_json::Value,
        path: &str,
    ) -> Option<T> {
        let value = if value.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            value.clone()
        };
        // Every bad value is reported; the rest is still read (bad values
        // unset) so the checks that follow can report their problems too.
        let collected = meshgate_gocompat::from_value_collecting_at::<T>(value, path);
        for e in &collected.errors {
            self.unreadable(e);
        }
        let parsed = collected.parsed?;
        for w in parsed.warnings {
            self.warn(Issue::new(w.path, w.message));
        }
        Some(parsed.value)
    }
}
