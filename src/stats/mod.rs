//! The gateway's statistics: what each listener, protocol, route, cluster
//! and host did, for the admin API and Prometheus.
//!
//! ```text
//!  GatewayStats ── registry by name (DashMap; written when a config is
//!   │               swapped in, read by the admin API)
//!   └─ index ──── ArcSwap<StatsIndex>: the running config's routes,
//!                 clusters and hosts by address → their stats Arcs
//!                 (a plain HashMap, read without a lock per request;
//!                 each worker thread keeps the last one it used, so a
//!                 request takes it with one atomic increment)
//! ```
//!
//! Objects are kept by name (a route's `name`, else `<router>/<virtual
//! host>/<index>`; a cluster's name; a host as `(cluster, address)`), so a
//! reload that keeps them keeps their counts. A request finds its objects
//! through the index of the configuration it runs on; a request still on
//! the previous configuration after a reload misses the index and falls
//! back to the registry (the rare slow path). Counting is relaxed atomics
//! (`request.rs`), latency is a lock-free histogram (`histogram.rs`).
//!
//! Cluster-side counters stay where the pools update them:
//! `meshgate_cluster::HostStats` (host load, the balancers read it) and
//! `PoolCounters` (connections, reconnects, in-flight per pool).

mod clock;
mod export;
mod histogram;
mod io;
mod listener;
mod reason;
mod request;

pub use export::{histogram_view, metrics};
pub use histogram::{Histogram, HistogramSnapshot, PROMETHEUS_BOUNDS};
pub use io::CountingWriter;
pub(crate) use listener::OpenConnection;
pub use listener::{ListenerCounts, ListenerStats};
pub use reason::ErrorReason;
pub use request::{ClusterStats, HostRequestStats, ProtocolStats, RequestStats, RouteStats};

use crate::config::GatewayConfig;
use arc_swap::ArcSwap;
use dashmap::DashMap;
use meshgate_cluster::{Cluster, Host};
use meshgate_router::{Route, RouteTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// A value alone on its cache line(s), so counters updated from different
/// threads do not slow each other down.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// Every statistic of the gateway. One per [`crate::proxy::ProxyCore`].
#[derive(Debug)]
pub struct GatewayStats {
    started: Instant,
    listeners: DashMap<String, Arc<ListenerStats>>,
    protocols: DashMap<String, Arc<ProtocolStats>>,
    routes: DashMap<String, Arc<RouteStats>>,
    clusters: DashMap<String, Arc<ClusterStats>>,
    hosts: DashMap<(String, SocketAddr), Arc<HostRequestStats>>,
    index: ArcSwap<StatsIndex>,
    /// The number of the index in `index` (see [`StatsIndex::id`]).
    index_id: AtomicU64,
}

/// The next [`StatsIndex::id`]: unique among every index of the process,
/// whichever `GatewayStats` built it, so a number names one index forever.
static NEXT_INDEX_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The index this thread's last request started with: while it is the
    /// current one (same number), the next request takes it from here
    /// instead of loading the `ArcSwap` (an atomic increment instead of
    /// the debt-slot protocol).
    static LAST_INDEX: RefCell<Option<Arc<StatsIndex>>> = const { RefCell::new(None) };
}

impl Default for GatewayStats {
    fn default() -> GatewayStats {
        GatewayStats {
            started: Instant::now(),
            listeners: DashMap::new(),
            protocols: DashMap::new(),
            routes: DashMap::new(),
            clusters: DashMap::new(),
            hosts: DashMap::new(),
            index: ArcSwap::from_pointee(StatsIndex::default()),
            index_id: AtomicU64::new(0),
        }
    }
}

/// Hashes a pointer (already unique and well spread above its alignment
/// bits) without SipHash's cost.
#[derive(Debug, Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_right(29);
    }
}

type PtrMap<V> = HashMap<usize, V, BuildHasherDefault<PtrHasher>>;

/// The running configuration's objects → their stats, by address. A
/// request holds the index it started with (from its thread's copy, or
/// one `ArcSwap` load after a reload), so its later lookups cost a hash
/// probe each. (Holding it by number instead, and finding it again in the
/// thread's copy, costs a thread-local access per lookup: 65 instructions
/// more each under callgrind.)
#[derive(Debug, Default)]
pub(crate) struct StatsIndex {
    /// Unique in the process (0: the empty index before any config).
    id: u64,
    routes: PtrMap<Arc<RouteStats>>,
    clusters: PtrMap<Arc<ClusterStats>>,
    hosts: PtrMap<Arc<HostRequestStats>>,
}

fn addr_of<T>(item: &T) -> usize {
    std::ptr::from_ref(item) as usize
}

/// The stats name of route `index` of virtual host `vhost_index`: its
/// configured name, else `<router>/<virtual host>/<index>`.
pub fn route_name(
    router: &str,
    vhost_index: usize,
    vhost: &str,
    index: usize,
    route: &Route,
) -> String {
    let label = if vhost.is_empty() {
        format!("virtual_hosts[{vhost_index}]")
    } else {
        vhost.to_owned()
    };
    // The router crate names unnamed routes `<label>/routers[i]`.
    if route.name() != format!("{label}/routers[{index}]") {
        return route.name().to_owned();
    }
    let vhost = if vhost.is_empty() {
        vhost_index.to_string()
    } else {
        vhost.to_owned()
    };
    format!("{router}/{vhost}/{index}")
}

fn entry<K, V>(map: &DashMap<K, Arc<V>>, key: K) -> Arc<V>
where
    K: std::hash::Hash + Eq,
    V: Default,
{
    Arc::clone(&map.entry(key).or_default())
}

