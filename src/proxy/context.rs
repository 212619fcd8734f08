//! Per-request state the proxy and stream filters share.

use super::filter::FilterCx;
use super::phase::Phase;
use crate::accesslog::Marks;
use crate::stats::{ProtocolStats, RequestStats};
use meshgate_cluster::{Cluster, Host};
use meshgate_codecs::Frame;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// Facts about the downstream connection a request came on.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// The listener's configured name.
    pub listener: Arc<str>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The gateway's address on this connection.
    pub local: Option<SocketAddr>,
    /// The detected protocol's name.
    pub protocol: Arc<str>,
    /// The detected protocol's request counters.
    pub protocol_stats: Arc<ProtocolStats>,
}

/// One request on its way through the proxy.
#[derive(Debug)]
pub struct RequestCx {
    /// The request as decoded (filters may change its headers).
    pub request: Frame,
    /// Where it came from.
    pub downstream: Arc<Downstream>,
    /// Where it is (for logs and stats).
    pub phase: Phase,
    /// The cluster the route chose, once known.
    pub cluster: Option<Arc<Cluster>>,
    /// The upstream host of the current attempt, once chosen.
    pub host: Option<Arc<Host>>,
    /// Attempts made so far (1 for the first try).
    pub attempts: u32,
    /// A per-request random number (weighted clusters, sampling).
    pub random: u64,
    /// When the request was decoded; durations count from here.
    pub start: Instant,
    /// Access-log timestamps (taken only when the listener logs).
    pub marks: Marks,
    /// What the request has counted so far (`crate::stats`).
    pub stats: RequestStats,
}

impl RequestCx {
    /// A context for `request`, before any phase ran.
    pub fn new(request: Frame, downstream: Arc<Downstream>, random: u64) -> RequestCx {
        RequestCx {
            request,
            downstream,
            phase: Phase::DownFilter,
            cluster: None,
            host: None,
            attempts: 0,
            random,
            start: Instant::now(),
            marks: Marks::default(),
            stats: RequestStats::default(),
        }
    }

    /// What stream filters see of this request: its header view and the
    /// proxy's progress, borrowed.
    pub fn filter_cx(&mut self) -> FilterCx<'_> {
        FilterCx {
            request: self.request.headers_mut(),
            downstream: &self.downstream,
            cluster: self.cluster.as_ref(),
            host: self.host.as_ref(),
            attempts: self.attempts,
            random: self.random,
        }
    }

    /// Moves to `phase` (logged at trace level with the request id).
    pub fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        tracing::trace!(id = self.request.request_id, %phase, "phase");
    }
}
