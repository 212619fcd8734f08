//! HTTP/1.1, HTTP/2 and gRPC requests through the proxy's phases, beside
//! the framed path (`serve.rs`) and sharing its steps: route matching on
//! the same `RouteTable`, cluster choice, load balancing with the route's
//! hash policy, circuit breakers, outcome reports for outlier detection,
//! retries and stats. The request body streams from the downstream
//! connection to the upstream one; a bounded copy of its start
//! (the `replay` module) is what makes a retry possible.
//!
//! One request:
//! DownFilter (stream filters) → MatchRoute (404 / direct response /
//! redirect) → pick cluster → DownFilterAfterRoute → rewrite path and
//! host, strip hop-by-hop headers, add `x-forwarded-*`, apply the header
//! lists → ChooseHost → DownFilterAfterChooseHost → Upstream (per-try
//! timeout) → Retry? → response headers cleaned and mutated, UpFilter →
//! streamed back, and logged to the listener's access logs when the
//! stream ends (`log`).

mod body;
mod conn;
mod filters;
mod headers;
mod log;
mod mirror;
mod replay;
mod reply;
mod timeout;
pub(crate) mod upgrade;
mod upstream;
mod view;

use super::breaker;
use super::error::ProxyError;
use super::filter::{FilterRedo, MAX_REDO, Stage, StreamFilter};
use super::outcome::http_attempt_outcome;
use super::steps::{HeaderLayers, pick_cluster};
use super::{DEFAULT_TIMEOUT, ProxyCore};
use crate::config::http::HttpVersion;
use crate::config::{GatewayConfig, ListenerSpec};
use bytes::Bytes;
use filters::HttpCx;
use headers::Direction;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use meshgate_cluster::{Cluster, Host, LbContext, UpstreamBody};
use meshgate_router::{
    FailureKind, Forward, HostRewrite, MetadataMatch, RouteAction, RouteRequest,
};
use replay::ReplaySource;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use view::{HttpRouteView, UpstreamAuthority};

pub use body::{RequestBody, ResponseBody};
pub use conn::HttpConnection;
pub(crate) use mirror::Mirrors;

/// Errors of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the route decided, borrowed from the configuration snapshot.
struct Routed<'a> {
    forward: &'a Forward,
    layers: HeaderLayers<'a>,
    cluster: Arc<Cluster>,
    metadata: &'a MetadataMatch,
    hash_key: Option<u64>,
    /// The authority the upstream request carries, when the route rewrites
    /// it or the request has one; `None`: the host's address.
    authority: Option<UpstreamAuthority>,
    /// `auto_host_rewrite`: the chosen host's address is the authority.
    auto_host: bool,
    /// Every try is HTTP/1.1 with the request's own origin-form target
    /// and single `Host`, which is its authority, and no filter can
    /// change them: each try sends the head as it is (and `authority` is
    /// not taken, unless a mirror needs it).
    tries_as_requested: bool,
    /// `x-forwarded-*` for the pool to append when writing each try, when
    /// nothing reads the forwarded head in between; `None`: they are in
    /// the head already.
    appended: Option<[(HeaderName, HeaderValue); 2]>,
    version: HttpVersion,
    timeout: Duration,
    /// The `Upgrade` value of an HTTP/1.1 upgrade request (`upgrade`).
    upgrade: Option<HeaderValue>,
    /// The listener's stream filters.
    filters: &'a [Arc<dyn StreamFilter>],
}

impl Routed<'_> {
    /// The authority a request to `host` carries.
    fn authority_for(&self, host: &Host) -> Cow<'_, str> {
        match (&self.authority, self.auto_host) {
            (Some(authority), false) => Cow::Borrowed(authority.as_str()),
            _ => Cow::Owned(host.address().to_string()),
        }
    }
}

