//! A cluster's circuit breaker across a reload: the rebuilt cluster keeps
//! the breaker (permits from before still count) with the new limits.

use meshgate_cluster::breaker::Resource;
use meshgate_cluster::{ClusterConfig, ClusterManager};
use std::sync::Arc;

fn config(max_requests: u32) -> ClusterConfig {
    serde_json::from_value(serde_json::json!({
        "name": "c",
        "hosts": [{ "address": "127.0.0.1:1" }],
        "circuit_breakers": [{ "max_requests": max_requests }]
    }))
    .expect("a cluster config")
}

#[test]
fn a_rebuilt_cluster_keeps_its_breaker_with_the_new_limits() {
    let before = ClusterManager::build(&[config(5)]).expect("builds");
    let old = Arc::clone(before.get("c").expect("c").breaker());
    let held = old.try_request().expect("room");
    let after = before.rebuild(&[config(1)]).expect("rebuilds");
    let cluster = after.get("c").expect("c");
    let new = cluster.breaker();
    assert!(Arc::ptr_eq(&old, new), "the same breaker");
    assert_eq!(new.max(Resource::Requests), 1, "with the new limit");
    assert!(
        new.try_request().is_none(),
        "the request from before the reload still counts"
    );
    drop(held);
    assert!(new.try_request().is_some());
    // A fresh build has a fresh breaker.
    let fresh = ClusterManager::build(&[config(1)]).expect("builds");
    assert!(!Arc::ptr_eq(&old, fresh.get("c").unwrap().breaker()));
}
