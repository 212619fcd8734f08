//! The ping-pong pool (and `Pool`'s choice by pool mode) against mock
//! upstreams over 127.0.0.1.

use bytes::Bytes;
use meshgate_cluster::HostStats;
use meshgate_cluster::pool::{PingPongPool, Pool, PoolConfig, PoolCounters, PoolError};
use meshgate_codecs::FrameCodec;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_test_support::eventually;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::mock::{MockCounters, MockUpstream, Mode};
use meshgate_test_support::test_codec::TestCodec;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

fn ping_pong() -> Arc<dyn FrameCodec> {
    Arc::new(TestCodec::new().ping_pong())
}

fn pool_for(upstream: &MockUpstream, config: PoolConfig) -> (Arc<PingPongPool>, Arc<HostStats>) {
    let stats = Arc::new(HostStats::default());
    let pool = PingPongPool::new(upstream.addr(), ping_pong(), config, Arc::clone(&stats));
    (Arc::new(pool), stats)
}

#[tokio::test]
async fn pool_kind_follows_the_codec() {
    let addr = meshgate_test_support::net::closed_port();
    let stats = Arc::new(HostStats::default());
    let multiplex = Pool::new(
        addr,
        Arc::new(BoltCodec::v1()),
        PoolConfig::default(),
        Arc::clone(&stats),
    );
    assert!(matches!(multiplex, Pool::Multiplex(_)));
    let pp = Pool::new(addr, ping_pong(), PoolConfig::default(), stats);
    assert!(matches!(pp, Pool::PingPong(_)));
    assert_eq!(pp.addr(), addr);
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let upstream = MockUpstream::start(ping_pong());
    let codec = TestCodec::new();
    let stats = Arc::new(HostStats::default());
    let pool = Pool::new(
        upstream.addr(),
        ping_pong(),
        PoolConfig::default(),
        Arc::clone(&stats),
    );
    for i in 0..20u64 {
        let body = Bytes::from(format!("request {i}"));
        let resp = timeout(
            Duration::from_secs(5),
            pool.send(codec.request(1000 + i, body.clone())),
        )
        .await
        .expect("in time")
        .expect("response");
        assert_eq!((resp.request_id, resp.body()), (1000 + i, &body[..]));
    }
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 1);
    assert_eq!(HostStats::get(&stats.total_requests), 20);
    assert_eq!(HostStats::get(&stats.active_requests), 0);
    assert_eq!(HostStats::get(&stats.active_connections), 1);
    pool.send_oneway(codec.frame(meshgate_codecs::FrameKind::Oneway, 5, "fire"))
        .await
        .expect("oneway");
    eventually("oneway arrived", || {
        MockCounters::get(&upstream.counters().oneways) == 1
    })
    .await;
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 1);
}

#[tokio::test]
async fn concurrency_is_bounded_by_max_connections() {
    let upstream = MockUpstream::builder(ping_pong())
        .delay(Duration::from_millis(20), Duration::from_millis(20))
        .start();
    let config = PoolConfig {
        max_connections: 3,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, config);
    let codec = TestCodec::new();
    let mut tasks = Vec::new();
    for i in 0..30u64 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(format!("body {i}"));
            let resp = pool
                .send(codec.request(i, body.clone()))
                .await
                .expect("response");
            assert_eq!((resp.request_id, resp.body()), (i, &body[..]));
        }));
    }
    for task in tasks {
        timeout(Duration::from_secs(10), task)
            .await
            .expect("in time")
            .expect("task");
    }
    let accepted = MockCounters::get(&upstream.counters().accepted);
    assert!((1..=3).contains(&accepted), "{accepted} connections");
    assert_eq!(upstream.requests(), 30);
    assert_eq!(MockCounters::get(&upstream.counters().id_reuse), 0);
    assert!(pool.idle_connections() <= 3);
    assert_eq!(HostStats::get(&stats.active_requests), 0);
}

