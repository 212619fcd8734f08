//! MOSN's `health_check` block, validated: which checker, how often, how
//! long, which thresholds. Defaults are MOSN's where MOSN has a sensible
//! one (timeout 1 s, interval 15 s); see `docs/health-checks.md`.

use crate::config::HealthCheckConfig;
use crate::error::{ConfigIssue, Issues};
use meshgate_gocompat::GoDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which probe the checker sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `tcp`: a TCP connect that succeeds in time is a healthy host.
    Tcp,
    /// `Http1` (also `http1`, `http`): an HTTP/1.1 request answered with
    /// an expected status.
    Http(HttpCheck),
    /// Any other name: a framed protocol of the registry (`bolt`,
    /// `dubbo`, a generic codec) whose `heartbeat_request` is sent and
    /// whose heartbeat reply with the same id must come back in time.
    Heartbeat {
        /// The registry name of the codec.
        protocol: String,
    },
}

/// The HTTP checker's request and expectations (`check_config.http_check_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Request path (default `/`).
    pub path: String,
    /// Request method (default `GET`).
    pub method: String,
    /// Port to check instead of the host's own (MOSN's `port`).
    pub port: Option<u16>,
    /// Statuses counted as healthy, as half-open ranges `[start, end)`.
    /// Default: 200 only, as MOSN.
    pub expected: Vec<(u16, u16)>,
}

impl HttpCheck {
    /// Whether `status` is one of the expected ones.
    pub fn expects(&self, status: u16) -> bool {
        self.expected
            .iter()
            .any(|&(start, end)| (start..end).contains(&status))
    }
}

/// A validated `health_check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSettings {
    /// The `protocol` as written.
    pub protocol: String,
    /// What the checker sends.
    pub kind: CheckKind,
    /// How long one check may take (default 1 s, MOSN's).
    pub timeout: Duration,
    /// Time between the end of one check and the start of the next
    /// (default 15 s, MOSN's).
    pub interval: Duration,
    /// Up to this much random time added to every interval (and to the
    /// first check), so hosts are not all checked at the same instant.
    pub interval_jitter: Duration,
    /// Delay before a host's first check (default none).
    pub initial_delay: Duration,
    /// Successes in a row that make an unhealthy host healthy (default 2).
    pub healthy_threshold: u32,
    /// Failures in a row that make a healthy host unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// `service_name`: the HTTP checker's `Host` header when set.
    pub service_name: String,
}

impl HealthCheckSettings {
    /// MOSN's `DefaultTimeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    /// MOSN's `DefaultInterval`.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
    /// `healthy_threshold` when 0 or absent.
    pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
    /// `unhealthy_threshold` when 0 or absent.
    pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
}

/// MOSN's `http_check_config` (`port`, `timeout`, `path`) plus meshgate's
/// `method`, `expected_codes` and Envoy-style `expected_statuses`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpCheckConfig {
    /// Port to check; 0 or absent: the host's own port.
    pub port: i64,
    /// MOSN's own timeout of the HTTP check; the check is bounded by the
    /// shorter of this and `health_check.timeout`.
    pub timeout: Option<GoDuration>,
    /// Request path; default `/`.
    pub path: String,
    /// Request method; default `GET`.
    pub method: String,
    /// Healthy statuses, one by one.
    pub expected_codes: Vec<u16>,
    /// Healthy status ranges, `start` included, `end` excluded (Envoy).
    pub expected_statuses: Vec<StatusRangeConfig>,
}

/// One half-open status range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusRangeConfig {
    /// First status of the range.
    pub start: u16,
    /// First status after the range.
    pub end: u16,
}

/// The key of the HTTP checker's part of `check_config` (MOSN's
/// `HTTPCheckConfigKey`).
pub const HTTP_CHECK_CONFIG_KEY: &str = "http_check_config";

