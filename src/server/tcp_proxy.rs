//! The L4 proxy: MOSN's `tcp_proxy` network filter at run time.
//!
//! ```text
//!  accepted (or undetected: the bytes detection read come along)
//!    ─► cluster: the filter's, or its first route matching the addresses
//!    ─► host by the cluster's balancer; connect (the cluster's connect
//!       timeout), up to max_connect_attempts hosts, each tried once
//!    ─► the detection bytes first, then bytes both ways until both sides
//!       have closed their sending half (a half-close is passed on), a side
//!       fails, nothing moves for idle_timeout, or the gateway's grace
//!       period ends
//! ```
//!
//! A connection that finds no cluster or no host is closed (TCP has no
//! error reply). Everything is counted per listener ([`TcpProxyCounts`]).

use super::detect::DetectError;
use super::tracker::{ConnectionGuard, raised};
use crate::config::TcpProxySpec;
use crate::relay::{RelayCounters, RelayEnd, RelayLimits, relay};
use bytes::BytesMut;
use meshgate_cluster::{ClusterManager, Host, LbContext};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A listener's TCP proxy counters. Atomics only.
#[derive(Debug, Default)]
pub struct TcpProxyStats {
    connections: AtomicU64,
    fallbacks: AtomicU64,
    active: AtomicU64,
    no_route: AtomicU64,
    connect_failures: AtomicU64,
    no_upstream: AtomicU64,
    idle_timeouts: AtomicU64,
    bytes_to_upstream: AtomicU64,
    bytes_to_downstream: AtomicU64,
}

/// A copy of a listener's TCP proxy counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpProxyCounts {
    /// Connections the TCP proxy took (fallbacks included).
    pub connections: u64,
    /// Of those, connections an `Auto` listener handed over after its
    /// detection found no protocol.
    pub fallbacks: u64,
    /// Connections being proxied now.
    pub active: u64,
    /// Connections closed because no cluster matched (or it is undefined).
    pub no_route: u64,
    /// Upstream connect attempts that failed or timed out.
    pub connect_failures: u64,
    /// Connections closed because every attempt failed (or no host).
    pub no_upstream: u64,
    /// Connections closed after `idle_timeout` without a byte.
    pub idle_timeouts: u64,
    /// Bytes sent to upstreams (the detection bytes included).
    pub bytes_to_upstream: u64,
    /// Bytes sent back to clients.
    pub bytes_to_downstream: u64,
}

impl TcpProxyStats {
    /// The counters now.
    pub fn snapshot(&self) -> TcpProxyCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TcpProxyCounts {
            connections: get(&self.connections),
            fallbacks: get(&self.fallbacks),
            active: get(&self.active),
            no_route: get(&self.no_route),
            connect_failures: get(&self.connect_failures),
            no_upstream: get(&self.no_upstream),
            idle_timeouts: get(&self.idle_timeouts),
            bytes_to_upstream: get(&self.bytes_to_upstream),
            bytes_to_downstream: get(&self.bytes_to_downstream),
        }
    }
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One downstream connection for the TCP proxy.
#[derive(Debug)]
pub(crate) struct TcpConnection {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Bytes already read from the client (by protocol detection).
    pub(crate) prefix: BytesMut,
    /// Handed over by detection rather than proxied by the listener.
    pub(crate) fallback: bool,
    /// Turns `true` when the gateway's grace period is over.
    pub(crate) close: watch::Receiver<bool>,
    pub(crate) guard: ConnectionGuard,
}

/// Whether a connection goes to the TCP proxy: every connection of a
/// `tcp_proxy` listener (`detect` is `None`), and, on an `Auto` listener
/// with `fallback_for_unknown_protocol`, one whose first bytes match no
/// protocol, or that sent too few to decide within the detect timeout (a
/// protocol whose server speaks first sends none), or that closed its
/// sending half after some bytes (they are forwarded, then the half-close).
pub(crate) fn takes(detect: Option<&DetectError>, read: &[u8]) -> bool {
    match detect {
        None => true,
        Some(DetectError::NoMatch { .. } | DetectError::Timeout(_)) => true,
        Some(DetectError::Closed) => !read.is_empty(),
        Some(DetectError::Io(_)) => false,
    }
}

