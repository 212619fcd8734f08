//! Routing through a running gateway: every load balancer judged by the
//! distribution it produces over mock hosts (read from the mocks' request
//! counters), subsets and each fallback policy, weighted clusters, route
//! matching (exact, regex, ".*", Dubbo group and method, order), and the
//! local replies for no route, an undefined cluster and direct responses,
//! in both bolt and Dubbo.

mod common;

use common::{
    addrs, bolt, bolt_call, bounded, call, cluster, cluster_of, counts, document, drive, drive_ok,
    dubbo, dubbo_error_message, labelled_host, metadata_match, mocks, not_status, route,
    route_when, status, weighted_host, with,
};
use meshgate_codecs::FrameKind;
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::{bolt_oneway, dubbo_request};
use serde_json::json;
use std::time::Duration;

/// bolt's NO_PROCESSOR: no route, no healthy upstream.
const BOLT_NO_PROCESSOR: u32 = 6;
/// Dubbo's SERVICE_NOT_FOUND: no route, no healthy upstream.
const DUBBO_SERVICE_NOT_FOUND: u32 = 60;

/// A gateway with one `".*"` route to a cluster of `lb_type` over three
/// bolt mocks (customised by `cluster`), driven with `total` requests over
/// `connections` connections; returns each mock's request count.
async fn distribution(
    lb_type: &str,
    hosts: &[MockUpstream],
    customise: impl FnOnce(serde_json::Value) -> serde_json::Value,
    connections: usize,
    total: usize,
) -> Vec<u64> {
    let doc = document(
        "bolt",
        json!([route(".*", "pool")]),
        json!([customise(cluster("pool", lb_type, &addrs(hosts)))]),
        json!([]),
    );
    let (_gateway, addr) = common::start(&doc).await;
    drive_ok(addr, &bolt(), connections, total, |i| {
        bolt_call(i as u64 + 1, "com.example.Echo:1.0", &[])
    })
    .await;
    counts(hosts)
}

#[tokio::test]
async fn round_robin_gives_each_host_the_same_count() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let counts = distribution("LB_ROUNDROBIN", &hosts, |c| c, 6, 600).await;
        assert_eq!(counts, [200, 200, 200]);
    })
    .await;
}

#[tokio::test]
async fn weighted_round_robin_follows_the_weights_exactly() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let weighted = |c: serde_json::Value| {
            let hosts: Vec<_> = addrs(&hosts)
                .into_iter()
                .zip([1, 2, 3])
                .map(|(a, w)| weighted_host(a, w))
                .collect();
            with(c, json!({ "hosts": hosts }))
        };
        // 100 whole cycles of 6 picks.
        let counts = distribution("LB_WEIGHTED_ROUNDROBIN", &hosts, weighted, 6, 600).await;
        assert_eq!(counts, [100, 200, 300]);
    })
    .await;
}

#[tokio::test]
async fn random_gives_every_host_a_share() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let counts = distribution("LB_RANDOM", &hosts, |c| c, 6, 600).await;
        // 200 expected each; one standard deviation is about 11.5.
        assert_eq!(counts.iter().sum::<u64>(), 600);
        assert!(counts.iter().all(|c| (140..=260).contains(c)), "{counts:?}");
    })
    .await;
}

/// Three hosts, the first answering after 100 ms, the others at once; 16
/// connections keep requests in flight, so the slow host's active request
/// count stays above the others'.
fn slow_first(n: usize) -> Vec<MockUpstream> {
    let slow = Duration::from_millis(100);
    let mut hosts = vec![MockUpstream::builder(bolt()).delay(slow, slow).start()];
    hosts.extend(mocks(&bolt(), n - 1));
    hosts
}

#[tokio::test]
async fn least_request_sends_fewer_requests_to_a_slow_host() {
    bounded(async {
        let hosts = slow_first(3);
        let counts = distribution("LB_LEAST_REQUEST", &hosts, |c| c, 16, 480).await;
        // Round robin would give 160 each. With two random choices the slow
        // host wins only when drawn twice (1/9) or against a busier host.
        assert_eq!(counts.iter().sum::<u64>(), 480);
        assert!(
            counts[0] * 2 < counts[1] && counts[0] * 2 < counts[2],
            "{counts:?}"
        );
        assert!(counts[0] < 480 / 5, "{counts:?}");
    })
    .await;
}

