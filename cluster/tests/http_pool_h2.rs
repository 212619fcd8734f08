//! The h2c pool against real hyper upstreams on 127.0.0.1: multiplexing,
//! the server's stream limit, GOAWAY, connection death, cancellation,
//! rotation, idle timeout, streaming without buffering, trailers, shared
//! connect failures.

#[path = "common/http_upstream.rs"]
mod http_upstream;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use http_upstream::*;
use hyper::body::{Frame, Incoming};
use meshgate_cluster::pool::http::HttpPoolCounters;
use meshgate_cluster::{HttpPool, HttpPoolError, HttpPoolSettings, HttpVersion};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Barrier, Notify};
use tokio::time::Instant;

#[tokio::test]
async fn h2_cancelled_request_frees_its_stream_and_the_connection_serves_on() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = serve(Proto::H2 { max_streams: 100 }, {
        let arrived = Arc::clone(&arrived);
        move |req: Request<Incoming>| {
            let arrived = Arc::clone(&arrived);
            async move {
                if req.uri().path() == "/hang" {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                ok("fine")
            }
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let hanging = tokio::spawn({
        let pool = pool.clone();
        async move { pool.send(get("/hang")).await.map(|_| ()) }
    });
    eventually("request at the upstream", || {
        arrived.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(pool.stats().in_flight, 1);
    // The proxy's per-try timeout drops the future.
    hanging.abort();
    eventually("stream released", || pool.stats().in_flight == 0).await;
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("fine"))
    );
    assert_eq!(upstream.accepts(), 1);
}

#[tokio::test]
async fn h2_concurrent_requests_share_one_connection() {
    const N: usize = 16;
    let barrier = Arc::new(Barrier::new(N));
    let upstream = serve(Proto::H2 { max_streams: 100 }, move |_req| {
        let barrier = Arc::clone(&barrier);
        async move {
            // Answers only once all N are in flight at once.
            barrier.wait().await;
            ok("together")
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let sends = (0..N).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { fetch(&pool, get("/")).await })
    });
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(
            answer.expect("task"),
            (StatusCode::OK, Bytes::from("together"))
        );
    }
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(pool.stats().in_flight, 0);
}

#[tokio::test]
async fn h2_opens_a_second_connection_at_the_servers_stream_limit() {
    let barrier = Arc::new(Barrier::new(4));
    let upstream = serve(
        Proto::H2 { max_streams: 2 },
        move |req: Request<Incoming>| {
            let barrier = Arc::clone(&barrier);
            async move {
                if req.uri().path() == "/together" {
                    barrier.wait().await;
                }
                ok("done")
            }
        },
    )
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    // The first exchange brings the server's SETTINGS.
    fetch(&pool, get("/warm")).await;
    let sends = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { fetch(&pool, get("/together")).await })
    });
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(answer.expect("task").0, StatusCode::OK);
    }
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn h2_goaway_sends_new_streams_to_a_fresh_connection_and_lets_old_ones_finish() {
    let release = Arc::new(Notify::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = serve(Proto::H2 { max_streams: 100 }, {
        let release = Arc::clone(&release);
        let arrived = Arc::clone(&arrived);
        move |req: Request<Incoming>| {
            let release = Arc::clone(&release);
            let arrived = Arc::clone(&arrived);
            async move {
                if req.uri().path() == "/slow" {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    return ok("slow done");
                }
                ok("fast")
            }
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let slow = tokio::spawn({
        let pool = pool.clone();
        async move { fetch(&pool, get("/slow")).await }
    });
    eventually("slow request at the upstream", || {
        arrived.load(Ordering::SeqCst) == 1
    })
    .await;
    upstream.goaway();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_eq!(
            fetch(&pool, get("/fast")).await,
            (StatusCode::OK, Bytes::from("fast"))
        );
    }
    assert_eq!(upstream.accepts(), 2);
    assert_eq!(HttpPoolCounters::get(&pool.counters().goaways), 1);
    release.notify_one();
    let slow = tokio::time::timeout(LIMIT, slow)
        .await
        .expect("slow in time")
        .expect("task");
    assert_eq!(slow, (StatusCode::OK, Bytes::from("slow done")));
    upstream.wait_closed(1).await;
}

#[tokio::test]
async fn h2_dead_connection_fails_its_streams_and_the_next_send_reconnects() {
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = serve(Proto::H2 { max_streams: 100 }, {
        let arrived = Arc::clone(&arrived);
        move |req: Request<Incoming>| {
            let arrived = Arc::clone(&arrived);
            async move {
                if req.uri().path() == "/hang" {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                ok("alive")
            }
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let hanging = tokio::spawn({
        let pool = pool.clone();
        async move { send(&pool, get("/hang")).await.map(|_| ()) }
    });
    eventually("request at the upstream", || {
        arrived.load(Ordering::SeqCst) == 1
    })
    .await;
    upstream.kill_connections();
    let err = tokio::time::timeout(LIMIT, hanging)
        .await
        .expect("fails in time")
        .expect("task")
        .expect_err("its connection died");
    assert!(matches!(err, HttpPoolError::Reset { .. }), "{err}");
    assert!(!err.is_retriable_before_write());
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("alive"))
    );
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn h2_request_body_streams_without_buffering() {
    request_body_is_pulled_as_the_upstream_reads(
        Proto::H2 { max_streams: 100 },
        HttpVersion::Http2,
    )
    .await;
}

#[tokio::test]
async fn h2_response_body_streams_without_buffering() {
    response_body_is_produced_as_the_caller_reads(
        Proto::H2 { max_streams: 100 },
        HttpVersion::Http2,
    )
    .await;
}

#[tokio::test]
async fn h2_trailers_round_trip() {
    let upstream = serve(
        Proto::H2 { max_streams: 100 },
        |req: Request<Incoming>| async move {
            let collected = req.into_body().collect().await.expect("request body");
            let seen = collected
                .trailers()
                .and_then(|t| t.get("x-checksum"))
                .cloned()
                .unwrap_or(HeaderValue::from_static("none"));
            let data = collected.to_bytes();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            trailers.insert("x-seen-checksum", seen);
            let frames = futures_util::stream::iter([
                Ok::<_, Infallible>(Frame::data(data)),
                Ok(Frame::trailers(trailers)),
            ]);
            Response::new(StreamBody::new(frames).boxed_unsync())
        },
    )
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let mut request_trailers = HeaderMap::new();
    request_trailers.insert("x-checksum", HeaderValue::from_static("abc123"));
    let frames = futures_util::stream::iter([
        Ok::<_, meshgate_cluster::HttpBodyError>(Frame::data(Bytes::from_static(b"grpc-frame"))),
        Ok(Frame::trailers(request_trailers)),
    ]);
    let req = Request::post("/pkg.Svc/Call")
        .header(http::header::HOST, "upstream.test")
        .header("content-type", "application/grpc")
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("request");
    let resp = send(&pool, req).await.expect("send");
    let collected = resp.into_body().collect().await.expect("response body");
    let trailers = collected.trailers().cloned().expect("response trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-seen-checksum"], "abc123");
    assert_eq!(collected.to_bytes(), "grpc-frame");
}

#[tokio::test]
async fn h2_callers_waiting_for_a_connect_share_its_failure() {
    let (_listener, _fillers, addr) = black_hole().await;
    let settings = HttpPoolSettings {
        connect_timeout: Duration::from_millis(300),
        ..HttpPoolSettings::default()
    };
    let pool = HttpPool::new(addr, HttpVersion::Http2, settings);
    let start = Instant::now();
    let sends = (0..8).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { send(&pool, get("/")).await.map(|_| ()) })
    });
    for result in futures_util::future::join_all(sends).await {
        let err = result.expect("task").expect_err("the connect hangs");
        assert!(matches!(err, HttpPoolError::ConnectTimeout { .. }), "{err}");
    }
    // One connect timeout, not eight in a row.
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(pool.stats().connect_failures, 1);
}

#[tokio::test]
async fn h2_max_requests_per_conn_rotates_connections() {
    let upstream = hello_upstream(Proto::H2 { max_streams: 100 }).await;
    let settings = HttpPoolSettings {
        max_requests_per_conn: 2,
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http2, settings);
    for _ in 0..6 {
        assert_eq!(
            fetch(&pool, get("/")).await,
            (StatusCode::OK, Bytes::from("hello"))
        );
    }
    assert_eq!(upstream.accepts(), 3);
    // Retired connections close once their streams are done.
    upstream.wait_closed(2).await;
}

#[tokio::test]
async fn h2_idle_timeout_closes_a_connection_without_streams() {
    let upstream = hello_upstream(Proto::H2 { max_streams: 100 }).await;
    let settings = HttpPoolSettings {
        idle_timeout: Some(Duration::from_millis(100)),
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http2, settings);
    fetch(&pool, get("/")).await;
    upstream.wait_closed(1).await;
    eventually("pool sees it closed", || pool.stats().open == 0).await;
    assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn h2_at_the_breakers_connection_limit_streams_queue_on_a_full_connection() {
    let upstream = serve(Proto::H2 { max_streams: 2 }, |_req| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ok("queued")
    })
    .await;
    let breaker = meshgate_cluster::CircuitBreaker::new(&meshgate_cluster::CircuitBreakerLimits {
        max_connections: Some(1),
        ..meshgate_cluster::CircuitBreakerLimits::default()
    });
    let settings = HttpPoolSettings {
        breaker: Some(breaker),
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http2, settings);
    // The first exchange brings the server's SETTINGS.
    fetch(&pool, get("/")).await;
    let sends = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { fetch(&pool, get("/")).await })
    });
    for answer in futures_util::future::join_all(sends).await {
        assert_eq!(
            answer.expect("task"),
            (StatusCode::OK, Bytes::from("queued"))
        );
    }
    assert_eq!(upstream.accepts(), 1);
    // The requests past the first two hit the limit, then shared.
    assert!(HttpPoolCounters::get(&pool.counters().overflows) >= 1);
}

