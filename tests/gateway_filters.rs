//! Stream filters in a running gateway: MOSN's `fault` (abort by status and
//! percentage, fixed delay, the `upstream_cluster` and `headers`
//! conditions) and meshgate's `header_mutation` (request fields added
//! before routing and seen by routes and upstreams, fields removed,
//! response fields changed on the way back), in bolt and Dubbo.

mod common;

use common::{
    addrs, bolt, bolt_call, bounded, call, cluster, counts, document, drive, dubbo,
    dubbo_error_message, dubbo_response_attachments, dubbo_value_response, echo_with_headers,
    mocks, not_status, route, route_when, status,
};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::frames::dubbo_request;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

const SERVICE: &str = "com.example.Echo:1.0";
const DUBBO_SERVICE: &str = "org.apache.dubbo.samples.DemoService";

/// A `fault` stream filter entry.
fn fault(config: Value) -> Value {
    json!({ "type": "fault", "config": config })
}

/// A `header_mutation` stream filter entry.
fn header_mutation(config: Value) -> Value {
    json!({ "type": "header_mutation", "config": config })
}

/// `{"header": {"key", "value"}}` entries for `*_headers_to_add`.
fn to_add(pairs: &[(&str, &str)]) -> Value {
    pairs
        .iter()
        .map(|(k, v)| json!({ "header": { "key": k, "value": v }, "append": false }))
        .collect()
}

/// An `Auto` gateway routing everything to one cluster `c` over `upstream`,
/// with `filters`.
async fn gateway_with(
    upstream: &[MockUpstream],
    filters: Value,
) -> (meshgate::control::Gateway, std::net::SocketAddr) {
    let doc = document(
        "Auto",
        json!([route(".*", "c")]),
        json!([cluster("c", "LB_ROUNDROBIN", &addrs(upstream))]),
        filters,
    );
    common::start(&doc).await
}

/// An `Auto` gateway routing Dubbo's `DUBBO_SERVICE` to a Dubbo mock and
/// everything else to a bolt mock, with `filters`; returns the mocks too.
async fn gateway_both(
    filters: Value,
) -> (
    meshgate::control::Gateway,
    std::net::SocketAddr,
    MockUpstream,
    MockUpstream,
) {
    let bolt_mock = MockUpstream::start(bolt());
    let dubbo_mock = MockUpstream::start(dubbo());
    let doc = document(
        "Auto",
        json!([route(DUBBO_SERVICE, "d"), route(".*", "b")]),
        json!([
            cluster("b", "LB_ROUNDROBIN", &[bolt_mock.addr()]),
            cluster("d", "LB_ROUNDROBIN", &[dubbo_mock.addr()]),
        ]),
        filters,
    );
    let (gateway, addr) = common::start(&doc).await;
    (gateway, addr, bolt_mock, dubbo_mock)
}

// ---- fault --------------------------------------------------------------------

#[tokio::test]
async fn fault_abort_answers_every_request_with_the_protocols_status() {
    bounded(async {
        // (abort status, bolt status, Dubbo status)
        let cases = [
            (503, 4, 40),
            (403, 2, 80),
            (504, 7, 30),
            (500, 3, 70),
            (404, 6, 60),
        ];
        for (abort, bolt_status, dubbo_status) in cases {
            let filters = json!([fault(
                json!({ "abort": { "status": abort, "percentage": 100 } })
            )]);
            let (_gateway, addr, bolt_mock, dubbo_mock) = gateway_both(filters).await;

            let reply = call(addr, &bolt(), &bolt_call(1, SERVICE, &[])).await;
            assert_eq!(status(&reply), bolt_status, "bolt, abort {abort}");
            let request = dubbo_request(2, DUBBO_SERVICE, "sayHello", None, "x");
            let reply = call(addr, &dubbo(), &request).await;
            assert_eq!(status(&reply), dubbo_status, "Dubbo, abort {abort}");
            assert_eq!(
                dubbo_error_message(&reply),
                format!("{abort}|fault injected")
            );
            assert_eq!(
                (bolt_mock.requests(), dubbo_mock.requests()),
                (0, 0),
                "aborted requests never go upstream"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn fault_abort_at_0_percent_forwards_everything() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let filters = json!([fault(
            json!({ "abort": { "status": 503, "percentage": 0 } })
        )]);
        let (_gateway, addr) = gateway_with(&upstream, filters).await;
        let replies = drive(addr, &bolt(), 4, 200, |i| {
            bolt_call(i as u64 + 1, SERVICE, &[])
        })
        .await;
        assert_eq!(not_status(&replies, 0), []);
        assert_eq!(upstream[0].requests(), 200);
    })
    .await;
}

#[tokio::test]
async fn fault_abort_at_50_percent_aborts_about_half() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let filters = json!([fault(
            json!({ "abort": { "status": 503, "percentage": 50 } })
        )]);
        let (_gateway, addr) = gateway_with(&upstream, filters).await;
        let replies = drive(addr, &bolt(), 4, 400, |i| {
            bolt_call(i as u64 + 1, SERVICE, &[])
        })
        .await;
        let aborted = not_status(&replies, 0);
        assert!(aborted.iter().all(|(_, s)| *s == 4), "{aborted:?}");
        // 200 expected; one standard deviation is 10.
        assert!(
            (150..=250).contains(&aborted.len()),
            "{} aborted",
            aborted.len()
        );
        assert_eq!(upstream[0].requests() as usize, 400 - aborted.len());
    })
    .await;
}

