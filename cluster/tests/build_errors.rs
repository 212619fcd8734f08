//! Bad cluster configs: every problem is reported, each at its JSON path
//! with a hint; what MOSN tolerates is a warning and the build goes on.

mod common;

use common::configs;
use meshgate_cluster::{ClusterManager, ConfigIssue, HostStats, LbContext};
use serde_json::json;

fn build(
    clusters: serde_json::Value,
) -> Result<ClusterManager, meshgate_cluster::ClusterConfigErrors> {
    ClusterManager::build(&configs(json!({ "clusters": clusters })))
}

fn host(address: &str) -> serde_json::Value {
    json!({ "address": address })
}

/// (case, clusters, [(path, part of the message, part of the hint)])
type Case = (
    &'static str,
    serde_json::Value,
    Vec<(&'static str, &'static str, &'static str)>,
);

fn error_cases() -> Vec<Case> {
    let ok = || json!([host("127.0.0.1:1")]);
    vec![
        (
            "missing name",
            json!([{ "hosts": ok() }]),
            vec![("clusters[0].name", "needs a name", "\"name\"")],
        ),
        (
            "duplicate name",
            json!([{ "name": "a", "hosts": ok() }, { "name": "b", "hosts": ok() },
                   { "name": "a", "hosts": [host("bad")] }]),
            vec![
                ("clusters[2].name", "first defined at clusters[0]", "unique"),
                ("clusters[2].hosts[0].address", "no port", "ip:port"),
            ],
        ),
        (
            "unknown lb_type",
            json!([{ "name": "a", "lb_type": "LB_LEASTREQUEST", "hosts": ok() }]),
            vec![(
                "clusters[0].lb_type",
                "unknown lb_type \"LB_LEASTREQUEST\"",
                "LB_ROUNDROBIN, LB_WEIGHTED_ROUNDROBIN, LB_RANDOM, LB_LEAST_REQUEST, \
                 LB_LEAST_CONNECTION, LB_MAGLEV, LB_REQUEST_ROUNDROBIN",
            )],
        ),
        (
            "original dst balancer",
            json!([{ "name": "a", "lb_type": "LB_ORIGINAL_DST", "hosts": ok() }]),
            vec![("clusters[0].lb_type", "not supported yet", "one of")],
        ),
        (
            "discovery types that need a resolver",
            json!([
                { "name": "a", "type": "EDS", "hosts": ok() },
                { "name": "b", "type": "STRICT_DNS", "hosts": ok() },
                { "name": "c", "type": "ORIGINAL_DST" }
            ]),
            vec![
                ("clusters[0].type", "\"EDS\" is not supported", "SIMPLE"),
                (
                    "clusters[1].type",
                    "\"STRICT_DNS\" is not supported",
                    "SIMPLE",
                ),
                (
                    "clusters[2].type",
                    "\"ORIGINAL_DST\" is not supported",
                    "SIMPLE",
                ),
            ],
        ),
        (
            "addresses",
            json!([{ "name": "a", "hosts": [
                host("127.0.0.1"), host(""), host("::1:8080"), host("127.0.0.1:0"),
                host("127.0.0.1:99999"), host("10.0.0.1:80")
            ]}]),
            vec![
                ("clusters[0].hosts[0].address", "no port", "127.0.0.1:12200"),
                (
                    "clusters[0].hosts[1].address",
                    "needs an address",
                    "ip:port",
                ),
                (
                    "clusters[0].hosts[2].address",
                    "needs brackets",
                    "[::1]:8080",
                ),
                ("clusters[0].hosts[3].address", "port 0", "ip:port"),
                ("clusters[0].hosts[4].address", "not a port", "ip:port"),
            ],
        ),
        (
            "upstream tls",
            json!([{ "name": "a", "hosts": ok(), "tls_context": { "status": true } },
                   { "name": "b", "hosts": ok(), "cluster_manager_tls": true }]),
            vec![
                (
                    "clusters[0].tls_context",
                    "TLS is not supported",
                    "in clear",
                ),
                (
                    "clusters[1].cluster_manager_tls",
                    "TLS is not supported",
                    "in clear",
                ),
            ],
        ),
        (
            "problems in several clusters are all reported",
            json!([
                { "name": "good", "hosts": ok() },
                { "name": "x", "lb_type": "RANDOM", "hosts": [host("1.2.3.4:5"), host("nope")] },
                { "lb_type": "LB_MAGLEV", "hosts": ok() }
            ]),
            vec![
                ("clusters[1].lb_type", "unknown lb_type", "LB_RANDOM"),
                ("clusters[1].hosts[1].address", "no port", "ip:port"),
                ("clusters[2].name", "needs a name", "name"),
            ],
        ),
    ]
}

#[test]
fn every_error_is_reported_with_its_path_and_hint() {
    for (case, clusters, expected) in error_cases() {
        let err = build(clusters).expect_err(case);
        let got: Vec<&ConfigIssue> = err.errors.iter().collect();
        assert_eq!(got.len(), expected.len(), "{case}: {err}");
        for (issue, (path, message, hint)) in got.iter().zip(&expected) {
            assert_eq!(issue.path, *path, "{case}: {issue}");
            assert!(issue.message.contains(message), "{case}: {issue}");
            let h = issue.hint.as_deref().unwrap_or_default();
            assert!(h.contains(hint), "{case}: hint of {issue}");
        }
        // The rendered report names every path.
        let text = err.to_string();
        for (path, _, _) in &expected {
            assert!(text.contains(path), "{case}: {text}");
        }
    }
}

#[test]
fn unresolvable_host_names_are_errors() {
    let err = build(json!([{ "name": "a", "hosts": [host("no-such-host.invalid:80")] }]))
        .expect_err("no such host");
    assert_eq!(err.errors[0].path, "clusters[0].hosts[0].address");
    assert!(err.errors[0].message.contains("cannot resolve"), "{err}");
}

/// (case, clusters, [warning paths]); each must still build.
fn warning_cases() -> Vec<(&'static str, serde_json::Value, Vec<&'static str>)> {
    vec![
        (
            "weight above 128",
            json!([{ "name": "a", "hosts": [{ "address": "127.0.0.1:1", "weight": 500 }] }]),
            vec!["clusters[0].hosts[0].weight"],
        ),
        (
            "non-string metadata",
            json!([{ "name": "a", "hosts": [{ "address": "127.0.0.1:1", "metadata":
                { "filter_metadata": { "mosn.lb": { "zone": "a", "n": 1, "ok": true } } } }] }]),
            vec![
                "clusters[0].hosts[0].metadata.filter_metadata[\"mosn.lb\"].n",
                "clusters[0].hosts[0].metadata.filter_metadata[\"mosn.lb\"].ok",
            ],
        ),
        (
            "unknown cluster type",
            json!([{ "name": "a", "type": "SIMPEL", "hosts": [host("127.0.0.1:1")] }]),
            vec!["clusters[0].type"],
        ),
        (
            "dynamic cluster",
            json!([{ "name": "a", "type": "DYNAMIC", "hosts": [host("127.0.0.1:1")] }]),
            vec!["clusters[0].type"],
        ),
        (
            "no hosts",
            json!([{ "name": "a" }]),
            vec!["clusters[0].hosts"],
        ),
        (
            "duplicate host",
            json!([{ "name": "a", "hosts": [host("127.0.0.1:1"), host("127.0.0.1:1")] }]),
            vec!["clusters[0].hosts[1].address"],
        ),
        (
            "more than one threshold set",
            json!([{ "name": "a", "hosts": [host("127.0.0.1:1")],
                     "circuit_breakers": [{ "max_requests": 1 }, { "max_requests": 2 }] }]),
            vec!["clusters[0].circuit_breakers[1]"],
        ),
        (
            "subset config",
            json!([{ "name": "a", "hosts": [host("127.0.0.1:1")], "lb_subset_config": {
                "fall_back_policy": 7,
                "default_subset": { "v": "1" },
                "subset_selectors": [["v"], []]
            } }]),
            vec![
                "clusters[0].lb_subset_config.fall_back_policy",
                "clusters[0].lb_subset_config.subset_selectors[0]",
                "clusters[0].lb_subset_config.subset_selectors[1]",
                "clusters[0].lb_subset_config.default_subset",
            ],
        ),
        (
            "subset config without selectors",
            json!([{ "name": "a", "hosts": [host("127.0.0.1:1")],
                     "lb_subset_config": { "fall_back_policy": 1 } }]),
            vec!["clusters[0].lb_subset_config"],
        ),
        (
            "a negative bias",
            json!([{ "name": "a", "hosts": [host("127.0.0.1:1")],
                     "lbconfig": { "active_request_bias": -1.0 } }]),
            vec!["clusters[0].lbconfig.active_request_bias"],
        ),
    ]
}

#[test]
fn tolerated_problems_are_warnings_with_paths() {
    for (case, clusters, expected) in warning_cases() {
        let m = build(clusters).unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut got: Vec<&str> = m.warnings().iter().map(|w| w.path.as_str()).collect();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{case}: {:?}", m.warnings());
    }
}

#[test]
fn warnings_travel_with_errors() {
    let err = build(json!([{ "name": "a", "lb_type": "X", "hosts": [
        { "address": "127.0.0.1:1", "weight": 1000 }
    ] }]))
    .expect_err("bad lb_type");
    assert_eq!(err.warnings[0].path, "clusters[0].hosts[0].weight");
    assert!(
        err.to_string()
            .contains("warning: clusters[0].hosts[0].weight")
    );
}

#[test]
fn tolerated_values_behave_as_mosn_reads_them() {
    let m = build(
        json!([{ "name": "a", "lb_type": "LB_LEAST_REQUEST", "hosts": [
        { "address": "127.0.0.1:1", "weight": 500, "metadata":
          { "filter_metadata": { "mosn.lb": { "zone": "a", "n": 1 } } } }
    ], "lb_subset_config": { "fall_back_policy": 9, "subset_selectors": [["zone"]] },
       "lbconfig": { "choice_count": 0 }, "connect_timeout": "0s" }]),
    )
    .unwrap();
    let c = m.get("a").unwrap();
    let h = &c.hosts().hosts()[0];
    assert_eq!(h.weight(), 128);
    assert_eq!(h.metadata().len(), 1, "the number is dropped");
    assert_eq!(c.settings().lb_options.choice_count, 2);
    assert_eq!(c.settings().connect_timeout.as_secs(), 10);
    // Policy 9 reads as 0: unmatched requests get no host.
    assert!(c.choose_host(&LbContext::default()).is_none());
    assert_eq!(HostStats::get(&h.stats().active_requests), 0);
}
