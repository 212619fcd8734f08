//! `request_mirror_policies` (MOSN's route key: `cluster`, `percent`): a
//! share of a route's HTTP requests is copied to another cluster, fire and
//! forget, as Envoy's shadowing does.
//!
//! - The copy has the upstream request's method, path and headers (after
//!   the route's rewrites and header lists) and goes out in the version the
//!   main request goes upstream in.
//! - Its body is the bounded copy the retry buffer keeps (the `replay`
//!   module): the mirror is sent once the main request's body has been read
//!   whole. A body over that buffer ([`REPLAY_LIMIT`](super::replay::REPLAY_LIMIT))
//!   is not mirrored, and nothing is held for it.
//! - The main request never waits for the mirror and never sees its
//!   failures; the mirror's response is discarded.
//! - At most [`MAX_MIRRORS_IN_FLIGHT`] copies are in flight per gateway; a
//!   copy over that is dropped, so a slow mirror cluster cannot pile up
//!   tasks. Each copy gives up after the route's timeout.
//!
//! Every outcome is counted ([`MirrorCounters`]) and logged at debug level.

use super::replay::{BodyCopy, ReplaySource};
use super::{BoxError, Routed, upstream};
use crate::config::GatewayConfig;
use crate::config::http::HttpVersion;
use crate::proxy::ProxyCore;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Request};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use meshgate_admin::{Metric, MetricValue};
use meshgate_cluster::{HttpBody, HttpPool, LbContext};
use meshgate_router::Route;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Mirrored requests in flight at most, per gateway.
pub(crate) const MAX_MIRRORS_IN_FLIGHT: usize = 128;

/// What happened to mirrored requests, since the gateway started.
#[derive(Debug, Default)]
pub(crate) struct MirrorCounters {
    /// Copies sent to the mirror cluster.
    pub(crate) sent: AtomicU64,
    /// Copies the mirror cluster answered (any status).
    pub(crate) answered: AtomicU64,
    /// Copies that failed: connect failure, reset, timeout, body abandoned.
    pub(crate) failed: AtomicU64,
    /// Copies dropped because [`MAX_MIRRORS_IN_FLIGHT`] were in flight.
    pub(crate) dropped_over_limit: AtomicU64,
    /// Requests not mirrored because their body was over the replay buffer.
    pub(crate) body_too_large: AtomicU64,
    /// Requests not mirrored because the mirror cluster is missing or has
    /// no healthy host.
    pub(crate) no_host: AtomicU64,
}

impl MirrorCounters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The gateway's mirror state: the in-flight bound and the counters.
#[derive(Debug)]
pub(crate) struct Mirrors {
    in_flight: Arc<Semaphore>,
    counters: Arc<MirrorCounters>,
}

impl Default for Mirrors {
    fn default() -> Mirrors {
        Mirrors::with_limit(MAX_MIRRORS_IN_FLIGHT)
    }
}

impl Mirrors {
    /// At most `limit` mirrored requests in flight.
    pub(crate) fn with_limit(limit: usize) -> Mirrors {
        Mirrors {
            in_flight: Arc::new(Semaphore::new(limit)),
            counters: Arc::default(),
        }
    }

    /// The counters as admin metrics (`process` / `meshgate` /
    /// `http_mirror_*_total`).
    pub(crate) fn metrics(&self) -> Vec<Metric> {
        let c = &self.counters;
        [
            (
                "http_mirror_sent_total",
                "Mirrored HTTP requests sent to the mirror cluster.",
                &c.sent,
            ),
            (
                "http_mirror_answered_total",
                "Mirrored HTTP requests the mirror cluster answered (any status).",
                &c.answered,
            ),
            (
                "http_mirror_failed_total",
                "Mirrored HTTP requests that failed or timed out.",
                &c.failed,
            ),
            (
                "http_mirror_dropped_total",
                "HTTP requests not mirrored: too many mirrored requests in flight.",
                &c.dropped_over_limit,
            ),
            (
                "http_mirror_body_too_large_total",
                "HTTP requests not mirrored: body over the replay buffer.",
                &c.body_too_large,
            ),
            (
                "http_mirror_no_host_total",
                "HTTP requests not mirrored: mirror cluster missing or without a healthy host.",
                &c.no_host,
            ),
        ]
        .into_iter()
        .map(|(name, help, counter)| Metric {
            scope: "process",
            object: "meshgate".to_owned(),
            name,
            help,
            labels: Vec::new(),
            value: MetricValue::Counter(counter.load(Ordering::Relaxed)),
        })
        .collect()
    }

    /// A place for one more copy in flight, or `None` (counted) when full.
    fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = Arc::clone(&self.in_flight).try_acquire_owned().ok();
        if permit.is_none() {
            MirrorCounters::add(&self.counters.dropped_over_limit);
        }
        permit
    }
}

