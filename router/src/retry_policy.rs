//! When to retry a failed try, and how often.
//!
//! MOSN's `retry_on` is a bool, read by `pkg/proxy/retry_state.go`
//! (`doRetryCheck`): with `true` it retries an upstream answer whose status
//! maps to HTTP 500 or above, a connection failure, a per-try timeout and a
//! connection reset; with `false` (or no policy at all) it still retries a
//! connection failure. It never retries an overflow (circuit breaker). The
//! HTTP work also accepts Envoy's comma list (`"5xx,connect-failure,reset"`).
//!
//! Retry counts: MOSN retries `max(3, num_retries)` times. meshgate honours
//! `num_retries` as written; when it is absent it uses 3 for MOSN's bool
//! form (and for the implicit policy) and 1 for Envoy's list form, each
//! system's own default.

use crate::config::{RetryOnConfig, RetryPolicyConfig};
use crate::error::{BuildCx, RouterConfigError};
use std::time::Duration;

/// Why a try failed, as the proxy reports it to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No connection could be made.
    ConnectFailure,
    /// The connection closed or was reset with the request in flight.
    Reset,
    /// HTTP/2 `REFUSED_STREAM`.
    RefusedStream,
    /// The per-try timeout expired.
    PerTryTimeout,
    /// A circuit breaker refused the request. Never retried.
    Overflow,
    /// The upstream answered; its status mapped to HTTP (bolt and Dubbo
    /// codecs map their statuses, e.g. a server exception to 500).
    Status(u16),
}

const CONNECT_FAILURE: u8 = 1 << 0;
const RESET: u8 = 1 << 1;
const REFUSED_STREAM: u8 = 1 << 2;
const PER_TRY_TIMEOUT: u8 = 1 << 3;
const STATUS_5XX: u8 = 1 << 4;
const GATEWAY_ERROR: u8 = 1 << 5;
const RETRIABLE_4XX: u8 = 1 << 6;
const RETRIABLE_CODES: u8 = 1 << 7;

/// The set of failure kinds a policy retries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    bits: u8,
    status_codes: Vec<u16>,
}

impl RetryOn {
    /// MOSN's `retry_on: true`.
    pub fn mosn_enabled() -> RetryOn {
        RetryOn {
            bits: CONNECT_FAILURE | RESET | PER_TRY_TIMEOUT | STATUS_5XX,
            status_codes: Vec::new(),
        }
    }

    /// MOSN's `retry_on: false`, and MOSN's behaviour without a policy.
    pub fn mosn_disabled() -> RetryOn {
        RetryOn {
            bits: CONNECT_FAILURE,
            status_codes: Vec::new(),
        }
    }

    /// True if a try that failed this way may be retried.
    pub fn covers(&self, kind: FailureKind) -> bool {
        let has = |bit| self.bits & bit != 0;
        match kind {
            FailureKind::Overflow => false,
            FailureKind::ConnectFailure => has(CONNECT_FAILURE | STATUS_5XX | GATEWAY_ERROR),
            FailureKind::Reset => has(RESET | STATUS_5XX | GATEWAY_ERROR),
            FailureKind::RefusedStream => has(REFUSED_STREAM | RESET | STATUS_5XX),
            FailureKind::PerTryTimeout => has(PER_TRY_TIMEOUT | STATUS_5XX | GATEWAY_ERROR),
            FailureKind::Status(s) => {
                (has(STATUS_5XX) && (500..600).contains(&s))
                    || (has(GATEWAY_ERROR) && matches!(s, 502..=504))
                    || (has(RETRIABLE_4XX) && s == 409)
                    || (has(RETRIABLE_CODES) && self.status_codes.contains(&s))
            }
        }
    }

    /// Parses Envoy's list (the caller has entered `retry_policy`).
    fn parse(list: &str, codes: &[u32], cx: &mut BuildCx) -> Option<RetryOn> {
        let mut bits = 0;
        let mut ok = true;
        for token in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            bits |= match token {
                "5xx" => STATUS_5XX,
                "gateway-error" => GATEWAY_ERROR,
                "connect-failure" => CONNECT_FAILURE,
                "reset" => RESET,
                "refused-stream" => REFUSED_STREAM,
                "per-try-timeout" => PER_TRY_TIMEOUT,
                "retriable-4xx" => RETRIABLE_4XX,
                "retriable-status-codes" => RETRIABLE_CODES,
                _ => {
                    cx.error(RouterConfigError::UnknownRetryCondition {
                        path: cx.at("retry_on"),
                        condition: token.to_owned(),
                    });
                    ok = false;
                    0
                }
            };
        }
        let mut status_codes = Vec::with_capacity(codes.len());
        for (i, &c) in codes.iter().enumerate() {
            match u16::try_from(c).ok().filter(|c| (100..600).contains(c)) {
                Some(c) => status_codes.push(c),
                None => {
                    cx.error(RouterConfigError::BadStatus {
                        path: format!("{}[{i}]", cx.at("retryable_status_codes")),
                        status: c.into(),
                    });
                    ok = false;
                }
            }
        }
        if bits & RETRIABLE_CODES != 0 && codes.is_empty() {
            cx.error(RouterConfigError::Empty {
                path: cx.at("retryable_status_codes"),
                what: "statuses that retriable-status-codes retries",
            });
            ok = false;
        }
        ok.then_some(RetryOn { bits, status_codes })
    }
}

