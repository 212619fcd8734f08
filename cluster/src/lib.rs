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
//! lock-free. Each cluster carries a [`CircuitBreaker`] (per-cluster limits
//! on requests, pending requests, connections and retries, plus a retry
//! budget) that the proxy and the pools take permits from. Health checks and outlier detection only have their hook so
//! far (host health flags that every balancer honours); nothing here opens
//! a connection, resolves DNS after build, or reads a route.

pub mod pool;
mod stats;

pub use pool::{Pool, PoolConfig, PoolError};
pub use stats::HostStats;

pub mod breaker;
mod cluster;
pub mod config;
mod error;
mod host;
pub mod lb;
mod manager;
mod subset;

pub use breaker::{BreakerCounters, BreakerPermit, CircuitBreaker, RetryBudget};
pub use cluster::{CircuitBreakerLimits, Cluster, ClusterSettings, ClusterType};
pub use config::ClusterConfig;
pub use error::{ClusterConfigErrors, ConfigIssue};
pub use host::{HealthFlag, Host, HostSet};
pub use lb::{LbContext, LbOptions, LbType, LoadBalancer};
pub use manager::ClusterManager;
pub use subset::{FallbackPolicy, SubsetSettings};
