//! One request through MOSN's phases, as one straight-line async function:
//!
//! DownFilter → MatchRoute → DownFilterAfterRoute → ChooseHost →
//! DownFilterAfterChooseHost → Upstream → (Retry → ChooseHost …) →
//! UpFilter → Reply. See `docs/phases.md`.

use super::context::RequestCx;
use super::error::ProxyError;
use super::filter::{
    FilterRedo, LocalReply, MAX_REDO, Stage, StreamFilter, redo_exhausted, run_stage,
};
use super::phase::Phase;
use super::reply::{error_reply, status_for_code};
use super::steps::{HeaderLayers, pick_cluster};
use super::variables::apply_mutations;
use crate::config::{GatewayConfig, ListenerSpec};
use crate::stats::GatewayStats;
use crate::upstream::Upstreams;
use arc_swap::ArcSwap;
use meshgate_cluster::{Cluster, Host, LbContext};
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_router::{Forward, MetadataMatch, RouteAction, RouteTable};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// Requests with neither a route timeout nor a caller timeout give up
/// after this long (MOSN's default global timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What every request needs: the current configuration (swapped whole on
/// reload; a request keeps the snapshot it started with) and the pools.
#[derive(Debug)]
pub struct ProxyCore {
    config: ArcSwap<GatewayConfig>,
    upstreams: Upstreams,
    stats: GatewayStats,
    mirrors: super::http::Mirrors,
}

impl ProxyCore {
    /// A core serving `config`.
    pub fn new(config: Arc<GatewayConfig>) -> ProxyCore {
        ProxyCore {
            stats: GatewayStats::new(&config),
            config: ArcSwap::new(config),
            upstreams: Upstreams::default(),
            mirrors: super::http::Mirrors::default(),
        }
    }

    /// Requests copied by `request_mirror_policies`: the bound and counters.
    pub(crate) fn mirrors(&self) -> &super::http::Mirrors {
        &self.mirrors
    }

    /// The configuration new requests use.
    pub fn config(&self) -> Arc<GatewayConfig> {
        self.config.load_full()
    }

    /// Makes `config` the one new requests use; requests in flight finish
    /// on the one they started with.
    pub fn swap(&self, config: Arc<GatewayConfig>) {
        self.stats.index_config(&config);
        self.config.store(config);
    }

