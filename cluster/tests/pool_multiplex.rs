//! The multiplexed pool against mock upstreams over 127.0.0.1: ids, the
//! crossed-wire check, cancellation, rotation, GoAway, overflow, close.

use bytes::Bytes;
use meshgate_cluster::HostStats;
use meshgate_cluster::pool::{MultiplexPool, PoolConfig, PoolCounters, PoolError};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::{FrameCodec, FrameKind};
use meshgate_test_support::eventually;
use meshgate_test_support::frames::{bolt_goaway, bolt_request, decoded};
use meshgate_test_support::mock::{MockCounters, MockUpstream, Mode};
use meshgate_test_support::test_codec::TestCodec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(30);

fn bolt() -> Arc<dyn FrameCodec> {
    Arc::new(BoltCodec::v1())
}

fn pool_for(
    upstream: &MockUpstream,
    codec: Arc<dyn FrameCodec>,
    config: PoolConfig,
) -> (Arc<MultiplexPool>, Arc<HostStats>) {
    let stats = Arc::new(HostStats::default());
    let pool = MultiplexPool::new(upstream.addr(), codec, config, Arc::clone(&stats));
    (Arc::new(pool), stats)
}

/// A random payload of 8 to 200 bytes starting with `tag` (splitmix64
/// fill: the check needs unpredictable bytes, not a CSPRNG, and ChaCha in
/// a debug build costs more than the pool under test).
fn random_body(rng: &mut impl Rng, tag: u64) -> Bytes {
    let len = rng.random_range(0..24usize);
    let mut state = rng.random::<u64>();
    let mut body = Vec::with_capacity(8 + len * 8);
    body.extend_from_slice(&tag.to_be_bytes());
    for _ in 0..len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        body.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    Bytes::from(body)
}

#[derive(Default, Debug)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    lost: AtomicU64,
    crossed: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_wire_64_callers_over_2_connections() {
    const CALLERS: u64 = 64;
    const PER_CALLER: u64 = 500;
    let upstream = MockUpstream::builder(bolt())
        .delay(Duration::ZERO, Duration::from_millis(2))
        .start();
    let config = PoolConfig {
        max_connections: 2,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, bolt(), config);
    let tally = Arc::new(Tally::default());
    let run = async {
        let mut tasks = Vec::new();
        for caller in 0..CALLERS {
            let pool = Arc::clone(&pool);
            let tally = Arc::clone(&tally);
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(caller);
                for i in 0..PER_CALLER {
                    // Every caller uses the same downstream ids: they
                    // collide across callers all the time.
                    let id = i + 1;
                    let body = random_body(&mut rng, caller << 32 | i);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    match timeout(
                        Duration::from_secs(5),
                        pool.send(bolt_request(id, body.clone())),
                    )
                    .await
                    {
                        Ok(Ok(resp))
                            if resp.request_id == id
                                && resp.body() == body
                                && resp.kind == FrameKind::Response =>
                        {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Ok(_)) => {
                            tally.crossed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(_)) | Err(_) => {
                            tally.lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("caller task");
        }
    };
    let started = tokio::time::Instant::now();
    timeout(BOUND, run)
        .await
        .expect("crossed-wire run finished in time");
    let elapsed = started.elapsed();

    let sent = tally.sent.load(Ordering::Relaxed);
    let received = upstream.requests();
    let duplicated = received.saturating_sub(sent);
    println!(
        "crossed-wire (pool): sent={sent} ok={} lost={} crossed={} duplicated={duplicated} \
         upstream_received={received} connections={} in {elapsed:?}",
        tally.ok.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        tally.crossed.load(Ordering::Relaxed),
        MockCounters::get(&upstream.counters().accepted),
    );
    assert_eq!(sent, CALLERS * PER_CALLER);
    assert_eq!(tally.ok.load(Ordering::Relaxed), sent);
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0);
    assert_eq!(tally.crossed.load(Ordering::Relaxed), 0);
    assert_eq!(
        received, sent,
        "each request reached the upstream exactly once"
    );
    assert_eq!(MockCounters::get(&upstream.counters().id_reuse), 0);
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 2);
    assert_eq!(pool.ready_connections(), 2);
    let per_conn = upstream.requests_per_connection();
    assert!(
        per_conn.iter().all(|&n| n > sent / 10),
        "requests spread over both connections: {per_conn:?}"
    );
    assert_eq!(HostStats::get(&stats.active_requests), 0);
    assert_eq!(HostStats::get(&stats.total_requests), sent);
    assert_eq!(HostStats::get(&stats.active_connections), 2);
}

#[tokio::test]
async fn colliding_downstream_ids_are_kept_apart() {
    let upstream = MockUpstream::builder(bolt())
        .delay(Duration::from_millis(1), Duration::from_millis(10))
        .start();
    let (pool, _) = pool_for(&upstream, bolt(), PoolConfig::default());
    let mut tasks = Vec::new();
    for n in 0..200u32 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            let body = Bytes::from(format!("caller {n}"));
            let resp = pool
                .send(bolt_request(7, body.clone()))
                .await
                .expect("response");
            assert_eq!(resp.request_id, 7);
            assert_eq!(resp.body(), body);
            // The id was restored in the wire bytes too (the zero-copy
            // forward path writes those, unchanged).
            assert!(resp.unchanged_wire().is_some());
            let forwarded = decoded(&BoltCodec::v1(), &resp);
            assert_eq!((forwarded.request_id, forwarded.body()), (7, &body[..]));
        }));
    }
    timeout(BOUND, async {
        for task in tasks {
            task.await.expect("caller");
        }
    })
    .await
    .expect("in time");
    assert_eq!(upstream.requests(), 200);
    assert_eq!(MockCounters::get(&upstream.counters().id_reuse), 0);
}