impl ProxyCore {
    /// Serves one HTTP request of `connection` and returns the response
    /// to send: the upstream's, streamed, or a local reply (an HTTP error
    /// page, or a gRPC trailers-only response for gRPC).
    pub async fn serve_http<B: RequestBody>(
        &self,
        request: Request<B>,
        connection: &HttpConnection,
    ) -> Response<ResponseBody> {
        let downstream = connection.downstream();
        let config = self.config();
        let spec = config.listener(&downstream.listener);
        // The one branch a listener without access logs pays.
        let logs = spec
            .map(|s| &s.access_logs)
            .filter(|l| !l.is_empty())
            .cloned();
        let stats = self.stats().request_started(&downstream.protocol_stats);
        let mut cx = HttpCx::new(downstream, stats, logs.is_some());
        let (mut head, body) = request.into_parts();
        let facts = headers::HeadFacts::of(&head.headers);
        let grpc = facts.grpc;
        let version = head.version;
        let outcome = match spec {
            Some(spec) => {
                self.proxy_http(&config, spec, (&mut head, body, facts), connection, &mut cx)
                    .await
            }
            None => Err(ProxyError::NoRoute),
        };
        let (mut response, failure) = match outcome {
            Ok(response) => {
                cx.stats
                    .finish_http(&downstream.protocol_stats, Ok(response.status().as_u16()));
                (response, None)
            }
            Err(err) => {
                tracing::debug!(method = %head.method, path = head.uri.path(), error = %err, "local reply");
                cx.stats.finish_http(&downstream.protocol_stats, Err(&err));
                (reply::error_response(&err, grpc), Some(err))
            }
        };
        *response.version_mut() = version;
        match logs {
            Some(logs) => log::logged(response, logs, head, cx, failure.as_ref()),
            None => {
                // For the next response head an HTTP/1 pool parses here.
                meshgate_cluster::give_back_header_map(head.headers);
                response
            }
        }
    }