    /// The statistics.
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }

    /// The upstream pools.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Serves one request of `listener`, decoded by `codec`. Returns the one
    /// reply to write back, or `None` for a oneway request.
    ///
    /// Not an `async fn`: that would keep `cx` twice in the future (the
    /// argument and the body's binding), and the future is copied once
    /// into its box per request.
    pub fn serve<'a>(
        &'a self,
        listener: &'a str,
        codec: &'a Arc<dyn FrameCodec>,
        cx: RequestCx,
    ) -> impl Future<Output = Option<Frame>> + Send + 'a {
        let mut cx = cx;
        async move { self.serve_in(listener, codec, &mut cx).await }
    }

    async fn serve_in(
        &self,
        listener: &str,
        codec: &Arc<dyn FrameCodec>,
        cx: &mut RequestCx,
    ) -> Option<Frame> {
        let config = self.config.load_full();
        cx.stats = self.stats.request_started(&cx.downstream.protocol_stats);
        let oneway = cx.request.kind == FrameKind::Oneway;
        let spec = config.listener(listener);
        let logs = spec.map(|s| &s.access_logs).filter(|l| !l.is_empty());
        if logs.is_some() {
            cx.marks.proxied = Some(tokio::time::Instant::now());
        }
        let outcome = match spec {
            Some(spec) => self.proxy(&config, spec, codec, cx).await,
            None => Err(ProxyError::NoRoute),
        };
        cx.enter(Phase::Reply);
        cx.stats.finish(&cx.downstream.protocol_stats, &outcome);
        let (mut reply, failure) = match outcome {
            Ok(response) => (response, None),
            Err(err) => {
                tracing::debug!(id = cx.request.request_id, phase = %cx.phase, error = %err, "local reply");
                let reply = (!oneway)
                    .then(|| error_reply(codec.as_ref(), &cx.request, &err))
                    .flatten();
                (reply, Some(err))
            }
        };
        if let Some(logs) = logs {
            logs.log(codec.as_ref(), cx, &mut reply, failure.as_ref());
        }
        reply
    }

    async fn proxy(
        &self,
        config: &GatewayConfig,
        listener: &ListenerSpec,
        codec: &Arc<dyn FrameCodec>,
        cx: &mut RequestCx,
    ) -> Result<Option<Frame>, ProxyError> {
        let table = config
            .routers
            .get(&listener.router)
            .ok_or(ProxyError::NoRoute)?;
        cx.enter(Phase::DownFilter);
        run_filters(&listener.filters, Stage::BeforeRoute, cx).await?;

        let mut redo = 0;
        let (forward, layers, cluster, metadata) = loop {
            cx.enter(Phase::MatchRoute);
            let (forward, layers) = match_route(table, cx, (&listener.router, &self.stats))?;
            let (cluster, metadata) =
                pick_cluster(config, forward, cx.request.headers(), cx.random)?;
            cx.stats.routed(self.stats.cluster(&cx.stats, &cluster));
            cx.cluster = Some(cluster.clone());
            cx.enter(Phase::DownFilterAfterRoute);
            match run_filters(&listener.filters, Stage::AfterRoute, cx).await {
                Err(FilterRedo::Rematch) if redo < MAX_REDO => redo += 1,
                Err(FilterRedo::Rematch) => return Err(redo_exhausted()),
                Err(FilterRedo::Reply(e)) => return Err(e),
                Ok(()) => break (forward, layers, cluster, metadata),
            }
        };

        let timeout = forward
            .timeout()
            .or(cx
                .request
                .timeout_ms()
                .map(|ms| Duration::from_millis(u64::from(ms))))
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        match tokio::time::timeout(
            timeout,
            self.forward(listener, codec, (forward, layers), &cluster, metadata, cx),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(ProxyError::Timeout(timeout)),
        }
    }

    /// ChooseHost → Upstream → Retry, then UpFilter.
    async fn forward(
        &self,
        listener: &ListenerSpec,
        codec: &Arc<dyn FrameCodec>,
        (forward, layers): (&Forward, HeaderLayers<'_>),
        cluster: &Arc<Cluster>,
        metadata: &MetadataMatch,
        cx: &mut RequestCx,
    ) -> Result<Option<Frame>, ProxyError> {
        // The route's header lists, once per request (MOSN finalizes the
        // request headers before the upstream request, not per try).
        for layer in layers.iter().filter(|l| !l.is_empty()) {
            apply_mutations(
                cx.request.headers_mut(),
                &layer.request_remove,
                &layer.request_add,
                &cx.downstream,
                Some(cluster),
            );
        }
        let _request_permit = super::breaker::admit_request(cluster)?;
        let mut retry_permit = None;
        let policy = forward.effective_retry_policy();
        let per_try = policy.per_try_timeout();
        let hash_key = cluster
            .uses_hash_key()
            .then(|| forward.hash_key(cx.request.headers(), Some(cx.downstream.peer.ip())))
            .flatten();
        let metadata = metadata.as_map();
        let mut tried: Vec<Arc<Host>> = Vec::new();
        let mut rechosen = 0;
        loop {
            cx.attempts += 1;
            cx.enter(Phase::ChooseHost);
            let lb = LbContext {
                hash_key,
                metadata_match: (!metadata.is_empty()).then_some(metadata),
                tried: &tried,
            };
            let host = cluster
                .choose_host(&lb)
                .ok_or_else(|| ProxyError::NoHealthyHost(cluster.name().to_owned()))?;
            cx.host = Some(host.clone());
            cx.enter(Phase::DownFilterAfterChooseHost);
            match run_filters(&listener.filters, Stage::AfterChooseHost, cx).await {
                Err(FilterRedo::Rematch) if rechosen < MAX_REDO => {
                    rechosen += 1;
                    tried.push(host);
                    continue;
                }
                Err(FilterRedo::Rematch) => return Err(redo_exhausted()),
                Err(FilterRedo::Reply(e)) => return Err(e),
                Ok(()) => {}
            }

            cx.enter(Phase::Upstream);
            let pool = self.upstreams.pool(&host, codec, cluster);
            cx.stats.attempt(self.stats.host(&cx.stats, cluster, &host));
            if cx.request.kind == FrameKind::Oneway {
                // Kept in `cx` like a two-way request: the pool copies it
                // only if it has to wait.
                pool.send_oneway_keep(&mut cx.request).await?;
                return Ok(None);
            }
            let may_retry = policy.num_retries() >= cx.attempts;
            // The request stays in `cx` (for another try, the access log,
            // a local reply): the pool encodes it without taking it.
            let sent = pool.send_keep(&mut cx.request);
            let result = match per_try {
                Some(limit) => match tokio::time::timeout(limit, sent).await {
                    Ok(result) => result.map_err(ProxyError::from),
                    Err(_) => Err(ProxyError::PerTryTimeout(limit)),
                },
                None => sent.await.map_err(ProxyError::from),
            };
            cluster.report_outcome(&host, super::outcome::attempt_outcome(&result));
            cx.stats.attempt_done(&result);
            match result {
                Ok(mut response) => {
                    if !listener.access_logs.is_empty() {
                        cx.marks.answered = Some(tokio::time::Instant::now());
                    }
                    cx.enter(Phase::UpFilter);
                    let route_changes = layers
                        .iter()
                        .any(|l| !l.response_add.is_empty() || !l.response_remove.is_empty());
                    if (route_changes
                        || listener.filters.iter().any(|f| f.reads_response_headers()))
                        && let Err(e) = codec.fill_headers(&mut response)
                    {
                        tracing::debug!(id = cx.request.request_id, error = %e, "response headers unreadable; filters see none");
                    }
                    // Route, virtual host, router (MOSN's order), then the
                    // stream filters.
                    for layer in layers.iter().filter(|l| !l.is_empty()) {
                        apply_mutations(
                            response.headers_mut(),
                            &layer.response_remove,
                            &layer.response_add,
                            &cx.downstream,
                            Some(cluster),
                        );
                    }
                    if !listener.filters.is_empty() {
                        let mut filter_cx = cx.filter_cx();
                        for filter in &listener.filters {
                            filter.on_response(&mut filter_cx, response.headers_mut());
                        }
                    }
                    return Ok(Some(response));
                }
                Err(err) => {
                    cx.enter(Phase::Retry);
                    let retry = may_retry
                        && err
                            .failure_kind()
                            .is_some_and(|kind| policy.should_retry(kind, cx.attempts));
                    tracing::debug!(id = cx.request.request_id, host = %host.address(), attempt = cx.attempts, retry, error = %err, "upstream try failed");
                    if !retry || !super::breaker::admit_retry(cluster, &err, &mut retry_permit) {
                        return Err(err);
                    }
                    cx.stats.retried();
                    tried.push(host);
                }
            }
        }
    }
}

