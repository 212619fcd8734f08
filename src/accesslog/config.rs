//! `listeners[].access_logs[]`: MOSN's `{"log_path", "log_format"}`
//! entries, checked and compiled when the configuration is built.

use super::format::Format;
use super::{Entry, ListenerAccessLogs};
use meshgate_gocompat::{Issue, Issues};
use serde::Deserialize;
use std::sync::Arc;

/// One `access_logs[]` entry (MOSN `v2.AccessLog`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccessLogConfig {
    /// The file (created with its directory), or `stdout` / `stderr`.
    pub log_path: String,
    /// `%variable%` format; empty means MOSN's default format.
    pub log_format: String,
}

/// Builds a listener's access logs from `configs` (at JSON path `path`),
/// recording problems in `issues`: a missing path is an error; a variable
/// the format does not know is a warning (it renders as `-`). Nothing is
/// opened here: `validate` must not create files.
pub fn build(configs: &[AccessLogConfig], path: &str, issues: &mut Issues) -> ListenerAccessLogs {
    let mut entries = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if config.log_path.trim().is_empty() {
            issues.error(
                Issue::new(format!("{at}.log_path"), "missing")
                    .hint("name the access log file, or \"stdout\" / \"stderr\""),
            );
            continue;
        }
        let (format, unknown) = Format::parse(&config.log_format);
        for name in unknown {
            issues.warn(
                Issue::new(
                    format!("{at}.log_format"),
                    format!("unknown variable %{name}%; logged as \"-\""),
                )
                .hint("see docs/access-log.md for the variables meshgate knows"),
            );
        }
        entries.push(Entry {
            path: config.log_path.clone(),
            format: Arc::new(format),
            file: None,
        });
    }
    ListenerAccessLogs {
        entries: std::sync::Arc::new(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_variables_warn_with_their_path_and_a_missing_path_is_an_error() {
        let configs = vec![
            AccessLogConfig {
                log_path: "/tmp/a.log".into(),
                log_format: "%start_time% %no_such_thing% %protocol%".into(),
            },
            AccessLogConfig {
                log_path: String::new(),
                log_format: String::new(),
            },
            AccessLogConfig {
                log_path: "stdout".into(),
                log_format: String::new(),
            },
        ];
        let mut issues = Issues::default();
        let logs = build(&configs, "servers[0].listeners[0].access_logs", &mut issues);
        assert_eq!(logs.paths().collect::<Vec<_>>(), ["/tmp/a.log", "stdout"]);
        assert_eq!(issues.warnings.len(), 1);
        assert_eq!(
            issues.warnings[0].path,
            "servers[0].listeners[0].access_logs[0].log_format"
        );
        assert!(issues.warnings[0].message.contains("%no_such_thing%"));
        assert_eq!(issues.errors.len(), 1);
        assert_eq!(
            issues.errors[0].path,
            "servers[0].listeners[0].access_logs[1].log_path"
        );
    }
}