#[tokio::test]
async fn send_keep_leaves_the_request_as_it_was_for_another_try() {
    let upstream = MockUpstream::builder(bolt()).start();
    let (pool, _) = pool_for(&upstream, bolt(), PoolConfig::default());
    let body = Bytes::from_static(b"kept");
    let mut request = bolt_request(7, body.clone());
    let original = request.wire().expect("decoded").to_vec();
    // Twice, as a retry would: the first send has no connection yet (the
    // slow path, which takes a copy), the second finds one ready.
    for attempt in 0..2 {
        let resp = timeout(BOUND, pool.send_keep(&mut request))
            .await
            .expect("in time")
            .expect("response");
        assert_eq!(
            (resp.request_id, resp.body()),
            (7, &body[..]),
            "attempt {attempt}"
        );
        assert_eq!(request.request_id, 7, "the caller's id is back");
        assert_eq!(
            request.wire().expect("wire kept").to_vec(),
            original,
            "the caller's bytes are as they were"
        );
    }
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_id_space_wraps_without_reusing_in_flight_ids() {
    // Ids 1..=15 on one connection, up to 14 in flight, and callers that
    // give up early so abandoned ids must stay reserved until answered.
    let codec: Arc<dyn FrameCodec> = Arc::new(TestCodec::new().with_max_request_id(15));
    let upstream = MockUpstream::builder(Arc::clone(&codec))
        .delay(Duration::ZERO, Duration::from_millis(3))
        .start();
    let config = PoolConfig {
        max_in_flight_per_conn: 14,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, Arc::clone(&codec), config);
    let test = TestCodec::new();
    let tally = Arc::new(Tally::default());
    let overflows = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for caller in 0..8u64 {
        let (pool, tally, overflows) = (
            Arc::clone(&pool),
            Arc::clone(&tally),
            Arc::clone(&overflows),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(caller);
            for i in 0..300u64 {
                let id = caller * 1000 + i;
                let body = random_body(&mut rng, id);
                let limit = if i % 5 == 0 {
                    Duration::from_micros(500)
                } else {
                    Duration::from_secs(5)
                };
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match timeout(limit, pool.send(test.request(id, body.clone()))).await {
                    Ok(Ok(resp)) if resp.request_id == id && resp.body() == body => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(_)) => {
                        tally.crossed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(PoolError::Overflow { .. })) => {
                        // Abandoned ids still count: the connection is full
                        // until their late answers arrive.
                        overflows.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Ok(Err(_)) => {
                        tally.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {}
                }
            }
        }));
    }
    timeout(BOUND, async {
        for task in tasks {
            task.await.expect("caller");
        }
    })
    .await
    .expect("in time");
    eventually("late responses drained", || {
        HostStats::get(&stats.active_requests) == 0
    })
    .await;
    println!(
        "tiny ids: sent={} ok={} crossed={} lost={} overflow={} cancelled={} late={}",
        tally.sent.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
        tally.crossed.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        overflows.load(Ordering::Relaxed),
        PoolCounters::get(&pool.counters().cancelled),
        PoolCounters::get(&pool.counters().late_responses),
    );
    assert_eq!(tally.crossed.load(Ordering::Relaxed), 0);
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0);
    assert_eq!(
        MockCounters::get(&upstream.counters().id_reuse),
        0,
        "no in-flight id was reused"
    );
    assert!(tally.ok.load(Ordering::Relaxed) > 1000);
    assert_eq!(MockCounters::get(&upstream.counters().accepted), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_never_receive_or_steal_responses() {
    let upstream = MockUpstream::builder(bolt())
        .delay(Duration::ZERO, Duration::from_millis(3))
        .start();
    let config = PoolConfig {
        max_connections: 2,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, bolt(), config);
    let tally = Arc::new(Tally::default());
    let timed_out = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for caller in 0..32u64 {
        let (pool, tally, timed_out) = (
            Arc::clone(&pool),
            Arc::clone(&tally),
            Arc::clone(&timed_out),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(caller);
            for i in 0..300u64 {
                let id = i + 1;
                let body = random_body(&mut rng, caller << 32 | i);
                let limit = Duration::from_micros(rng.random_range(50..20_000));
                tally.sent.fetch_add(1, Ordering::Relaxed);
                match timeout(limit, pool.send(bolt_request(id, body.clone()))).await {
                    Ok(Ok(resp)) if resp.request_id == id && resp.body() == body => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(_)) => {
                        tally.crossed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(_)) => {
                        tally.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    timeout(BOUND, async {
        for task in tasks {
            task.await.expect("caller");
        }
    })
    .await
    .expect("in time");
    eventually("late responses drained", || {
        HostStats::get(&stats.active_requests) == 0
    })
    .await;

    // Afterwards, fresh requests get exactly their own answers.
    for i in 0..200u64 {
        let body = Bytes::from(format!("after {i}"));
        let resp = timeout(
            Duration::from_secs(5),
            pool.send(bolt_request(i + 1, body.clone())),
        )
        .await
        .expect("in time")
        .expect("response");
        assert_eq!((resp.request_id, resp.body()), (i + 1, &body[..]));
    }
    let counters = pool.counters();
    let late = PoolCounters::get(&counters.late_responses);
    let cancelled = PoolCounters::get(&counters.cancelled);
    println!(
        "cancellation: sent={} ok={} timed_out={} crossed={} lost={} cancelled={cancelled} late={late} \
         upstream_received={} unknown={}",
        tally.sent.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
        timed_out.load(Ordering::Relaxed),
        tally.crossed.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
        upstream.requests(),
        PoolCounters::get(&counters.unknown_responses),
    );
    assert_eq!(tally.crossed.load(Ordering::Relaxed), 0);
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0);
    assert!(
        timed_out.load(Ordering::Relaxed) > 0,
        "some callers gave up"
    );
    assert!(late > 0, "some abandoned requests were answered late");
    assert!(late <= cancelled);
    assert_eq!(PoolCounters::get(&counters.unknown_responses), 0);
    // Abandoned before being written = never sent; the rest all reached it.
    assert!(upstream.requests() <= tally.sent.load(Ordering::Relaxed) + 200);
    assert_eq!(MockCounters::get(&upstream.counters().id_reuse), 0);
}

#[tokio::test]
async fn max_requests_per_conn_rotates_connections() {
    let upstream = MockUpstream::start(bolt());
    let config = PoolConfig {
        max_requests_per_conn: 10,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, bolt(), config);
    for i in 0..35u64 {
        let resp = timeout(
            Duration::from_secs(5),
            pool.send(bolt_request(i, Bytes::from(vec![i as u8; 3]))),
        )
        .await
        .expect("in time")
        .expect("response");
        assert_eq!(resp.request_id, i);
    }
    assert_eq!(upstream.requests_per_connection(), vec![10, 10, 10, 5]);
    eventually("drained connections closed", || {
        MockCounters::get(&upstream.counters().open) == 1
    })
    .await;
    assert!(PoolCounters::get(&pool.counters().drains) >= 3);
    eventually("one connection counted", || {
        HostStats::get(&stats.active_connections) == 1
    })
    .await;

    // Concurrent callers: no connection ever carries more than 10.
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            pool.send(bolt_request(i, Bytes::new())).await
        }));
    }
    for task in tasks {
        let resp = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert!(resp.is_ok(), "{resp:?}");
    }
    let per_conn = upstream.requests_per_connection();
    assert!(per_conn.iter().all(|&n| n <= 10), "{per_conn:?}");
    assert_eq!(per_conn.iter().sum::<u64>(), 135);
}

