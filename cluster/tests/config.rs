//! MOSN-shaped `cluster_manager` JSON (the shape of MOSN's `configs/*.json`)
//! parsed, built and read back.

mod common;

use common::{configs, labels, manager};
use meshgate_cluster::{
    CircuitBreakerLimits, ClusterManager, ClusterSettings, ClusterType, FallbackPolicy, HealthFlag,
    HostStats, LbType,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn mosn_cluster_manager() -> serde_json::Value {
    serde_json::json!({
      "clusters": [
        {
          "name": "test_cpp",
          "type": "SIMPLE",
          "lb_type": "LB_ROUNDROBIN",
          "health_check": {
            "protocol": "SofaRpc",
            "timeout": "90s",
            "healthy_threshold": 2,
            "unhealthy_threshold": 2,
            "interval": "15s",
            "interval_jitter": 0,
            "check_path": ""
          },
          "hosts": [
            {
              "address": "11.166.22.163:12200",
              "hostname": "downstream_machine1",
              "weight": 1,
              "metadata": {
                "filter_metadata": {
                  "mosn.lb": {"stage": "pre-release", "version": "1.1", "label": "gray"}
                }
              }
            }
          ],
          "lb_subset_config": {
            "fall_back_policy": 2,
            "default_subset": {"stage": "pre-release", "version": "1.1", "label": "gray"},
            "subset_selectors": [["stage", "type"], ["stage", "label", "version"], ["version"]]
          }
        },
        {
          "name": "serverCluster",
          "type": "SIMPLE",
          "lb_type": "LB_RANDOM",
          "max_request_per_conn": 1024,
          "conn_buffer_limit_bytes": 32768,
          "hosts": [{"address": "127.0.0.1:8080"}]
        },
        {
          "name": "weighted",
          "type": "STATIC",
          "lb_type": "LB_LEAST_REQUEST",
          "connect_timeout": "3s",
          "idle_timeout": "90s",
          "lbconfig": {"choice_count": 3, "active_request_bias": 2.0},
          "circuit_breakers": [
            {"max_connections": 100, "max_pending_requests": 0, "max_requests": 2000, "max_retries": 3}
          ],
          "hosts": [
            {"address": "10.0.0.1:20880", "weight": 20},
            {"address": "[::1]:20880", "weight": 0},
            {"address": "localhost:20880"}
          ]
        }
      ]
    })
}

#[test]
fn mosn_sample_clusters_build_with_their_fields() {
    let m = manager(mosn_cluster_manager());
    // MOSN's sample selects on "type", which its only host does not carry.
    let warned: Vec<_> = m.warnings().iter().map(|w| w.path.as_str()).collect();
    // And its health check waits 90 s for a check it repeats every 15 s.
    assert_eq!(
        warned,
        [
            "clusters[0].lb_subset_config.subset_selectors[0]",
            "clusters[0].health_check.timeout"
        ]
    );
    assert_eq!(m.len(), 3);
    let names: Vec<_> = m.clusters().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, ["test_cpp", "serverCluster", "weighted"]);

    let c = m.get("test_cpp").unwrap();
    let s = c.settings();
    assert_eq!(s.cluster_type, ClusterType::Simple);
    assert_eq!(s.lb_type, LbType::RoundRobin);
    let hc = s.health_check.as_ref().expect("health check kept");
    assert_eq!(hc.protocol, "SofaRpc");
    assert_eq!(
        hc.kind,
        meshgate_cluster::health::CheckKind::Heartbeat {
            protocol: "bolt".into()
        }
    );
    assert_eq!(hc.timeout, Duration::from_secs(90));
    assert_eq!(hc.interval, Duration::from_secs(15));
    assert_eq!((hc.healthy_threshold, hc.unhealthy_threshold), (2, 2));
    let host = &c.hosts().hosts()[0];
    assert_eq!(host.address_text(), "11.166.22.163:12200");
    assert_eq!(host.hostname(), "downstream_machine1");
    assert_eq!(host.weight(), 1);
    assert_eq!(
        host.metadata(),
        &labels(&[
            ("label", "gray"),
            ("stage", "pre-release"),
            ("version", "1.1")
        ])
    );
    let subset = s.subset.as_ref().expect("subsets on");
    assert_eq!(subset.fallback_policy, FallbackPolicy::DefaultSubset);
    assert_eq!(
        subset.selectors,
        [
            vec!["stage".to_string(), "type".into()],
            vec!["label".into(), "stage".into(), "version".into()],
            vec!["version".into()],
        ]
    );
    // The host carries stage, label and version but no type: two subsets.
    assert_eq!(c.subsets().count(), 2);

    let s = m.get("serverCluster").unwrap().settings().clone();
    assert_eq!(s.lb_type, LbType::Random);
    assert_eq!(s.max_request_per_conn, 1024);
    assert_eq!(s.conn_buffer_limit_bytes, 32768);
    assert_eq!(s.connect_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, None);
    assert_eq!(s.health_check, None);
    assert_eq!(s.subset, None);

    let c = m.get("weighted").unwrap();
    let s = c.settings();
    assert_eq!(s.cluster_type, ClusterType::Static);
    assert_eq!(s.lb_type, LbType::LeastRequest);
    assert_eq!(s.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.lb_options.choice_count, 3);
    assert_eq!(s.lb_options.active_request_bias, 2.0);
    assert_eq!(
        s.circuit_breakers,
        CircuitBreakerLimits {
            max_connections: Some(100),
            max_pending_requests: None,
            max_requests: Some(2000),
            max_retries: Some(3),
            retry_budget: None,
        }
    );
    let hosts = c.hosts().hosts();
    assert_eq!(hosts[0].weight(), 20);
    assert_eq!(hosts[1].weight(), 1, "weight 0 means MOSN's minimum");
    assert!(hosts[1].address().is_ipv6());
    assert_eq!(hosts[2].address_text(), "localhost:20880");
    assert!(hosts[2].address().ip().is_loopback());
}

