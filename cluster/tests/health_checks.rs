//! Active health checks against real sockets on 127.0.0.1: each checker
//! kind notices a host that stops answering within
//! `interval × unhealthy_threshold` (plus the check timeout and slack),
//! takes it out of the balancer, and brings it back after
//! `healthy_threshold` good checks; reload stops the checkers of the
//! build it replaces.

mod common;

use common::configs;
use meshgate_cluster::{ClusterManager, HealthCounters, Host, LbContext};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{FrameCodec, Registry};
use meshgate_test_support::{MockHttp, MockUpstream, mock::MockCounters};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(200);
const UNHEALTHY_THRESHOLD: u32 = 3;
const HEALTHY_THRESHOLD: u32 = 2;

/// The longest a transition may take: every check of the streak may last
/// the timeout, plus an interval of jitter-free waiting each, plus slack
/// for a loaded machine.
fn bound(threshold: u32) -> Duration {
    (INTERVAL + TIMEOUT) * threshold + Duration::from_millis(700)
}

fn health_check(protocol: &str, extra: Value) -> Value {
    let mut hc = json!({
        "protocol": protocol, "timeout": "200ms", "interval": "100ms",
        "healthy_threshold": HEALTHY_THRESHOLD, "unhealthy_threshold": UNHEALTHY_THRESHOLD
    });
    if let (Some(hc), Some(extra)) = (hc.as_object_mut(), extra.as_object()) {
        hc.extend(extra.clone());
    }
    hc
}

fn manager(hosts: &[SocketAddr], health_check: Value) -> ClusterManager {
    let hosts: Vec<Value> = hosts
        .iter()
        .map(|a| json!({ "address": a.to_string() }))
        .collect();
    let doc = json!({"clusters": [
        {"name": "c", "lb_type": "LB_ROUNDROBIN", "health_check": health_check, "hosts": hosts}
    ]});
    ClusterManager::build(&configs(doc)).unwrap_or_else(|e| panic!("{e}"))
}

fn host(m: &ClusterManager, i: usize) -> Arc<Host> {
    Arc::clone(&m.get("c").expect("cluster c").hosts().hosts()[i])
}