#[tokio::test]
async fn least_connection_sends_fewer_requests_to_the_host_holding_more_connections() {
    bounded(async {
        // With max_request_per_conn 1 every request retires its connection
        // (it drains, and closes once its request is answered) and the pool
        // opens a new one. A fast host's retired connections close at once;
        // the slow host's stay open for 100 ms each, so it holds more
        // connections than the others while it is busy.
        let hosts = slow_first(3);
        let one_per_conn = |c| with(c, json!({ "max_request_per_conn": 1 }));
        let counts = distribution("LB_LEAST_CONNECTION", &hosts, one_per_conn, 16, 480).await;
        assert_eq!(counts.iter().sum::<u64>(), 480);
        assert!(
            counts[0] * 2 < counts[1] && counts[0] * 2 < counts[2],
            "{counts:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn least_connection_spreads_over_hosts_with_equal_connections() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let counts = distribution("LB_LEAST_CONNECTION", &hosts, |c| c, 6, 600).await;
        assert_eq!(counts.iter().sum::<u64>(), 600);
        assert!(counts.iter().all(|c| (140..=260).contains(c)), "{counts:?}");
    })
    .await;
}

#[tokio::test]
async fn request_round_robin_sends_everything_to_the_first_host_while_it_answers() {
    bounded(async {
        // Primary/backup: every request starts at the first host; only a
        // retry would take the next.
        let hosts = mocks(&bolt(), 3);
        let counts = distribution("LB_REQUEST_ROUNDROBIN", &hosts, |c| c, 4, 100).await;
        assert_eq!(counts, [100, 0, 0]);
    })
    .await;
}

#[tokio::test]
async fn maglev_keeps_each_hash_key_on_one_host_and_spreads_keys() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let doc = document(
            "bolt",
            json!([{
                "match": { "headers": [{ "name": "service", "value": ".*" }] },
                "route": { "cluster_name": "ring", "hash_policy": [{ "header": { "key": "x-key" } }] }
            }]),
            json!([cluster("ring", "LB_MAGLEV", &addrs(&hosts))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        let mut keys_per_host = [0; 3];
        let mut id = 0;
        for key in 0..30 {
            let before = counts(&hosts);
            let key = format!("user-{key}");
            for _ in 0..10 {
                id += 1;
                let reply = client
                    .call(&bolt_call(id, "com.example.Echo:1.0", &[("x-key", &key)]))
                    .await
                    .unwrap();
                assert_eq!(status(&reply), 0);
            }
            let delta: Vec<u64> = counts(&hosts)
                .iter()
                .zip(&before)
                .map(|(a, b)| a - b)
                .collect();
            let host = delta.iter().position(|d| *d == 10);
            assert!(
                host.is_some() && delta.iter().sum::<u64>() == 10,
                "key {key} went to several hosts: {delta:?}"
            );
            keys_per_host[host.unwrap()] += 1;
        }
        assert!(
            keys_per_host.iter().all(|k| *k > 0),
            "30 keys land on every host: {keys_per_host:?}"
        );
    })
    .await;
}

// ---- subsets ----------------------------------------------------------

/// A round-robin cluster `versions` over three bolt mocks labelled
/// version v1, v2, v2, with `version` subsets and `fall_back_policy`.
fn versioned(
    hosts: &[MockUpstream],
    policy: u8,
    default_subset: serde_json::Value,
) -> serde_json::Value {
    let addrs = addrs(hosts);
    let hosts = vec![
        labelled_host(addrs[0], &[("version", "v1")]),
        labelled_host(addrs[1], &[("version", "v2")]),
        labelled_host(addrs[2], &[("version", "v2")]),
    ];
    with(
        cluster_of("versions", "LB_ROUNDROBIN", hosts),
        json!({ "lb_subset_config": {
            "fall_back_policy": policy,
            "default_subset": default_subset,
            "subset_selectors": [["version"]]
        }}),
    )
}

/// Routes: service `v2` asks for version v2, service `v9` for a version
/// no host has; both to `versions`.
fn version_routes() -> serde_json::Value {
    json!([
        route_when(
            &[("service", "v2")],
            json!({ "cluster_name": "versions", "metadata_match": metadata_match(&[("version", "v2")]) })
        ),
        route_when(
            &[("service", "v9")],
            json!({ "cluster_name": "versions", "metadata_match": metadata_match(&[("version", "v9")]) })
        ),
    ])
}

#[tokio::test]
async fn metadata_match_selects_only_the_matching_hosts() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let doc = document(
            "bolt",
            version_routes(),
            json!([versioned(&hosts, 0, json!({}))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 4, 200, |i| {
            bolt_call(i as u64 + 1, "v2", &[])
        })
        .await;
        // The v2 subset is balanced round robin too.
        assert_eq!(counts(&hosts), [0, 100, 100]);
    })
    .await;
}

