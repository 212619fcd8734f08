//! Real MOSN-shaped router configs, parsed as JSON, built, and routed.
//! The shapes follow MOSN's own samples (`examples/codes/*/config.json`).

use meshgate_codecs::Headers;
use meshgate_router::{
    FailureKind, HostRewrite, MapRequest, RouteAction, RouteRequest, RouteTable, RouterConfig,
};
use std::time::Duration;

fn table(json: &str) -> RouteTable {
    let cfg: RouterConfig = serde_json::from_str(json).expect("parses");
    RouteTable::build(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

/// `examples/codes/sofarpc-with-xprotocol-sample/client_config.json`'s router.
const BOLT_CLIENT_ROUTER: &str = r#"{
    "router_config_name": "client_router",
    "virtual_hosts": [{
        "name": "clientHost",
        "domains": ["*"],
        "routers": [
            {
                "match": {"headers": [{"name": "service", "value": ".*"}]},
                "route": {"cluster_name": "clientCluster"}
            }
        ]
    }]
}"#;

#[test]
fn bolt_sample_routes_every_service_to_its_cluster() {
    let t = table(BOLT_CLIENT_ROUTER);
    assert_eq!(t.name(), "client_router");
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());

    let mut h = Headers::new();
    h.insert("service", b"com.alipay.sofa.rpc.HelloService:1.0");
    h.insert("method", b"sayHello");
    let route = t.route(&h).expect("routed");
    assert_eq!(route.name(), "clientHost/routers[0]");
    let fwd = route.forward().unwrap();
    let (cluster, subset) = fwd.pick_cluster(&h, 12345).unwrap();
    assert_eq!(cluster, "clientCluster");
    assert!(subset.is_empty());
    assert_eq!(fwd.timeout(), None);
    assert!(fwd.retry_policy().is_none());
    assert!(
        fwd.effective_retry_policy()
            .should_retry(FailureKind::ConnectFailure, 1)
    );
    assert!(
        !fwd.effective_retry_policy()
            .should_retry(FailureKind::Reset, 1)
    );

    // A frame without a service header (e.g. a heartbeat that leaked) has no route.
    assert!(t.route(&Headers::new()).is_none());
    assert_eq!(
        t.static_cluster_names().into_iter().collect::<Vec<_>>(),
        ["clientCluster"]
    );
}

/// A server-side RPC router with subsets, timeouts, retries and weights.
const RPC_SUBSET_ROUTER: &str = r#"{
    "router_config_name": "server_router",
    "virtual_hosts": [{
        "name": "serverHost",
        "domains": ["*"],
        "routers": [
            {
                "match": {"headers": [
                    {"name": "service", "value": "com.alipay.test.TestService:1.0"},
                    {"name": "x-env", "value": "gray"}
                ]},
                "route": {
                    "cluster_name": "testCluster",
                    "metadata_match": {"filter_metadata": {"mosn.lb": {"version": "gray", "zone": "gz"}}},
                    "timeout": "1s",
                    "retry_policy": {"retry_on": true, "retry_timeout": "300ms", "num_retries": 2}
                }
            },
            {
                "match": {"headers": [{"name": "service", "value": "^com\\.alipay\\.test\\.", "regex": true}]},
                "route": {
                    "weighted_clusters": [
                        {"cluster": {"name": "blue", "weight": 90,
                                     "metadata_match": {"filter_metadata": {"mosn.lb": {"version": "1.0"}}}}},
                        {"cluster": {"name": "green", "weight": 10}}
                    ],
                    "metadata_match": {"filter_metadata": {"mosn.lb": {"zone": "gz", "version": "0.9"}}},
                    "hash_policy": [{"header": {"key": "x-user"}}]
                }
            },
            {
                "match": {"headers": [{"name": "dubbo", "value": "2.0.2"}]},
                "direct_response": {"status": 503, "body": "dubbo is served elsewhere"}
            }
        ]
    }]
}"#;

