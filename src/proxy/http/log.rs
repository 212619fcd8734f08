//! Access logs for HTTP requests: one line per request in its listener's
//! `access_logs`, with the same `%variable%` tokens as RPC requests.
//!
//! MOSN logs when a stream ends; so does this: the line is written when
//! the response body has gone out whole (its last frame was polled), or
//! when hyper drops the body before that (client gone, stream reset). So
//! `bytes_sent` and `bytes_received` count the body bytes actually
//! streamed, and `duration` runs until the stream ended. The request's
//! body is counted as the proxy reads it from the client; bytes it never
//! read (a local reply that left the body unread) are not counted.
//!
//! Nothing here runs for a listener without access logs: `serve_http`
//! checks once and wraps neither body.

use super::filters::HttpCx;
use super::view::HttpRouteView;
use super::{BoxError, ResponseBody, reply};
use crate::accesslog::{ListenerAccessLogs, LoggedHeaders, Record, response_flag};
use crate::proxy::{Downstream, ProxyError};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use meshgate_cluster::{Cluster, Host};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The request body, counted into the access log's `bytes_received` when
/// the listener logs (unchanged otherwise).
pub(crate) fn count_received(
    body: BoxBody<Bytes, BoxError>,
    cx: &HttpCx<'_>,
) -> BoxBody<Bytes, BoxError> {
    match &cx.log {
        Some(log) => CountingBody {
            inner: body,
            count: Arc::clone(&log.received),
        }
        .boxed(),
        None => body,
    }
}

/// A body that adds the length of every data frame it passes to `count`.
struct CountingBody {
    inner: BoxBody<Bytes, BoxError>,
    count: Arc<AtomicU64>,
}

impl Body for CountingBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `response` with a body that logs the request to `logs` when it ends
/// or is dropped. `head` is the request as it was forwarded (after
/// filters and rewrites); `failure` why the gateway answered itself.
pub(crate) fn logged(
    response: Response<ResponseBody>,
    logs: ListenerAccessLogs,
    head: Parts,
    cx: HttpCx<'_>,
    failure: Option<&ProxyError>,
) -> Response<ResponseBody> {
    // A local reply logs the HTTP status its reason maps to, also for
    // gRPC, whose local replies are HTTP 200 with a `grpc-status`.
    let response_code = match failure {
        Some(failure) => reply::http_status(failure).as_u16(),
        None => response.status().as_u16(),
    };
    let response_headers = logs
        .reads_response_headers()
        .then(|| response.headers().clone());
    let (start, received, answered) = match cx.log {
        Some(log) => (log.start, log.received, log.answered),
        // Only a listener with access logs gets here, and its requests
        // carry marks; without them the line says the request took no time.
        None => (Instant::now(), Arc::default(), None),
    };
    let pending = PendingLog {
        logs,
        head,
        response_headers,
        response_code,
        flag: failure.map(response_flag),
        downstream: Arc::clone(cx.downstream),
        cluster: cx.cluster,
        host: cx.host,
        start,
        received,
        answered,
    };
    response.map(|body| {
        ResponseBody::boxed(LoggedBody {
            inner: body,
            sent: 0,
            pending: Some(pending),
        })
    })
}

/// Everything one line needs, kept until the stream ends.
struct PendingLog {
    logs: ListenerAccessLogs,
    head: Parts,
    /// The response's headers (and trailers, as they pass), only when a
    /// format reads one.
    response_headers: Option<HeaderMap>,
    response_code: u16,
    flag: Option<&'static str>,
    downstream: Arc<Downstream>,
    cluster: Option<Arc<Cluster>>,
    host: Option<Arc<Host>>,
    start: Instant,
    received: Arc<AtomicU64>,
    answered: Option<Instant>,
}

impl PendingLog {
    fn write(self, bytes_sent: u64) {
        let duration = self.start.elapsed();
        let wall = SystemTime::now();
        let request = HttpRouteView::new(&self.head);
        let record = Record {
            start: wall.checked_sub(duration).unwrap_or(wall),
            duration,
            // The proxy serves a request as soon as its head is decoded.
            request_received: Some(Duration::ZERO),
            response_received: self
                .answered
                .map(|at| at.saturating_duration_since(self.start)),
            protocol: &self.downstream.protocol,
            listener: &self.downstream.listener,
            request_id: None,
            request_headers: LoggedHeaders::HttpRequest(&request),
            response_headers: self.response_headers.as_ref().map(LoggedHeaders::Http),
            response_code: Some(self.response_code),
            response_flag: self.flag,
            bytes_received: self.received.load(Ordering::Relaxed),
            bytes_sent,
            downstream_local: self.downstream.local,
            downstream_remote: self.downstream.peer,
            upstream_host: self.host.as_deref().map(|h| h.address_text()),
            upstream_cluster: self.cluster.as_deref().map(|c| c.name()),
        };
        self.logs.write(&record);
    }
}

/// The response body, counting what goes out and logging once at its end.
struct LoggedBody {
    inner: ResponseBody,
    sent: u64,
    pending: Option<PendingLog>,
}

impl LoggedBody {
    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.write(self.sent);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref()
                    && let Some(headers) = this
                        .pending
                        .as_mut()
                        .and_then(|p| p.response_headers.as_mut())
                {
                    headers.extend(trailers.clone());
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                // The upstream broke off mid-body.
                if let Some(pending) = &mut this.pending {
                    pending.flag.get_or_insert("UpstreamRemoteReset");
                }
                this.finish();
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish();
    }
}
