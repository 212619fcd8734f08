//! Helpers shared by the cluster integration tests.
#![allow(dead_code, unreachable_pub)]

use meshgate_cluster::{Cluster, ClusterConfig, ClusterManager, Host, LbContext};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds a manager from a `cluster_manager`-shaped JSON object.
pub fn manager(cluster_manager: serde_json::Value) -> ClusterManager {
    let configs = configs(cluster_manager);
    ClusterManager::build(&configs).unwrap_or_else(|e| panic!("{e}"))
}

/// The `clusters` array of a `cluster_manager`-shaped JSON object.
pub fn configs(cluster_manager: serde_json::Value) -> Vec<ClusterConfig> {
    serde_json::from_value(cluster_manager["clusters"].clone()).expect("clusters parse")
}

/// A one-cluster manager named "c" with `lb_type` over `n` hosts
/// 10.0.0.1:9000.. with the given weights (1 when `weights` is empty).
pub fn cluster(lb_type: &str, n: usize, weights: &[u32]) -> Arc<Cluster> {
    let hosts: Vec<_> = (0..n)
        .map(|i| {
            let w = weights.get(i).copied().unwrap_or(1);
            serde_json::json!({"address": format!("10.0.0.1:{}", 9000 + i), "weight": w})
        })
        .collect();
    let m = manager(serde_json::json!({"clusters": [
        {"name": "c", "type": "SIMPLE", "lb_type": lb_type, "hosts": hosts}
    ]}));
    m.get("c").expect("cluster c")
}

/// Index of a host built by [`cluster`] (its port minus 9000).
pub fn index(host: &Host) -> usize {
    usize::from(host.address().port() - 9000)
}

/// How many of `picks` choices went to each host index.
pub fn counts(c: &Cluster, picks: usize, cx: &LbContext<'_>) -> Vec<usize> {
    let mut counts = vec![0; c.hosts().len()];
    for _ in 0..picks {
        let h = c.choose_host(cx).expect("a host");
        counts[index(&h)] += 1;
    }
    counts
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// True when `got` is within `tolerance` (a fraction) of `expected`.
pub fn near(got: usize, expected: f64, tolerance: f64) -> bool {
    (got as f64 - expected).abs() <= expected * tolerance
}
