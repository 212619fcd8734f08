//! Subset load balancing: exact key-set matches, each fallback policy, the
//! default subset, several keys, and health inside a subset.
//!
//! The hosts are those of MOSN's subset tests (`subset_loadbalancer_test.go`):
//!
//! | host | stage | version | type   | xlarge |
//! |------|-------|---------|--------|--------|
//! | e1   | prod  | 1.0     | std    | true   |
//! | e2   | prod  | 1.0     | std    |        |
//! | e3   | prod  | 1.1     | std    |        |
//! | e4   | prod  | 1.1     | std    |        |
//! | e5   | prod  | 1.0     | bigmem |        |
//! | e6   | prod  | 1.1     | bigmem |        |
//! | e7   | dev   | 1.2-pre | std    |        |

mod common;

use common::{index, labels, manager};
use meshgate_cluster::{Cluster, HealthFlag, LbContext};
use std::collections::BTreeSet;
use std::sync::Arc;

fn hosts_json() -> serde_json::Value {
    let rows = [
        ("prod", "1.0", "std", true),
        ("prod", "1.0", "std", false),
        ("prod", "1.1", "std", false),
        ("prod", "1.1", "std", false),
        ("prod", "1.0", "bigmem", false),
        ("prod", "1.1", "bigmem", false),
        ("dev", "1.2-pre", "std", false),
    ];
    let hosts: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, (stage, version, kind, xlarge))| {
            let mut md = serde_json::json!({"stage": stage, "version": version, "type": kind});
            if *xlarge {
                md["xlarge"] = "true".into();
            }
            serde_json::json!({
                "address": format!("10.0.0.1:{}", 9001 + i),
                "hostname": format!("e{}", i + 1),
                "metadata": {"filter_metadata": {"mosn.lb": md}}
            })
        })
        .collect();
    serde_json::Value::Array(hosts)
}

/// Cluster "c" over e1..e7 with MOSN's example selectors.
fn subset_cluster(policy: u8, default_subset: serde_json::Value) -> Arc<Cluster> {
    let m = manager(serde_json::json!({"clusters": [{
        "name": "c",
        "lb_type": "LB_ROUNDROBIN",
        "hosts": hosts_json(),
        "lb_subset_config": {
            "fall_back_policy": policy,
            "default_subset": default_subset,
            "subset_selectors": [["stage", "type"], ["stage", "version"], ["version"], ["xlarge", "version"]]
        }
    }]}));
    m.get("c").expect("cluster c")
}

