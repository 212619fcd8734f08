//! Bad configs: every error is reported, each with its JSON path and a hint.

use meshgate_router::{RouteTable, RouterConfig, RouterConfigErrors};
use serde_json::{Value, json};

fn build(v: Value) -> Result<RouteTable, RouterConfigErrors> {
    let cfg: RouterConfig = serde_json::from_value(v).expect("parses");
    RouteTable::build(&cfg)
}

/// A `*` host with these routes.
fn routes(routes: Value) -> Value {
    json!({"virtual_hosts": [{"name": "vh", "domains": ["*"], "routers": routes}]})
}

fn fwd(extra: Value) -> Value {
    let mut r = json!({"cluster_name": "c"});
    r.as_object_mut()
        .expect("an object")
        .extend(extra.as_object().expect("an object").clone());
    json!([{"route": r}])
}

const R0: &str = "virtual_hosts[0].routers[0]";

#[test]
fn each_bad_config_names_its_path_and_hint() {
    let cases: Vec<(&str, Value, String, &str)> = vec![
        (
            "bad header regex",
            routes(
                json!([{"match": {"headers": [{"name": "service", "value": "(", "regex": true}]},
                           "route": {"cluster_name": "c"}}]),
            ),
            format!("{R0}.match.headers[0].value"),
            "RE2",
        ),
        (
            "empty header name",
            routes(
                json!([{"match": {"headers": [{"value": "x"}]}, "route": {"cluster_name": "c"}}]),
            ),
            format!("{R0}.match.headers[0].name"),
            "header name",
        ),
        (
            "bad path regex",
            routes(json!([{"match": {"regex": "[a-"}, "route": {"cluster_name": "c"}}])),
            format!("{R0}.match.regex"),
            "RE2",
        ),
        (
            "bad variable model",
            routes(
                json!([{"match": {"variables": [{"name": "v", "value": "1", "model": "xor"}]},
                           "route": {"cluster_name": "c"}}]),
            ),
            format!("{R0}.match.variables[0].model"),
            "\"or\"",
        ),
        (
            "zero total weight",
            routes(json!([{"route": {"weighted_clusters": [
                {"cluster": {"name": "a", "weight": 0}}, {"cluster": {"name": "b"}}]}}])),
            format!("{R0}.route.weighted_clusters"),
            "weight above zero",
        ),
        (
            "duplicate weighted cluster",
            routes(json!([{"route": {"weighted_clusters": [
                {"cluster": {"name": "a", "weight": 1}}, {"cluster": {"name": "a", "weight": 2}}]}}])),
            format!("{R0}.route.weighted_clusters[1].cluster.name"),
            "add the weights",
        ),
        (
            "nameless weighted cluster",
            routes(json!([{"route": {"weighted_clusters": [{"cluster": {"weight": 1}}]}}])),
            format!("{R0}.route.weighted_clusters[0].cluster.name"),
            "cluster name",
        ),
        (
            "no action",
            routes(json!([{"match": {"prefix": "/"}}])),
            R0.to_owned(),
            "cluster_name",
        ),
        (
            "bad redirect code",
            routes(json!([{"redirect": {"response_code": 200, "host_redirect": "x"}}])),
            format!("{R0}.redirect.response_code"),
            "301",
        ),
        (
            "bad redirect scheme",
            routes(json!([{"redirect": {"scheme_redirect": "ht tp"}}])),
            format!("{R0}.redirect.scheme_redirect"),
            "letter",
        ),
        (
            "conflicting redirect paths",
            routes(json!([{"redirect": {"path_redirect": "/a", "prefix_rewrite": "/b"}}])),
            format!("{R0}.redirect"),
            "only one",
        ),
        (
            "bad direct response status",
            routes(json!([{"direct_response": {"status": 1000}}])),
            format!("{R0}.direct_response.status"),
            "100 to 599",
        ),
        (
            "unknown retry condition",
            routes(fwd(json!({"retry_policy": {"retry_on": "5xx,whenever"}}))),
            format!("{R0}.route.retry_policy.retry_on"),
            "connect-failure",
        ),
        (
            "bad rewrite regex",
            routes(fwd(
                json!({"regex_rewrite": {"pattern": {"regex": "*"}, "substitution": "/"}}),
            )),
            format!("{R0}.route.regex_rewrite.pattern.regex"),
            "RE2",
        ),
        (
            "header to add without header",
            routes(fwd(json!({"request_headers_to_add": [{"append": true}]}))),
            format!("{R0}.route.request_headers_to_add[0].header"),
            "\"key\"",
        ),
        (
            "metadata that is not an object",
            routes(fwd(
                json!({"metadata_match": {"filter_metadata": {"mosn.lb": "gray"}}}),
            )),
            format!("{R0}.route.metadata_match.filter_metadata.mosn.lb"),
            "\"version\"",
        ),
        (
            "empty hash header",
            routes(fwd(json!({"hash_policy": [{"header": {"key": ""}}]}))),
            format!("{R0}.route.hash_policy[0].header.key"),
            "header name",
        ),
        (
            "mirror without cluster",
            routes(
                json!([{"route": {"cluster_name": "c"}, "request_mirror_policies": {"percent": 10}}]),
            ),
            format!("{R0}.request_mirror_policies.cluster"),
            "mirror",
        ),
        (
            "no virtual hosts",
            json!({"router_config_name": "r"}),
            "virtual_hosts".to_owned(),
            "\"domains\": [\"*\"]",
        ),
        (
            "static and dynamic hosts",
            json!({"router_configs": "/etc/mosn/routers", "virtual_hosts": [
                {"domains": ["*"], "routers": [{"route": {"cluster_name": "c"}}]}]}),
            String::new(),
            "only one",
        ),
        (
            "router-level empty header to remove",
            json!({"response_headers_to_remove": [""], "virtual_hosts": [
                {"domains": ["*"], "routers": [{"route": {"cluster_name": "c"}}]}]}),
            "response_headers_to_remove[0]".to_owned(),
            "header name",
        ),
    ];
    for (what, cfg, path, hint) in cases {
        let errs = build(cfg).expect_err(what);
        assert_eq!(errs.errors.len(), 1, "{what}: {errs}");
        let e = &errs.errors[0];
        assert_eq!(e.path(), path, "{what}: {e}");
        assert!(
            e.hint().contains(hint),
            "{what}: hint {:?} lacks {hint:?}",
            e.hint()
        );
        assert!(
            errs.to_string().contains(&format!("hint: {}", e.hint())),
            "{what}"
        );
    }
}