#[tokio::test]
async fn fault_delay_holds_each_request_then_forwards_it() {
    bounded(async {
        let filters = json!([fault(
            json!({ "delay": { "fixed_delay": "200ms", "percentage": 100 } })
        )]);
        let (_gateway, addr, bolt_mock, dubbo_mock) = gateway_both(filters).await;
        let started = Instant::now();
        let reply = call(addr, &bolt(), &bolt_call(1, SERVICE, &[])).await;
        let bolt_took = started.elapsed();
        assert_eq!(status(&reply), 0);
        let started = Instant::now();
        let request = dubbo_request(2, DUBBO_SERVICE, "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        let dubbo_took = started.elapsed();
        assert_eq!(status(&reply), 20);
        assert!(
            bolt_took >= Duration::from_millis(200),
            "bolt took {bolt_took:?}"
        );
        assert!(
            dubbo_took >= Duration::from_millis(200),
            "Dubbo took {dubbo_took:?}"
        );
        assert_eq!((bolt_mock.requests(), dubbo_mock.requests()), (1, 1));

        // Delays overlap: ten concurrent requests take one delay, not ten.
        let started = Instant::now();
        let replies = drive(addr, &bolt(), 10, 10, |i| {
            bolt_call(i as u64 + 10, SERVICE, &[])
        })
        .await;
        assert_eq!(not_status(&replies, 0), []);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(1500),
            "ten delayed requests took {took:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn fault_applies_only_to_its_upstream_cluster() {
    bounded(async {
        let target = mocks(&bolt(), 1);
        let spared = mocks(&bolt(), 1);
        let doc = document(
            "bolt",
            json!([route("svc.target", "target"), route("svc.spared", "spared")]),
            json!([
                cluster("target", "LB_ROUNDROBIN", &addrs(&target)),
                cluster("spared", "LB_ROUNDROBIN", &addrs(&spared)),
            ]),
            json!([fault(json!({ "abort": { "status": 503, "percentage": 100 }, "upstream_cluster": "target" }))]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let replies = drive(addr, &bolt(), 2, 40, |i| {
            let service = if i % 2 == 0 { "svc.target" } else { "svc.spared" };
            bolt_call(i as u64 + 1, service, &[])
        })
        .await;
        let aborted: Vec<usize> = not_status(&replies, 0).iter().map(|(i, _)| *i).collect();
        assert_eq!(aborted, (0..40).step_by(2).collect::<Vec<_>>());
        assert_eq!((target[0].requests(), spared[0].requests()), (0, 20));
    })
    .await;
}

#[tokio::test]
async fn fault_applies_only_to_requests_matching_its_headers() {
    bounded(async {
        let upstream = mocks(&bolt(), 1);
        let filters = json!([fault(json!({
            "abort": { "status": 503, "percentage": 100 },
            "headers": [{ "name": "x-chaos", "value": "on" }]
        }))]);
        let (_gateway, addr) = gateway_with(&upstream, filters).await;
        let replies = drive(addr, &bolt(), 2, 30, |i| {
            let chaos = ["on", "off", ""][i % 3];
            let headers: &[(&str, &str)] = if chaos.is_empty() {
                &[]
            } else {
                &[("x-chaos", chaos)]
            };
            bolt_call(i as u64 + 1, SERVICE, headers)
        })
        .await;
        let aborted: Vec<usize> = not_status(&replies, 0).iter().map(|(i, _)| *i).collect();
        assert_eq!(aborted, (0..30).step_by(3).collect::<Vec<_>>());
        assert_eq!(upstream[0].requests(), 20);
    })
    .await;
}

// ---- header_mutation --------------------------------------------------------

#[tokio::test]
async fn an_added_request_header_is_routed_on_and_reaches_the_upstream() {
    bounded(async {
        let gray = vec![MockUpstream::builder(bolt()).responder(echo_with_headers).start()];
        let stable = mocks(&bolt(), 1);
        let gray_dubbo = mocks(&dubbo(), 1);
        let doc = document(
            "Auto",
            json!([
                route_when(&[("x-env", "gray"), ("service", SERVICE)], json!({ "cluster_name": "gray" })),
                route_when(&[("x-env", "gray"), ("service", DUBBO_SERVICE)], json!({ "cluster_name": "gray_dubbo" })),
                route(".*", "stable"),
            ]),
            json!([
                cluster("gray", "LB_ROUNDROBIN", &addrs(&gray)),
                cluster("gray_dubbo", "LB_ROUNDROBIN", &addrs(&gray_dubbo)),
                cluster("stable", "LB_ROUNDROBIN", &addrs(&stable)),
            ]),
            json!([header_mutation(json!({
                "request_headers_to_add": to_add(&[("x-env", "gray"), ("x-listener", "%listener_name%")])
            }))]),
        );
        let (_gateway, addr) = common::start(&doc).await;

        // The upstream echoes the header map it received.
        let reply = call(addr, &bolt(), &bolt_call(1, SERVICE, &[("x-env", "blue")])).await;
        assert_eq!(status(&reply), 0);
        assert_eq!(reply.headers().get_str("x-env"), Some("gray"), "replaced, not appended");
        assert_eq!(reply.headers().get_str("x-listener"), Some("rpc"), "a variable's value");
        assert_eq!(reply.headers().get_str("service"), Some(SERVICE));

        // Dubbo: the attachment is written into the forwarded invocation,
        // which the mock echoes as the reply body.
        let request = dubbo_request(2, DUBBO_SERVICE, "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), 20);
        let forwarded = String::from_utf8_lossy(reply.body());
        assert!(forwarded.contains("x-env") && forwarded.contains("gray"), "{forwarded:?}");

        assert_eq!(
            (gray[0].requests(), gray_dubbo[0].requests(), stable[0].requests()),
            (1, 1, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn a_removed_request_header_is_neither_routed_on_nor_forwarded() {
    bounded(async {
        let debug = mocks(&bolt(), 1);
        let main = vec![
            MockUpstream::builder(bolt())
                .responder(echo_with_headers)
                .start(),
        ];
        let doc = document(
            "bolt",
            json!([
                route_when(&[("x-debug", "1")], json!({ "cluster_name": "debug" })),
                route(".*", "main"),
            ]),
            json!([
                cluster("debug", "LB_ROUNDROBIN", &addrs(&debug)),
                cluster("main", "LB_ROUNDROBIN", &addrs(&main)),
            ]),
            json!([header_mutation(
                json!({ "request_headers_to_remove": ["x-debug"] })
            )]),
        );
        let (_gateway, addr) = common::start(&doc).await;
        let reply = call(
            addr,
            &bolt(),
            &bolt_call(1, SERVICE, &[("x-debug", "1"), ("x-keep", "k")]),
        )
        .await;
        assert_eq!(status(&reply), 0);
        assert_eq!(reply.headers().get_str("x-debug"), None, "not forwarded");
        assert_eq!(reply.headers().get_str("x-keep"), Some("k"));
        assert_eq!((debug[0].requests(), main[0].requests()), (0, 1));
    })
    .await;
}

#[tokio::test]
async fn response_header_mutations_reach_a_bolt_client() {
    bounded(async {
        let upstream = vec![
            MockUpstream::builder(bolt())
                .responder(|req| {
                    let mut resp = echo_with_headers(req)?;
                    resp.headers_mut().push_owned(b"x-internal", b"secret");
                    Some(resp)
                })
                .start(),
        ];
        let filters = json!([header_mutation(json!({
            "response_headers_to_add": to_add(&[("x-served-by", "meshgate")]),
            "response_headers_to_remove": ["x-internal"]
        }))]);
        let (_gateway, addr) = gateway_with(&upstream, filters).await;
        let reply = call(addr, &bolt(), &bolt_call(1, SERVICE, &[("x-trace", "t1")])).await;
        assert_eq!(status(&reply), 0);
        assert_eq!(reply.headers().get_str("x-served-by"), Some("meshgate"));
        assert_eq!(reply.headers().get_str("x-internal"), None);
        assert_eq!(
            reply.headers().get_str("x-trace"),
            Some("t1"),
            "other fields kept"
        );
        assert_eq!(reply.body(), b"payload-1");
    })
    .await;
}

#[tokio::test]
async fn response_header_mutations_reach_a_dubbo_client_as_attachments() {
    bounded(async {
        // `withAttachments` is answered with a value and attachments (type
        // 4), anything else with a bare value (type 1).
        let upstream = vec![
            MockUpstream::builder(dubbo())
                .responder(|req| {
                    let attachments: &[(&str, &str)] =
                        if req.headers().get_str("method") == Some("withAttachments") {
                            &[("x-internal", "secret"), ("x-trace", "t1")]
                        } else {
                            &[]
                        };
                    Some(dubbo_value_response(req, "hello", attachments))
                })
                .start(),
        ];
        let filters = json!([header_mutation(json!({
            "response_headers_to_add": to_add(&[("x-served-by", "meshgate")]),
            "response_headers_to_remove": ["x-internal"]
        }))]);
        let (_gateway, addr) = gateway_with(&upstream, filters).await;
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let request = dubbo_request(5, DUBBO_SERVICE, "withAttachments", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), 20);
        assert_eq!(
            dubbo_response_attachments(&reply),
            (
                "hello".to_owned(),
                Some(vec![pair("x-trace", "t1"), pair("x-served-by", "meshgate")])
            )
        );
        // A response sent without attachments gets them too.
        let request = dubbo_request(6, DUBBO_SERVICE, "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), 20);
        assert_eq!(
            dubbo_response_attachments(&reply),
            (
                "hello".to_owned(),
                Some(vec![pair("x-served-by", "meshgate")])
            )
        );
        assert_eq!(counts(&upstream), [2]);
    })
    .await;
}

// ---- route-level header lists ------------------------------------------------

#[tokio::test]
async fn route_virtual_host_and_router_header_lists_are_applied() {
    bounded(async {
        let bolt_mock = MockUpstream::builder(bolt())
            .responder(|req| {
                let mut resp = echo_with_headers(req)?;
                resp.headers_mut().push_owned(b"x-internal", b"secret");
                Some(resp)
            })
            .start();
        // The Dubbo mock answers with the x-route value it received.
        let dubbo_mock = MockUpstream::builder(dubbo())
            .responder(|req| {
                let seen = req
                    .headers()
                    .get_str("x-route")
                    .unwrap_or("none")
                    .to_owned();
                Some(dubbo_value_response(
                    req,
                    &seen,
                    &[("x-internal", "secret")],
                ))
            })
            .start();
        let lists = |cluster: &str| {
            json!({
                "cluster_name": cluster,
                "request_headers_to_add": to_add(&[("x-route", "r")]),
                "request_headers_to_remove": ["x-secret"],
                "response_headers_to_add": to_add(&[("x-route-resp", "yes")])
            })
        };
        let mut doc = document(
            "Auto",
            json!([
                route_when(&[("service", DUBBO_SERVICE)], lists("d")),
                route_when(&[("service", SERVICE)], lists("b")),
            ]),
            json!([
                cluster("b", "LB_ROUNDROBIN", &[bolt_mock.addr()]),
                cluster("d", "LB_ROUNDROBIN", &[dubbo_mock.addr()]),
            ]),
            json!([]),
        );
        let router = &mut doc["servers"][0]["routers"][0];
        router["virtual_hosts"][0]["request_headers_to_add"] =
            to_add(&[("x-vhost", "%upstream_cluster%")]);
        router["response_headers_to_add"] = to_add(&[("x-router", "yes")]);
        router["response_headers_to_remove"] = json!(["x-internal"]);
        let (_gateway, addr) = common::start(&doc).await;

        let reply = call(addr, &bolt(), &bolt_call(1, SERVICE, &[("x-secret", "s")])).await;
        assert_eq!(status(&reply), 0);
        let header = |name| reply.headers().get_str(name);
        // What the upstream received, echoed back:
        assert_eq!(header("x-route"), Some("r"));
        assert_eq!(header("x-vhost"), Some("b"));
        assert_eq!(header("x-secret"), None);
        // What the response lists did:
        assert_eq!(header("x-route-resp"), Some("yes"));
        assert_eq!(header("x-router"), Some("yes"));
        assert_eq!(header("x-internal"), None);

        let request = dubbo_request(2, DUBBO_SERVICE, "sayHello", None, "x");
        let reply = call(addr, &dubbo(), &request).await;
        assert_eq!(status(&reply), 20);
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            dubbo_response_attachments(&reply),
            (
                "r".to_owned(),
                Some(vec![pair("x-route-resp", "yes"), pair("x-router", "yes")])
            )
        );
    })
    .await;
}