/// Validates `health_check` at `path` (`clusters[i].health_check`); `None`
/// when the block is absent or empty, or has no `protocol` (MOSN then
/// runs no checker either; warned).
pub(crate) fn health_check_settings(
    c: &HealthCheckConfig,
    path: &str,
    issues: &mut Issues,
) -> Option<HealthCheckSettings> {
    if *c == HealthCheckConfig::default() {
        return None;
    }
    let at = |field: &str| format!("{path}.{field}");
    if c.protocol.is_empty() {
        issues.warn(
            ConfigIssue::new(
                at("protocol"),
                "health_check has no protocol: no health checks run (as in MOSN)",
            )
            .hint("set \"protocol\": \"tcp\", \"Http1\", or a codec name such as \"bolt\""),
        );
        return None;
    }
    let (kind, own_timeout) = check_kind(c, path, issues);
    let nonzero = |d: GoDuration, default: Duration| {
        Some(d.get()).filter(|d| !d.is_zero()).unwrap_or(default)
    };
    let mut timeout = nonzero(c.timeout, HealthCheckSettings::DEFAULT_TIMEOUT);
    if let Some(own) = own_timeout.filter(|d| !d.is_zero()) {
        timeout = timeout.min(own);
    }
    let interval = nonzero(c.interval, HealthCheckSettings::DEFAULT_INTERVAL);
    if timeout > interval {
        issues.warn(
            ConfigIssue::new(
                at("timeout"),
                format!("timeout {timeout:?} is longer than interval {interval:?}"),
            )
            .hint("a hung host is then noticed only after the timeout; keep timeout ≤ interval"),
        );
    }
    for (name, value) in [
        ("event_log_path", !c.event_log_path.is_empty()),
        ("common_callbacks", !c.common_callbacks.is_empty()),
    ] {
        if value {
            issues.warn(
                ConfigIssue::new(at(name), "not supported; ignored")
                    .hint("health transitions are logged at info level and counted per host"),
            );
        }
    }
    let threshold = |v: u32, default: u32| if v == 0 { default } else { v };
    Some(HealthCheckSettings {
        protocol: c.protocol.clone(),
        kind,
        timeout,
        interval,
        interval_jitter: c.interval_jitter.get(),
        initial_delay: c.initial_delay_seconds.get(),
        healthy_threshold: threshold(
            c.healthy_threshold,
            HealthCheckSettings::DEFAULT_HEALTHY_THRESHOLD,
        ),
        unhealthy_threshold: threshold(
            c.unhealthy_threshold,
            HealthCheckSettings::DEFAULT_UNHEALTHY_THRESHOLD,
        ),
        service_name: c.service_name.clone(),
    })
}

/// MOSN names: `tcp`, `Http1`; MOSN's old `SofaRpc` checker is bolt's.
/// Also returns the HTTP checker's own timeout, if it has one.
fn check_kind(
    c: &HealthCheckConfig,
    path: &str,
    issues: &mut Issues,
) -> (CheckKind, Option<Duration>) {
    let name = c.protocol.as_str();
    if name.eq_ignore_ascii_case("tcp") {
        return (CheckKind::Tcp, None);
    }
    if ["http1", "http"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        let config = http_config(c, path, issues).unwrap_or_default();
        let own_timeout = config.timeout.map(GoDuration::get);
        return (
            CheckKind::Http(http_check(&config, path, issues)),
            own_timeout,
        );
    }
    let protocol = if name.eq_ignore_ascii_case("sofarpc") {
        "bolt".to_owned()
    } else {
        name.to_owned()
    };
    (CheckKind::Heartbeat { protocol }, None)
}

/// Reads `check_config.http_check_config` the Go way (unknown keys warned).
fn http_config(c: &HealthCheckConfig, path: &str, issues: &mut Issues) -> Option<HttpCheckConfig> {
    let base = format!("{path}.check_config.{HTTP_CHECK_CONFIG_KEY}");
    let value = c.check_config.get(HTTP_CHECK_CONFIG_KEY)?;
    match meshgate_gocompat::from_value_at::<HttpCheckConfig>(value.clone(), &base) {
        Ok(parsed) => {
            for w in parsed.warnings {
                issues.warn(ConfigIssue::new(w.path, w.message));
            }
            Some(parsed.value)
        }
        Err(e) => {
            issues.error(ConfigIssue::new(e.path, e.message).hint(
                "http_check_config takes path, method, port, timeout, expected_codes, expected_statuses",
            ));
            None
        }
    }
}