#[tokio::test]
async fn too_many_waiters_overflow() {
    let upstream = MockUpstream::builder(ping_pong()).mode(Mode::Hang).start();
    let config = PoolConfig {
        max_connections: 1,
        max_pending: 2,
        ..PoolConfig::default()
    };
    let (pool, _) = pool_for(&upstream, config);
    let codec = TestCodec::new();
    let mut hung = Vec::new();
    for i in 0..3u64 {
        let pool = Arc::clone(&pool);
        hung.push(tokio::spawn(async move {
            pool.send(codec.request(i, "x")).await
        }));
    }
    eventually("one in flight", || upstream.requests() == 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = pool
        .send(codec.request(9, "x"))
        .await
        .expect_err("no room to wait");
    assert!(matches!(err, PoolError::Overflow { .. }), "{err}");
    pool.close();
    upstream.kill();
    for task in hung {
        let result = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert!(result.is_err());
    }
}

#[tokio::test]
async fn stale_idle_connections_are_skipped() {
    let upstream = MockUpstream::start(ping_pong());
    let (pool, _) = pool_for(&upstream, PoolConfig::default());
    let codec = TestCodec::new();
    pool.send(codec.request(1, "a")).await.expect("first");
    assert_eq!(pool.idle_connections(), 1);
    // The upstream resets its idle connection; the pool notices before
    // writing and opens a fresh one: the caller sees no error.
    upstream.kill_connections();
    eventually("reset", || {
        MockCounters::get(&upstream.counters().open) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let resp = pool
        .send(codec.request(2, "b"))
        .await
        .expect("served on a fresh connection");
    assert_eq!(resp.body(), b"b");
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 2);
}

#[tokio::test]
async fn a_reused_connection_dying_before_any_reply_is_retryable_once() {
    let upstream = MockUpstream::start(ping_pong());
    let (pool, stats) = pool_for(&upstream, PoolConfig::default());
    let codec = TestCodec::new();
    pool.send(codec.request(1, "warm")).await.expect("first");
    // Now the upstream drops connections as soon as a request arrives.
    upstream.set_mode(Mode::Drop);
    let err = pool
        .send(codec.request(2, "lost"))
        .await
        .expect_err("reset");
    assert_eq!(
        err,
        PoolError::UpstreamReset { written: false },
        "reused idle connection"
    );
    assert!(err.is_retryable());
    // On a fresh connection the same failure counts as written.
    let err = pool
        .send(codec.request(3, "lost"))
        .await
        .expect_err("reset");
    assert_eq!(
        err,
        PoolError::UpstreamReset { written: true },
        "fresh connection"
    );
    assert!(!err.is_retryable());
    // The proxy's one retry succeeds once the upstream behaves.
    upstream.set_mode(Mode::Echo);
    let resp = pool.send(codec.request(4, "ok")).await.expect("retry");
    assert_eq!(resp.body(), b"ok");
    assert_eq!(PoolCounters::get(&pool.counters().resets), 2);
    assert_eq!(HostStats::get(&stats.active_connections), 1);
}

#[tokio::test]
async fn cancelled_requests_close_their_connection() {
    let upstream = MockUpstream::builder(ping_pong())
        .delay(Duration::from_millis(50), Duration::from_millis(50))
        .start();
    let (pool, stats) = pool_for(&upstream, PoolConfig::default());
    let codec = TestCodec::new();
    let gave_up = timeout(
        Duration::from_millis(10),
        pool.send(codec.request(1, "slow")),
    )
    .await;
    assert!(gave_up.is_err());
    eventually("connection dropped", || {
        HostStats::get(&stats.active_connections) == 0
    })
    .await;
    upstream.set_delay(Duration::ZERO, Duration::ZERO);
    // The next request never sees the abandoned request's answer.
    let resp = pool
        .send(codec.request(2, "fresh"))
        .await
        .expect("response");
    assert_eq!((resp.request_id, resp.body()), (2, &b"fresh"[..]));
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 2);
}

#[tokio::test]
async fn idle_connections_expire() {
    let upstream = MockUpstream::start(ping_pong());
    let config = PoolConfig {
        idle_timeout: Some(Duration::from_millis(50)),
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, config);
    pool.send(TestCodec::new().request(1, "a"))
        .await
        .expect("first");
    assert_eq!(pool.idle_connections(), 1);
    eventually("reaped", || pool.idle_connections() == 0).await;
    eventually("closed upstream side", || {
        MockCounters::get(&upstream.counters().open) == 0
    })
    .await;
    assert_eq!(HostStats::get(&stats.active_connections), 0);
}

#[tokio::test]
async fn rotation_after_max_requests() {
    let upstream = MockUpstream::start(ping_pong());
    let config = PoolConfig {
        max_requests_per_conn: 3,
        ..PoolConfig::default()
    };
    let (pool, _) = pool_for(&upstream, config);
    for i in 0..7u64 {
        pool.send(TestCodec::new().request(i, "r"))
            .await
            .expect("response");
    }
    assert_eq!(upstream.requests_per_connection(), vec![3, 3, 1]);
}

#[tokio::test]
async fn bolt_through_the_pool_enum() {
    // The enum's multiplexed side, end to end, for completeness.
    let upstream = MockUpstream::start(Arc::new(BoltCodec::v1()));
    let pool = Pool::new(
        upstream.addr(),
        Arc::new(BoltCodec::v1()),
        PoolConfig::default(),
        Arc::new(HostStats::default()),
    );
    let resp = pool
        .send(bolt_request(42, Bytes::from_static(b"hi")))
        .await
        .expect("response");
    assert_eq!((resp.request_id, resp.body()), (42, &b"hi"[..]));
    pool.close();
    let err = pool
        .send(bolt_request(43, Bytes::new()))
        .await
        .expect_err("closed");
    assert!(matches!(err, PoolError::Closed { .. }));
}