/// Host names (e1..e7) chosen over many picks with `metadata`.
fn reached(c: &Cluster, metadata: Option<&[(&str, &str)]>) -> BTreeSet<String> {
    let md = metadata.map(labels);
    let cx = LbContext {
        metadata_match: md.as_ref(),
        ..LbContext::default()
    };
    (0..100)
        .filter_map(|_| c.choose_host(&cx))
        .map(|h| h.hostname().to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn subsets_are_built_per_selector_and_values() {
    let c = subset_cluster(0, serde_json::json!({}));
    let mut built: Vec<String> = c
        .subsets()
        .map(|(labels, hosts)| {
            let l: Vec<_> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let h: Vec<_> = hosts
                .hosts()
                .iter()
                .map(|h| h.hostname().to_owned())
                .collect();
            format!("{} -> {}", l.join(","), h.join(","))
        })
        .collect();
    built.sort();
    // MOSN's expected trie, flattened.
    assert_eq!(
        built,
        [
            "stage=dev,type=std -> e7",
            "stage=dev,version=1.2-pre -> e7",
            "stage=prod,type=bigmem -> e5,e6",
            "stage=prod,type=std -> e1,e2,e3,e4",
            "stage=prod,version=1.0 -> e1,e2,e5",
            "stage=prod,version=1.1 -> e3,e4,e6",
            "version=1.0 -> e1,e2,e5",
            "version=1.0,xlarge=true -> e1",
            "version=1.1 -> e3,e4,e6",
            "version=1.2-pre -> e7",
        ]
    );
}

#[test]
fn a_matching_request_reaches_its_subset_only() {
    let c = subset_cluster(1, serde_json::json!({}));
    assert_eq!(
        reached(&c, Some(&[("version", "1.1")])),
        names(&["e3", "e4", "e6"])
    );
    assert_eq!(
        reached(&c, Some(&[("stage", "prod"), ("type", "bigmem")])),
        names(&["e5", "e6"])
    );
    assert_eq!(
        reached(&c, Some(&[("xlarge", "true"), ("version", "1.0")])),
        names(&["e1"])
    );
}

#[test]
fn the_subset_balancer_rotates_within_the_subset() {
    let c = subset_cluster(0, serde_json::json!({}));
    let md = labels(&[("version", "1.1")]);
    let cx = LbContext {
        metadata_match: Some(&md),
        ..LbContext::default()
    };
    let order: Vec<usize> = (0..9)
        .map(|_| index(&c.choose_host(&cx).unwrap()))
        .collect();
    // e3, e4, e6 are hosts 2, 3, 5: each exactly three times, in turn.
    for w in order.windows(4) {
        assert_eq!(w[0], w[3], "{order:?}");
    }
    assert_eq!(order.iter().collect::<BTreeSet<_>>().len(), 3);
}

#[test]
fn no_fallback_gives_no_host() {
    let c = subset_cluster(0, serde_json::json!({}));
    assert!(reached(&c, Some(&[("version", "9.9")])).is_empty());
    assert!(reached(&c, None).is_empty());
    // The key set must be a selector's: stage alone is not one.
    assert!(reached(&c, Some(&[("stage", "prod")])).is_empty());
    // Nor is a selector's keys plus one more.
    assert!(reached(&c, Some(&[("version", "1.0"), ("type", "std")])).is_empty());
}

#[test]
fn any_endpoint_fallback_uses_the_whole_cluster() {
    let c = subset_cluster(1, serde_json::json!({}));
    let all = names(&["e1", "e2", "e3", "e4", "e5", "e6", "e7"]);
    assert_eq!(reached(&c, Some(&[("version", "9.9")])), all);
    assert_eq!(reached(&c, None), all);
}

#[test]
fn default_subset_fallback_uses_the_default_hosts() {
    let c = subset_cluster(2, serde_json::json!({"stage": "prod", "type": "std"}));
    let defaults = names(&["e1", "e2", "e3", "e4"]);
    assert_eq!(reached(&c, Some(&[("version", "9.9")])), defaults);
    assert_eq!(reached(&c, None), defaults);
    // A match still wins over the default.
    assert_eq!(reached(&c, Some(&[("version", "1.2-pre")])), names(&["e7"]));
}

#[test]
fn an_empty_default_subset_matches_every_host() {
    let c = subset_cluster(2, serde_json::json!({}));
    assert_eq!(reached(&c, None).len(), 7);
}

#[test]
fn a_default_subset_matching_no_host_behaves_as_no_fallback() {
    let m = common::configs(serde_json::json!({"clusters": [{
        "name": "c", "hosts": hosts_json(),
        "lb_subset_config": {"fall_back_policy": 2, "default_subset": {"stage": "gone"},
                             "subset_selectors": [["version"]]}
    }]}));
    let m = meshgate_cluster::ClusterManager::build(&m).unwrap();
    assert_eq!(
        m.warnings()[0].path,
        "clusters[0].lb_subset_config.default_subset"
    );
    assert!(reached(&m.get("c").unwrap(), None).is_empty());
}

#[test]
fn an_unhealthy_subset_stays_the_subset() {
    let c = subset_cluster(1, serde_json::json!({}));
    let e7 = c
        .hosts()
        .hosts()
        .iter()
        .find(|h| h.hostname() == "e7")
        .unwrap();
    e7.set_health_flag(HealthFlag::FailedActiveCheck);
    // Panic mode inside the subset rather than another version.
    assert_eq!(reached(&c, Some(&[("version", "1.2-pre")])), names(&["e7"]));
}

#[test]
fn retries_stay_in_the_subset_and_avoid_tried_hosts() {
    let c = subset_cluster(1, serde_json::json!({}));
    let md = labels(&[("stage", "prod"), ("type", "bigmem")]);
    let first = c
        .choose_host(&LbContext {
            metadata_match: Some(&md),
            ..LbContext::default()
        })
        .unwrap();
    let tried = [Arc::clone(&first)];
    let cx = LbContext {
        metadata_match: Some(&md),
        tried: &tried,
        ..LbContext::default()
    };
    for _ in 0..50 {
        let next = c.choose_host(&cx).unwrap();
        assert!(!Arc::ptr_eq(&next, &first));
        assert_eq!(next.metadata()["type"], "bigmem");
    }
}

#[test]
fn subsets_are_off_without_selectors() {
    let m = manager(serde_json::json!({"clusters": [{
        "name": "c", "hosts": hosts_json(),
        "lb_subset_config": {"fall_back_policy": 0}
    }]}));
    let c = m.get("c").unwrap();
    assert_eq!(c.subsets().count(), 0);
    // Route metadata is then ignored, as in MOSN.
    assert_eq!(reached(&c, Some(&[("version", "9.9")])).len(), 7);
}
