//! The process log: `tracing` to standard error, with the level held in a
//! reloadable filter so the admin API can change it at run time (the next
//! log line obeys) and switch the log off and on (MOSN's `disable_log` /
//! `enable_log` for the `default` logger).

use std::sync::Mutex;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The level names accepted, to the filter directive each means. MOSN's
/// names (`FATAL`, `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`) and
/// `tracing`'s (`error` … `trace`, `off`) in any case.
pub fn level_directive(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "critical" => "error",
        "off" | "none" => "off",
        _ => return None,
    })
}

/// Turns the process log's filter into another.
type Apply = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// Control over the process log's level, shared with the admin API.
pub struct LogControl {
    apply: Apply,
    state: Mutex<LogState>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The level as set, and whether the log is on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogState {
    level: String,
    enabled: bool,
}

impl LogControl {
    fn state(&self) -> LogState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The level now (`info`, or the `RUST_LOG` directives the process
    /// started with); `off` while the log is disabled.
    pub fn level(&self) -> String {
        let state = self.state();
        if state.enabled {
            state.level
        } else {
            "off".to_owned()
        }
    }

    /// Sets the level by name (see [`level_directive`]). While the log is
    /// disabled the level is kept for when it is enabled again.
    pub fn set_level(&self, name: &str) -> Result<(), String> {
        let directive = level_directive(name).ok_or_else(|| {
            format!("unknown log level {name:?}: use trace, debug, info, warn, error, fatal or off")
        })?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.enabled {
            (self.apply)(EnvFilter::new(directive))?;
        }
        state.level = directive.to_owned();
        Ok(())
    }

    /// Switches the process log off (`false`) or back on at its level.
    pub fn set_enabled(&self, enabled: bool) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let directive = if enabled { state.level.as_str() } else { "off" };
        (self.apply)(EnvFilter::new(directive))?;
        state.enabled = enabled;
        Ok(())
    }
}

/// Installs the process log on standard error: `RUST_LOG` when set, else
/// `level` (a config's `default_log_level`, MOSN names accepted; `info`
/// when absent or unknown). Colours only on a terminal. Returns the control
/// the admin API changes the level through.
pub fn init(level: Option<&str>) -> LogControl {
    let (filter, name) = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            (EnvFilter::new(&directives), directives)
        }
        _ => {
            let directive = level.and_then(level_directive).unwrap_or("info");
            (EnvFilter::new(directive), directive.to_owned())
        }
    };
    let (filter, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second install (tests calling `init` twice) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init();
    LogControl {
        apply: Box::new(move |filter| handle.reload(filter).map_err(|e| e.to_string())),
        state: Mutex::new(LogState {
            level: name,
            enabled: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_map_mosn_and_tracing_names() {
        assert_eq!(level_directive("DEBUG"), Some("debug"));
        assert_eq!(level_directive("WARN"), Some("warn"));
        assert_eq!(level_directive("warning"), Some("warn"));
        assert_eq!(level_directive("FATAL"), Some("error"));
        assert_eq!(level_directive("Off"), Some("off"));
        assert_eq!(level_directive("loud"), None);
    }

    #[test]
    fn control_keeps_the_level_while_disabled() {
        let applied = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&applied);
        let control = LogControl {
            apply: Box::new(move |filter| {
                seen.lock().unwrap().push(filter.to_string());
                Ok(())
            }),
            state: Mutex::new(LogState {
                level: "info".into(),
                enabled: true,
            }),
        };
        control.set_level("DEBUG").unwrap();
        assert_eq!(control.level(), "debug");
        assert!(control.set_level("chatty").is_err());
        control.set_enabled(false).unwrap();
        assert_eq!(control.level(), "off");
        control.set_level("warn").unwrap();
        control.set_enabled(true).unwrap();
        assert_eq!(control.level(), "warn");
        assert_eq!(*applied.lock().unwrap(), ["debug", "off", "warn"]);
    }
}
