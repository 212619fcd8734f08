//! What an HTTP request carries through the proxy besides its head and
//! body ([`HttpCx`]: stats, the chosen cluster and host, attempts, the
//! access-log marks), and the stream-filter glue: the request head and the
//! response header map shown to filters as [`FilterHeaders`], so the same
//! filter implementations serve HTTP and framed requests.

use super::super::context::Downstream;
use super::super::filter::{FilterCx, FilterHeaders, FilterRedo, Stage, StreamFilter, run_stage};
use super::view;
use crate::stats::RequestStats;
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use meshgate_cluster::{Cluster, Host};
use meshgate_router::RouteRequest;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::time::Instant;

/// One HTTP request's state on its way through the proxy.
#[derive(Debug)]
pub(crate) struct HttpCx<'d> {
    /// Where it came from.
    pub(crate) downstream: &'d Arc<Downstream>,
    /// What it has counted so far.
    pub(crate) stats: RequestStats,
    /// Weighted-cluster choice and filter percentages.
    pub(crate) random: u64,
    /// The route's cluster, once chosen.
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The host of the current (last) try, once chosen.
    pub(crate) host: Option<Arc<Host>>,
    /// Tries so far (1 for the first).
    pub(crate) attempts: u32,
    /// Access-log state; `None` when the listener logs nothing.
    pub(crate) log: Option<LogMarks>,
}

/// What the access log needs that the proxy would not keep otherwise.
#[derive(Debug)]
pub(crate) struct LogMarks {
    /// When the request head arrived at the proxy (the statistics keep
    /// their own clock reading: this one is read only for a log line).
    pub(crate) start: Instant,
    /// Request body bytes read from the client so far.
    pub(crate) received: Arc<AtomicU64>,
    /// When the upstream's response head arrived.
    pub(crate) answered: Option<Instant>,
}

impl LogMarks {
    fn arrived_now() -> LogMarks {
        LogMarks {
            start: Instant::now(),
            received: Arc::default(),
            answered: None,
        }
    }
}

impl<'d> HttpCx<'d> {
    /// The state of a request that just arrived; `logging` when its
    /// listener has access logs.
    pub(crate) fn new(downstream: &'d Arc<Downstream>, stats: RequestStats, logging: bool) -> Self {
        HttpCx {
            downstream,
            stats,
            random: rand::random(),
            cluster: None,
            host: None,
            attempts: 0,
            log: logging.then(LogMarks::arrived_now),
        }
    }

    /// Whether anything reads the chosen cluster and host back from this
    /// context (the listener's `filters`, or its access log); when not,
    /// they are not kept in it.
    pub(crate) fn reads_choices(&self, filters: &[Arc<dyn StreamFilter>]) -> bool {
        !filters.is_empty() || self.log.is_some()
    }

    /// Notes that the upstream's response head arrived (for
    /// `response_received_duration`; only when logging).
    pub(crate) fn mark_answered(&mut self) {
        if let Some(log) = &mut self.log {
            log.answered = Some(Instant::now());
        }
    }

    /// Runs the listener's filters of `stage` over the request head.
    /// Callers skip it for a listener without filters, so that no stage's
    /// future is made at all (three per request).
    pub(crate) async fn run_filters(
        &self,
        filters: &[Arc<dyn StreamFilter>],
        stage: Stage,
        head: &mut Parts,
    ) -> Result<(), FilterRedo> {
        let mut request = RequestHead(head);
        run_stage(filters, stage, &mut self.filter_cx(&mut request)).await
    }

    /// Shows the upstream's response headers to every filter
    /// (`on_response`), in order.
    pub(crate) fn filter_response(
        &self,
        filters: &[Arc<dyn StreamFilter>],
        head: &mut Parts,
        response: &mut HeaderMap,
    ) {
        if filters.is_empty() {
            return;
        }
        let mut request = RequestHead(head);
        let mut cx = self.filter_cx(&mut request);
        let mut response = ResponseHeaders(response);
        for filter in filters {
            filter.on_response(&mut cx, &mut response);
        }
    }

    fn filter_cx<'a>(&'a self, request: &'a mut RequestHead<'_>) -> FilterCx<'a> {
        FilterCx {
            request,
            downstream: self.downstream,
            cluster: self.cluster.as_ref(),
            host: self.host.as_ref(),
            attempts: self.attempts,
            random: self.random,
        }
    }
}

/// An HTTP request head as filters see it: read as routes read it
/// (`:path`, `:method`, `:authority` and MOSN's `x-mosn-*` names answer),
/// written as an `http::HeaderMap`.
#[derive(Debug)]
pub(crate) struct RequestHead<'a>(pub(crate) &'a mut Parts);

impl RouteRequest for RequestHead<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        view::header(self.0, name)
    }

    fn authority(&self) -> Option<&str> {
        view::authority(self.0)
    }

    fn path(&self) -> Option<&str> {
        Some(self.0.uri.path())
    }

    fn method(&self) -> Option<&str> {
        Some(self.0.method.as_str())
    }
}