impl GatewayStats {
    /// Fresh statistics for `config`.
    pub fn new(config: &GatewayConfig) -> GatewayStats {
        let stats = GatewayStats::default();
        stats.index_config(config);
        stats
    }

    /// How long the gateway has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Makes `config`'s objects the ones requests find without a lock
    /// (called whenever a configuration is swapped in). Objects kept by
    /// name keep their counts.
    pub fn index_config(&self, config: &GatewayConfig) {
        let mut index = StatsIndex {
            id: NEXT_INDEX_ID.fetch_add(1, Ordering::Relaxed),
            ..StatsIndex::default()
        };
        for (router, table) in &config.routers {
            for_each_route(router, table, |name, route| {
                index
                    .routes
                    .insert(addr_of(route), entry(&self.routes, name));
            });
        }
        for cluster in config.clusters.clusters() {
            let stats = entry(&self.clusters, cluster.name().to_owned());
            index.clusters.insert(addr_of(cluster.as_ref()), stats);
            for host in cluster.hosts().hosts() {
                let key = (cluster.name().to_owned(), host.address());
                index
                    .hosts
                    .insert(addr_of(host.as_ref()), entry(&self.hosts, key));
            }
        }
        for protocol in config.registry.names() {
            entry(&self.protocols, protocol.to_owned());
        }
        let id = index.id;
        self.index.store(Arc::new(index));
        // After the store: a request that reads the new number finds the
        // new index in the ArcSwap when its thread's copy is older.
        self.index_id.store(id, Ordering::Release);
    }

    /// Listener `name`'s counters (created on first use; kept across
    /// rebinds).
    pub fn listener(&self, name: &str) -> Arc<ListenerStats> {
        if let Some(found) = self.listeners.get(name) {
            return Arc::clone(&found);
        }
        entry(&self.listeners, name.to_owned())
    }

    /// The counters of requests of `protocol` (kept for good: a
    /// connection takes them once, when its protocol is detected).
    pub fn protocol(&self, protocol: &str) -> Arc<ProtocolStats> {
        if let Some(found) = self.protocols.get(protocol) {
            return Arc::clone(&found);
        }
        entry(&self.protocols, protocol.to_owned())
    }

    /// A request of the protocol counted by `protocol` starts.
    pub(crate) fn request_started(&self, protocol: &ProtocolStats) -> RequestStats {
        RequestStats::start(protocol, self.current_index())
    }

    /// The current index, from this thread's copy while that is current.
    fn current_index(&self) -> Arc<StatsIndex> {
        let id = self.index_id.load(Ordering::Acquire);
        LAST_INDEX.with_borrow_mut(|last| match last {
            Some(index) if index.id == id => Arc::clone(index),
            _ => {
                let index = self.index.load_full();
                *last = Some(Arc::clone(&index));
                index
            }
        })
    }

    /// Looks `key` up in the index `held` started with (or the current one).
    fn indexed<V: Clone>(
        &self,
        held: &RequestStats,
        map: impl FnOnce(&StatsIndex) -> &PtrMap<V>,
        key: usize,
    ) -> Option<V> {
        match held.index() {
            Some(index) => map(index).get(&key).cloned(),
            None => map(&self.index.load()).get(&key).cloned(),
        }
    }

    /// The stats of `route` of route table `table` (named `router`).
    /// Out of line, like every per-request entry point of this module, so
    /// callgrind can attribute its cost (bench/stats-cost.sh).
    #[inline(never)]
    pub(crate) fn route(
        &self,
        held: &RequestStats,
        router: &str,
        table: &RouteTable,
        route: &Route,
    ) -> Arc<RouteStats> {
        if let Some(found) = self.indexed(held, |i| &i.routes, addr_of(route)) {
            return found;
        }
        let mut name = None;
        for_each_route(router, table, |n, r| {
            if std::ptr::eq(r, route) {
                name = Some(n);
            }
        });
        entry(
            &self.routes,
            name.unwrap_or_else(|| route.name().to_owned()),
        )
    }

    /// The stats of `cluster`.
    pub(crate) fn cluster(&self, held: &RequestStats, cluster: &Cluster) -> Arc<ClusterStats> {
        match self.indexed(held, |i| &i.clusters, addr_of(cluster)) {
            Some(found) => found,
            None => entry(&self.clusters, cluster.name().to_owned()),
        }
    }

    /// The stats of `host` as a member of `cluster`.
    pub(crate) fn host(
        &self,
        held: &RequestStats,
        cluster: &Cluster,
        host: &Host,
    ) -> Arc<HostRequestStats> {
        match self.indexed(held, |i| &i.hosts, addr_of(host)) {
            Some(found) => found,
            None => entry(&self.hosts, (cluster.name().to_owned(), host.address())),
        }
    }
}

impl GatewayStats {
    /// Tries sent to `host` of `cluster` so far.
    pub fn host_requests(&self, cluster: &Cluster, host: &Host) -> u64 {
        self.host(&RequestStats::default(), cluster, host)
            .requests
            .load(Ordering::Relaxed)
    }
}

/// Calls `f` with every route of `table` and its stats name.
fn for_each_route<'t>(router: &str, table: &'t RouteTable, mut f: impl FnMut(String, &'t Route)) {
    for (vi, vhost) in table.virtual_hosts().iter().enumerate() {
        for (ri, route) in vhost.routes().iter().enumerate() {
            f(route_name(router, vi, vhost.name(), ri, route), route);
        }
    }
}
