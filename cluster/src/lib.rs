//! Upstreams for meshgate: answers "which host, over which connection".
//!
//! It will own MOSN's `cluster_manager.clusters[]` configuration: hosts with
//! weights and metadata, the load balancers (round robin, weighted, random,
//! least request, least connection, maglev), subset load balancing, health
//! checks, outlier detection, circuit breakers, and the connection pools
//! (multiplexed for framed codecs, ping-pong otherwise), which take a codec
//! handle from `meshgate-codecs`. It knows nothing of routes: the load
//! balancer sees only a small context (hash key, metadata match, hosts
//! already tried), never the downstream connection.
//!
//! Being built with the RPC gateway work.

pub mod pool;
mod stats;

pub use pool::{Pool, PoolConfig, PoolError};
pub use stats::HostStats;