/// MatchRoute: the route's forwarding action with its header lists, or the
/// local answer a direct-response route gives.
fn match_route<'a>(
    table: &'a RouteTable,
    cx: &mut RequestCx,
    (router, stats): (&str, &GatewayStats),
) -> Result<(&'a Forward, HeaderLayers<'a>), ProxyError> {
    let matched = table
        .select(cx.request.headers())
        .ok_or(ProxyError::NoRoute)?;
    cx.stats
        .matched(stats.route(&cx.stats, router, table, matched.route));
    match matched.route.action() {
        RouteAction::Forward(forward) => Ok((forward, matched.header_layers())),
        RouteAction::DirectResponse(direct) => Err(ProxyError::Local(LocalReply {
            status: status_for_code(direct.status),
            message: Cow::Owned(direct.body.clone().unwrap_or_default()),
        })),
        RouteAction::Redirect(_) => Err(ProxyError::Local(LocalReply {
            status: status_for_code(404),
            message: Cow::Borrowed("404|redirect routes apply to HTTP only"),
        })),
    }
}

/// Runs the filters of `stage` over the request (nothing to build when
/// the listener has none).
async fn run_filters(
    filters: &[Arc<dyn StreamFilter>],
    stage: Stage,
    cx: &mut RequestCx,
) -> Result<(), FilterRedo> {
    if filters.is_empty() {
        return Ok(());
    }
    run_stage(filters, stage, &mut cx.filter_cx()).await
}
