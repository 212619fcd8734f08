//! Stream filters: per-request hooks configured from a listener's
//! `stream_filters`, run at MOSN's phases.
//!
//! A filter answers with a [`Flow`] value instead of calling back into the
//! proxy: continue, answer locally, pause, re-match the route, or choose
//! another host. Filters are synchronous on purpose: every built-in
//! decision is a computation on the request, and the one thing that takes
//! time (a fault-injection delay) is expressed as [`Flow::Pause`], which
//! the proxy awaits. That keeps the request path free of a boxed future per
//! filter per request.

use super::context::RequestCx;
use meshgate_codecs::{Frame, ReplyStatus};
use std::borrow::Cow;
use std::fmt;
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

/// A local answer: the reason, mapped by the request's codec to its own
/// status, and a message where the protocol carries one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// Why.
    pub status: ReplyStatus,
    /// The message (empty: the status's default text).
    pub message: Cow<'static, str>,
}

/// One configured filter. Built once per listener config and shared by
/// every request (`Arc<dyn StreamFilter>`); per-request state lives in
/// [`RequestCx`].
pub trait StreamFilter: Send + Sync + fmt::Debug {
    /// The config `type` this filter was built from.
    fn name(&self) -> &'static str;

    /// The stage `on_request` runs at.
    fn stage(&self) -> Stage;

    /// Called at [`StreamFilter::stage`]. After a [`Flow::Pause`], it is
    /// called again with `resumed` true.
    fn on_request(&self, cx: &mut RequestCx, resumed: bool) -> Flow {
        let _ = (cx, resumed);
        Flow::Continue
    }

    /// `UpFilter`: called with the upstream's response before it is
    /// returned downstream (not for local replies).
    fn on_response(&self, cx: &mut RequestCx, response: &mut Frame) {
        let _ = (cx, response);
    }

    /// True when [`StreamFilter::on_response`] reads or changes the
    /// response's headers: the proxy then has the codec fill the header
    /// view of responses it decodes without one (Dubbo responses, see
    /// `FrameCodec::fill_headers`). False by default, which keeps the
    /// forwarding path free of that work.
    fn reads_response_headers(&self) -> bool {
        false
    }
}