/// Waits until `host` is `healthy` (bounded by `limit`); returns how long.
async fn until_health(host: &Host, healthy: bool, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    while host.is_healthy() != healthy {
        assert!(
            start.elapsed() < limit,
            "{what}: still {} after {:?}",
            if healthy { "unhealthy" } else { "healthy" },
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// Checks that `host` stays `healthy` for `span`.
async fn stays(host: &Host, healthy: bool, span: Duration, what: &str) {
    let start = Instant::now();
    while start.elapsed() < span {
        assert_eq!(host.is_healthy(), healthy, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every pick of the cluster goes to host `i`.
fn all_picks_go_to(m: &ClusterManager, i: usize) {
    let c = m.get("c").expect("cluster c");
    let want = host(m, i);
    for _ in 0..50 {
        let got = c.choose_host(&LbContext::default()).expect("a host");
        assert!(Arc::ptr_eq(&got, &want), "picked {}", got.address());
    }
}

#[tokio::test]
async fn tcp_checker_follows_a_listener_that_closes_and_reopens() {
    let good = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let flaky = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let m = manager(&[good.addr(), flaky.addr()], health_check("tcp", json!({})));
    assert_eq!(m.start_health_checks(&Registry::builtin()), 2);
    let h = host(&m, 1);
    stays(&h, true, INTERVAL * 3, "a listening host").await;

    flaky.kill();
    let took = until_health(&h, false, bound(UNHEALTHY_THRESHOLD), "closed listener").await;
    eprintln!("tcp: unhealthy after {took:?}");
    all_picks_go_to(&m, 0);
    assert!(host(&m, 0).is_healthy());

    flaky.restart().expect("same port again");
    let took = until_health(&h, true, bound(HEALTHY_THRESHOLD), "reopened listener").await;
    eprintln!("tcp: healthy again after {took:?}");
    let counters = h.health().counters();
    assert_eq!(HealthCounters::get(&counters.marked_unhealthy), 1);
    assert_eq!(HealthCounters::get(&counters.marked_healthy), 1);
    assert!(HealthCounters::get(&counters.checks_failed) >= u64::from(UNHEALTHY_THRESHOLD));
}

#[tokio::test]
async fn http_checker_follows_the_status_it_gets() {
    let good = MockHttp::start(200);
    let flaky = MockHttp::start(200);
    let hc = health_check(
        "Http1",
        json!({"check_config": {"http_check_config": {"path": "/health", "expected_codes": [200, 204]}}}),
    );
    let m = manager(&[good.addr(), flaky.addr()], hc);
    m.start_health_checks(&Registry::builtin());
    let h = host(&m, 1);
    stays(&h, true, INTERVAL * 3, "200").await;
    flaky.set_status(204);
    stays(&h, true, INTERVAL * 3, "204 is expected too").await;
    assert!(
        flaky
            .request_lines()
            .iter()
            .all(|l| l == "GET /health HTTP/1.1"),
        "{:?}",
        flaky.request_lines()
    );

    flaky.set_status(503);
    let took = until_health(&h, false, bound(UNHEALTHY_THRESHOLD), "503").await;
    eprintln!("http: unhealthy after {took:?}");
    all_picks_go_to(&m, 0);

    flaky.set_status(200);
    until_health(&h, true, bound(HEALTHY_THRESHOLD), "200 again").await;
    assert!(good.requests() > 0);
}

/// A framed upstream that stops answering heartbeats (but keeps its
/// connection and keeps serving requests) is unhealthy; answering again
/// brings it back.
async fn heartbeat_checker_follows_pongs(codec: Arc<dyn FrameCodec>, protocol: &str) {
    let good = MockUpstream::start(Arc::clone(&codec));
    let flaky = MockUpstream::start(Arc::clone(&codec));
    let m = manager(
        &[good.addr(), flaky.addr()],
        health_check(protocol, json!({})),
    );
    m.start_health_checks(&Registry::builtin());
    let h = host(&m, 1);
    stays(&h, true, INTERVAL * 3, "answering pings").await;
    assert!(
        MockCounters::get(&flaky.counters().pings) >= 2,
        "{protocol}: pings sent"
    );
    // One connection kept across checks.
    assert_eq!(
        MockCounters::get(&flaky.counters().accepted),
        1,
        "{protocol}"
    );

    flaky.set_answer_pings(false);
    let took = until_health(&h, false, bound(UNHEALTHY_THRESHOLD), protocol).await;
    eprintln!("{protocol}: unhealthy after {took:?}");
    all_picks_go_to(&m, 0);

    flaky.set_answer_pings(true);
    let took = until_health(&h, true, bound(HEALTHY_THRESHOLD), protocol).await;
    eprintln!("{protocol}: healthy again after {took:?}");
    assert!(host(&m, 0).is_healthy());
}

#[tokio::test]
async fn bolt_heartbeat_checker_follows_pongs() {
    heartbeat_checker_follows_pongs(Arc::new(BoltCodec::v1()), "bolt").await;
}

#[tokio::test]
async fn dubbo_heartbeat_checker_follows_pongs() {
    heartbeat_checker_follows_pongs(Arc::new(DubboCodec::new()), "dubbo").await;
}

#[tokio::test]
async fn reload_stops_the_old_checkers_and_keeps_host_health() {
    let kept = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let removed = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let old = manager(
        &[kept.addr(), removed.addr()],
        health_check("bolt", json!({})),
    );
    assert_eq!(old.start_health_checks(&Registry::builtin()), 2);
    kept.set_answer_pings(false);
    until_health(
        &host(&old, 0),
        false,
        bound(UNHEALTHY_THRESHOLD),
        "before reload",
    )
    .await;

    let doc = json!({"clusters": [{"name": "c", "health_check": health_check("bolt", json!({})),
        "hosts": [{"address": kept.addr().to_string()}]}]});
    let new = old.rebuild(&configs(doc)).expect("rebuilds");
    assert_eq!(new.start_health_checks(&Registry::builtin()), 1);
    old.stop_health_checks();
    tokio::task::yield_now().await;
    assert_eq!(old.health_tasks_running(), 0);
    // The kept host is still unhealthy in the new build, and recovers there.
    assert!(!host(&new, 0).is_healthy());
    kept.set_answer_pings(true);
    until_health(
        &host(&new, 0),
        true,
        bound(HEALTHY_THRESHOLD),
        "after reload",
    )
    .await;

    // The removed host hears nothing more.
    tokio::time::sleep(INTERVAL).await;
    let pings = MockCounters::get(&removed.counters().pings);
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(MockCounters::get(&removed.counters().pings), pings);

    // A build without health checks clears what the checks had set.
    kept.set_answer_pings(false);
    until_health(&host(&new, 0), false, bound(UNHEALTHY_THRESHOLD), "again").await;
    let doc = json!({"clusters": [{"name": "c", "hosts": [{"address": kept.addr().to_string()}]}]});
    let unchecked = new.rebuild(&configs(doc)).expect("rebuilds");
    assert_eq!(unchecked.start_health_checks(&Registry::builtin()), 0);
    new.stop_health_checks();
    assert!(host(&unchecked, 0).is_healthy());
}

#[tokio::test]
async fn dropping_the_manager_stops_its_checkers() {
    let up = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let m = manager(&[up.addr()], health_check("bolt", json!({})));
    m.start_health_checks(&Registry::builtin());
    tokio::time::sleep(INTERVAL * 3).await;
    drop(m);
    tokio::time::sleep(INTERVAL).await;
    let pings = MockCounters::get(&up.counters().pings);
    assert!(pings > 0);
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(MockCounters::get(&up.counters().pings), pings);
}
