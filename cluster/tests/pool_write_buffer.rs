//! The multiplexed pool's write buffer: requests are encoded into it by the
//! sending task; past its high-water mark they wait for the writer instead
//! of failing, and a request whose caller gave up before its bytes left is
//! cut out, never reaching the upstream, without corrupting the stream.

use bytes::Bytes;
use meshgate_cluster::HostStats;
use meshgate_cluster::pool::{MultiplexPool, PoolConfig, PoolCounters};
use meshgate_codecs::FrameCodec;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_test_support::eventually;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::mock::{MockUpstream, Mode};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// Requests, each this large: a few fill the write buffer's high-water
/// mark (1 MiB) and a small socket buffer.
const BIG: usize = 256 * 1024;
const REQUESTS: u64 = 24;

fn bolt() -> Arc<dyn FrameCodec> {
    Arc::new(BoltCodec::v1())
}

fn pool_at(upstream: &MockUpstream) -> Arc<MultiplexPool> {
    let stats = Arc::new(HostStats::default());
    Arc::new(MultiplexPool::new(
        upstream.addr(),
        bolt(),
        PoolConfig::default(),
        stats,
    ))
}

#[tokio::test]
async fn a_full_write_buffer_holds_requests_back_until_the_upstream_reads() {
    let upstream = MockUpstream::builder(bolt())
        .mode(Mode::Stall)
        .recv_buffer(64 * 1024)
        .start();
    let pool = pool_at(&upstream);
    let body = Bytes::from(vec![0x5a; BIG]);
    let mut tasks = Vec::new();
    for i in 1..=REQUESTS {
        let pool = Arc::clone(&pool);
        let req = bolt_request(i, body.clone());
        tasks.push(tokio::spawn(async move { pool.send(req).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Six MiB for a host that reads nothing: held back, not refused.
    assert!(
        tasks.iter().all(|task| !task.is_finished()),
        "all still waiting"
    );
    assert_eq!(PoolCounters::get(&pool.counters().overflows), 0);
    assert_eq!(PoolCounters::get(&pool.counters().in_flight), REQUESTS);

    upstream.set_mode(Mode::Echo);
    for (i, task) in (1..=REQUESTS).zip(tasks) {
        let resp = timeout(Duration::from_secs(10), task)
            .await
            .expect("in time")
            .expect("task")
            .expect("answered once the upstream reads");
        assert_eq!((resp.request_id, resp.body().len()), (i, BIG));
    }
    assert_eq!(PoolCounters::get(&pool.counters().connections_opened), 1);
}

#[tokio::test]
async fn requests_abandoned_before_their_bytes_left_never_reach_the_upstream() {
    let upstream = MockUpstream::builder(bolt())
        .mode(Mode::Stall)
        .recv_buffer(64 * 1024)
        .start();
    let pool = pool_at(&upstream);
    let body = Bytes::from(vec![0x33; BIG]);
    let mut tasks = Vec::new();
    for i in 1..=REQUESTS {
        let pool = Arc::clone(&pool);
        let req = bolt_request(i, body.clone());
        // The caller gives up while the upstream reads nothing: the first
        // batch is in the socket, the next in the buffer, the rest wait
        // for room.
        tasks.push(tokio::spawn(async move {
            timeout(Duration::from_millis(300), pool.send(req)).await
        }));
    }
    for task in tasks {
        let result = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert!(result.is_err(), "timed out: {result:?}");
    }
    let counters = pool.counters();
    assert_eq!(PoolCounters::get(&counters.cancelled), REQUESTS);

    // The upstream reads again: only what had left reaches it, answered
    // late, and the stream is intact after the cut-out requests.
    upstream.set_mode(Mode::Echo);
    let resp = timeout(
        Duration::from_secs(10),
        pool.send(bolt_request(99, Bytes::from_static(b"after"))),
    )
    .await
    .expect("in time")
    .expect("the connection still works");
    assert_eq!((resp.request_id, resp.body()), (99, &b"after"[..]));
    eventually("late answers drained", || {
        PoolCounters::get(&counters.in_flight) == 0
    })
    .await;
    let reached = upstream.requests() - 1;
    assert!(reached >= 1, "the first batch had left");
    assert!(
        reached < REQUESTS,
        "withdrawn requests never reach the upstream ({reached} did)"
    );
    assert_eq!(PoolCounters::get(&counters.late_responses), reached);
    assert_eq!(PoolCounters::get(&counters.connections_opened), 1);
}