    async fn proxy_http<B: RequestBody>(
        &self,
        config: &GatewayConfig,
        spec: &ListenerSpec,
        (head, body, facts): (&mut Parts, B, headers::HeadFacts),
        connection: &HttpConnection,
        cx: &mut HttpCx<'_>,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        if let Some(too_large) = body_too_large(head, spec.http.max_request_body_size) {
            return Ok(too_large);
        }
        let table = config
            .routers
            .get(&spec.router)
            .ok_or(ProxyError::NoRoute)?;
        let downstream = cx.downstream;
        let filters = spec.filters.as_slice();
        if !filters.is_empty() {
            cx.run_filters(filters, Stage::BeforeRoute, head).await?;
        }
        let keeps_choices = cx.reads_choices(filters);
        let mut rematched = 0;
        let (matched, forward, cluster, metadata) = loop {
            let view = HttpRouteView::new(head);
            let matched = table.select(&view).ok_or(ProxyError::NoRoute)?;
            cx.stats.matched(
                self.stats()
                    .route(&cx.stats, &spec.router, table, matched.route),
            );
            let layers = matched.header_layers();
            // A route's local answer still gets the route's response headers.
            let answer_locally = |mut response: Response<_>| {
                headers::apply_layers(
                    response.headers_mut(),
                    &layers,
                    Direction::Response,
                    downstream,
                    None,
                );
                Ok(response)
            };
            let forward = match matched.route.action() {
                RouteAction::Forward(forward) => forward,
                RouteAction::DirectResponse(direct) => {
                    let status = StatusCode::from_u16(direct.status).unwrap_or(StatusCode::OK);
                    return answer_locally(reply::text_response(
                        status,
                        direct.body.clone().unwrap_or_default(),
                    ));
                }
                RouteAction::Redirect(redirect) => {
                    let location = matched.route.redirect_location(
                        "http",
                        view::authority(head).unwrap_or_default(),
                        head.uri.path(),
                        head.uri.query(),
                    );
                    let status = StatusCode::from_u16(redirect.response_code)
                        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
                    let mut response = reply::text_response(status, String::new());
                    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                        response.headers_mut().insert(header::LOCATION, location);
                    }
                    return answer_locally(response);
                }
            };
            let (cluster, metadata) = pick_cluster(config, forward, &view, cx.random)?;
            cx.stats.routed(self.stats().cluster(&cx.stats, &cluster));
            if keeps_choices {
                cx.cluster = Some(Arc::clone(&cluster));
            }
            let filtered = match filters {
                [] => Ok(()),
                filters => cx.run_filters(filters, Stage::AfterRoute, head).await,
            };
            match filtered {
                Ok(()) => break (matched, forward, cluster, metadata),
                Err(FilterRedo::Rematch) if rematched < MAX_REDO => rematched += 1,
                Err(redo) => return Err(redo.into()),
            }
        };
        let layers = matched.header_layers();
        let view = HttpRouteView::new(head);
        let hash_key = cluster
            .uses_hash_key()
            .then(|| forward.hash_key(&view, Some(downstream.peer.ip())))
            .flatten();
        // Filters may have changed the fields since they were read.
        let facts = match filters {
            [] => facts,
            _ => headers::HeadFacts::of(&head.headers),
        };
        let arrived = match head.version {
            http::Version::HTTP_2 => HttpVersion::Http2,
            _ => HttpVersion::Http1,
        };
        // An upgrade needs `Connection`, a hop-by-hop field.
        let upgrade = facts.hop_by_hop.then(|| upgrade::requested(head)).flatten();
        let version = match upgrade {
            // An upgrade exists in HTTP/1.1 only, whatever the route says.
            Some(_) => HttpVersion::Http1,
            None => forward
                .upstream_protocol()
                .and_then(HttpVersion::parse)
                .or(spec.http.upstream)
                .unwrap_or(arrived),
        };
        let timeout = forward
            .timeout()
            .or_else(|| {
                facts
                    .grpc
                    .then(|| timeout::grpc_timeout(&head.headers))
                    .flatten()
            })
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        // The request's one `Host` is its authority, no filter can change
        // the fields before a try, and every try is HTTP/1.1 with the
        // request's origin-form target: each try sends the head as it is,
        // and nothing reads the authority (unless a mirror copies it).
        let tries_as_requested = filters.is_empty()
            && forward.host_rewrite().is_none()
            && facts.hosts == 1
            && facts.host_is_text
            && version == HttpVersion::Http1
            && head.uri.scheme().is_none()
            && head.uri.authority().is_none()
            && head.uri.path_and_query().is_some();
        let (authority, auto_host) = match forward.host_rewrite() {
            Some(HostRewrite::Literal(host)) => {
                (Some(UpstreamAuthority::Rewritten(host.clone())), false)
            }
            Some(HostRewrite::FromHeader(name)) => (
                view.header(name)
                    .or_else(|| view::authority(head))
                    .map(|text| UpstreamAuthority::Rewritten(text.to_owned())),
                false,
            ),
            Some(HostRewrite::Auto) => (None, true),
            None if tries_as_requested && matched.route.mirror().is_none() => (None, false),
            None => (UpstreamAuthority::of_request(head), false),
        };
        if let Some(path) = matched.route.rewrite_path(head.uri.path()) {
            rewrite_path(head, &path)?;
        }
        // Nothing but the pool reads the head after this (no filters, no
        // request header lists, no access log, no mirror) and the client
        // sent no `x-forwarded-*`: the pool appends them as it writes.
        let appended = (!facts.forwarded
            && filters.is_empty()
            && !layers.iter().any(|layer| layer.changes_requests())
            && cx.log.is_none()
            && matched.route.mirror().is_none())
        .then(|| headers::forwarded_fields(&connection.forwarded_for));
        let routed = Routed {
            forward,
            layers,
            cluster,
            metadata,
            hash_key,
            authority,
            auto_host,
            tries_as_requested,
            appended,
            version,
            timeout,
            upgrade,
            filters,
        };
        prepare_upstream_head(head, &routed, connection, facts);
        if let Some(protocol) = &routed.upgrade {
            upgrade::restore_request_headers(&mut head.headers, protocol);
        }
        let source = match downstream_body(body, spec.http.max_request_body_size) {
            Some(body) => ReplaySource::new(log::count_received(body, cx)),
            None => ReplaySource::empty(),
        };
        mirror::start(self, config, matched.route, head, &routed, &source);
        let timeout = routed.timeout;
        // Pinned where it is made, in a block so its borrows of the head
        // and context end with it: no box, and no copy of the tries' large
        // state machine into the timeout.
        let answer = {
            let tries = std::pin::pin!(self.forward_http(head, &routed, &source, cx));
            connection.timer.timeout(timeout, tries).await
        };
        let mut response = match answer {
            Some(Ok(response)) => response,
            Some(Err(_)) if source.over_limit() => {
                return Ok(payload_too_large(spec.http.max_request_body_size));
            }
            Some(Err(err)) => return Err(err),
            None => return Err(ProxyError::Timeout(timeout)),
        };
        let switched = upgrade::switched(&response, routed.upgrade.as_ref())?;
        headers::strip_hop_by_hop(response.headers_mut());
        upgrade::restore_response_headers(response.headers_mut(), switched);
        headers::apply_layers(
            response.headers_mut(),
            &routed.layers,
            Direction::Response,
            downstream,
            Some(&routed.cluster),
        );
        cx.filter_response(filters, head, response.headers_mut());
        Ok(response.map(ResponseBody::Upstream))
    }

    /// ChooseHost → Upstream → Retry, until a response or a final error.
    async fn forward_http(
        &self,
        head: &mut Parts,
        routed: &Routed<'_>,
        source: &Arc<ReplaySource>,
        cx: &mut HttpCx<'_>,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        let cluster = &routed.cluster;
        let _request_permit = breaker::admit_request(cluster)?;
        let mut retry_permit = None;
        let policy = routed.forward.effective_retry_policy();
        let per_try = policy.per_try_timeout();
        let metadata = routed.metadata.as_map();
        let mut tried: Vec<Arc<Host>> = Vec::new();
        let mut rechosen = 0;
        loop {
            cx.attempts += 1;
            let attempts = cx.attempts;
            let lb = LbContext {
                hash_key: routed.hash_key,
                metadata_match: (!metadata.is_empty()).then_some(metadata),
                tried: &tried,
            };
            let host = cluster
                .choose_host(&lb)
                .ok_or_else(|| ProxyError::NoHealthyHost(cluster.name().to_owned()))?;
            if cx.reads_choices(routed.filters) {
                cx.host = Some(Arc::clone(&host));
            }
            let filtered = match routed.filters {
                [] => Ok(()),
                filters => cx.run_filters(filters, Stage::AfterChooseHost, head).await,
            };
            match filtered {
                Ok(()) => {}
                Err(FilterRedo::Rematch) if rechosen < MAX_REDO => {
                    rechosen += 1;
                    tried.push(host);
                    continue;
                }
                Err(redo) => return Err(redo.into()),
            }
            // A request without a body sends none: nothing to replay.
            let body = if source.is_empty() {
                meshgate_cluster::pool::http::empty_body()
            } else {
                // Only a retry can find the body gone: the first try always has it.
                upstream::body(source.next_try().ok_or(ProxyError::Pool(
                    meshgate_cluster::pool::PoolError::UpstreamReset { written: true },
                ))?)
            };
            let try_head = try_head(head, routed, &host)?;
            cx.stats
                .attempt(self.stats().host(&cx.stats, cluster, &host));
            // Lent, not copied: `head` stays for the next try, and the
            // HTTP/1 pool writes the try straight from it (h2 copies it).
            let head: &Parts = head;
            let sent = upstream::send(
                self.upstreams(),
                &host,
                cluster,
                routed.version,
                try_head.lend(
                    &head.method,
                    &head.uri,
                    &head.headers,
                    routed.appended.as_ref().map_or(&[], |fields| &fields[..]),
                ),
                body,
            );
            let result = match per_try {
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(result) => result,
                    Err(_) => Err(ProxyError::PerTryTimeout(limit)),
                },
                None => sent.await,
            };
            if result.is_err() && source.over_limit() {
                // The client's body broke the limit: not the host's failure.
                return result;
            }
            let summary = result.as_ref().map(|r| r.status().as_u16());
            cluster.report_outcome(&host, http_attempt_outcome(summary));
            cx.stats.attempt_done_http(summary);
            let may_retry = policy.num_retries() >= attempts && source.replayable();
            let err = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // An upgrade that reached a host is never sent twice.
                    let retry = status >= 500
                        && may_retry
                        && routed.upgrade.is_none()
                        && policy.should_retry(FailureKind::Status(status), attempts);
                    if !retry {
                        cx.mark_answered();
                        return Ok(response);
                    }
                    tracing::debug!(host = %host.address(), attempt = attempts, status, "retrying an error response");
                    cx.stats.retried();
                    tried.push(host);
                    continue;
                }
                Err(err) => err,
            };
            let retry = may_retry
                && err.failure_kind().is_some_and(|kind| {
                    (routed.upgrade.is_none() || kind == FailureKind::ConnectFailure)
                        && policy.should_retry(kind, attempts)
                });
            tracing::debug!(host = %host.address(), attempt = attempts, retry, error = %err, "upstream try failed");
            if !retry || !breaker::admit_retry(cluster, &err, &mut retry_permit) {
                return Err(err);
            }
            cx.stats.retried();
            tried.push(host);
        }
    }
}

