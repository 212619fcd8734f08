//! Route actions: weighted choice, metadata merging, hash keys, local
//! answers.

use meshgate_router::{
    ClusterSpec, MapRequest, Redirect, RouteAction, RouteTable, RouterConfig, stable_hash,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn one_route(route: Value) -> RouteTable {
    let cfg: RouterConfig = serde_json::from_value(json!({
        "virtual_hosts": [{"domains": ["*"], "routers": [route]}]
    }))
    .expect("a router config");
    RouteTable::build(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

/// splitmix64: a fixed, seedable source of "random" numbers for tests.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn weighted_clusters_split_in_proportion() {
    let t = one_route(json!({"route": {"weighted_clusters": [
        {"cluster": {"name": "a", "weight": 70}},
        {"cluster": {"name": "b", "weight": 20}},
        {"cluster": {"name": "c", "weight": 10}},
        {"cluster": {"name": "never", "weight": 0}}
    ]}}));
    let req = MapRequest::new();
    let fwd = t.route(&req).unwrap().forward().unwrap();
    match fwd.clusters() {
        ClusterSpec::Weighted { total_weight, .. } => assert_eq!(*total_weight, 100),
        other => panic!("{other:?}"),
    }
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut seed = 42;
    const N: u32 = 10_000;
    for _ in 0..N {
        let (c, _) = fwd.pick_cluster(&req, splitmix(&mut seed)).unwrap();
        *counts.entry(c).or_default() += 1;
    }
    let share = |c| f64::from(counts.get(c).copied().unwrap_or(0)) / f64::from(N);
    assert!((share("a") - 0.70).abs() < 0.02, "{counts:?}");
    assert!((share("b") - 0.20).abs() < 0.02, "{counts:?}");
    assert!((share("c") - 0.10).abs() < 0.02, "{counts:?}");
    assert_eq!(counts.get("never"), None);

    // Every `random` maps exactly: weights are contiguous ranges.
    let exact: Vec<_> = (0..100u64)
        .map(|r| fwd.pick_cluster(&req, r).unwrap().0)
        .collect();
    assert_eq!(exact.iter().filter(|c| **c == "a").count(), 70);
    assert_eq!(exact[69], "a");
    assert_eq!(exact[70], "b");
    assert_eq!(exact[99], "c");
}

#[test]
fn weighted_metadata_merges_over_the_route() {
    let t = one_route(json!({"route": {
        "metadata_match": {"filter_metadata": {"mosn.lb": {"version": "1.0", "zone": "gz"}}},
        "weighted_clusters": [
            {"cluster": {"name": "canary", "weight": 1,
                         "metadata_match": {"filter_metadata": {"mosn.lb": {"version": "2.0", "stage": "canary"}}}}},
            {"cluster": {"name": "stable", "weight": 1}}
        ]
    }}));
    let req = MapRequest::new();
    let fwd = t.route(&req).unwrap().forward().unwrap();
    let (name, md) = fwd.pick_cluster(&req, 0).unwrap();
    assert_eq!(name, "canary");
    let want: BTreeMap<String, String> = [("stage", "canary"), ("version", "2.0"), ("zone", "gz")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(md.as_map(), &want);
    let (name, md) = fwd.pick_cluster(&req, 1).unwrap();
    assert_eq!(name, "stable");
    assert_eq!(md, fwd.metadata_match());
}

#[test]
fn cluster_variable_takes_precedence_and_falls_back() {
    let t =
        one_route(json!({"route": {"cluster_variable": "x-target", "cluster_name": "default"}}));
    let req = MapRequest::new().variable("x-target", "picked");
    let fwd = t.route(&req).unwrap().forward().unwrap();
    assert_eq!(fwd.pick_cluster(&req, 0).unwrap().0, "picked");
    assert_eq!(
        fwd.pick_cluster(&MapRequest::new(), 0).unwrap().0,
        "default"
    );
    let t = one_route(json!({"route": {"cluster_header": "x-cluster"}}));
    let fwd = t.route(&req).unwrap().forward().unwrap();
    assert_eq!(
        fwd.pick_cluster(&MapRequest::new(), 0),
        None,
        "no header, no static name"
    );
    assert!(t.static_cluster_names().is_empty());
}

#[test]
fn hash_keys_are_stable_and_distinct() {
    let t = one_route(
        json!({"route": {"cluster_name": "c", "hash_policy": [{"header": {"key": "x-user"}}]}}),
    );
    let fwd = t.route(&MapRequest::new()).unwrap().forward().unwrap();
    let key = |user: &str| {
        fwd.hash_key(&MapRequest::new().header("x-user", user), None)
            .unwrap()
    };
    // Stable across runs and builds: pinned to the documented function.
    assert_eq!(key("alice"), stable_hash(&[b"x-user:alice"]));
    assert_eq!(key("alice"), 0x4771_1334_f58b_de98);
    assert_eq!(key("alice"), key("alice"));
    let keys: std::collections::HashSet<u64> =
        (0..1000).map(|i| key(&format!("user-{i}"))).collect();
    assert_eq!(keys.len(), 1000, "different users, different keys");
    // No hash policy: MOSN's default, the source IP.
    let t = one_route(json!({"route": {"cluster_name": "c"}}));
    let fwd = t.route(&MapRequest::new()).unwrap().forward().unwrap();
    let a = fwd.hash_key(&MapRequest::new(), Some("10.0.0.1".parse().unwrap()));
    let b = fwd.hash_key(&MapRequest::new(), Some("10.0.0.2".parse().unwrap()));
    assert!(a.is_some() && b.is_some() && a != b);
}

#[test]
fn direct_response_and_redirect() {
    let t = one_route(json!({"direct_response": {"status": 429, "body": "slow down"}}));
    let r = t.route(&MapRequest::new()).unwrap();
    match r.action() {
        RouteAction::DirectResponse(d) => {
            assert_eq!((d.status, d.body.as_deref()), (429, Some("slow down")))
        }
        other => panic!("{other:?}"),
    }
    assert!(r.forward().is_none());
    assert!(t.static_cluster_names().is_empty());

    let t = one_route(json!({"match": {"prefix": "/docs/"}, "redirect": {
        "response_code": 307, "prefix_rewrite": "/manual/", "host_redirect": "docs.foo.com"}}));
    let req = MapRequest::new().path("/docs/intro");
    let r = t.route(&req).unwrap();
    let RouteAction::Redirect(Redirect { response_code, .. }) = r.action() else {
        panic!("{:?}", r.action());
    };
    assert_eq!(*response_code, 307);
    assert_eq!(
        r.redirect_location("https", "foo.com", "/docs/intro", Some("lang=en"))
            .as_deref(),
        Some("https://docs.foo.com/manual/intro?lang=en")
    );
}
