//! Steps every request takes whatever its protocol: the framed path
//! (`serve.rs`) and the HTTP path (`http/`) both call these.

use super::error::ProxyError;
use crate::config::GatewayConfig;
use meshgate_cluster::Cluster;
use meshgate_router::{Forward, HeaderMutations, MetadataMatch, RouteRequest};
use std::sync::Arc;

/// The header lists of a matched route's levels: route, virtual host,
/// router, in the order MOSN applies them.
pub(crate) type HeaderLayers<'a> = [&'a HeaderMutations; 3];

/// The route's cluster for this request (weighted choice included, by
/// `random`) and the subset metadata to pick its host by.
pub(crate) fn pick_cluster<'a>(
    config: &GatewayConfig,
    forward: &'a Forward,
    request: &dyn RouteRequest,
    random: u64,
) -> Result<(Arc<Cluster>, &'a MetadataMatch), ProxyError> {
    let (name, metadata) = forward
        .pick_cluster(request, random)
        .ok_or(ProxyError::NoRoute)?;
    let cluster = config
        .clusters
        .get(name)
        .ok_or_else(|| ProxyError::NoCluster(name.to_owned()))?;
    Ok((cluster, metadata))
}
