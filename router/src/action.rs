//! What a matched route does: forward to a cluster, answer directly, or
//! redirect; and, for forwarding, which cluster with what subset metadata,
//! timeout, retry and hash policies.

use crate::config::RouteActionConfig;
use crate::error::{BuildCx, RouterConfigError};
use crate::hash_policy::HashPolicy;
use crate::metadata::MetadataMatch;
use crate::redirect::{DirectResponse, Redirect};
use crate::request::RouteRequest;
use crate::retry_policy::{MOSN_IMPLICIT, RetryPolicy};
use crate::rewrite::{HostRewrite, PathRewrite};
use std::net::IpAddr;
use std::time::Duration;

/// A route's action.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Send upstream.
    Forward(Forward),
    /// Answer locally (`direct_response`).
    DirectResponse(DirectResponse),
    /// Answer with an HTTP redirect (`redirect`).
    Redirect(Redirect),
}

/// One `weighted_clusters[]` entry, built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    /// Cluster name.
    pub name: String,
    /// Relative weight.
    pub weight: u32,
    /// The route's `metadata_match` with this cluster's merged over it.
    pub metadata_match: MetadataMatch,
}

/// Where the request's cluster name comes from at request time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicSource {
    /// `cluster_header`.
    Header(String),
    /// `cluster_variable`.
    Variable(String),
}

/// How the cluster is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSpec {
    /// `cluster_name`.
    Single(String),
    /// `weighted_clusters`, with the sum of their weights (never zero).
    Weighted {
        /// The clusters, in config order.
        clusters: Vec<WeightedCluster>,
        /// Sum of weights.
        total_weight: u64,
    },
    /// `cluster_header` / `cluster_variable`; when the request lacks the
    /// value (or it is empty), the static choice, if any.
    Dynamic {
        /// Where the name comes from.
        source: DynamicSource,
        /// `cluster_name` / `weighted_clusters` when also configured.
        fallback: Option<Box<ClusterSpec>>,
    },
}

impl ClusterSpec {
    fn pick<'a: 'r, 'r>(
        &'a self,
        route_md: &'a MetadataMatch,
        req: &'r dyn RouteRequest,
        random: u64,
    ) -> Option<(&'r str, &'a MetadataMatch)> {
        match self {
            ClusterSpec::Single(name) => Some((name, route_md)),
            ClusterSpec::Weighted {
                clusters,
                total_weight,
            } => {
                let mut point = random % total_weight;
                for c in clusters {
                    let w = u64::from(c.weight);
                    if point < w {
                        return Some((&c.name, &c.metadata_match));
                    }
                    point -= w;
                }
                debug_assert!(false, "total_weight is the sum of the weights");
                None
            }
            ClusterSpec::Dynamic { source, fallback } => {
                let value = match source {
                    DynamicSource::Header(h) => req.header(h),
                    DynamicSource::Variable(v) => req.variable(v),
                };
                match value.filter(|v| !v.is_empty()) {
                    Some(name) => Some((name, route_md)),
                    None => fallback.as_ref()?.pick(route_md, req, random),
                }
            }
        }
    }

    fn static_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            ClusterSpec::Single(n) => out.push(n),
            ClusterSpec::Weighted { clusters, .. } => {
                out.extend(clusters.iter().map(|c| c.name.as_str()))
            }
            ClusterSpec::Dynamic { fallback, .. } => {
                if let Some(f) = fallback {
                    f.static_names(out);
                }
            }
        }
    }
}

/// A built forwarding action (`route` in MOSN's JSON).
#[derive(Debug, Clone)]
pub struct Forward {
    clusters: ClusterSpec,
    metadata_match: MetadataMatch,
    timeout: Option<Duration>,
    retry_policy: Option<RetryPolicy>,
    hash_policy: Vec<HashPolicy>,
    path_rewrite: Option<PathRewrite>,
    host_rewrite: Option<HostRewrite>,
    upstream_protocol: Option<String>,
}