#[tokio::test]
async fn no_subset_match_without_fallback_is_a_no_healthy_upstream_reply() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let doc = document(
            "Auto",
            version_routes(),
            json!([versioned(&hosts, 0, json!({}))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;

        let reply = call(addr, &bolt(), &bolt_call(1, "v9", &[])).await;
        assert_eq!(status(&reply), BOLT_NO_PROCESSOR);

        let reply = call(
            addr,
            &dubbo(),
            &dubbo_request(2, "v9", "sayHello", None, "x"),
        )
        .await;
        assert_eq!(status(&reply), DUBBO_SERVICE_NOT_FOUND);
        assert_eq!(dubbo_error_message(&reply), "502|no health upstream");
        assert_eq!(counts(&hosts), [0, 0, 0]);
    })
    .await;
}

#[tokio::test]
async fn no_subset_match_with_fallback_1_uses_any_host() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let doc = document(
            "bolt",
            version_routes(),
            json!([versioned(&hosts, 1, json!({}))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 3, 300, |i| {
            bolt_call(i as u64 + 1, "v9", &[])
        })
        .await;
        assert_eq!(counts(&hosts), [100, 100, 100], "the cluster's round robin");
    })
    .await;
}

#[tokio::test]
async fn no_subset_match_with_fallback_2_uses_the_default_subset() {
    bounded(async {
        let hosts = mocks(&bolt(), 3);
        let default = json!({ "version": "v1" });
        let doc = document(
            "bolt",
            version_routes(),
            json!([versioned(&hosts, 2, default)]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 3, 90, |i| bolt_call(i as u64 + 1, "v9", &[])).await;
        assert_eq!(counts(&hosts), [90, 0, 0]);
        // A matching request still goes to its own subset.
        drive_ok(addr, &bolt(), 2, 20, |i| bolt_call(i as u64 + 1, "v2", &[])).await;
        assert_eq!(counts(&hosts), [90, 10, 10]);
    })
    .await;
}

// ---- weighted clusters --------------------------------------------------

#[tokio::test]
async fn weighted_clusters_split_traffic_by_weight() {
    bounded(async {
        let light = mocks(&bolt(), 1);
        let heavy = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([{
                "match": { "headers": [{ "name": "service", "value": ".*" }] },
                "route": { "weighted_clusters": [
                    { "cluster": { "name": "light", "weight": 20 } },
                    { "cluster": { "name": "heavy", "weight": 80 } }
                ]}
            }]),
            json!([
                cluster("light", "LB_ROUNDROBIN", &addrs(&light)),
                cluster("heavy", "LB_ROUNDROBIN", &addrs(&heavy)),
            ]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 10, 1000, |i| {
            bolt_call(i as u64 + 1, "com.example.Echo:1.0", &[])
        })
        .await;
        let (light, heavy) = (light[0].requests(), heavy[0].requests());
        assert_eq!(light + heavy, 1000);
        // 200 expected; one standard deviation is about 12.6.
        assert!((140..=260).contains(&light), "light {light}, heavy {heavy}");
    })
    .await;
}

#[tokio::test]
async fn a_weighted_cluster_applies_its_own_metadata_match() {
    bounded(async {
        let labelled = mocks(&bolt(), 3);
        let plain = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([{
                "match": { "headers": [{ "name": "service", "value": ".*" }] },
                "route": { "weighted_clusters": [
                    { "cluster": { "name": "versions", "weight": 50, "metadata_match": metadata_match(&[("version", "v2")]) } },
                    { "cluster": { "name": "plain", "weight": 50 } }
                ]}
            }]),
            json!([
                versioned(&labelled, 0, json!({})),
                cluster("plain", "LB_ROUNDROBIN", &addrs(&plain)),
            ]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 4, 400, |i| {
            bolt_call(i as u64 + 1, "com.example.Echo:1.0", &[])
        })
        .await;
        let versions = counts(&labelled);
        assert_eq!(versions[0], 0, "the v1 host is outside the subset: {versions:?}");
        let total = versions[1] + versions[2];
        assert_eq!(total + plain[0].requests(), 400);
        assert!((140..=260).contains(&total), "{versions:?}");
        assert!(versions[1].abs_diff(versions[2]) <= 1, "{versions:?}");
    })
    .await;
}

// ---- route matching -------------------------------------------------------

#[tokio::test]
async fn routes_match_service_exactly_by_regex_and_by_dot_star() {
    bounded(async {
        let exact = mocks(&bolt(), 1);
        let regex = mocks(&bolt(), 1);
        let any = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([
                route("com.example.Exact:1.0", "exact"),
                { "match": { "headers": [{ "name": "service", "value": "com\\.example\\.Re[a-z]+:1\\.0", "regex": true }] },
                  "route": { "cluster_name": "regex" } },
                route(".*", "any"),
            ]),
            json!([
                cluster("exact", "LB_ROUNDROBIN", &addrs(&exact)),
                cluster("regex", "LB_ROUNDROBIN", &addrs(&regex)),
                cluster("any", "LB_ROUNDROBIN", &addrs(&any)),
            ]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let sent = [
            ("com.example.Exact:1.0", "exact"),
            ("com.example.Exact:2.0", "any"),
            ("com.example.Regex:1.0", "regex"),
            ("com.example.Retry:1.0", "regex"),
            // Go regexes are unanchored, as MOSN matches them.
            ("org.com.example.Reader:1.0.x", "regex"),
            ("com.example.Re9:1.0", "any"),
            ("org.other.Thing", "any"),
            // MOSN's ".*" is "any non-empty service": an empty one has no route.
            ("", "none"),
        ];
        let mut id = 0;
        for (service, cluster) in sent {
            id += 1;
            let reply = call(addr, &bolt(), &bolt_call(id, service, &[])).await;
            let want = if cluster == "none" { BOLT_NO_PROCESSOR } else { 0 };
            assert_eq!(status(&reply), want, "{service:?}");
        }
        let expect = |name| sent.iter().filter(|(_, c)| *c == name).count() as u64;
        assert_eq!(
            [exact[0].requests(), regex[0].requests(), any[0].requests()],
            [expect("exact"), expect("regex"), expect("any")]
        );
    })
    .await;
}

#[tokio::test]
async fn the_first_matching_route_wins() {
    bounded(async {
        let first = mocks(&bolt(), 1);
        let second = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([
                route(".*", "first"),
                route("com.example.Echo:1.0", "second")
            ]),
            json!([
                cluster("first", "LB_ROUNDROBIN", &addrs(&first)),
                cluster("second", "LB_ROUNDROBIN", &addrs(&second)),
            ]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        drive_ok(addr, &bolt(), 2, 10, |i| {
            bolt_call(i as u64 + 1, "com.example.Echo:1.0", &[])
        })
        .await;
        assert_eq!((first[0].requests(), second[0].requests()), (10, 0));
    })
    .await;
}

#[tokio::test]
async fn dubbo_routes_by_group_attachment_and_method() {
    bounded(async {
        let blue = mocks(&dubbo(), 1);
        let hello = mocks(&dubbo(), 1);
        let rest = mocks(&dubbo(), 1);
        let service = "org.apache.dubbo.samples.DemoService";
        let doc = document(
            "dubbo",
            json!([
                route_when(
                    &[("service", service), ("group", "blue")],
                    json!({ "cluster_name": "blue" })
                ),
                route_when(
                    &[("service", service), ("method", "sayHello")],
                    json!({ "cluster_name": "hello" })
                ),
                route(service, "rest"),
            ]),
            json!([
                cluster("blue", "LB_ROUNDROBIN", &addrs(&blue)),
                cluster("hello", "LB_ROUNDROBIN", &addrs(&hello)),
                cluster("rest", "LB_ROUNDROBIN", &addrs(&rest)),
            ]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let sent = [
            (Some("blue"), "sayHello", "blue"),
            (Some("blue"), "sayBye", "blue"),
            (Some("green"), "sayHello", "hello"),
            (None, "sayHello", "hello"),
            (None, "sayBye", "rest"),
            (Some("green"), "sayBye", "rest"),
        ];
        for (i, (group, method, _)) in sent.iter().enumerate() {
            let request = dubbo_request(i as u64 + 1, service, method, *group, "x");
            let reply = call(addr, &dubbo(), &request).await;
            assert_eq!(status(&reply), 20, "{group:?} {method}");
            assert_eq!(reply.body(), request.body(), "echoed");
        }
        let expect = |name| sent.iter().filter(|(_, _, c)| *c == name).count() as u64;
        assert_eq!(
            [blue[0].requests(), hello[0].requests(), rest[0].requests()],
            [expect("blue"), expect("hello"), expect("rest")]
        );
    })
    .await;
}

// ---- local replies ----------------------------------------------------------

#[tokio::test]
async fn no_route_is_answered_with_each_protocols_no_route_status() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let doc = document(
            "Auto",
            json!([route("com.example.Known:1.0", "known")]),
            json!([cluster("known", "LB_ROUNDROBIN", &addrs(&upstream))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;

        let reply = call(addr, &bolt(), &bolt_call(7, "com.example.Unknown:1.0", &[])).await;
        assert_eq!(status(&reply), BOLT_NO_PROCESSOR);

        let request = dubbo_request(8, "com.example.Unknown", "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), DUBBO_SERVICE_NOT_FOUND);
        assert_eq!(dubbo_error_message(&reply), "404|router unavailable");
        assert_eq!(upstream[0].requests(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_route_to_an_undefined_cluster_is_a_no_healthy_upstream_reply_and_a_warning() {
    bounded(async {
        let doc = document("Auto", json!([route(".*", "ghost")]), json!([]), json!([]));
        let config =
            meshgate::config::load_str(&doc.to_string(), None).expect("valid, with a warning");
        let warning = config
            .warnings
            .iter()
            .find(|w| w.message.contains("\"ghost\""))
            .unwrap_or_else(|| panic!("a warning about the cluster: {:?}", config.warnings));
        assert_eq!(
            warning.path,
            "servers[0].routers[0].virtual_hosts[0].routers[0].route.cluster_name"
        );
        assert!(warning.hint.is_some());

        let (_gateway, addr) = common::start(&doc).await;
        let reply = call(addr, &bolt(), &bolt_call(1, "com.example.Echo:1.0", &[])).await;
        assert_eq!(status(&reply), BOLT_NO_PROCESSOR);
        let request = dubbo_request(2, "com.example.Echo", "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), DUBBO_SERVICE_NOT_FOUND);
        assert_eq!(dubbo_error_message(&reply), "502|no health upstream");
    })
    .await;
}

#[tokio::test]
async fn direct_responses_answer_with_the_mapped_status_without_an_upstream() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let direct = |service: &str, status: u16, body: &str| {
            json!({ "match": { "headers": [{ "name": "service", "value": service }] },
                    "direct_response": { "status": status, "body": body } })
        };
        let doc = document(
            "Auto",
            json!([
                direct("dr.404", 404, "404|no such service here"),
                direct("dr.403", 403, ""),
                direct("dr.503", 503, "503|try later"),
                direct("dr.504", 504, ""),
                direct("dr.200", 200, "hello"),
                route(".*", "real"),
            ]),
            json!([cluster("real", "LB_ROUNDROBIN", &addrs(&upstream))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        // (service, bolt status, Dubbo status, Dubbo message). A direct
        // response's body is its message; without one, MOSN's text.
        //
        // A 2xx direct response is answered today as an internal error
        // (bolt 3 UNKNOWN, Dubbo 70 SERVICE_ERROR carrying the body): an
        // RPC success reply carries a serialized result object (a
        // SofaResponse, a Dubbo RESPONSE_VALUE) that the caller's
        // deserializer reads, and a config string is not one, so the
        // gateway does not forge a success it cannot encode. MOSN answers
        // bolt with an empty-bodied success instead (see
        // docs/mosn-compatibility.md).
        let cases = [
            ("dr.404", 6, 60, "404|no such service here"),
            ("dr.403", 2, 80, "403|permission denied"),
            ("dr.503", 4, 40, "503|try later"),
            ("dr.504", 7, 30, "504|timeout"),
            ("dr.200", 3, 70, "hello"),
        ];
        let mut id = 0;
        for (service, bolt_status, dubbo_status, message) in cases {
            id += 1;
            let reply = call(addr, &bolt(), &bolt_call(id, service, &[])).await;
            assert_eq!(status(&reply), bolt_status, "bolt {service}");
            id += 1;
            let reply = call(addr, &dubbo(), &dubbo_request(id, service, "m", None, "x")).await;
            assert_eq!(status(&reply), dubbo_status, "dubbo {service}");
            assert_eq!(dubbo_error_message(&reply), message, "dubbo {service}");
        }
        assert_eq!(
            upstream[0].requests(),
            0,
            "direct responses never go upstream"
        );
        // The catch-all route behind them still forwards.
        let reply = call(addr, &bolt(), &bolt_call(99, "other", &[])).await;
        assert_eq!(status(&reply), 0);
        assert_eq!(upstream[0].requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn oneway_requests_are_forwarded_and_never_answered() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([route(".*", "c")]),
            json!([cluster("c", "LB_ROUNDROBIN", &addrs(&upstream))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        for id in 1..=5 {
            client
                .send(&bolt_oneway(id, "fire and forget"))
                .await
                .unwrap();
        }
        // A two-way request after them: its reply is the first frame back,
        // so no oneway was answered before it.
        let reply = client
            .call(&bolt_call(6, "com.example.Echo:1.0", &[]))
            .await
            .unwrap();
        assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 6));
        let counters = upstream[0].counters();
        let oneways = || meshgate_test_support::mock::MockCounters::get(&counters.oneways);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while oneways() < 5 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(oneways(), 5);
        // Nothing else arrives.
        let next = tokio::time::timeout(Duration::from_millis(300), client.recv()).await;
        assert!(next.is_err(), "no reply to a oneway request: {next:?}");
    })
    .await;
}

#[tokio::test]
async fn concurrent_requests_to_mixed_routes_each_get_their_own_answer() {
    bounded(async {
        // Routed requests and local replies interleaved on the same
        // connections: every reply carries its own request's id and the
        // right outcome.
        let upstream = mocks(&bolt(), 2);
        let doc = document(
            "bolt",
            json!([route("com.example.Echo:1.0", "c")]),
            json!([cluster("c", "LB_ROUNDROBIN", &addrs(&upstream))]),
            json!([]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let replies = drive(addr, &bolt(), 4, 200, |i| {
            let service = if i % 3 == 0 {
                "nowhere"
            } else {
                "com.example.Echo:1.0"
            };
            bolt_call(i as u64 + 1, service, &[])
        })
        .await;
        let failed = not_status(&replies, 0);
        let expected: Vec<usize> = (0..200).filter(|i| i % 3 == 0).collect();
        assert_eq!(failed.iter().map(|(i, _)| *i).collect::<Vec<_>>(), expected);
        assert!(failed.iter().all(|(_, s)| *s == BOLT_NO_PROCESSOR));
        for (i, reply) in replies.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            assert_eq!(reply.body(), format!("payload-{}", i + 1).as_bytes());
        }
        assert_eq!(counts(&upstream).iter().sum::<u64>(), 133);
    })
    .await;
}
