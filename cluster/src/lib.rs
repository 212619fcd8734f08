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
//!
//! Built so far: the cluster manager. [`ClusterManager::build`] turns the
//! raw MOSN configs of [`config`] into immutable [`Cluster`]s (every problem
//! reported with its JSON path), and [`Cluster::choose_host`] picks a
//! [`Host`] for a request through the cluster's [`lb`] balancer and subsets,
//! lock-free. [`health`] runs active health checks and [`outlier`] passive
//! outlier ejection, both through host health flags that every balancer
//! honours (with Envoy's panic threshold, see [`lb`]); they start only when
//! asked ([`ClusterManager::start_health_checks`]). Each cluster carries a
//! [`CircuitBreaker`] (per-cluster limits on requests, pending requests,
//! connections and retries, plus a retry budget) that the proxy and the
//! pools take permits from. Building opens no connection, resolves DNS only
//! for host names, and never reads a route.

pub mod pool;
mod stats;

pub use pool::http::{
    HttpBody, HttpBodyError, HttpPool, HttpPoolError, HttpPoolSettings, HttpPoolStats, HttpVersion,
    LentHead, UpstreamBody, give_back_header_map,
};
pub use pool::{Pool, PoolConfig, PoolError};
pub use stats::HostStats;

pub mod breaker;
mod cluster;
pub mod config;
mod error;
pub mod health;
mod host;
pub mod lb;
mod manager;
pub mod outlier;
mod subset;

pub use breaker::{BreakerCounters, BreakerPermit, CircuitBreaker, RetryBudget};
pub use cluster::{CircuitBreakerLimits, Cluster, ClusterSettings, ClusterType};
pub use config::ClusterConfig;
pub use error::{ClusterConfigErrors, ConfigIssue};
pub use health::{HealthCounters, HostHealth};
pub use host::{HealthFlag, Host, HostSet};
pub use lb::{LbContext, LbOptions, LbType, LoadBalancer};
pub use manager::ClusterManager;
pub use outlier::AttemptOutcome;
pub use subset::{FallbackPolicy, SubsetSettings};
