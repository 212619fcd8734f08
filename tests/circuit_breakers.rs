//! Circuit breakers through the whole gateway: a burst over `max_requests`
//! is answered "server busy" at once (not queued behind a slow upstream),
//! the overflows are counted exactly, memory stays flat across bursts and
//! normal traffic resumes; `max_connections` caps the cluster's upstream
//! connections; the retry budget keeps a failing cluster from seeing its
//! load multiplied by retries.

mod common;

use bytes::Bytes;
use common::{
    bolt, bounded, cluster_with, document, dubbo, dubbo_call, dubbo_message, route_with, start,
    wire_status,
};
use meshgate::control::Gateway;
use meshgate_cluster::{BreakerCounters, Cluster};
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_test_support::client::{CALL_TIMEOUT, FramedClient};
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::mem::rss_kib;
use meshgate_test_support::{MockUpstream, Mode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// bolt statuses (bolt.md §5).
const BOLT_OK: u32 = 0;
const BOLT_SERVER_BUSY: u32 = 4;
const BOLT_TIMEOUT: u32 = 7;
/// Dubbo statuses (dubbo.md §5).
const DUBBO_OK: u32 = 20;
const DUBBO_BAD_REQUEST: u32 = 40;

const GRACE: Duration = Duration::from_secs(1);

/// An `Auto` listener routing everything to cluster `c` over `hosts`,
/// with `cluster_extra` merged into the cluster and `route_extra` into
/// the route's action.
fn doc(hosts: &[SocketAddr], cluster_extra: Value, route_extra: Value) -> Value {
    document(
        "Auto",
        json!([route_with(".*", "c", route_extra)]),
        json!([cluster_with("c", "LB_ROUNDROBIN", hosts, cluster_extra)]),
        json!([]),
    )
}

fn breakers(thresholds: Value) -> Value {
    json!({ "circuit_breakers": [thresholds] })
}

fn the_cluster(gateway: &Gateway) -> Arc<Cluster> {
    gateway.config().clusters.get("c").expect("cluster c")
}

/// Sends `requests` pipelined on `conns` connections at once; returns every
/// reply with the time it arrived, measured from just before the first
/// send.
async fn burst(
    addr: SocketAddr,
    codec: &Arc<dyn FrameCodec>,
    requests: Vec<Frame>,
    conns: usize,
) -> HashMap<u64, (Frame, Duration)> {
    let mut shares: Vec<Vec<Frame>> = (0..conns).map(|_| Vec::new()).collect();
    for (i, request) in requests.into_iter().enumerate() {
        shares[i % conns].push(request);
    }
    let began = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let codec = Arc::clone(codec);
        tasks.push(tokio::spawn(async move {
            let client = FramedClient::connect(addr, codec).await.expect("connect");
            let (mut writer, mut reader) = client.split();
            let expected = share.len();
            for request in &share {
                writer.send(request).await.expect("send");
            }
            let mut replies = Vec::with_capacity(expected);
            while replies.len() < expected {
                let frame = tokio::time::timeout(CALL_TIMEOUT, reader.recv())
                    .await
                    .expect("every request is answered in time")
                    .expect("read a reply")
                    .expect("the gateway keeps the connection open");
                replies.push((frame, began.elapsed()));
            }
            drop(writer);
            replies
        }));
    }
    let mut all = HashMap::new();
    for task in tasks {
        for (frame, at) in task.await.expect("burst task") {
            let id = frame.request_id;
            assert!(all.insert(id, (frame, at)).is_none(), "two replies to {id}");
        }
    }
    all
}

fn bolt_burst(first_id: u64, n: u64) -> Vec<Frame> {
    (first_id..first_id + n)
        .map(|id| bolt_request(id, Bytes::from(format!("payload-{id}"))))
        .collect()
}

