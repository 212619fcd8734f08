//! Stream filters: per-request hooks configured from a listener's
//! `stream_filters`, run at MOSN's phases for every protocol.
//!
//! A filter answers with a [`Flow`] value instead of calling back into the
//! proxy: continue, answer locally, pause, re-match the route, or choose
//! another host. Filters are synchronous on purpose: every built-in
//! decision is a computation on the request, and the one thing that takes
//! time (a fault-injection delay) is expressed as [`Flow::Pause`], which
//! the proxy awaits. That keeps the request path free of a boxed future per
//! filter per request.
//!
//! A filter sees a request through [`FilterCx`]: its headers as a
//! [`FilterHeaders`] (a framed request's `Headers`, or an HTTP request
//! head with its method, path and authority), and what the proxy knows so
//! far (cluster, host, attempts). One implementation serves bolt, Dubbo,
//! HTTP/1, HTTP/2 and gRPC; the context is built on the stack from the
//! protocol's own request state, so running filters allocates nothing.

use super::context::Downstream;
use super::error::ProxyError;
use meshgate_cluster::{Cluster, Host};
use meshgate_codecs::{Headers, ReplyStatus};
use meshgate_router::RouteRequest;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Where in the request's way a filter runs (MOSN's receive-filter phases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `DownFilter`: before the route is matched (the route sees changes).
    BeforeRoute,
    /// `DownFilterAfterRoute`: the route and its cluster are known.
    AfterRoute,
    /// `DownFilterAfterChooseHost`: the upstream host is known.
    AfterChooseHost,
}

/// A filter's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next filter / phase.
    Continue,
    /// Answer the request locally with this status; nothing is forwarded.
    Reply(LocalReply),
    /// Wait this long, then ask the same filter's next decision (MOSN's
    /// fault delay). The request's timeout keeps running.
    Pause(Duration),
    /// Match the route again (after changing routing headers).
    RematchRoute,
    /// Choose the upstream host again.
    RechooseHost,
}

/// A local answer: the reason, mapped by the request's protocol to its
/// own status, and a message where the protocol carries one. A message
/// written `"NNN|text"` carries MOSN's neutral code `NNN`, which HTTP
/// answers as its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// Why.
    pub status: ReplyStatus,
    /// The message (empty: the status's default text).
    pub message: Cow<'static, str>,
}

/// Header fields a filter reads and changes, whatever the protocol.
/// Reading is [`RouteRequest`]'s (so a filter matches headers the way
/// routes do: an HTTP request also answers `:path`, `:method`,
/// `:authority`); writing is by name.
pub trait FilterHeaders: RouteRequest {
    /// Removes every value of `name`.
    fn remove(&mut self, name: &str);

    /// Sets `name` to `value`, replacing the values it had. A name or
    /// value the protocol cannot carry is skipped.
    fn set(&mut self, name: &str, value: &str);

    /// Adds `value` beside the values `name` has (protocols with one value
    /// per name replace it).
    fn append(&mut self, name: &str, value: &str);
}

/// An RPC frame's header view: one value per key.
impl FilterHeaders for Headers {
    fn remove(&mut self, name: &str) {
        Headers::remove(self, name);
    }

    fn set(&mut self, name: &str, value: &str) {
        self.insert(name, value.as_bytes());
    }

    fn append(&mut self, name: &str, value: &str) {
        self.insert(name, value.as_bytes());
    }
}

/// What a filter sees of one request. Built by the proxy for each stage
/// from the protocol's own request state (a few borrowed fields, on the
/// stack).
pub struct FilterCx<'a> {
    /// The request's headers (filters may change them; the route and the
    /// upstream see the changes).
    pub request: &'a mut (dyn FilterHeaders + Send),
    /// Where the request came from.
    pub downstream: &'a Downstream,
    /// The cluster the route chose, once known.
    pub cluster: Option<&'a Arc<Cluster>>,
    /// The upstream host of the current attempt, once chosen.
    pub host: Option<&'a Arc<Host>>,
    /// Attempts made so far (1 for the first try).
    pub attempts: u32,
    /// A per-request random number (sampling, percentages).
    pub random: u64,
}

impl fmt::Debug for FilterCx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterCx")
            .field("listener", &self.downstream.listener)
            .field("cluster", &self.cluster.map(|c| c.name()))
            .field("host", &self.host.map(|h| h.address_text()))
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// One configured filter. Built once per listener config and shared by
/// every request (`Arc<dyn StreamFilter>`); per-request state lives in
/// the proxy's request context, shown to the filter as [`FilterCx`].
pub trait StreamFilter: Send + Sync + fmt::Debug {
    /// The config `type` this filter was built from.
    fn name(&self) -> &'static str;

    /// The stage `on_request` runs at.
    fn stage(&self) -> Stage;

    /// Called at [`StreamFilter::stage`]. After a [`Flow::Pause`], it is
    /// called again with `resumed` true.
    fn on_request(&self, cx: &mut FilterCx<'_>, resumed: bool) -> Flow {
        let _ = (cx, resumed);
        Flow::Continue
    }

    /// `UpFilter`: called with the upstream's response headers before the
    /// response is returned downstream (not for local replies).
    fn on_response(&self, cx: &mut FilterCx<'_>, response: &mut (dyn FilterHeaders + Send)) {
        let _ = (cx, response);
    }

    /// True when [`StreamFilter::on_response`] reads or changes the
    /// response's headers: the framed proxy then has the codec fill the
    /// header view of responses it decodes without one (Dubbo responses,
    /// see `FrameCodec::fill_headers`). False by default, which keeps the
    /// forwarding path free of that work.
    fn reads_response_headers(&self) -> bool {
        false
    }
}

/// How often one request may re-match its route or re-choose its host on
/// a filter's say-so before the proxy gives up (a misbehaving filter must
/// not loop forever).
pub(crate) const MAX_REDO: u32 = 3;

/// A filter's non-`Continue` decision, as seen by the phase that ran it.
pub(crate) enum FilterRedo {
    /// Match the route (or choose the host) again.
    Rematch,
    /// Answer locally.
    Reply(ProxyError),
}

impl From<FilterRedo> for ProxyError {
    fn from(redo: FilterRedo) -> ProxyError {
        match redo {
            FilterRedo::Reply(e) => e,
            FilterRedo::Rematch => redo_exhausted(),
        }
    }
}

/// The answer when filters asked to redo routing more than [`MAX_REDO`]
/// times.
pub(crate) fn redo_exhausted() -> ProxyError {
    ProxyError::Local(LocalReply {
        status: ReplyStatus::Internal,
        message: Cow::Borrowed("500|stream filters asked to redo routing too often"),
    })
}

/// Runs the filters of `stage` in order. `Pause` sleeps (MOSN's fault
/// delay) and asks the same filter again.
pub(crate) async fn run_stage(
    filters: &[Arc<dyn StreamFilter>],
    stage: Stage,
    cx: &mut FilterCx<'_>,
) -> Result<(), FilterRedo> {
    for filter in filters.iter().filter(|f| f.stage() == stage) {
        let mut resumed = false;
        loop {
            match filter.on_request(cx, resumed) {
                Flow::Continue => break,
                Flow::Pause(delay) => {
                    tokio::time::sleep(delay).await;
                    resumed = true;
                }
                Flow::Reply(reply) => return Err(FilterRedo::Reply(ProxyError::Local(reply))),
                Flow::RematchRoute | Flow::RechooseHost => return Err(FilterRedo::Rematch),
            }
        }
    }
    Ok(())
}