#[tokio::test]
async fn h2_close_drains_streams_in_flight_then_closes_the_connection() {
    let release = Arc::new(Notify::new());
    let arrived = Arc::new(AtomicUsize::new(0));
    let upstream = serve(Proto::H2 { max_streams: 100 }, {
        let release = Arc::clone(&release);
        let arrived = Arc::clone(&arrived);
        move |_req| {
            let release = Arc::clone(&release);
            let arrived = Arc::clone(&arrived);
            async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                ok("drained")
            }
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http2, HttpPoolSettings::default());
    let in_flight = tokio::spawn({
        let pool = pool.clone();
        async move { fetch(&pool, get("/")).await }
    });
    eventually("request at the upstream", || {
        arrived.load(Ordering::SeqCst) == 1
    })
    .await;
    pool.close();
    let err = send(&pool, get("/")).await.expect_err("closed");
    assert!(matches!(err, HttpPoolError::Closed { .. }), "{err}");
    assert_eq!(
        upstream.closed(),
        0,
        "the stream in flight keeps its connection"
    );
    release.notify_one();
    let answer = tokio::time::timeout(LIMIT, in_flight)
        .await
        .expect("in time");
    assert_eq!(
        answer.expect("task"),
        (StatusCode::OK, Bytes::from("drained"))
    );
    upstream.wait_closed(1).await;
    eventually("pool sees it closed", || pool.stats().open == 0).await;
}

#[tokio::test]
async fn h2_keep_alive_closes_a_connection_whose_peer_stops_answering_pings() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    // A peer that sends its SETTINGS (and acknowledges the pool's), then
    // goes silent: it reads everything and answers nothing, PINGs included.
    let silent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
        const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 4, 1, 0, 0, 0, 0];
        stream.write_all(&SETTINGS).await.expect("settings");
        stream.write_all(&SETTINGS_ACK).await.expect("ack");
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let settings = HttpPoolSettings {
        h2_keep_alive_interval: Some(Duration::from_millis(100)),
        h2_keep_alive_timeout: Duration::from_millis(200),
        ..HttpPoolSettings::default()
    };
    let pool = HttpPool::new(addr, HttpVersion::Http2, settings);
    let started = Instant::now();
    let err = tokio::time::timeout(LIMIT, pool.send(get("/")))
        .await
        .expect("the request fails in time instead of hanging")
        .expect_err("the peer never answers");
    assert!(matches!(err, HttpPoolError::Reset { .. }), "{err}");
    // One interval to the PING, then the whole timeout waiting for it.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    eventually("connection closed", || pool.stats().open == 0).await;
    // The peer sees the connection close.
    tokio::time::timeout(LIMIT, silent)
        .await
        .expect("closed in time")
        .expect("peer task");
}
