//! Health checks and outlier ejection through the whole gateway: a host
//! that fails its checks (or answers errors) stops receiving traffic
//! within its bound while every request still succeeds on the healthy
//! host, and gets traffic again once it recovers.

mod common;

use common::{
    addrs, bolt, bolt_call, bounded, cluster_with, counts, document, drive_ok, dubbo, dubbo_call,
    route, start,
};
use meshgate::control::Gateway;
use meshgate_cluster::{HealthCounters, Host};
use meshgate_codecs::{Frame, FrameCodec, Status};
use meshgate_test_support::{MockUpstream, echo_response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const INTERVAL_MS: u64 = 100;
const TIMEOUT_MS: u64 = 200;
const UNHEALTHY_THRESHOLD: u32 = 3;
const HEALTHY_THRESHOLD: u32 = 2;
const REQUESTS: usize = 60;

/// `interval × unhealthy_threshold`, each check allowed its timeout, plus
/// slack for a loaded machine.
fn bound(threshold: u32) -> Duration {
    Duration::from_millis((INTERVAL_MS + TIMEOUT_MS) * u64::from(threshold) + 700)
}

fn health_check(protocol: &str) -> Value {
    json!({ "health_check": {
        "protocol": protocol, "timeout": format!("{TIMEOUT_MS}ms"), "interval": format!("{INTERVAL_MS}ms"),
        "healthy_threshold": HEALTHY_THRESHOLD, "unhealthy_threshold": UNHEALTHY_THRESHOLD
    }})
}

async fn gateway(hosts: &[SocketAddr], extra: Value) -> (Gateway, SocketAddr) {
    start(&document(
        "Auto",
        json!([route(".*", "c")]),
        json!([cluster_with("c", "LB_ROUNDROBIN", hosts, extra)]),
        json!([]),
    ))
    .await
}

fn host(gateway: &Gateway, i: usize) -> Arc<Host> {
    let config = gateway.config();
    let cluster = config.clusters.get("c").expect("cluster c");
    Arc::clone(&cluster.hosts().hosts()[i])
}

async fn until_health(host: &Host, healthy: bool, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    while host.is_healthy() != healthy {
        assert!(
            start.elapsed() < limit,
            "{what}: no change after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn request(codec: &Arc<dyn FrameCodec>) -> impl Fn(usize) -> Frame + Send + Sync + 'static {
    let dubbo = codec.name() == "dubbo";
    move |i| {
        if dubbo {
            dubbo_call(i as u64 + 1, "x")
        } else {
            bolt_call(i as u64 + 1, "svc", &[])
        }
    }
}

/// Sends [`REQUESTS`] requests, all answered with success; returns how
/// many each mock received.
async fn traffic(
    addr: SocketAddr,
    codec: &Arc<dyn FrameCodec>,
    mocks: &[MockUpstream],
) -> Vec<u64> {
    let before = counts(mocks);
    drive_ok(addr, codec, 2, REQUESTS, request(codec)).await;
    counts(mocks)
        .iter()
        .zip(before)
        .map(|(after, before)| after - before)
        .collect()
}

/// Host 1 fails its checks by `fail`, gets no traffic, recovers by
/// `recover`, gets traffic again.
async fn unhealthy_host_gets_no_traffic(
    codec: Arc<dyn FrameCodec>,
    protocol: &str,
    fail: impl Fn(&MockUpstream),
    recover: impl Fn(&MockUpstream),
) {
    let mocks = vec![
        MockUpstream::start(Arc::clone(&codec)),
        MockUpstream::start(Arc::clone(&codec)),
    ];
    let (gw, addr) = gateway(&addrs(&mocks), health_check(protocol)).await;
    let sent = traffic(addr, &codec, &mocks).await;
    assert!(
        sent.iter().all(|&n| n > 0),
        "{protocol}: both hosts serve: {sent:?}"
    );

    fail(&mocks[1]);
    let took = until_health(&host(&gw, 1), false, bound(UNHEALTHY_THRESHOLD), protocol).await;
    eprintln!("{protocol}: host unhealthy {took:?} after the fault");
    let sent = traffic(addr, &codec, &mocks).await;
    assert_eq!(
        sent,
        [REQUESTS as u64, 0],
        "{protocol}: all traffic to the healthy host"
    );

    recover(&mocks[1]);
    let took = until_health(&host(&gw, 1), true, bound(HEALTHY_THRESHOLD), protocol).await;
    eprintln!("{protocol}: host healthy {took:?} after recovery");
    let sent = traffic(addr, &codec, &mocks).await;
    assert!(sent[1] > 0, "{protocol}: the host is back: {sent:?}");
    let h = host(&gw, 1);
    let counters = h.health().counters();
    assert_eq!(HealthCounters::get(&counters.marked_unhealthy), 1);
    assert_eq!(HealthCounters::get(&counters.marked_healthy), 1);
    gw.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bolt_heartbeat_checks_take_a_silent_host_out_and_back() {
    bounded(unhealthy_host_gets_no_traffic(
        bolt(),
        "bolt",
        |m| m.set_answer_pings(false),
        |m| m.set_answer_pings(true),
    ))
    .await;
}

#[tokio::test]
async fn dubbo_heartbeat_checks_take_a_silent_host_out_and_back() {
    bounded(unhealthy_host_gets_no_traffic(
        dubbo(),
        "dubbo",
        |m| m.set_answer_pings(false),
        |m| m.set_answer_pings(true),
    ))
    .await;
}

#[tokio::test]
async fn tcp_checks_take_a_host_that_stops_listening_out_and_back() {
    // The pool's connection stays up: only the check can tell.
    bounded(unhealthy_host_gets_no_traffic(
        bolt(),
        "tcp",
        MockUpstream::stop_listening,
        |m| m.restart().expect("listens again"),
    ))
    .await;
}

/// A bolt server exception (status 2, neutral 500) echoing the body.
fn server_exception(req: &Frame) -> Option<Frame> {
    let mut resp = echo_response(req);
    resp.status = Some(Status::new(2, 500));
    Some(resp)
}

#[tokio::test]
async fn outlier_detection_ejects_a_host_answering_errors_and_lets_it_back() {
    bounded(async {
        let codec = bolt();
        let good = MockUpstream::start(Arc::clone(&codec));
        let bad = MockUpstream::builder(Arc::clone(&codec))
            .responder(server_exception)
            .start();
        let mocks = [good, bad];
        let outlier = json!({ "outlier_detection": {
            "consecutive_5xx": 3, "interval": "100ms", "base_ejection_time": "600ms"
        }});
        let (gw, addr) = gateway(&addrs(&mocks), outlier).await;

        // Round robin alternates: the bad host gets every other request
        // until its third error in a row ejects it.
        let mut client =
            meshgate_test_support::client::FramedClient::connect(addr, Arc::clone(&codec))
                .await
                .expect("connects");
        let mut errors = 0;
        // When the request carrying the third error was sent: the ejection
        // began after this, so the time from here bounds it from above.
        let mut ejected_at = None;
        for id in 1..=20 {
            let sent_at = Instant::now();
            let reply = client
                .call(&bolt_call(id, "svc", &[]))
                .await
                .expect("reply");
            if reply.status.is_some_and(|s| s.code != 0) {
                errors += 1;
                if errors == 3 {
                    ejected_at = Some(sent_at);
                }
            }
        }
        assert_eq!(errors, 3, "ejected at the third error in a row");
        let ejected_at = ejected_at.expect("the third error was seen");
        assert!(!host(&gw, 1).is_healthy());
        let sent = traffic(addr, &codec, &mocks).await;
        assert_eq!(sent, [REQUESTS as u64, 0], "traffic moved to the good host");

        // Back after the ejection time (swept every interval).
        let took = until_health(&host(&gw, 1), true, Duration::from_secs(3), "ejection over").await;
        let out = ejected_at.elapsed();
        eprintln!("outlier: ejected for {out:?} (waited {took:?} after the traffic)");
        assert!(out >= Duration::from_millis(600), "returned early: {out:?}");
        let before = counts(&mocks)[1];
        let reply = client
            .call(&bolt_call(100, "svc", &[]))
            .await
            .expect("reply");
        let reply2 = client
            .call(&bolt_call(101, "svc", &[]))
            .await
            .expect("reply");
        assert!(counts(&mocks)[1] > before, "the host gets traffic again");
        assert!(
            [reply, reply2]
                .iter()
                .any(|r| r.status.is_some_and(|s| s.code == 2))
        );
        let h = host(&gw, 1);
        let counters = h.health().counters();
        assert_eq!(HealthCounters::get(&counters.ejections), 1);
        assert_eq!(HealthCounters::get(&counters.ejection_returns), 1);
        gw.stop(Duration::from_secs(1)).await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_heartbeat_protocol_is_a_config_error() {
    let doc = document(
        "Auto",
        json!([route(".*", "c")]),
        json!([cluster_with(
            "c",
            "LB_ROUNDROBIN",
            &["127.0.0.1:1".parse().unwrap()],
            health_check("nope")
        )]),
        json!([]),
    );
    let err = meshgate::config::load_str(&doc.to_string(), None).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("cluster_manager.clusters[0].health_check.protocol"),
        "{text}"
    );
}

#[tokio::test]
async fn reload_stops_the_checks_of_removed_hosts() {
    bounded(async {
        let codec = bolt();
        let mocks = [
            MockUpstream::start(Arc::clone(&codec)),
            MockUpstream::start(Arc::clone(&codec)),
        ];
        let (gw, addr) = gateway(&addrs(&mocks), health_check("bolt")).await;
        tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 3)).await;
        let pings =
            |m: &MockUpstream| meshgate_test_support::mock::MockCounters::get(&m.counters().pings);
        assert!(pings(&mocks[1]) > 0);

        let doc = document(
            "Auto",
            json!([route(".*", "c")]),
            json!([cluster_with(
                "c",
                "LB_ROUNDROBIN",
                &[mocks[0].addr()],
                health_check("bolt")
            )]),
            json!([]),
        );
        let previous = gw.config();
        let config =
            meshgate::config::load_str(&doc.to_string(), Some(&previous.clusters)).expect("valid");
        gw.reload(config).await.expect("reloads");
        assert_eq!(previous.clusters.health_tasks_running(), 0);
        assert_eq!(gw.config().clusters.health_tasks_running(), 1);
        drop(previous);

        tokio::time::sleep(Duration::from_millis(INTERVAL_MS)).await;
        let (kept, removed) = (pings(&mocks[0]), pings(&mocks[1]));
        tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 5)).await;
        assert_eq!(pings(&mocks[1]), removed, "no checks of a removed host");
        assert!(pings(&mocks[0]) > kept, "the kept host is still checked");
        let sent = traffic(addr, &codec, &mocks).await;
        assert_eq!(sent, [REQUESTS as u64, 0]);

        gw.stop(Duration::from_secs(1)).await;
        assert_eq!(gw.config().clusters.health_tasks_running(), 0);
    })
    .await;
}