/// MOSN's behaviour for a route without a policy (see the module docs).
pub(crate) static MOSN_IMPLICIT: RetryPolicy = RetryPolicy {
    retry_on: RetryOn {
        bits: CONNECT_FAILURE,
        status_codes: Vec::new(),
    },
    num_retries: 3,
    per_try_timeout: None,
};

/// A route's built `retry_policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    retry_on: RetryOn,
    num_retries: u32,
    per_try_timeout: Option<Duration>,
}

impl RetryPolicy {
    /// What MOSN does for a route without a policy: retry connection
    /// failures, up to 3 times.
    pub fn mosn_implicit() -> RetryPolicy {
        MOSN_IMPLICIT.clone()
    }

    /// The conditions retried.
    pub fn retry_on(&self) -> &RetryOn {
        &self.retry_on
    }

    /// Retries allowed after the first try.
    pub fn num_retries(&self) -> u32 {
        self.num_retries
    }

    /// Timeout of each try (`retry_timeout`), if set.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }

    /// Should the proxy retry after try number `tries_done` (1 for the
    /// first try) failed this way? The whole-request timeout still bounds
    /// everything; the proxy also skips hosts it already tried.
    pub fn should_retry(&self, kind: FailureKind, tries_done: u32) -> bool {
        tries_done <= self.num_retries && self.retry_on.covers(kind)
    }

    /// Builds `retry_policy` (the caller has entered the field).
    pub(crate) fn build(cfg: &RetryPolicyConfig, cx: &mut BuildCx) -> Option<RetryPolicy> {
        let (retry_on, default_retries) = match &cfg.retry_on {
            RetryOnConfig::Bool(true) => (RetryOn::mosn_enabled(), 3),
            RetryOnConfig::Bool(false) => (RetryOn::mosn_disabled(), 3),
            RetryOnConfig::Conditions(list) => {
                (RetryOn::parse(list, &cfg.retryable_status_codes, cx)?, 1)
            }
        };
        if matches!(cfg.retry_on, RetryOnConfig::Bool(_)) && !cfg.retryable_status_codes.is_empty()
        {
            cx.warn(
                "retryable_status_codes",
                "ignored: only used with retry_on \"retriable-status-codes\"",
            );
        }
        Some(RetryPolicy {
            retry_on,
            num_retries: cfg.num_retries.unwrap_or(default_retries),
            per_try_timeout: cfg.retry_timeout.map(|d| d.get()).filter(|d| !d.is_zero()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureKind::*;

    fn policy(json: &str) -> (Option<RetryPolicy>, BuildCx) {
        let cfg: RetryPolicyConfig = serde_json::from_str(json).unwrap();
        let mut cx = BuildCx::default();
        let p = RetryPolicy::build(&cfg, &mut cx);
        (p, cx)
    }

    #[test]
    fn mosn_true_and_false() {
        let (p, _) = policy(r#"{"retry_on": true, "retry_timeout": "200ms"}"#);
        let p = p.unwrap();
        assert_eq!(p.num_retries(), 3);
        assert_eq!(p.per_try_timeout(), Some(Duration::from_millis(200)));
        for kind in [
            ConnectFailure,
            Reset,
            PerTryTimeout,
            Status(500),
            Status(503),
        ] {
            assert!(p.should_retry(kind, 1), "{kind:?}");
        }
        for kind in [Overflow, Status(404), Status(200)] {
            assert!(!p.should_retry(kind, 1), "{kind:?}");
        }
        assert!(p.should_retry(Reset, 3));
        assert!(!p.should_retry(Reset, 4), "retries exhausted");

        let (p, _) = policy(r#"{"retry_on": false, "num_retries": 1}"#);
        let p = p.unwrap();
        assert!(p.should_retry(ConnectFailure, 1));
        assert!(!p.should_retry(Reset, 1));
        assert!(!p.should_retry(ConnectFailure, 2));
        assert_eq!(
            RetryPolicy::mosn_implicit().retry_on(),
            &RetryOn::mosn_disabled()
        );
    }

    #[test]
    fn envoy_conditions() {
        let (p, _) = policy(
            r#"{"retry_on": "gateway-error, retriable-status-codes", "retryable_status_codes": [429]}"#,
        );
        let p = p.unwrap();
        assert_eq!(p.num_retries(), 1);
        assert!(p.should_retry(Status(503), 1));
        assert!(!p.should_retry(Status(500), 1));
        assert!(p.should_retry(Status(429), 1));
        assert!(p.should_retry(ConnectFailure, 1));
        let (p, _) = policy(r#"{"retry_on": "reset", "num_retries": 4}"#);
        let p = p.unwrap();
        assert!(p.should_retry(Reset, 4) && p.should_retry(RefusedStream, 1));
        assert!(!p.should_retry(ConnectFailure, 1));
    }

    #[test]
    fn bad_conditions_are_errors_with_paths() {
        let (p, cx) = policy(
            r#"{"retry_on": "5xx,sometimes,retriable-status-codes", "retryable_status_codes": [700]}"#,
        );
        assert!(p.is_none());
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(paths, ["retry_on", "retryable_status_codes[0]"]);
        assert!(cx.errors[0].hint().contains("connect-failure"));
        let (p, cx) = policy(r#"{"retry_on": "retriable-status-codes"}"#);
        assert!(p.is_none());
        assert_eq!(cx.errors[0].path(), "retryable_status_codes");
    }
}
