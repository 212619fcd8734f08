//! The HTTP/1.1 pool against real upstreams on 127.0.0.1: keep-alive
//! reuse, return to idle only after the body, idle timeout, rotation,
//! stale connections (closed while idle, and the race on reuse), upgrades,
//! streaming without buffering; and, for both versions, connect failures,
//! the breaker's connection limit, a closed pool.

#[path = "common/http_upstream.rs"]
mod http_upstream;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_upstream::*;
use hyper::body::Incoming;
use meshgate_cluster::pool::http::{HttpPoolCounters, empty_body};
use meshgate_cluster::{
    CircuitBreaker, CircuitBreakerLimits, HttpPool, HttpPoolError, HttpPoolSettings, HttpVersion,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

#[tokio::test]
async fn h1_sequential_requests_reuse_one_keep_alive_connection() {
    let upstream = hello_upstream(Proto::H1).await;
    let pool = pool(&upstream, HttpVersion::Http1, HttpPoolSettings::default());
    for _ in 0..20 {
        assert_eq!(
            fetch(&pool, get("/")).await,
            (StatusCode::OK, Bytes::from("hello"))
        );
    }
    assert_eq!(upstream.accepts(), 1);
    let stats = pool.stats();
    assert_eq!(
        (stats.open, stats.idle, stats.in_flight, stats.reconnects),
        (1, 1, 0, 0)
    );
    assert_eq!(stats.requests, 20);
}

#[tokio::test]
async fn h1_connection_returns_to_idle_only_after_its_body_is_read() {
    let upstream = hello_upstream(Proto::H1).await;
    let pool = pool(&upstream, HttpVersion::Http1, HttpPoolSettings::default());
    let first = send(&pool, get("/")).await.expect("first");
    assert_eq!(pool.stats().in_flight, 1);
    // The first body is unread: its connection is busy, a second opens.
    let (status, _) = fetch(&pool, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upstream.accepts(), 2);
    let body = first
        .into_body()
        .collect()
        .await
        .expect("first body")
        .to_bytes();
    assert_eq!(body, "hello");
    eventually("both connections idle", || pool.stats().idle == 2).await;
    assert_eq!(pool.stats().in_flight, 0);
}

#[tokio::test]
async fn h1_idle_timeout_closes_the_connection() {
    let upstream = hello_upstream(Proto::H1).await;
    let settings = HttpPoolSettings {
        idle_timeout: Some(Duration::from_millis(100)),
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http1, settings);
    fetch(&pool, get("/")).await;
    upstream.wait_closed(1).await;
    eventually("pool sees it closed", || pool.stats().open == 0).await;
    assert_eq!(pool.stats().idle, 0);
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("hello"))
    );
    assert_eq!(upstream.accepts(), 2);
    assert_eq!(pool.stats().reconnects, 1);
}

#[tokio::test]
async fn h1_max_requests_per_conn_rotates_connections() {
    let upstream = hello_upstream(Proto::H1).await;
    let settings = HttpPoolSettings {
        max_requests_per_conn: 3,
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http1, settings);
    for _ in 0..9 {
        assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
    }
    assert_eq!(upstream.accepts(), 3);
    upstream.wait_closed(3).await;
}