#[test]
fn rpc_subset_router_first_matching_route_wins() {
    let t = table(RPC_SUBSET_ROUTER);

    let gray = MapRequest::new()
        .header("service", "com.alipay.test.TestService:1.0")
        .header("x-env", "gray");
    let route = t.route(&gray).unwrap();
    let fwd = route.forward().unwrap();
    let (cluster, subset) = fwd.pick_cluster(&gray, 0).unwrap();
    assert_eq!(cluster, "testCluster");
    assert_eq!(subset.get("version"), Some("gray"));
    assert_eq!(subset.get("zone"), Some("gz"));
    assert_eq!(fwd.timeout(), Some(Duration::from_secs(1)));
    let retry = fwd.retry_policy().unwrap();
    assert_eq!(retry.num_retries(), 2);
    assert_eq!(retry.per_try_timeout(), Some(Duration::from_millis(300)));
    assert!(retry.should_retry(FailureKind::Status(500), 2));
    assert!(!retry.should_retry(FailureKind::Status(500), 3));

    // Same service without the gray header falls through to the weighted route.
    let plain = MapRequest::new()
        .header("service", "com.alipay.test.TestService:1.0")
        .header("x-user", "alice");
    let fwd = t.route(&plain).unwrap().forward().unwrap();
    let (cluster, subset) = fwd.pick_cluster(&plain, 5).unwrap();
    assert_eq!(cluster, "blue");
    assert_eq!(
        subset.get("version"),
        Some("1.0"),
        "the cluster's own metadata wins"
    );
    assert_eq!(
        subset.get("zone"),
        Some("gz"),
        "the route's metadata is kept"
    );
    let (cluster, subset) = fwd.pick_cluster(&plain, 95).unwrap();
    assert_eq!(cluster, "green");
    assert_eq!(subset.get("version"), Some("0.9"));
    assert!(fwd.hash_key(&plain, None).is_some());

    let dubbo = MapRequest::new()
        .header("dubbo", "2.0.2")
        .header("service", "x");
    match t.route(&dubbo).unwrap().action() {
        RouteAction::DirectResponse(d) => {
            assert_eq!(d.status, 503);
            assert_eq!(d.body.as_deref(), Some("dubbo is served elsewhere"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        t.route(&MapRequest::new().header("service", "org.other.Svc"))
            .is_none()
    );
}

/// An HTTP router with several virtual hosts, in the shape of MOSN's
/// `examples/codes/http-sample` plus the HTTP features of the route API.
const HTTP_ROUTER: &str = r#"{
    "router_config_name": "http_router",
    "request_headers_to_add": [{"header": {"key": "x-gateway", "value": "meshgate"}}],
    "response_headers_to_remove": ["server"],
    "virtual_hosts": [
        {
            "name": "www",
            "domains": ["www.foo.com", "www.foo.com:*"],
            "response_headers_to_add": [{"header": {"key": "x-vh", "value": "www"}, "append": false}],
            "routers": [
                {"match": {"path": "/healthz"}, "direct_response": {"status": 200, "body": "ok"}},
                {
                    "match": {"prefix": "/api/", "headers": [{"name": "method", "value": "POST"}]},
                    "route": {"cluster_name": "api_write", "prefix_rewrite": "/v1/", "timeout": "5s",
                              "retry_policy": {"retry_on": "5xx,connect-failure", "num_retries": 2}}
                },
                {
                    "match": {"prefix": "/api/"},
                    "route": {"cluster_name": "api_read", "host_rewrite": "api.internal",
                              "request_headers_to_remove": ["x-debug"],
                              "hash_policy": [{"cookie": {"name": "sid", "ttl": "1h"}}, {"source_ip": {}}]}
                },
                {
                    "match": {"regex": "^/img/[a-z]+\\.png$"},
                    "route": {"cluster_name": "images",
                              "regex_rewrite": {"pattern": {"regex": "^/img/"}, "substitution": "/static/images/"}}
                }
            ]
        },
        {
            "name": "tenants",
            "domains": ["*.foo.com"],
            "routers": [{"match": {"prefix": "/"}, "route": {"cluster_header": "x-tenant-cluster", "cluster_name": "tenants_default"}}]
        },
        {
            "name": "legacy",
            "domains": ["old.foo.com"],
            "routers": [{"match": {"prefix": "/"}, "redirect": {"host_redirect": "www.foo.com", "https_redirect": true}}]
        },
        {
            "name": "fallback",
            "domains": ["*"],
            "routers": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]
        }
    ]
}"#;

fn http(authority: &str, method: &str, path: &str) -> MapRequest {
    MapRequest::new()
        .authority(authority)
        .method(method)
        .path(path)
}

#[test]
fn http_router_picks_host_then_route() {
    let t = table(HTTP_ROUTER);

    let health = t.route(&http("www.foo.com", "GET", "/healthz")).unwrap();
    assert!(matches!(health.action(), RouteAction::DirectResponse(d) if d.status == 200));
    // MOSN's exact path match ignores case.
    assert!(
        t.route(&http("www.foo.com", "GET", "/HEALTHZ"))
            .unwrap()
            .forward()
            .is_none()
    );

    let post = http("WWW.foo.com:8080", "POST", "/api/orders");
    let m = t.select(&post).unwrap();
    assert_eq!(m.virtual_host.name(), "www");
    let fwd = m.route.forward().unwrap();
    assert_eq!(fwd.pick_cluster(&post, 0).unwrap().0, "api_write");
    assert_eq!(fwd.timeout(), Some(Duration::from_secs(5)));
    assert!(
        fwd.retry_policy()
            .unwrap()
            .should_retry(FailureKind::Status(502), 1)
    );
    // Envoy's 5xx covers resets too; a 4xx is not retried.
    assert!(
        fwd.retry_policy()
            .unwrap()
            .should_retry(FailureKind::Reset, 1)
    );
    assert!(
        !fwd.retry_policy()
            .unwrap()
            .should_retry(FailureKind::Status(404), 1)
    );
    assert_eq!(
        m.route.rewrite_path("/api/orders"),
        Some("/v1/orders".into())
    );
    let [route_h, vh_h, table_h] = m.header_layers();
    assert!(route_h.is_empty());
    assert_eq!(vh_h.response_add[0].key, "x-vh");
    assert!(!vh_h.response_add[0].append);
    assert_eq!(table_h.request_add[0].key, "x-gateway");
    assert_eq!(table_h.response_remove, ["server"]);

    let get = http("www.foo.com", "GET", "/api/orders").header("cookie", "sid=abc");
    let r = t.route(&get).unwrap();
    let fwd = r.forward().unwrap();
    assert_eq!(fwd.pick_cluster(&get, 0).unwrap().0, "api_read");
    assert_eq!(
        fwd.host_rewrite(),
        Some(&HostRewrite::Literal("api.internal".into()))
    );
    assert_eq!(r.headers().request_remove, ["x-debug"]);
    let by_cookie = fwd.hash_key(&get, None).unwrap();
    let no_cookie = http("www.foo.com", "GET", "/api/x");
    let ip = Some("10.1.2.3".parse().unwrap());
    assert_ne!(
        Some(by_cookie),
        fwd.hash_key(&no_cookie, ip),
        "falls back to the source IP"
    );
    assert_eq!(fwd.hash_key(&no_cookie, None), None);

    let img = http("www.foo.com", "GET", "/img/logo.png");
    let r = t.route(&img).unwrap();
    assert_eq!(
        r.forward().unwrap().pick_cluster(&img, 0).unwrap().0,
        "images"
    );
    assert_eq!(
        r.rewrite_path("/img/logo.png"),
        Some("/static/images/logo.png".into())
    );
    // The regex is anchored by the config itself; no route matches the jpg.
    assert!(
        t.route(&http("www.foo.com", "GET", "/img/logo.jpg"))
            .is_none()
    );

    let tenant = http("acme.foo.com", "GET", "/").header("x-tenant-cluster", "acme_cluster");
    let fwd = t.route(&tenant).unwrap().forward().unwrap();
    assert_eq!(fwd.pick_cluster(&tenant, 0).unwrap().0, "acme_cluster");
    let no_header = http("acme.foo.com", "GET", "/");
    assert_eq!(
        fwd.pick_cluster(&no_header, 0).unwrap().0,
        "tenants_default"
    );

    let legacy = t.route(&http("old.foo.com", "GET", "/a")).unwrap();
    assert_eq!(
        legacy
            .redirect_location("http", "old.foo.com", "/a", Some("q=1"))
            .as_deref(),
        Some("https://www.foo.com/a?q=1")
    );

    let other = t.route(&http("example.org", "GET", "/")).unwrap();
    assert!(
        matches!(other.action(), RouteAction::DirectResponse(d) if d.status == 404 && d.body.is_none())
    );
    // No authority (HTTP/1.0): the default host.
    let no_host = MapRequest::new().method("GET").path("/");
    assert_eq!(t.select(&no_host).unwrap().virtual_host.name(), "fallback");

    let names: Vec<_> = t.static_cluster_names().into_iter().collect();
    assert_eq!(
        names,
        ["api_read", "api_write", "images", "tenants_default"]
    );
}

#[test]
fn route_request_is_object_safe_and_borrowed() {
    let t = table(BOLT_CLIENT_ROUTER);
    let reqs: Vec<Box<dyn RouteRequest>> = vec![
        Box::new(MapRequest::new().header("service", "a")),
        Box::new({
            let mut h = Headers::new();
            h.insert("service", b"b");
            h
        }),
    ];
    for r in &reqs {
        assert!(t.route(r.as_ref()).is_some());
    }
}