/// Starts a copy of the request to the route's mirror cluster when the
/// route has a policy and the request falls in its share. Returns at once;
/// `head` is the request as it goes upstream.
pub(super) fn start(
    core: &ProxyCore,
    config: &GatewayConfig,
    route: &Route,
    head: &Parts,
    routed: &Routed<'_>,
    source: &Arc<ReplaySource>,
) {
    let Some(policy) = route.mirror() else {
        return;
    };
    if !policy.should_mirror(rand::random()) {
        return;
    }
    let mirrors = core.mirrors();
    let counters = &mirrors.counters;
    let cluster = config.clusters.get(&policy.cluster);
    let lb = LbContext {
        hash_key: routed.hash_key,
        metadata_match: None,
        tried: &[],
    };
    let Some((cluster, host)) = cluster.and_then(|c| c.choose_host(&lb).map(|host| (c, host)))
    else {
        MirrorCounters::add(&counters.no_host);
        tracing::debug!(cluster = %policy.cluster, "mirror skipped: no cluster or no healthy host");
        return;
    };
    let Some(permit) = mirrors.admit() else {
        tracing::debug!(cluster = %policy.cluster, "mirror dropped: too many in flight");
        return;
    };
    let authority = routed.authority_for(&host).into_owned();
    let copy = MirrorHead {
        method: head.method.clone(),
        target: head
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        authority,
        headers: head.headers.clone(),
        version: routed.version,
    };
    let pool = core
        .upstreams()
        .http_pool(&host, upstream::pool_version(routed.version), &cluster);
    let body = (!source.is_empty()).then(|| source.copy_when_read());
    let counters = Arc::clone(counters);
    let limit = routed.timeout;
    tokio::spawn(async move {
        let _permit = permit;
        let cluster = cluster.name();
        match tokio::time::timeout(limit, send(copy, body, &pool, &counters)).await {
            Ok(Ok(status)) => {
                MirrorCounters::add(&counters.answered);
                tracing::debug!(cluster, status, "mirror answered");
            }
            Ok(Err(MirrorError::TooLarge)) => {
                tracing::debug!(cluster, "mirror skipped: body over the replay buffer");
            }
            Ok(Err(err)) => {
                MirrorCounters::add(&counters.failed);
                tracing::debug!(cluster, error = %err, "mirror failed");
            }
            Err(_) => {
                MirrorCounters::add(&counters.failed);
                tracing::debug!(cluster, ?limit, "mirror timed out");
            }
        }
    });
}

/// The upstream request's head, owned by the mirror task.
#[derive(Debug)]
struct MirrorHead {
    method: Method,
    target: String,
    authority: String,
    headers: HeaderMap,
    version: HttpVersion,
}

#[derive(Debug, thiserror::Error)]
enum MirrorError {
    #[error("body over the replay buffer")]
    TooLarge,
    #[error("request body failed or was abandoned before it was read whole")]
    BodyAbandoned,
    #[error("invalid request: {0}")]
    Invalid(#[from] http::Error),
    #[error("{0}")]
    Upstream(#[from] meshgate_cluster::HttpPoolError),
}

/// Waits for the body copy, sends the request, returns the status. The
/// response body is dropped unread.
async fn send(
    head: MirrorHead,
    body: Option<tokio::sync::oneshot::Receiver<BodyCopy>>,
    pool: &HttpPool,
    counters: &MirrorCounters,
) -> Result<u16, MirrorError> {
    let body = match body {
        None => empty_body(),
        Some(copy) => match copy.await {
            Ok(BodyCopy::Whole { chunks, trailers }) => copied_body(chunks, trailers),
            Ok(BodyCopy::TooLarge) => {
                MirrorCounters::add(&counters.body_too_large);
                return Err(MirrorError::TooLarge);
            }
            Err(_) => return Err(MirrorError::BodyAbandoned),
        },
    };
    let request = request(head, body)?;
    MirrorCounters::add(&counters.sent);
    let response = pool.send(request).await?;
    Ok(response.status().as_u16())
}

/// The request for `head`, built as the main request's tries are.
fn request(head: MirrorHead, body: HttpBody) -> Result<Request<HttpBody>, MirrorError> {
    let MirrorHead {
        method,
        target,
        authority,
        headers,
        version,
    } = head;
    Ok(upstream::request(
        method, &target, &headers, &authority, version, body,
    )?)
}

fn empty_body() -> HttpBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn copied_body(chunks: Vec<Bytes>, trailers: Option<HeaderMap>) -> HttpBody {
    let frames = chunks
        .into_iter()
        .map(Frame::data)
        .chain(trailers.map(Frame::trailers))
        .map(Ok::<_, BoxError>);
    StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{self, HeaderValue};

    #[test]
    fn copies_over_the_limit_are_dropped_and_counted() {
        let mirrors = Mirrors::with_limit(2);
        let first = mirrors.admit();
        let second = mirrors.admit();
        assert!(first.is_some() && second.is_some());
        assert!(mirrors.admit().is_none());
        assert_eq!(
            mirrors.counters.dropped_over_limit.load(Ordering::Relaxed),
            1
        );
        drop(first);
        assert!(mirrors.admit().is_some(), "a finished copy frees its place");
    }

    #[tokio::test]
    async fn the_copied_body_carries_its_chunks_and_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let body = copied_body(
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
            Some(trailers),
        );
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), "abcd");
    }

    #[test]
    fn requests_take_the_upstream_form_of_their_version() {
        let head = |version| MirrorHead {
            method: Method::POST,
            target: "/a?b=1".into(),
            authority: "example.org".into(),
            headers: HeaderMap::new(),
            version,
        };
        let h1 = request(head(HttpVersion::Http1), empty_body()).unwrap();
        assert_eq!(h1.uri(), "/a?b=1");
        assert_eq!(h1.headers()[header::HOST], "example.org");
        let h2 = request(head(HttpVersion::Http2), empty_body()).unwrap();
        assert_eq!(h2.uri(), "http://example.org/a?b=1");
        assert!(h2.headers().get(header::HOST).is_none());
    }
}