#[tokio::test]
async fn h1_body_dropped_half_read_closes_its_connection() {
    let produced = Arc::new(AtomicU64::new(0));
    let upstream = serve(Proto::H1, {
        let produced = Arc::clone(&produced);
        move |_req| {
            let produced = Arc::clone(&produced);
            async move {
                let body = lazy_body(BIG, produced)
                    .map_err(|_| unreachable!("the lazy body never fails"))
                    .boxed_unsync();
                Response::new(body)
            }
        }
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http1, HttpPoolSettings::default());
    let resp = send(&pool, get("/")).await.expect("send");
    let mut body = resp.into_body();
    let first = tokio::time::timeout(LIMIT, body.frame())
        .await
        .expect("in time");
    assert!(first.expect("a frame").expect("data").is_data());
    drop(body);
    // Its answer is unfinished: the connection cannot carry another.
    upstream.wait_closed(1).await;
    eventually("pool sees it closed", || pool.stats().open == 0).await;
    assert_eq!((pool.stats().idle, pool.stats().in_flight), (0, 0));
    let resp = send(&pool, get("/"))
        .await
        .expect("send on a new connection");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn h1_upgrade_hands_the_connection_to_the_caller() {
    let upstream = serve(Proto::H1, |mut req: Request<Incoming>| async move {
        if req.uri().path() != "/tunnel" {
            return ok("plain");
        }
        // Echo whatever comes over the upgraded connection.
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 64];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::CONNECTION, "upgrade")
            .header(http::header::UPGRADE, "echo")
            .body(text(""))
            .expect("response")
    })
    .await;
    let pool = pool(&upstream, HttpVersion::Http1, HttpPoolSettings::default());
    let req = Request::get("/tunnel")
        .header(http::header::HOST, "upstream.test")
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "echo")
        .body(empty_body())
        .expect("request");
    let resp = send(&pool, req).await.expect("send");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = tokio::time::timeout(LIMIT, hyper::upgrade::on(resp))
        .await
        .expect("in time")
        .expect("upgraded");
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    io.write_all(b"ping").await.expect("write");
    let mut echoed = [0u8; 4];
    tokio::time::timeout(LIMIT, io.read_exact(&mut echoed))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&echoed, b"ping");
    // The tunnel owns that connection: the next request opens another.
    assert_eq!(pool.stats().idle, 0);
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("plain"))
    );
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn h1_idle_connection_closed_by_the_upstream_is_replaced() {
    let (addr, accepts) = scripted_h1(1, false).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("ok"))
    );
    eventually("pool sees the close", || pool.stats().open == 0).await;
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("ok"))
    );
    assert_eq!(accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn h1_stale_race_retries_an_idempotent_request_once_on_a_fresh_connection() {
    let (addr, accepts) = scripted_h1(1, true).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
    // The idle connection looks alive; the upstream drops it when the next
    // request arrives, without a byte of answer.
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("ok"))
    );
    assert_eq!(accepts.load(Ordering::SeqCst), 2);
    assert_eq!(HttpPoolCounters::get(&pool.counters().internal_retries), 1);
}

#[tokio::test]
async fn h1_stale_race_surfaces_for_a_non_idempotent_request() {
    let (addr, accepts) = scripted_h1(1, true).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
    let err = send(&pool, with_body(http::Method::POST, "/", "payload"))
        .await
        .expect_err("a POST is not replayed");
    assert!(
        matches!(err, HttpPoolError::StaleConnection { .. }),
        "{err}"
    );
    assert!(!err.is_retriable_before_write() && err.is_retriable_if_idempotent());
    assert_eq!(accepts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn h1_request_body_streams_without_buffering() {
    request_body_is_pulled_as_the_upstream_reads(Proto::H1, HttpVersion::Http1).await;
}

#[tokio::test]
async fn h1_response_body_streams_without_buffering() {
    response_body_is_produced_as_the_caller_reads(Proto::H1, HttpVersion::Http1).await;
}

#[tokio::test]
async fn connect_refused_fails_fast_with_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let pool = HttpPool::new(addr, version, HttpPoolSettings::default());
        let start = Instant::now();
        let err = send(&pool, get("/")).await.expect_err("nobody listens");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert!(matches!(err, HttpPoolError::Connect { .. }), "{err}");
        assert!(err.is_connect_failure() && err.is_retriable_before_write());
        assert_eq!(pool.stats().connect_failures, 1);
    }
}