fn http_check(config: &HttpCheckConfig, path: &str, issues: &mut Issues) -> HttpCheck {
    let base = format!("{path}.check_config.{HTTP_CHECK_CONFIG_KEY}");
    let port = match config.port {
        0 => None,
        p @ 1..=65535 => u16::try_from(p).ok(),
        p => {
            issues.error(
                ConfigIssue::new(format!("{base}.port"), format!("{p} is not a port"))
                    .hint("1 to 65535, or leave it out to check the host's own port"),
            );
            None
        }
    };
    let method = if config.method.is_empty() {
        "GET".to_owned()
    } else {
        config.method.clone()
    };
    if !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        issues.error(
            ConfigIssue::new(
                format!("{base}.method"),
                format!("{method:?} is not an HTTP method"),
            )
            .hint("such as \"GET\" or \"HEAD\""),
        );
    }
    let request_path = if config.path.is_empty() {
        "/".to_owned()
    } else {
        config.path.clone()
    };
    if !request_path.starts_with('/') || request_path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        issues.error(
            ConfigIssue::new(
                format!("{base}.path"),
                format!("{request_path:?} is not a request path"),
            )
            .hint("an absolute path without spaces, such as \"/health\""),
        );
    }
    let mut expected: Vec<(u16, u16)> = Vec::new();
    for (i, &code) in config.expected_codes.iter().enumerate() {
        if !(100..=599).contains(&code) {
            issues.error(
                ConfigIssue::new(
                    format!("{base}.expected_codes[{i}]"),
                    format!("{code} is not an HTTP status"),
                )
                .hint("100 to 599"),
            );
        }
        expected.push((code, code.saturating_add(1)));
    }
    for (i, range) in config.expected_statuses.iter().enumerate() {
        if !(100..=600).contains(&range.start) || range.end <= range.start || range.end > 600 {
            issues.error(
                ConfigIssue::new(
                    format!("{base}.expected_statuses[{i}]"),
                    format!("[{}, {}) is not a status range", range.start, range.end),
                )
                .hint(
                    "start included, end excluded, within 100..600: {\"start\": 200, \"end\": 300}",
                ),
            );
        }
        expected.push((range.start, range.end));
    }
    if expected.is_empty() {
        expected.push((200, 201));
    }
    HttpCheck {
        path: request_path,
        method,
        port,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> (Option<HealthCheckSettings>, Issues) {
        let c: HealthCheckConfig = serde_json::from_value(json).unwrap();
        let mut issues = Issues::default();
        let s = health_check_settings(&c, "clusters[0].health_check", &mut issues);
        (s, issues)
    }

    #[test]
    fn defaults_are_mosns_and_thresholds_ours() {
        let (s, issues) = settings(serde_json::json!({"protocol": "tcp"}));
        let s = s.unwrap();
        assert!(issues.errors.is_empty() && issues.warnings.is_empty());
        assert_eq!(s.kind, CheckKind::Tcp);
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(s.interval, Duration::from_secs(15));
        assert_eq!((s.healthy_threshold, s.unhealthy_threshold), (2, 3));
        assert_eq!(s.initial_delay, Duration::ZERO);
    }

    #[test]
    fn protocol_names_pick_the_checker() {
        for (name, want) in [
            ("TCP", CheckKind::Tcp),
            (
                "bolt",
                CheckKind::Heartbeat {
                    protocol: "bolt".into(),
                },
            ),
            (
                "SofaRpc",
                CheckKind::Heartbeat {
                    protocol: "bolt".into(),
                },
            ),
            (
                "dubbo",
                CheckKind::Heartbeat {
                    protocol: "dubbo".into(),
                },
            ),
        ] {
            let (s, _) = settings(serde_json::json!({ "protocol": name }));
            assert_eq!(s.unwrap().kind, want, "{name}");
        }
        let (s, _) = settings(serde_json::json!({"protocol": "Http1"}));
        let CheckKind::Http(http) = s.unwrap().kind else {
            panic!("Http1 is the HTTP checker")
        };
        assert_eq!((http.path.as_str(), http.method.as_str()), ("/", "GET"));
        assert!(http.expects(200) && !http.expects(204));
    }

    #[test]
    fn http_check_config_reads_mosn_fields_and_ranges() {
        let (s, issues) = settings(serde_json::json!({
            "protocol": "http1", "timeout": "2s", "interval": "1s",
            "check_config": {"http_check_config": {
                "path": "/health", "PORT": 8081, "timeout": "500ms", "method": "HEAD",
                "expected_codes": [204], "expected_statuses": [{"start": 300, "end": 400}],
                "extra": 1
            }}
        }));
        let s = s.unwrap();
        assert_eq!(s.timeout, Duration::from_millis(500));
        let CheckKind::Http(http) = s.kind else {
            panic!("http")
        };
        assert_eq!(http.port, Some(8081));
        assert_eq!(http.method, "HEAD");
        assert!(http.expects(204) && http.expects(302) && !http.expects(200) && !http.expects(400));
        let warned: Vec<_> = issues.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            warned,
            ["clusters[0].health_check.check_config.http_check_config.extra"]
        );
    }

    #[test]
    fn bad_http_check_config_is_an_error_with_its_path() {
        let (_, issues) = settings(serde_json::json!({
            "protocol": "Http1",
            "check_config": {"http_check_config": {
                "path": "no slash", "port": 70000, "expected_statuses": [{"start": 300, "end": 200}]
            }}
        }));
        let paths: Vec<_> = issues.errors.iter().map(|e| e.path.as_str()).collect();
        let base = "clusters[0].health_check.check_config.http_check_config";
        assert_eq!(
            paths,
            [
                format!("{base}.port"),
                format!("{base}.path"),
                format!("{base}.expected_statuses[0]")
            ]
        );
        assert!(issues.errors.iter().all(|e| e.hint.is_some()));
        let (_, issues) = settings(serde_json::json!({
            "protocol": "Http1", "check_config": {"http_check_config": {"path": 7}}
        }));
        assert_eq!(issues.errors[0].path, format!("{base}.path"));
    }

    #[test]
    fn no_protocol_means_no_checks_with_a_warning() {
        let (s, issues) = settings(serde_json::json!({"interval": "1s"}));
        assert!(s.is_none());
        assert_eq!(issues.warnings[0].path, "clusters[0].health_check.protocol");
        let (s, issues) = settings(serde_json::json!({}));
        assert!(s.is_none() && issues.warnings.is_empty());
    }
}
