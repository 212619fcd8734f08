//! Every matcher kind, through a built table, and route order.

use meshgate_router::{MapRequest, RouteTable, RouterConfig};
use serde_json::{Value, json};

/// A single `*` host with these routes; each route forwards to a cluster
/// named after its index.
fn table(routes: Value) -> RouteTable {
    let mut routes = routes;
    for (i, r) in routes
        .as_array_mut()
        .expect("a route list")
        .iter_mut()
        .enumerate()
    {
        r["route"] = json!({"cluster_name": format!("r{i}")});
    }
    let cfg: RouterConfig = serde_json::from_value(json!({
        "virtual_hosts": [{"name": "vh", "domains": ["*"], "routers": routes}]
    }))
    .expect("a router config");
    RouteTable::build(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn hit(t: &RouteTable, req: &MapRequest) -> Option<String> {
    let fwd = t.route(req)?.forward()?;
    Some(fwd.pick_cluster(req, 0)?.0.to_owned())
}

fn svc(s: &str) -> MapRequest {
    MapRequest::new().header("service", s)
}

#[test]
fn header_exact_regex_any_and_missing() {
    let t = table(json!([
        {"match": {"headers": [{"name": "service", "value": "a.Exact:1.0"}]}},
        {"match": {"headers": [{"name": "service", "value": "^b\\.", "regex": true}]}},
        {"match": {"headers": [{"name": "service", "value": "c", "regex": true}, {"name": "version", "value": "2"}]}},
        {"match": {"headers": [{"name": "service", "value": ".*"}]}}
    ]));
    assert_eq!(hit(&t, &svc("a.Exact:1.0")).as_deref(), Some("r0"));
    assert_eq!(
        hit(&t, &svc("a.exact:1.0")).as_deref(),
        Some("r3"),
        "exact is case-sensitive"
    );
    assert_eq!(hit(&t, &svc("b.Svc")).as_deref(), Some("r1"));
    assert_eq!(
        hit(&t, &svc("xcx").header("version", "2")).as_deref(),
        Some("r2"),
        "unanchored"
    );
    assert_eq!(
        hit(&t, &svc("xcx")).as_deref(),
        Some("r3"),
        "missing version header"
    );
    assert_eq!(
        hit(&t, &svc("anything")).as_deref(),
        Some("r3"),
        "\".*\" = any service"
    );
    assert_eq!(hit(&t, &svc("")), None, "an empty service is no service");
    assert_eq!(
        hit(&t, &MapRequest::new()),
        None,
        "missing header never matches"
    );
}

#[test]
fn dot_star_beside_another_header_is_literal() {
    let t = table(json!([
        {"match": {"headers": [{"name": "service", "value": ".*"}, {"name": "group", "value": "g1"}]}}
    ]));
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.path.ends_with("headers[0].value"))
    );
    assert_eq!(hit(&t, &svc("x").header("group", "g1")), None);
    assert_eq!(
        hit(&t, &svc(".*").header("group", "g1")).as_deref(),
        Some("r0")
    );
}

#[test]
fn path_prefix_exact_regex_and_method() {
    let t = table(json!([
        {"match": {"path": "/exact"}},
        {"match": {"prefix": "/p/", "headers": [{"name": ":method", "value": "DELETE"}]}},
        {"match": {"prefix": "/p/", "headers": [{"name": "method", "value": "GET|HEAD", "regex": true}]}},
        {"match": {"regex": "/v[0-9]+/"}},
        {"match": {"prefix": "/"}}
    ]));
    let get = |p: &str| MapRequest::new().method("GET").path(p);
    assert_eq!(hit(&t, &get("/exact")).as_deref(), Some("r0"));
    assert_eq!(hit(&t, &get("/Exact")).as_deref(), Some("r0"));
    assert_eq!(hit(&t, &get("/exact/x")).as_deref(), Some("r4"));
    let del = MapRequest::new().method("DELETE").path("/p/1");
    assert_eq!(hit(&t, &del).as_deref(), Some("r1"));
    assert_eq!(hit(&t, &get("/p/1")).as_deref(), Some("r2"));
    let head = MapRequest::new().method("HEAD").path("/p/1");
    assert_eq!(hit(&t, &head).as_deref(), Some("r2"));
    let put = MapRequest::new().method("PUT").path("/p/1");
    assert_eq!(hit(&t, &put).as_deref(), Some("r4"));
    assert_eq!(hit(&t, &get("/api/v12/x")).as_deref(), Some("r3"));
    // An RPC request has no path: no path route matches it.
    assert_eq!(hit(&t, &svc("x")), None);
}

#[test]
fn variables_and_or() {
    let t = table(json!([
        {"match": {"variables": [
            {"name": "x-tenant", "value": "t1", "model": "or"},
            {"name": "x-zone", "regex": "^gz"}
        ]}},
        {"match": {"variables": [{"name": "x-tenant", "value": "t2"}], "headers": [{"name": "service", "value": ".*"}]}}
    ]));
    let var = |k: &str, v: &str| MapRequest::new().variable(k, v);
    assert_eq!(hit(&t, &var("x-tenant", "t1")).as_deref(), Some("r0"));
    assert_eq!(hit(&t, &var("x-zone", "gz-1")).as_deref(), Some("r0"));
    assert_eq!(hit(&t, &var("x-zone", "sh-1")), None);
    assert_eq!(
        hit(&t, &var("x-tenant", "t2")),
        None,
        "route 1 also needs a service"
    );
    assert_eq!(
        hit(&t, &var("x-tenant", "t2").header("service", "s")).as_deref(),
        Some("r1")
    );
    assert!(
        t.warnings()
            .iter()
            .any(|w| w.path.ends_with("routers[1].match.headers"))
    );
}

#[test]
fn first_matching_route_wins_in_config_order() {
    let t = table(json!([
        {"match": {"headers": [{"name": "service", "value": "s", "regex": true}]}},
        {"match": {"headers": [{"name": "service", "value": "svc"}]}},
        {"match": {}}
    ]));
    assert_eq!(
        hit(&t, &svc("svc")).as_deref(),
        Some("r0"),
        "the broader route comes first"
    );
    assert_eq!(hit(&t, &svc("other")).as_deref(), Some("r2"));
    assert_eq!(
        hit(&t, &MapRequest::new()).as_deref(),
        Some("r2"),
        "an empty match takes all"
    );
}

#[test]
fn dsl_only_routes_never_match() {
    let t = table(json!([
        {"match": {"dsl_expressions": [{"expression": "conditional(true)"}]}},
        {"match": {}}
    ]));
    assert_eq!(hit(&t, &MapRequest::new()).as_deref(), Some("r1"));
    let w = &t.warnings()[0];
    assert_eq!(w.path, "virtual_hosts[0].routers[0].match.dsl_expressions");
    assert!(w.message.contains("disabled"));
}
