//! MOSN's phase names, kept as labels for logs, stats and timeouts. They
//! are not a program counter: the proxy is one straight-line async function
//! (see `docs/phases.md`).

use std::fmt;

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Stream filters before routing.
    DownFilter,
    /// Choosing the route.
    MatchRoute,
    /// Stream filters once the route is known.
    DownFilterAfterRoute,
    /// Load balancing.
    ChooseHost,
    /// Stream filters once the host is known.
    DownFilterAfterChooseHost,
    /// Sending to the upstream and waiting for its answer.
    Upstream,
    /// Deciding whether to try another host.
    Retry,
    /// Filters over the upstream's response.
    UpFilter,
    /// Writing the answer downstream.
    Reply,
}

impl Phase {
    /// MOSN's name for the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::DownFilter => "DownFilter",
            Phase::MatchRoute => "MatchRoute",
            Phase::DownFilterAfterRoute => "DownFilterAfterRoute",
            Phase::ChooseHost => "ChooseHost",
            Phase::DownFilterAfterChooseHost => "DownFilterAfterChooseHost",
            Phase::Upstream => "Upstream",
            Phase::Retry => "Retry",
            Phase::UpFilter => "UpFilter",
            Phase::Reply => "Reply",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
