//! What the HTTP path keeps per downstream connection rather than per
//! request: the facts about the connection, the `x-forwarded-for` value
//! its requests append (the peer never changes within a connection), and
//! a request timer its requests reuse.

use super::super::context::Downstream;
use super::headers;
use super::timeout::TimerSlot;
use http::header::HeaderValue;
use std::sync::Arc;

/// One downstream HTTP connection, as every request on it sees it. The
/// driver makes one per connection and hands it to
/// [`ProxyCore::serve_http`](crate::proxy::ProxyCore::serve_http) with
/// each request.
#[derive(Debug)]
pub struct HttpConnection {
    downstream: Arc<Downstream>,
    /// The peer's address as a header value, built once.
    pub(super) forwarded_for: HeaderValue,
    /// A request timer kept between requests (see [`TimerSlot`]).
    pub(super) timer: TimerSlot,
}

impl HttpConnection {
    /// The HTTP state of the connection `downstream` describes.
    pub fn new(downstream: Arc<Downstream>) -> HttpConnection {
        HttpConnection {
            forwarded_for: headers::ip_value(downstream.peer.ip()),
            downstream,
            timer: TimerSlot::default(),
        }
    }

    /// The connection's facts (listener, peer, protocol, stats).
    pub fn downstream(&self) -> &Arc<Downstream> {
        &self.downstream
    }
}