/// A 413 when the request declares a body over the listener's limit.
fn body_too_large(head: &Parts, limit: Option<u64>) -> Option<Response<ResponseBody>> {
    let limit = limit?;
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    (declared > limit).then(|| payload_too_large(Some(limit)))
}

/// The 413 for a body over the listener's limit.
fn payload_too_large(limit: Option<u64>) -> Response<ResponseBody> {
    reply::text_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body over the limit of {} bytes\n",
            limit.unwrap_or_default()
        ),
    )
}

/// The downstream body as the tries read it, cut off past the listener's
/// limit; `None` for a request whose body has ended already (most GETs),
/// which needs no body source of its own. An ended h2 body may go: its
/// stream stays open for the response (h2 resets a stream only when no
/// handle to it is left), and the upstream request then goes out as one
/// HEADERS frame with END_STREAM, not HEADERS and an empty DATA frame
/// (hyper's `Incoming` knows an ended h2 body has ended, but not its
/// exact length, so a body wrapping it could not tell its try so).
fn downstream_body<B: RequestBody>(
    body: B,
    limit: Option<u64>,
) -> Option<BoxBody<Bytes, BoxError>> {
    if body.is_end_stream() {
        return None;
    }
    Some(match limit.and_then(|l| usize::try_from(l).ok()) {
        Some(limit) => Limited::new(body, limit).boxed(),
        None => body.map_err(BoxError::from).boxed(),
    })
}

