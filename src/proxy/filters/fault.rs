//! MOSN's `fault` stream filter: delay and/or abort a percentage of the
//! requests that match, optionally only those routed to one cluster.
//!
//! Config, as MOSN reads it (`v2.StreamFaultInject`):
//! `{"delay": {"fixed_delay": "1s", "percentage": 50},
//!   "abort": {"status": 503, "percentage": 10},
//!   "upstream_cluster": "serverCluster",
//!   "headers": [{"name": "service", "value": "com.foo.Bar:1.0"}]}`.
//! Runs after routing (MOSN's `DownFilterAfterRoute`), for every protocol.
//! The abort status is MOSN's neutral code: an HTTP request is answered
//! with it as its status (MOSN's `SendHijackReply(status)`), a gRPC
//! request with the matching `grpc-status` in a trailers-only response,
//! an RPC request with its codec's status for the reason (see
//! `LocalReply` mapping in `reply.rs`). `headers` match as route header
//! matchers do (an HTTP request's `:path`, `:method`, `:authority` too).

use crate::proxy::filter::{FilterCx, Flow, LocalReply, Stage, StreamFilter};
use crate::proxy::reply::status_for_code;
use meshgate_gocompat::GoDuration;
use meshgate_router::{HeaderMatcher, HeaderMatcherConfig};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FaultConfig {
    delay: Option<DelayConfig>,
    abort: Option<AbortConfig>,
    upstream_cluster: String,
    headers: Vec<HeaderMatcherConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DelayConfig {
    fixed_delay: Option<GoDuration>,
    percentage: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AbortConfig {
    status: u16,
    percentage: u32,
}

/// The built filter.
#[derive(Debug)]
pub(crate) struct Fault {
    delay: Option<(Duration, u32)>,
    abort: Option<(u16, u32)>,
    upstream_cluster: Option<String>,
    headers: Vec<HeaderMatcher>,
}

impl Fault {
    /// Builds from the parsed config; `Err` carries (path suffix, message).
    pub(crate) fn build(config: FaultConfig) -> Result<Fault, (String, String)> {
        let delay = match config.delay {
            Some(DelayConfig {
                fixed_delay: Some(d),
                percentage,
            }) if percentage > 0 && !d.get().is_zero() => Some((d.get(), percentage.min(100))),
            _ => None,
        };
        let abort = match config.abort {
            Some(AbortConfig { status, percentage }) if percentage > 0 => {
                if !(200..=599).contains(&status) {
                    return Err((
                        "abort.status".into(),
                        format!("{status} is not a status code (200-599)"),
                    ));
                }
                Some((status, percentage.min(100)))
            }
            _ => None,
        };
        let headers = HeaderMatcher::build_list(&config.headers)
            .map(|(matchers, _)| matchers)
            .map_err(|e| {
                let first = e
                    .errors
                    .first()
                    .map(|e| (e.path().to_owned(), e.message()))
                    .unwrap_or_default();
                (format!("headers{}", first.0), first.1)
            })?;
        Ok(Fault {
            delay,
            abort,
            upstream_cluster: Some(config.upstream_cluster).filter(|c| !c.is_empty()),
            headers,
        })
    }

    fn applies(&self, cx: &FilterCx<'_>) -> bool {
        if let Some(want) = &self.upstream_cluster
            && cx.cluster.map(|c| c.name()) != Some(want.as_str())
        {
            return false;
        }
        self.headers.iter().all(|m| m.matches(&*cx.request))
    }
}

/// True for `percentage` out of 100 draws of `random` (MOSN draws 0..99).
fn hit(random: u64, salt: u64, percentage: u32) -> bool {
    (random
        .rotate_left(salt as u32)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        >> 32)
        % 100
        < u64::from(percentage)
}

impl StreamFilter for Fault {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn stage(&self) -> Stage {
        Stage::AfterRoute
    }

    fn on_request(&self, cx: &mut FilterCx<'_>, resumed: bool) -> Flow {
        if !self.applies(cx) {
            return Flow::Continue;
        }
        if !resumed
            && let Some((delay, percentage)) = self.delay
            && hit(cx.random, 0, percentage)
        {
            return Flow::Pause(delay);
        }
        match self.abort {
            Some((status, percentage)) if hit(cx.random, 17, percentage) => {
                Flow::Reply(LocalReply {
                    status: status_for_code(status),
                    message: Cow::Owned(format!("{status}|fault injected")),
                })
            }
            _ => Flow::Continue,
        }
    }
}