#[tokio::test]
async fn goaway_drains_the_connection_and_a_new_one_takes_over() {
    let upstream = MockUpstream::builder(bolt())
        .delay(Duration::from_millis(100), Duration::from_millis(100))
        .start();
    let (pool, _) = pool_for(&upstream, bolt(), PoolConfig::default());
    // One request in flight on the first connection.
    let slow = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            pool.send(bolt_request(1, Bytes::from_static(b"slow")))
                .await
        })
    };
    eventually("request reached the upstream", || upstream.requests() == 1).await;
    assert_eq!(upstream.send_to_all(&bolt_goaway()), 1);
    eventually("GoAway read", || {
        PoolCounters::get(&pool.counters().goaways) == 1
    })
    .await;
    // New requests go to a new connection; the in-flight one still finishes.
    upstream.set_delay(Duration::ZERO, Duration::ZERO);
    let resp = pool
        .send(bolt_request(2, Bytes::from_static(b"new")))
        .await
        .expect("response");
    assert_eq!(resp.body(), b"new");
    let resp = timeout(Duration::from_secs(5), slow)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    assert_eq!(resp.body(), b"slow");
    assert_eq!(upstream.requests_per_connection(), vec![1, 1]);
    eventually("the drained connection closed", || {
        MockCounters::get(&upstream.counters().open) == 1
    })
    .await;
}