/// Proxies `conn` as bytes per `spec` until it ends.
pub(crate) async fn serve(
    conn: TcpConnection,
    spec: Arc<TcpProxySpec>,
    clusters: Arc<ClusterManager>,
    stats: &TcpProxyStats,
) {
    inc(&stats.connections);
    if conn.fallback {
        inc(&stats.fallbacks);
    }
    stats.active.fetch_add(1, Ordering::Relaxed);
    let peer = conn.peer;
    let end = proxy(conn, &spec, &clusters, stats).await;
    stats.active.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(%peer, ?end, "tcp proxy connection closed");
}

/// How a proxied connection ended.
#[derive(Debug)]
enum End {
    NoRoute,
    NoUpstream,
    Relayed(#[allow(dead_code, reason = "logged through Debug")] RelayEnd),
}

async fn proxy(
    conn: TcpConnection,
    spec: &TcpProxySpec,
    clusters: &ClusterManager,
    stats: &TcpProxyStats,
) -> End {
    let TcpConnection {
        stream: downstream,
        peer,
        prefix,
        close,
        guard: _guard,
        ..
    } = conn;
    let local = downstream.local_addr().unwrap_or(peer);
    let Some(cluster) = spec
        .cluster_for(peer, local)
        .and_then(|name| clusters.get(name))
    else {
        inc(&stats.no_route);
        tracing::info!(%peer, "tcp proxy: no cluster for the connection, closing");
        return End::NoRoute;
    };
    let Some((upstream, host)) = connect(&cluster, peer, spec.max_connect_attempts, stats).await
    else {
        inc(&stats.no_upstream);
        tracing::info!(%peer, cluster = cluster.name(), "tcp proxy: no upstream connection, closing");
        return End::NoUpstream;
    };
    let _ = upstream.set_nodelay(true);
    let _ = downstream.set_nodelay(true);
    let host_stats = Arc::clone(host.stats());
    host_stats
        .active_connections
        .fetch_add(1, Ordering::Relaxed);
    let end = relay_tcp(
        downstream,
        upstream,
        prefix,
        spec.idle_timeout,
        close,
        stats,
    )
    .await;
    host_stats
        .active_connections
        .fetch_sub(1, Ordering::Relaxed);
    if matches!(end, RelayEnd::Idle) {
        inc(&stats.idle_timeouts);
    }
    End::Relayed(end)
}

/// Connects to a host of `cluster`, trying up to `attempts` hosts (each
/// once, while untried ones are left).
async fn connect(
    cluster: &meshgate_cluster::Cluster,
    peer: SocketAddr,
    attempts: u32,
    stats: &TcpProxyStats,
) -> Option<(TcpStream, Arc<Host>)> {
    // Hash balancers keep a client on one host, as MOSN's do by source.
    let mut hasher = DefaultHasher::new();
    peer.ip().hash(&mut hasher);
    let hash_key = Some(hasher.finish());
    let timeout = cluster.settings().connect_timeout;
    let mut tried: Vec<Arc<Host>> = Vec::new();
    for attempt in 1..=attempts.max(1) {
        let lb = LbContext {
            hash_key,
            metadata_match: None,
            tried: &tried,
        };
        let host = cluster.choose_host(&lb)?;
        match tokio::time::timeout(timeout, TcpStream::connect(host.address())).await {
            Ok(Ok(stream)) => return Some((stream, host)),
            outcome => {
                inc(&stats.connect_failures);
                host.stats()
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                let error = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("timed out after {timeout:?}"),
                };
                tracing::debug!(%peer, host = %host.address(), attempt, %error, "tcp proxy connect failed");
                tried.push(host);
            }
        }
    }
    None
}

/// Moves bytes both ways (after sending `prefix` upstream) until both
/// directions ended, one failed, the connection idled out, or the gateway
/// closes it. A half-closed connection may run on (no linger).
async fn relay_tcp(
    downstream: TcpStream,
    upstream: TcpStream,
    prefix: BytesMut,
    idle_timeout: Option<Duration>,
    close: watch::Receiver<bool>,
    stats: &TcpProxyStats,
) -> RelayEnd {
    relay(
        downstream.into_split(),
        upstream.into_split(),
        &prefix,
        RelayLimits {
            idle_timeout,
            linger: None,
        },
        raised(close),
        RelayCounters {
            to_upstream: &stats.bytes_to_upstream,
            to_downstream: &stats.bytes_to_downstream,
        },
    )
    .await
}