#[test]
fn an_empty_cluster_gets_mosn_defaults() {
    let m = manager(serde_json::json!({"clusters": [
        {"name": "bare", "hosts": [{"address": "127.0.0.1:1"}]}
    ]}));
    let c = m.get("bare").unwrap();
    assert_eq!(c.settings(), &ClusterSettings::default());
    assert_eq!(c.settings().max_request_per_conn, 1024);
    assert_eq!(c.settings().conn_buffer_limit_bytes, 16 * 1024);
    assert!(m.get("nope").is_none());
    assert!(m.cluster("bare").is_some());
}

#[test]
fn rebuild_keeps_counters_and_health_of_surviving_hosts() {
    let doc = |hosts: serde_json::Value| {
        configs(serde_json::json!({"clusters": [{"name": "c", "hosts": hosts}]}))
    };
    let old = ClusterManager::build(&doc(serde_json::json!([
        {"address": "127.0.0.1:1"}, {"address": "127.0.0.1:2"}
    ])))
    .unwrap();
    let kept = old.get("c").unwrap().hosts().hosts()[0].clone();
    kept.stats().active_requests.store(7, Ordering::Relaxed);
    kept.set_health_flag(HealthFlag::FailedActiveCheck);

    let new = old
        .rebuild(&doc(serde_json::json!([
            {"address": "127.0.0.1:1"}, {"address": "127.0.0.1:3"}
        ])))
        .unwrap();
    let hosts = new.get("c").unwrap().hosts().hosts().to_vec();
    assert_eq!(HostStats::get(&hosts[0].stats().active_requests), 7);
    assert!(!hosts[0].is_healthy());
    // An in-flight request finishing on the old host is seen by the new one.
    kept.stats().active_requests.fetch_sub(1, Ordering::Relaxed);
    assert_eq!(HostStats::get(&hosts[0].stats().active_requests), 6);
    assert_eq!(HostStats::get(&hosts[1].stats().active_requests), 0);
    assert!(hosts[1].is_healthy());
}