#[tokio::test]
async fn full_connections_overflow_at_once() {
    let upstream = MockUpstream::builder(bolt()).mode(Mode::Hang).start();
    let config = PoolConfig {
        max_in_flight_per_conn: 4,
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, bolt(), config);
    let mut hung = Vec::new();
    for i in 0..4u64 {
        let pool = Arc::clone(&pool);
        hung.push(tokio::spawn(async move {
            pool.send(bolt_request(i, Bytes::new())).await
        }));
    }
    eventually("four requests in flight", || upstream.requests() == 4).await;
    let err = timeout(
        Duration::from_millis(500),
        pool.send(bolt_request(9, Bytes::new())),
    )
    .await
    .expect("overflow is immediate")
    .expect_err("no room");
    assert!(matches!(err, PoolError::Overflow { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(HostStats::get(&stats.active_requests), 4);
    upstream.kill();
    for task in hung {
        let result = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert_eq!(
            result.expect_err("reset"),
            PoolError::UpstreamReset { written: true }
        );
    }
}

#[tokio::test]
async fn oneway_requests_are_sent_and_never_wait() {
    let upstream = MockUpstream::start(bolt());
    let (pool, stats) = pool_for(&upstream, bolt(), PoolConfig::default());
    for i in 0..20u64 {
        let req = meshgate_test_support::frames::bolt_oneway(i, Bytes::from_static(b"fire"));
        timeout(Duration::from_secs(5), pool.send_oneway(req))
            .await
            .expect("in time")
            .expect("queued");
    }
    eventually("oneways arrived", || {
        MockCounters::get(&upstream.counters().oneways) == 20
    })
    .await;
    assert_eq!(MockCounters::get(&upstream.counters().responses), 0);
    assert_eq!(HostStats::get(&stats.total_requests), 20);
    assert_eq!(HostStats::get(&stats.active_requests), 0);
}

#[tokio::test]
async fn close_drains_in_flight_requests_then_refuses() {
    let upstream = MockUpstream::builder(bolt())
        .delay(Duration::from_millis(50), Duration::from_millis(50))
        .start();
    let (pool, stats) = pool_for(&upstream, bolt(), PoolConfig::default());
    let mut tasks = Vec::new();
    for i in 0..10u64 {
        let pool = Arc::clone(&pool);
        tasks.push(tokio::spawn(async move {
            pool.send(bolt_request(i, Bytes::new())).await
        }));
    }
    eventually("all in flight", || upstream.requests() == 10).await;
    pool.close();
    let err = pool
        .send(bolt_request(99, Bytes::new()))
        .await
        .expect_err("closed");
    assert!(matches!(err, PoolError::Closed { .. }), "{err}");
    for task in tasks {
        let resp = timeout(Duration::from_secs(5), task)
            .await
            .expect("in time")
            .expect("task");
        assert!(
            resp.is_ok(),
            "in-flight requests finish during drain: {resp:?}"
        );
    }
    eventually("connection closed after drain", || {
        MockCounters::get(&upstream.counters().open) == 0
    })
    .await;
    eventually("stats updated", || {
        HostStats::get(&stats.active_connections) == 0
    })
    .await;
}

#[tokio::test]
async fn a_draining_connection_gives_up_after_drain_timeout() {
    let upstream = MockUpstream::builder(bolt()).mode(Mode::Hang).start();
    let config = PoolConfig {
        drain_timeout: Duration::from_millis(100),
        ..PoolConfig::default()
    };
    let (pool, stats) = pool_for(&upstream, bolt(), config);
    let hung = {
        let pool = Arc::clone(&pool);
        tokio::spawn(async move { pool.send(bolt_request(1, Bytes::new())).await })
    };
    eventually("in flight", || upstream.requests() == 1).await;
    pool.close();
    let result = timeout(Duration::from_secs(5), hung)
        .await
        .expect("bounded by drain_timeout")
        .expect("task");
    assert_eq!(
        result.expect_err("gave up"),
        PoolError::UpstreamReset { written: true }
    );
    eventually("closed", || HostStats::get(&stats.active_connections) == 0).await;
    eventually("upstream saw the close", || {
        MockCounters::get(&upstream.counters().open) == 0
    })
    .await;
}