/// Replaces the path, keeping the query.
fn rewrite_path(head: &mut Parts, path: &str) -> Result<(), ProxyError> {
    let target = match head.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = std::mem::take(&mut head.uri).into_parts();
    parts.path_and_query = Some(target.parse().map_err(|_| bad_rewrite())?);
    head.uri = http::Uri::from_parts(parts).map_err(|_| bad_rewrite())?;
    Ok(())
}

fn bad_rewrite() -> ProxyError {
    ProxyError::Local(super::LocalReply {
        status: meshgate_codecs::ReplyStatus::Internal,
        message: std::borrow::Cow::Borrowed("500|path rewrite produced an invalid path"),
    })
}

/// The request head as every try sends it: hop-by-hop fields and
/// `Expect` gone (the gateway answers 100-continue itself, as Envoy does),
/// `x-forwarded-*` added (unless the pool appends them as it writes,
/// `Routed::appended`), the route's header lists applied. `facts` say
/// which of the removals have anything to remove.
fn prepare_upstream_head(
    head: &mut Parts,
    routed: &Routed<'_>,
    connection: &HttpConnection,
    facts: headers::HeadFacts,
) {
    if facts.hop_by_hop {
        headers::strip_hop_by_hop(&mut head.headers);
    }
    if facts.expect {
        head.headers.remove(header::EXPECT);
    }
    if routed.appended.is_none() {
        headers::add_forwarded(&mut head.headers, &connection.forwarded_for);
    }
    headers::apply_layers(
        &mut head.headers,
        &routed.layers,
        Direction::Request,
        connection.downstream(),
        Some(&routed.cluster),
    );
}

/// What one try sends besides the method and headers: origin-form target
/// and `Host` for HTTP/1, an absolute URI (`:scheme`, `:authority`) and no
/// `Host` for HTTP/2.
fn try_head(
    head: &Parts,
    routed: &Routed<'_>,
    host: &Host,
) -> Result<upstream::TryHead, ProxyError> {
    if routed.tries_as_requested {
        return Ok(upstream::TryHead::as_requested());
    }
    let target = head
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    upstream::TryHead::new(
        target,
        &routed.authority_for(host),
        routed.version,
        upstream::single_host(&head.headers),
    )
    .map_err(|_| bad_authority())
}

fn bad_authority() -> ProxyError {
    ProxyError::Local(super::LocalReply {
        status: meshgate_codecs::ReplyStatus::CodecError,
        message: std::borrow::Cow::Borrowed("400|invalid authority or target"),
    })
}
