//! Upstream connection pools, one per (host address, protocol), shared by
//! every listener and kept across reloads for hosts that stay: framed
//! pools by codec, HTTP pools by version.

use dashmap::DashMap;
use meshgate_cluster::pool::{Pool, PoolConfig, PoolCounters};
use meshgate_cluster::{Cluster, Host, HttpPool, HttpPoolSettings, HttpVersion};
use meshgate_codecs::{FrameCodec, Limits};
use rustc_hash::FxBuildHasher;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// A host's pool for one protocol, by the protocol's name.
type NamedPool = (Arc<str>, Arc<Pool>);

/// The pools.
#[derive(Debug, Default)]
pub struct Upstreams {
    /// Framed pools by host, then by protocol name (a host rarely speaks
    /// more than one, so a short list; keyed this way a lookup builds no
    /// key and allocates nothing). Hashed with Fx, not SipHash: the keys
    /// come from the configuration, not from peers, and SipHash cost 1.5 %
    /// of a proxied bolt request.
    pools: DashMap<SocketAddr, Vec<NamedPool>, FxBuildHasher>,
    http: DashMap<(SocketAddr, HttpVersion), HttpPool, FxBuildHasher>,
}

impl Upstreams {
    /// The pool for `host` speaking `codec`, created on first use from the
    /// settings and circuit breaker of `cluster` (a host shared by two
    /// clusters gets the first one's, as in MOSN).
    pub fn pool(&self, host: &Host, codec: &Arc<dyn FrameCodec>, cluster: &Cluster) -> Arc<Pool> {
        let protocol = codec.name();
        let find = |pools: &[NamedPool]| {
            pools
                .iter()
                .find(|(name, _)| **name == *protocol)
                .map(|(_, pool)| Arc::clone(pool))
        };
        if let Some(pool) = self.pools.get(&host.address()).and_then(|p| find(&p)) {
            return pool;
        }
        let mut pools = self.pools.entry(host.address()).or_default();
        if let Some(pool) = find(&pools) {
            return pool;
        }
        let settings = cluster.settings();
        let config = PoolConfig {
            max_connections: settings.connections_per_host.max(1) as usize,
            connect_timeout: settings.connect_timeout,
            max_requests_per_conn: u64::from(settings.max_request_per_conn),
            idle_timeout: settings.idle_timeout.or(PoolConfig::default().idle_timeout),
            limits: Limits::default(),
            breaker: Some(Arc::clone(cluster.breaker())),
            ..PoolConfig::default()
        };
        let pool = Arc::new(Pool::new(
            host.address(),
            Arc::clone(codec),
            config,
            Arc::clone(host.stats()),
        ));
        pools.push((Arc::from(protocol), Arc::clone(&pool)));
        pool
    }

    /// The HTTP pool for `host` speaking `version`, created on first use
    /// from `cluster`'s settings and circuit breaker.
    pub fn http_pool(&self, host: &Host, version: HttpVersion, cluster: &Cluster) -> HttpPool {
        let key = (host.address(), version);
        if let Some(pool) = self.http.get(&key) {
            return pool.clone();
        }
        let entry = self.http.entry(key).or_insert_with(|| {
            let settings = cluster.settings();
            let defaults = HttpPoolSettings::default();
            HttpPool::new(
                host.address(),
                version,
                HttpPoolSettings {
                    connect_timeout: settings.connect_timeout,
                    idle_timeout: settings.idle_timeout.or(defaults.idle_timeout),
                    max_requests_per_conn: u64::from(settings.max_request_per_conn),
                    breaker: Some(Arc::clone(cluster.breaker())),
                    host_stats: Some(Arc::clone(host.stats())),
                    ..defaults
                },
            )
        });
        entry.clone()
    }

    /// Closes (drains) the pools of hosts not in `keep`: after a reload
    /// removed them, and at stop (with an empty `keep`).
    pub fn retain(&self, keep: &HashSet<SocketAddr>) {
        self.pools.retain(|addr, pools| {
            let stays = keep.contains(addr);
            if !stays {
                pools.iter().for_each(|(_, pool)| pool.close());
            }
            stays
        });
        self.http.retain(|(addr, _), pool| {
            let stays = keep.contains(addr);
            if !stays {
                pool.close();
            }
            stays
        });
    }

    /// Calls `f` with every pool's host, protocol and counters (for the
    /// admin API; iterating the map locks each shard briefly).
    pub fn for_each(&self, mut f: impl FnMut(SocketAddr, &str, &PoolCounters)) {
        for entry in &self.pools {
            for (protocol, pool) in entry.value() {
                f(*entry.key(), protocol, pool.counters());
            }
        }
    }

    /// Number of pools open.
    pub fn len(&self) -> usize {
        self.pools.iter().map(|pools| pools.len()).sum()
    }

    /// True when no pool is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