impl Forward {
    /// Chooses the cluster. `random` is any uniformly random number; it
    /// only matters for weighted clusters, where cluster *i* is chosen with
    /// probability `weight_i / total`. Returns the cluster name and the
    /// subset metadata to select hosts with; `None` when the name comes
    /// from a header or variable the request lacks and nothing static is
    /// configured.
    /// The name may borrow from the request (header- or variable-named
    /// clusters); the metadata always comes from the configuration.
    pub fn pick_cluster<'a: 'r, 'r>(
        &'a self,
        req: &'r dyn RouteRequest,
        random: u64,
    ) -> Option<(&'r str, &'a MetadataMatch)> {
        self.clusters.pick(&self.metadata_match, req, random)
    }

    /// How the cluster is chosen.
    pub fn clusters(&self) -> &ClusterSpec {
        &self.clusters
    }

    /// Every cluster named in the config (not those named by requests).
    pub fn static_cluster_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.clusters.static_names(&mut out);
        out
    }

    /// The route's `metadata_match` (weighted clusters carry their merged one).
    pub fn metadata_match(&self) -> &MetadataMatch {
        &self.metadata_match
    }

    /// Whole-request timeout; `None` when unset or zero.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The configured retry policy.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry_policy.as_ref()
    }

    /// The configured policy, or MOSN's implicit one (retry connection
    /// failures up to 3 times) when the route has none.
    pub fn effective_retry_policy(&self) -> &RetryPolicy {
        self.retry_policy.as_ref().unwrap_or(&MOSN_IMPLICIT)
    }

    /// The configured hash policies.
    pub fn hash_policy(&self) -> &[HashPolicy] {
        &self.hash_policy
    }

    /// The hash key for consistent hashing: the first policy that yields
    /// one, or the source IP when no policy is configured (MOSN's default).
    pub fn hash_key(&self, req: &dyn RouteRequest, source_ip: Option<IpAddr>) -> Option<u64> {
        if self.hash_policy.is_empty() {
            return HashPolicy::SourceIp.hash_key(req, source_ip);
        }
        self.hash_policy
            .iter()
            .find_map(|p| p.hash_key(req, source_ip))
    }

    /// `prefix_rewrite` / `regex_rewrite`.
    pub fn path_rewrite(&self) -> Option<&PathRewrite> {
        self.path_rewrite.as_ref()
    }

    /// `host_rewrite` / `auto_host_rewrite_header` / `auto_host_rewrite`.
    pub fn host_rewrite(&self) -> Option<&HostRewrite> {
        self.host_rewrite.as_ref()
    }

    /// `upstream_protocol`, when set.
    pub fn upstream_protocol(&self) -> Option<&str> {
        self.upstream_protocol.as_deref()
    }

    /// True if the action names a cluster in any way.
    pub(crate) fn configured(cfg: &RouteActionConfig) -> bool {
        !cfg.cluster_name.is_empty()
            || !cfg.weighted_clusters.is_empty()
            || !cfg.cluster_header.is_empty()
            || !cfg.cluster_variable.is_empty()
    }

    /// Builds `route` (the caller has entered it); `None` on error.
    pub(crate) fn build(cfg: &RouteActionConfig, cx: &mut BuildCx) -> Option<Forward> {
        let errors_before = cx.errors.len();
        let metadata_match = cx.field("metadata_match", |cx| {
            MetadataMatch::build(cfg.metadata_match.as_ref(), cx)
        });
        let clusters = build_clusters(cfg, &metadata_match, cx);
        let retry_policy = match &cfg.retry_policy {
            Some(p) => cx.field("retry_policy", |cx| RetryPolicy::build(p, cx)),
            None => None,
        };
        let hash_policy = cx.field("hash_policy", |cx| {
            cfg.hash_policy
                .iter()
                .enumerate()
                .filter_map(|(i, p)| cx.index(i, |cx| crate::hash_policy::build(p, cx)))
                .collect()
        });
        let path_rewrite = PathRewrite::build(cfg, cx);
        let host_rewrite = HostRewrite::build(cfg, cx);
        if cx.errors.len() != errors_before {
            return None;
        }
        Some(Forward {
            clusters: clusters?,
            metadata_match,
            timeout: cfg.timeout.map(|d| d.get()).filter(|d| !d.is_zero()),
            retry_policy,
            hash_policy,
            path_rewrite,
            host_rewrite,
            upstream_protocol: (!cfg.upstream_protocol.is_empty())
                .then(|| cfg.upstream_protocol.clone()),
        })
    }
}

fn build_clusters(
    cfg: &RouteActionConfig,
    route_md: &MetadataMatch,
    cx: &mut BuildCx,
) -> Option<ClusterSpec> {
    let mut static_spec = None;
    if !cfg.weighted_clusters.is_empty() {
        if !cfg.cluster_name.is_empty() {
            cx.warn(
                "cluster_name",
                "ignored: weighted_clusters take precedence, as in MOSN",
            );
        }
        static_spec = cx.field("weighted_clusters", |cx| build_weighted(cfg, route_md, cx));
    } else if !cfg.cluster_name.is_empty() {
        static_spec = Some(ClusterSpec::Single(cfg.cluster_name.clone()));
    }
    let source = match (cfg.cluster_variable.as_str(), cfg.cluster_header.as_str()) {
        ("", "") => return static_spec,
        (v, h) => {
            if !v.is_empty() && !h.is_empty() {
                cx.warn(
                    "cluster_header",
                    "ignored: cluster_variable takes precedence",
                );
            }
            if v.is_empty() {
                DynamicSource::Header(h.to_owned())
            } else {
                DynamicSource::Variable(v.to_owned())
            }
        }
    };
    Some(ClusterSpec::Dynamic {
        source,
        fallback: static_spec.map(Box::new),
    })
}

fn build_weighted(
    cfg: &RouteActionConfig,
    route_md: &MetadataMatch,
    cx: &mut BuildCx,
) -> Option<ClusterSpec> {
    let mut clusters: Vec<WeightedCluster> = Vec::with_capacity(cfg.weighted_clusters.len());
    let mut ok = true;
    for (i, wc) in cfg.weighted_clusters.iter().enumerate() {
        cx.index(i, |cx| {
            cx.field("cluster", |cx| {
                let c = &wc.cluster;
                if c.name.is_empty() {
                    cx.error(RouterConfigError::Empty {
                        path: cx.at("name"),
                        what: "cluster name",
                    });
                    ok = false;
                    return;
                }
                if clusters.iter().any(|prev| prev.name == c.name) {
                    cx.error(RouterConfigError::DuplicateWeightedCluster {
                        path: cx.at("name"),
                        name: c.name.clone(),
                    });
                    ok = false;
                    return;
                }
                let own = cx.field("metadata_match", |cx| {
                    MetadataMatch::build(c.metadata_match.as_ref(), cx)
                });
                clusters.push(WeightedCluster {
                    name: c.name.clone(),
                    weight: c.weight,
                    metadata_match: route_md.merged_with(&own),
                });
            });
        });
    }
    let total_weight: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if ok && total_weight == 0 {
        cx.error(RouterConfigError::ZeroTotalWeight { path: cx.here() });
        ok = false;
    }
    ok.then_some(ClusterSpec::Weighted {
        clusters,
        total_weight,
    })
}