impl FilterHeaders for RequestHead<'_> {
    fn remove(&mut self, name: &str) {
        remove(&mut self.0.headers, name);
    }

    fn set(&mut self, name: &str, value: &str) {
        put(&mut self.0.headers, name, value, false);
    }

    fn append(&mut self, name: &str, value: &str) {
        put(&mut self.0.headers, name, value, true);
    }
}

/// An HTTP response's header map as filters see it.
#[derive(Debug)]
pub(crate) struct ResponseHeaders<'a>(pub(crate) &'a mut HeaderMap);

impl RouteRequest for ResponseHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

impl FilterHeaders for ResponseHeaders<'_> {
    fn remove(&mut self, name: &str) {
        remove(self.0, name);
    }

    fn set(&mut self, name: &str, value: &str) {
        put(self.0, name, value, false);
    }

    fn append(&mut self, name: &str, value: &str) {
        put(self.0, name, value, true);
    }
}

fn remove(headers: &mut HeaderMap, name: &str) {
    // An invalid name matches nothing (no panic for `&str` keys).
    headers.remove(name);
}

/// Sets or appends one field; a name or value HTTP cannot carry is
/// skipped (logged at debug).
fn put(headers: &mut HeaderMap, name: &str, value: &str, append: bool) {
    let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) else {
        tracing::debug!(name, "filter header is not a valid HTTP field; skipped");
        return;
    };
    if append {
        headers.append(name, value);
    } else {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::filters::{Built, build};
    use meshgate_codecs::Headers;
    use serde_json::json;

    fn downstream() -> Arc<Downstream> {
        Arc::new(Downstream {
            listener: Arc::from("web"),
            peer: "10.0.0.9:4000".parse().unwrap(),
            local: None,
            protocol: Arc::from("Http1"),
            protocol_stats: Arc::default(),
        })
    }

    fn cx<'a>(request: &'a mut (dyn FilterHeaders + Send), down: &'a Downstream) -> FilterCx<'a> {
        FilterCx {
            request,
            downstream: down,
            cluster: None,
            host: None,
            attempts: 0,
            random: 0,
        }
    }

    /// One `header_mutation` filter changes an RPC header view and an
    /// HTTP request head alike.
    #[test]
    fn one_filter_serves_rpc_and_http_requests() {
        let config = json!({
            "request_headers_to_add": [
                {"header": {"key": "x-env", "value": "gray"}},
                {"header": {"key": "x-peer", "value": "%downstream_remote_ip%"}, "append": true}
            ],
            "request_headers_to_remove": ["x-debug"],
            "response_headers_to_add": [{"header": {"key": "x-out", "value": "1"}}]
        });
        let Ok((Built::Filter(filter), _)) = build("header_mutation", config) else {
            panic!("header_mutation builds");
        };
        let down = downstream();

        let mut rpc = Headers::new();
        rpc.insert("x-debug", b"1");
        rpc.insert("x-peer", b"old");
        filter.on_request(&mut cx(&mut rpc, &down), false);
        assert_eq!(rpc.get_str("x-env"), Some("gray"));
        assert_eq!(rpc.get_str("x-peer"), Some("10.0.0.9"), "one value per key");
        assert!(!rpc.contains("x-debug"));

        let (mut head, ()) = http::Request::get("/a?b=1")
            .header("X-Debug", "1")
            .header("x-peer", "old")
            .body(())
            .unwrap()
            .into_parts();
        filter.on_request(&mut cx(&mut RequestHead(&mut head), &down), false);
        assert_eq!(head.headers["x-env"], "gray");
        let peers: Vec<_> = head.headers.get_all("x-peer").iter().collect();
        assert_eq!(peers, ["old", "10.0.0.9"], "append keeps the prior value");
        assert!(
            !head.headers.contains_key("x-debug"),
            "names are case-insensitive"
        );

        let mut response = HeaderMap::new();
        let mut request = RequestHead(&mut head);
        filter.on_response(
            &mut cx(&mut request, &down),
            &mut ResponseHeaders(&mut response),
        );
        assert_eq!(response["x-out"], "1");
    }

    #[test]
    fn http_heads_answer_pseudo_headers_and_skip_invalid_fields() {
        let (mut head, ()) = http::Request::post("http://svc.example/p/q?x=1")
            .body(())
            .unwrap()
            .into_parts();
        let mut view = RequestHead(&mut head);
        assert_eq!(view.header(":path"), Some("/p/q"));
        assert_eq!(view.header(":method"), Some("POST"));
        assert_eq!(view.header("x-mosn-host"), Some("svc.example"));
        view.set("bad name", "v");
        view.set("x-ok", "line\nbreak");
        view.remove("not a name");
        assert!(head.headers.is_empty());
    }
}