#[tokio::test]
async fn back_off_after_a_connect_failure_fails_fast_then_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let settings = HttpPoolSettings {
        backoff: meshgate_cluster::pool::Backoff {
            base: Duration::from_millis(300),
            max: Duration::from_millis(300),
            jitter: 0.0,
        },
        ..HttpPoolSettings::default()
    };
    let pool = HttpPool::new(addr, HttpVersion::Http1, settings);
    let attempts = || HttpPoolCounters::get(&pool.counters().connect_attempts);
    send(&pool, get("/")).await.expect_err("nobody listens");
    let err = send(&pool, get("/")).await.expect_err("in back-off");
    assert!(matches!(err, HttpPoolError::Connect { .. }), "{err}");
    assert_eq!(attempts(), 1, "no second connect during the back-off");
    // The host comes back on the same port; after the back-off a connect
    // is tried again.
    let upstream = serve_on(addr, Proto::H1, |_req| async { ok("back") }).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        fetch(&pool, get("/")).await,
        (StatusCode::OK, Bytes::from("back"))
    );
    assert_eq!(attempts(), 2);
    assert_eq!(upstream.accepts(), 1);
}

#[tokio::test]
async fn connect_timeout_gives_connect_timeout() {
    let (_listener, _fillers, addr) = black_hole().await;
    let settings = HttpPoolSettings {
        connect_timeout: Duration::from_millis(200),
        ..HttpPoolSettings::default()
    };
    let pool = HttpPool::new(addr, HttpVersion::Http1, settings);
    let start = Instant::now();
    let err = send(&pool, get("/")).await.expect_err("the connect hangs");
    assert!(matches!(err, HttpPoolError::ConnectTimeout { .. }), "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(200) && start.elapsed() < Duration::from_secs(2)
    );
    assert!(err.is_retriable_before_write());
}

#[tokio::test]
async fn breaker_max_connections_bounds_open_connections() {
    let upstream = hello_upstream(Proto::H1).await;
    let breaker = CircuitBreaker::new(&CircuitBreakerLimits {
        max_connections: Some(1),
        ..CircuitBreakerLimits::default()
    });
    let settings = HttpPoolSettings {
        breaker: Some(Arc::clone(&breaker)),
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http1, settings);
    let held = send(&pool, get("/")).await.expect("first");
    let err = send(&pool, get("/"))
        .await
        .expect_err("one connection only");
    assert!(matches!(err, HttpPoolError::Overflow { .. }), "{err}");
    assert!(err.is_retriable_before_write());
    drop(held.into_body().collect().await.expect("body"));
    eventually("connection idle again", || pool.stats().idle == 1).await;
    assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
    pool.close();
    eventually("permit returned", || {
        breaker.active(meshgate_cluster::breaker::Resource::Connections) == 0
    })
    .await;
}

#[tokio::test]
async fn closed_pool_refuses_new_requests() {
    let upstream = hello_upstream(Proto::H1).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let pool = pool(&upstream, version, HttpPoolSettings::default());
        pool.close();
        let err = send(&pool, get("/")).await.expect_err("closed");
        assert!(matches!(err, HttpPoolError::Closed { .. }), "{err}");
    }
    assert_eq!(upstream.accepts(), 0);
}

#[tokio::test]
async fn h1_idle_set_is_bounded_and_concurrent_load_leaks_nothing() {
    let upstream = serve(Proto::H1, |_req| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ok("hello")
    })
    .await;
    let settings = HttpPoolSettings {
        max_idle_per_host: 2,
        ..HttpPoolSettings::default()
    };
    let pool = pool(&upstream, HttpVersion::Http1, settings);
    // 8 callers, 5 requests each, one at a time per caller.
    let callers = (0..8).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            for _ in 0..5 {
                assert_eq!(fetch(&pool, get("/")).await.0, StatusCode::OK);
            }
        })
    });
    for caller in futures_util::future::join_all(callers).await {
        caller.expect("caller");
    }
    assert!(
        upstream.accepts() <= 8 + 2,
        "{} connections",
        upstream.accepts()
    );
    eventually("idle bounded, the rest closed", || {
        let stats = pool.stats();
        stats.idle == 2 && stats.open == 2
    })
    .await;
    let stats = pool.stats();
    assert_eq!((stats.in_flight, stats.requests), (0, 40));
}
