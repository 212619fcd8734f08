//! The multiplexed pool when hosts fail: upstream death mid-flight,
//! refused and hanging connects with back-off, the "written" flag, and
//! keep-alive heartbeats.

use bytes::Bytes;
use meshgate_cluster::HostStats;
use meshgate_cluster::pool::{Backoff, MultiplexPool, PoolConfig, PoolCounters, PoolError};
use meshgate_codecs::FrameCodec;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_test_support::eventually;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::mock::{MockCounters, MockUpstream, Mode};
use meshgate_test_support::net::{closed_port, unaccepting_listener};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, timeout};

fn bolt() -> Arc<dyn FrameCodec> {
    Arc::new(BoltCodec::v1())
}

fn quick_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
        jitter: 0.5,
    }
}

fn pool_at(addr: SocketAddr, config: PoolConfig) -> (Arc<MultiplexPool>, Arc<HostStats>) {
    let stats = Arc::new(HostStats::default());
    let pool = MultiplexPool::new(addr, bolt(), config, Arc::clone(&stats));
    (Arc::new(pool), stats)
}

#[tokio::test]
async fn upstream_death_resets_in_flight_then_service_resumes() {
    let upstream = MockUpstream::builder(bolt()).mode(Mode::Hang).start();
    let config = PoolConfig {
        max_connections: 2,
        backoff: quick_backoff(),
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_at(upstream.addr(), config);
    let mut in_flight = Vec::new();
    for i in 0..20u64 {
        let pool = Arc::clone(&pool);
        in_flight.push(tokio::spawn(async move {
            pool.send(bolt_request(i, Bytes::new())).await
        }));
    }
    eventually("all twenty reached the upstream", || {
        upstream.requests() == 20
    })
    .await;
    upstream.kill();
    for task in in_flight {
        let result = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        let err = result.expect_err("the upstream died");
        assert_eq!(err, PoolError::UpstreamReset { written: true });
        assert!(
            !err.is_retryable(),
            "written requests are not retried blindly"
        );
    }
    assert_eq!(PoolCounters::get(&pool.counters().resets), 20);
    eventually("connections counted closed", || {
        HostStats::get(&stats.active_connections) == 0
    })
    .await;
    assert_eq!(HostStats::get(&stats.active_requests), 0);

    // While it is down: connect refused, then fast failures during back-off.
    let err = pool
        .send(bolt_request(1, Bytes::new()))
        .await
        .expect_err("down");
    assert!(matches!(err, PoolError::ConnectRefused { .. }), "{err}");
    assert!(err.is_retryable());
    let failures = HostStats::get(&stats.connect_failures);
    assert!(failures >= 1);

    // It comes back: service resumes within the back-off cap.
    upstream.set_mode(Mode::Echo);
    upstream.restart().expect("rebind the same port");
    let resumed = timeout(Duration::from_secs(5), async {
        loop {
            match pool
                .send(bolt_request(5, Bytes::from_static(b"back")))
                .await
            {
                Ok(resp) => return resp,
                Err(err) => {
                    assert!(err.is_connect_failure(), "{err}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
    .await
    .expect("service resumed");
    assert_eq!((resumed.request_id, resumed.body()), (5, &b"back"[..]));
}

#[tokio::test]
async fn refused_connect_fails_fast_during_backoff() {
    let config = PoolConfig {
        backoff: Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(5),
            jitter: 0.0,
        },
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_at(closed_port(), config);
    let err = pool
        .send(bolt_request(1, Bytes::new()))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            PoolError::ConnectRefused {
                kind: std::io::ErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(HostStats::get(&stats.connect_failures), 1);
    // In back-off: the same error at once, without another connect.
    let started = Instant::now();
    for _ in 0..100 {
        let again = pool
            .send(bolt_request(2, Bytes::new()))
            .await
            .expect_err("still down");
        assert_eq!(again, err);
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(HostStats::get(&stats.connect_failures), 1);
}

#[tokio::test]
async fn connect_timeout_on_a_host_that_never_accepts() {
    let hole = unaccepting_listener().await;
    let config = PoolConfig {
        connect_timeout: Duration::from_millis(200),
        backoff: Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(5),
            jitter: 0.0,
        },
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_at(hole.addr(), config);
    let started = Instant::now();
    let err = timeout(
        Duration::from_secs(5),
        pool.send(bolt_request(1, Bytes::new())),
    )
    .await
    .expect("bounded by the connect timeout")
    .expect_err("never connects");
    let waited = started.elapsed();
    assert!(matches!(err, PoolError::ConnectTimeout { .. }), "{err}");
    assert!(err.is_retryable() && err.is_connect_failure());
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Requests during back-off fail at once, with the same error.
    let started = Instant::now();
    let again = pool
        .send(bolt_request(2, Bytes::new()))
        .await
        .expect_err("in back-off");
    assert_eq!(again, err);
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(HostStats::get(&stats.connect_failures), 1);
}

#[tokio::test]
async fn many_waiters_share_one_failing_connect() {
    let hole = unaccepting_listener().await;
    let config = PoolConfig {
        connect_timeout: Duration::from_millis(200),
        max_connections: 2,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_at(hole.addr(), config);
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            pool.send(bolt_request(i, Bytes::new())).await
        }));
    }
    for task in tasks {
        let result = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert!(
            matches!(result, Err(PoolError::ConnectTimeout { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        HostStats::get(&stats.connect_failures),
        1,
        "one connect for all waiters"
    );
}

#[tokio::test]
async fn requests_still_queued_when_the_connection_dies_are_not_written() {
    // The upstream stops reading: big requests fill the socket buffers, the
    // writer blocks, and later requests wait in its queue. When the
    // connection dies those were never handed to the socket.
    let upstream = MockUpstream::builder(bolt()).mode(Mode::Stall).start();
    let (pool, _) = pool_at(upstream.addr(), PoolConfig::default());
    let body = Bytes::from(vec![0x5a; 256 * 1024]);
    let mut tasks = Vec::new();
    for i in 0..400u64 {
        let pool = Arc::clone(&pool);
        let req = bolt_request(i, body.clone());
        tasks.push(tokio::spawn(async move { pool.send(req).await }));
    }
    eventually("requests in flight", || pool.ready_connections() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    upstream.kill();
    let (mut written, mut unwritten) = (0, 0);
    for task in tasks {
        let result = timeout(Duration::from_secs(10), task)
            .await
            .expect("in time")
            .expect("task");
        match result {
            Err(PoolError::UpstreamReset { written: true }) => written += 1,
            Err(PoolError::UpstreamReset { written: false }) => unwritten += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    println!("connection death with a full socket: written={written} unwritten={unwritten}");
    assert!(written > 0, "some requests had reached the socket");
    assert!(unwritten > 0, "some were still queued");
}

#[tokio::test]
async fn idle_connections_ping_and_stay_open() {
    let upstream = MockUpstream::start(bolt());
    let config = PoolConfig {
        heartbeat_interval: Some(Duration::from_millis(40)),
        ..PoolConfig::default()
    };
    let (pool, _) = pool_at(upstream.addr(), config);
    pool.send(bolt_request(1, Bytes::new()))
        .await
        .expect("first request");
    eventually("three pings", || {
        MockCounters::get(&upstream.counters().pings) >= 3
    })
    .await;
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 1);
    assert_eq!(PoolCounters::get(&pool.counters().heartbeat_timeouts), 0);
    // Pings do not disturb requests.
    let resp = pool
        .send(bolt_request(2, Bytes::from_static(b"x")))
        .await
        .expect("response");
    assert_eq!(resp.body(), b"x");
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 1);
}

#[tokio::test]
async fn unanswered_pings_close_the_connection() {
    let upstream = MockUpstream::builder(bolt()).answer_pings(false).start();
    let config = PoolConfig {
        heartbeat_interval: Some(Duration::from_millis(30)),
        heartbeat_max_misses: 2,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_at(upstream.addr(), config);
    pool.send(bolt_request(1, Bytes::new()))
        .await
        .expect("first request");
    eventually("heartbeat timeout", || {
        PoolCounters::get(&pool.counters().heartbeat_timeouts) == 1
    })
    .await;
    eventually("closed", || {
        MockCounters::get(&upstream.counters().open) == 0
    })
    .await;
    assert!(MockCounters::get(&upstream.counters().pings) >= 2);
    assert_eq!(HostStats::get(&stats.active_connections), 0);
    // The next request opens a fresh connection.
    upstream.set_answer_pings(true);
    pool.send(bolt_request(2, Bytes::new()))
        .await
        .expect("fresh connection");
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 2);
}

#[tokio::test]
async fn upstream_pings_are_answered() {
    let upstream = MockUpstream::start(bolt());
    let (pool, _) = pool_at(upstream.addr(), PoolConfig::default());
    pool.send(bolt_request(1, Bytes::new()))
        .await
        .expect("connected");
    assert_eq!(upstream.ping_all(), 1);
    eventually("pong received", || {
        MockCounters::get(&upstream.counters().pongs) == 1
    })
    .await;
    assert_eq!(PoolCounters::get(&pool.counters().pongs_sent), 1);
    assert_eq!(PoolCounters::get(&pool.counters().unknown_responses), 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_timing_with_paused_time() {
    // Time, not sockets: with the clock paused the runtime jumps straight
    // to each keep-alive deadline, so a 15 s interval takes no real time.
    let upstream = MockUpstream::builder(bolt()).answer_pings(false).start();
    let config = PoolConfig {
        heartbeat_interval: Some(Duration::from_secs(15)),
        heartbeat_max_misses: 3,
        ..PoolConfig::default()
    };
    let (pool, _) = pool_at(upstream.addr(), config);
    pool.send(bolt_request(1, Bytes::new()))
        .await
        .expect("first request");
    let started = Instant::now();
    while PoolCounters::get(&pool.counters().heartbeat_timeouts) == 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no timeout after 120 s"
        );
    }
    let after = started.elapsed();
    // First ping after 15 s idle, declared dead 3 intervals later.
    assert!(
        after >= Duration::from_secs(60) && after <= Duration::from_secs(62),
        "{after:?}"
    );
    assert_eq!(PoolCounters::get(&pool.counters().pings_sent), 3);
}