#[test]
fn domain_errors() {
    let host = |name: &str, domains: Value| json!({"name": name, "domains": domains, "routers": [{"route": {"cluster_name": "c"}}]});
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!([host("a", json!(["*"])), host("b", json!(["*"]))]),
            "virtual_hosts[1].domains[0]",
            "already used at virtual_hosts[0].domains[0]",
        ),
        (
            json!([
                host("a", json!(["www.foo.com"])),
                host("b", json!(["WWW.FOO.COM"]))
            ]),
            "virtual_hosts[1].domains[0]",
            "already used",
        ),
        (
            json!([host("a", json!(["*.foo.com", "*.foo.com"]))]),
            "virtual_hosts[0].domains[1]",
            "already used",
        ),
        (
            json!([host("a", json!(["*", "*:*"]))]),
            "virtual_hosts[0].domains[1]",
            "already used",
        ),
        (
            json!([host("a", json!(["foo.*.com"]))]),
            "virtual_hosts[0].domains[0]",
            "may only begin",
        ),
        (
            json!([host("a", json!([""]))]),
            "virtual_hosts[0].domains[0]",
            "host is empty",
        ),
        (
            json!([host("a", json!(["a.com:http"]))]),
            "virtual_hosts[0].domains[0]",
            "port",
        ),
    ];
    for (hosts, path, message) in cases {
        let errs = build(json!({"virtual_hosts": hosts})).expect_err(path);
        let e = &errs.errors[0];
        assert_eq!(e.path(), path, "{e}");
        assert!(e.to_string().contains(message), "{e}");
        assert!(
            e.hint().contains("domain") || e.hint().contains("*.foo.com"),
            "{}",
            e.hint()
        );
    }
    // Same host on different ports, and the same wildcard on different
    // ports, are different domains.
    let ok = json!([
        host(
            "a",
            json!([
                "www.foo.com",
                "www.foo.com:8080",
                "*.foo.com",
                "*.foo.com:*"
            ])
        ),
        host("b", json!(["www.foo.com:*", "*"]))
    ]);
    assert!(build(json!({"virtual_hosts": ok})).is_ok());
}

#[test]
fn every_error_is_collected_in_document_order() {
    let cfg = json!({"virtual_hosts": [
        {"domains": ["*"], "routers": [
            {"match": {"regex": "("}, "route": {"cluster_name": "c"}},
            {"match": {"prefix": "/"}},
            {"route": {"weighted_clusters": [{"cluster": {"name": "x", "weight": 0}}],
                       "retry_policy": {"retry_on": "never"}}}
        ]},
        {"domains": ["*"], "routers": [{"redirect": {"response_code": 418}}]}
    ]});
    let errs = build(cfg).unwrap_err();
    let paths: Vec<_> = errs.errors.iter().map(|e| e.path()).collect();
    assert_eq!(
        paths,
        [
            "virtual_hosts[0].routers[0].match.regex",
            "virtual_hosts[0].routers[1]",
            "virtual_hosts[0].routers[2].route.weighted_clusters",
            "virtual_hosts[0].routers[2].route.retry_policy.retry_on",
            "virtual_hosts[1].domains[0]",
            "virtual_hosts[1].routers[0].redirect.response_code",
        ]
    );
    assert!(
        errs.to_string()
            .starts_with("6 errors in the router config")
    );
}

#[test]
fn warnings_keep_the_build_going() {
    let cfg = json!({"virtual_hosts": [
        {"name": "empty", "domains": []},
        {"domains": ["*"], "routers": [{
            "match": {"prefix": "/a", "path": "/b"},
            "route": {"cluster_name": "c",
                      "metadata_match": {"filter_metadata": {"mosn.lb": {"version": 2}}},
                      "request_headers_to_add": [{"header": {"key": "x", "value": "50%"}}]},
            "direct_response": {"status": 200}
        }]}
    ]});
    let t = build(cfg).unwrap();
    let paths: Vec<_> = t.warnings().iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "virtual_hosts[0].domains",
            "virtual_hosts[1].routers[0].match.path",
            "virtual_hosts[1].routers[0].route",
            "virtual_hosts[1].routers[0].route.request_headers_to_add[0].header.value",
        ]
    );
    for w in t.warnings() {
        assert!(!w.to_string().is_empty());
    }
}
