//! The common lookups allocate nothing: exact and `.*` header routes (RPC),
//! exact and wildcard domains, prefix and exact paths (HTTP), and the
//! cluster choice. Regexes are compiled at build time.

use meshgate_codecs::Headers;
use meshgate_router::{MapRequest, RouteRequest, RouteTable, RouterConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn table(json: &str) -> RouteTable {
    let cfg: RouterConfig = serde_json::from_str(json).expect("a router config");
    RouteTable::build(&cfg).expect("builds")
}

/// Routes `req` many times and returns how many allocations that took.
fn allocations(t: &RouteTable, req: &dyn RouteRequest, want: &str) -> usize {
    // Warm up once (lazy statics, regex caches) outside the measured region.
    let fwd = t
        .route(req)
        .and_then(|r| r.forward())
        .expect("a forward route");
    assert_eq!(fwd.pick_cluster(req, 7).map(|c| c.0), Some(want));
    // The counter is process-wide, so a stray allocation by another thread
    // of the test harness can land in a region; the best of three runs
    // filters that out, while a lookup that allocates shows ≥ 1000 in every
    // run.
    (0..3)
        .map(|_| {
            let region = Region::new(GLOBAL);
            for i in 0..1000u64 {
                let fwd = black_box(t.route(req))
                    .and_then(|r| r.forward())
                    .expect("routed");
                black_box(fwd.pick_cluster(req, i));
                black_box(fwd.hash_key(req, None));
            }
            region.change().allocations
        })
        .min()
        .unwrap_or(usize::MAX)
}

#[test]
fn rpc_and_http_lookups_do_not_allocate() {
    let rpc = table(
        r#"{"virtual_hosts": [{"domains": ["*"], "routers": [
            {"match": {"headers": [{"name": "service", "value": "com.foo.Exact:1.0"}, {"name": "version", "value": "1.0"}]},
             "route": {"cluster_name": "exact"}},
            {"match": {"headers": [{"name": "service", "value": ".*"}]},
             "route": {"weighted_clusters": [{"cluster": {"name": "a", "weight": 1}}, {"cluster": {"name": "b", "weight": 1}}],
                       "metadata_match": {"filter_metadata": {"mosn.lb": {"v": "1"}}}}}
        ]}]}"#,
    );
    let mut exact = Headers::new();
    exact.insert("service", b"com.foo.Exact:1.0");
    exact.insert("version", b"1.0");
    assert_eq!(allocations(&rpc, &exact, "exact"), 0);
    let mut any = Headers::new();
    any.insert("service", b"com.foo.Other:1.0");
    assert_eq!(allocations(&rpc, &any, "b"), 0);

    let http = table(
        r#"{"virtual_hosts": [
            {"domains": ["www.foo.com", "www.foo.com:*"], "routers": [
                {"match": {"path": "/exact"}, "route": {"cluster_name": "e"}},
                {"match": {"prefix": "/api/", "headers": [{"name": ":method", "value": "GET"}]},
                 "route": {"cluster_name": "api", "hash_policy": [{"header": {"key": "x-user"}}]}}]},
            {"domains": ["*.foo.com"], "routers": [{"match": {"prefix": "/"}, "route": {"cluster_name": "wild"}}]},
            {"domains": ["*"], "routers": [{"route": {"cluster_name": "default"}}]}
        ]}"#,
    );
    let api = MapRequest::new()
        .authority("www.foo.com:8443")
        .method("GET")
        .path("/api/users")
        .header("x-user", "alice");
    assert_eq!(allocations(&http, &api, "api"), 0);
    let exact = MapRequest::new().authority("www.foo.com").path("/EXACT");
    assert_eq!(allocations(&http, &exact, "e"), 0);
    let wild = MapRequest::new().authority("a.foo.com").path("/x");
    assert_eq!(allocations(&http, &wild, "wild"), 0);
    let none = MapRequest::new().path("/x");
    assert_eq!(allocations(&http, &none, "default"), 0);
}