#[tokio::test]
async fn a_burst_over_max_requests_is_answered_busy_at_once_and_counted() {
    bounded(async {
        const DELAY: Duration = Duration::from_secs(2);
        const MAX: u64 = 20;
        const BURST: u64 = 120;
        let slow = MockUpstream::builder(bolt()).delay(DELAY, DELAY).start();
        let doc = doc(
            &[slow.addr()],
            breakers(json!({ "max_requests": MAX })),
            json!({}),
        );
        let (gateway, addr) = start(&doc).await;
        let replies = burst(addr, &bolt(), bolt_burst(0, BURST), 4).await;
        assert_eq!(replies.len() as u64, BURST);
        let (ok, busy): (Vec<_>, Vec<_>) = replies
            .values()
            .partition(|(frame, _)| wire_status(frame) == Some(BOLT_OK));
        assert_eq!(ok.len() as u64, MAX, "the first max_requests are served");
        assert_eq!(busy.len() as u64, BURST - MAX);
        for (frame, at) in &busy {
            assert_eq!(frame.kind, FrameKind::Response);
            assert_eq!(
                wire_status(frame),
                Some(BOLT_SERVER_BUSY),
                "overflow is SERVER_THREADPOOL_BUSY"
            );
            assert!(
                *at < DELAY / 2,
                "overflow reply {} took {at:?}: not queued behind the {DELAY:?} upstream",
                frame.request_id
            );
        }
        for (_, at) in &ok {
            assert!(*at >= DELAY, "served replies waited for the upstream");
        }
        let cluster = the_cluster(&gateway);
        let counters = cluster.breaker().counters();
        assert_eq!(
            BreakerCounters::get(&counters.requests_overflow),
            BURST - MAX,
            "every refused request is counted, no more"
        );
        assert_eq!(
            slow.requests(),
            MAX,
            "refused requests never reach the upstream"
        );

        // Normal traffic afterwards: every request served.
        slow.set_delay(Duration::ZERO, Duration::ZERO);
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        for id in 1000..1050 {
            let reply = client.call(&bolt_request(id, "after")).await.unwrap();
            assert_eq!(wire_status(&reply), Some(BOLT_OK));
            assert_eq!(reply.request_id, id);
        }
        assert_eq!(
            BreakerCounters::get(&counters.requests_overflow),
            BURST - MAX
        );
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn memory_stays_flat_across_repeated_bursts() {
    bounded(async {
        const MAX: u64 = 16;
        const BURST: u64 = 1000;
        const ROUNDS: u64 = 8;
        let slow = MockUpstream::builder(bolt())
            .delay(Duration::from_millis(300), Duration::from_millis(300))
            .start();
        let doc = doc(
            &[slow.addr()],
            breakers(json!({ "max_requests": MAX })),
            json!({}),
        );
        let (gateway, addr) = start(&doc).await;
        let counters_of = the_cluster(&gateway);
        let counters = counters_of.breaker().counters();
        let mut rss = Vec::new();
        for round in 0..ROUNDS {
            let replies = burst(addr, &bolt(), bolt_burst(round * BURST, BURST), 8).await;
            let busy = replies
                .values()
                .filter(|(f, _)| wire_status(f) == Some(BOLT_SERVER_BUSY))
                .count() as u64;
            let ok = replies
                .values()
                .filter(|(f, _)| wire_status(f) == Some(BOLT_OK))
                .count() as u64;
            assert_eq!(
                ok + busy,
                BURST,
                "round {round}: only served or busy replies"
            );
            assert!(ok >= MAX, "round {round}: at least max_requests served");
            rss.push(rss_kib().expect("VmRSS readable"));
        }
        let total_busy = BreakerCounters::get(&counters.requests_overflow);
        assert_eq!(
            total_busy + slow.requests(),
            ROUNDS * BURST,
            "every request was either served or counted as an overflow"
        );
        // After two warm-up rounds the gateway's memory must not grow with
        // the number of refused requests (8 × 1000 here).
        let warm = rss[1];
        let last = *rss.last().unwrap();
        println!("VmRSS by round (KiB): {rss:?}; refused in all: {total_busy}");
        assert!(
            last <= warm + 16 * 1024,
            "RSS grew from {warm} KiB to {last} KiB across bursts: {rss:?}"
        );
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn dubbo_overflow_is_its_bad_request_status_with_mosn_text() {
    bounded(async {
        const DELAY: Duration = Duration::from_secs(2);
        let slow = MockUpstream::builder(dubbo()).delay(DELAY, DELAY).start();
        let doc = doc(
            &[slow.addr()],
            breakers(json!({ "max_requests": 2 })),
            json!({}),
        );
        let (gateway, addr) = start(&doc).await;
        let requests = (0..10).map(|id| dubbo_call(id, "x")).collect();
        let replies = burst(addr, &dubbo(), requests, 1).await;
        let mut busy = 0;
        for (frame, at) in replies.values() {
            match wire_status(frame) {
                Some(DUBBO_OK) => assert!(*at >= DELAY),
                Some(DUBBO_BAD_REQUEST) => {
                    busy += 1;
                    assert!(*at < DELAY / 2, "overflow answered at once");
                    assert_eq!(dubbo_message(frame), "503|upstream overflow");
                }
                other => panic!("unexpected status {other:?}"),
            }
        }
        assert_eq!(busy, 8);
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn max_connections_caps_the_clusters_upstream_connections() {
    bounded(async {
        // One host, a pool that would open 4 connections, a cluster cap of 2.
        let host = MockUpstream::start(bolt());
        let extra = json!({
            "connections_per_host": 4,
            "circuit_breakers": [{ "max_connections": 2 }]
        });
        let (gateway, addr) = start(&doc(&[host.addr()], extra, json!({}))).await;
        let replies = burst(addr, &bolt(), bolt_burst(0, 400), 4).await;
        assert!(
            replies
                .values()
                .all(|(f, _)| wire_status(f) == Some(BOLT_OK)),
            "the capped connections carry every request"
        );
        let accepted = host
            .counters()
            .accepted
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            (1..=2).contains(&accepted),
            "{accepted} upstream connections for a cap of 2"
        );
        gateway.stop(GRACE).await;

        // Three hosts sharing a cap of 2: the cluster never holds a third
        // connection, and a host left without one answers busy.
        let hosts: Vec<_> = (0..3).map(|_| MockUpstream::start(bolt())).collect();
        let addrs: Vec<_> = hosts.iter().map(MockUpstream::addr).collect();
        let extra = breakers(json!({ "max_connections": 2 }));
        let (gateway, addr) = start(&doc(&addrs, extra, json!({}))).await;
        let replies = burst(addr, &bolt(), bolt_burst(0, 300), 3).await;
        let accepted: u64 = hosts
            .iter()
            .map(|h| {
                h.counters()
                    .accepted
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        assert_eq!(accepted, 2, "two connections for the whole cluster");
        let busy = replies
            .values()
            .filter(|(f, _)| wire_status(f) == Some(BOLT_SERVER_BUSY))
            .count() as u64;
        let ok = replies
            .values()
            .filter(|(f, _)| wire_status(f) == Some(BOLT_OK))
            .count() as u64;
        assert_eq!(ok + busy, 300);
        assert!(busy > 0, "the host without a connection answered busy");
        let cluster = the_cluster(&gateway);
        assert_eq!(
            BreakerCounters::get(&cluster.breaker().counters().connections_overflow),
            busy,
            "each busy reply is one counted connection overflow"
        );
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn the_retry_budget_stops_retries_from_multiplying_a_failing_clusters_load() {
    bounded(async {
        const REQUESTS: u64 = 50;
        // Both hosts hang: every first try times out (a try that may have
        // reached the host), and every request asks for a retry.
        let hosts = [
            MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
            MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
        ];
        let addrs = [hosts[0].addr(), hosts[1].addr()];
        let route = json!({ "retry_policy": { "retry_on": true, "retry_timeout": "1s", "num_retries": 1 } });
        // Default budget: 20 % of requests in flight, at least 3.
        let (gateway, addr) = start(&doc(&addrs, json!({}), route)).await;
        let replies = burst(addr, &bolt(), bolt_burst(0, REQUESTS), 5).await;
        assert!(
            replies
                .values()
                .all(|(f, _)| wire_status(f) == Some(BOLT_TIMEOUT)),
            "every request ends in the timeout reply"
        );
        let cluster = the_cluster(&gateway);
        let c = cluster.breaker().counters();
        let retried = BreakerCounters::get(&c.retries);
        let refused = BreakerCounters::get(&c.retry_budget_overflow);
        let seen: u64 = hosts.iter().map(MockUpstream::requests).sum();
        println!("{REQUESTS} requests: {retried} retried, {refused} refused by the budget; upstreams saw {seen}");
        assert_eq!(retried + refused, REQUESTS, "every request asked for one retry");
        assert!(
            (3..=REQUESTS / 5).contains(&retried),
            "{retried} retries: at most 20 % of {REQUESTS} in flight, at least the minimum 3"
        );
        assert_eq!(seen, REQUESTS + retried, "the upstreams saw only the admitted retries");
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn max_retries_caps_retries_below_the_budget() {
    bounded(async {
        let hosts = [
            MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
            MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
        ];
        let addrs = [hosts[0].addr(), hosts[1].addr()];
        let route = json!({ "retry_policy": { "retry_on": true, "retry_timeout": "500ms", "num_retries": 1 } });
        let extra = breakers(json!({
            "max_retries": 1,
            "retry_budget": { "budget_percent": 100.0, "min_retry_concurrency": 10 }
        }));
        let (gateway, addr) = start(&doc(&addrs, extra, route)).await;
        let replies = burst(addr, &bolt(), bolt_burst(0, 20), 2).await;
        assert_eq!(replies.len(), 20);
        let cluster = the_cluster(&gateway);
        let c = cluster.breaker().counters();
        let retried = BreakerCounters::get(&c.retries);
        assert!(retried >= 1, "one retry at a time is allowed");
        assert!(
            retried <= 2,
            "{retried} retries with max_retries 1 (the first tries time out together)"
        );
        assert_eq!(retried + BreakerCounters::get(&c.retries_overflow), 20);
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn a_bad_retry_budget_is_a_config_error_with_its_path() {
    let doc = doc(
        &["127.0.0.1:1".parse().unwrap()],
        breakers(json!({ "retry_budget": { "budget_percent": 250 } })),
        json!({}),
    );
    let err = meshgate::config::load_str(&doc.to_string(), None)
        .expect_err("a budget over 100 % is refused");
    let text = err.to_string();
    assert!(
        text.contains("circuit_breakers[0].retry_budget.budget_percent"),
        "{text}"
    );
}
