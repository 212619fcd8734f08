//! The HTTP pools against real hyper upstreams on 127.0.0.1: keep-alive
//! reuse, idle timeout, rotation, stale connections, h2 multiplexing and
//! stream limits, GOAWAY, connection death, streaming without buffering,
//! trailers, connect failures, the breaker's connection limit.

#[path = "common/http_upstream.rs"]
mod http_upstream;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use http_upstream::{Proto, ServerBody, Upstream, serve};
use hyper::body::{Frame, Incoming};
use meshgate_cluster::pool::http::{HttpPoolCounters, empty_body};
use meshgate_cluster::{
    CircuitBreaker, CircuitBreakerLimits, HttpBody, HttpPool, HttpPoolError, HttpPoolSettings,
    HttpVersion, UpstreamBody,
};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Barrier, Notify};
use tokio::time::Instant;

/// The bound on every wait in these tests.
const LIMIT: Duration = Duration::from_secs(10);

fn text(body: &'static str) -> ServerBody {
    Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn ok(body: &'static str) -> Response<ServerBody> {
    Response::new(text(body))
}

fn get(path: &str) -> Request<HttpBody> {
    Request::get(path)
        .header(http::header::HOST, "upstream.test")
        .body(empty_body())
        .expect("request")
}

fn with_body(method: http::Method, path: &str, body: &'static str) -> Request<HttpBody> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "upstream.test")
        .body(
            Full::new(Bytes::from_static(body.as_bytes()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("request")
}

async fn send(
    pool: &HttpPool,
    req: Request<HttpBody>,
) -> Result<Response<UpstreamBody>, HttpPoolError> {
    tokio::time::timeout(LIMIT, pool.send(req))
        .await
        .expect("send within the limit")
}

/// Sends and reads the whole answer.
async fn fetch(pool: &HttpPool, req: Request<HttpBody>) -> (StatusCode, Bytes) {
    let resp = send(pool, req)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let status = resp.status();
    let body = tokio::time::timeout(LIMIT, resp.into_body().collect())
        .await
        .expect("body within the limit")
        .expect("body")
        .to_bytes();
    (status, body)
}

async fn hello_upstream(proto: Proto) -> Upstream {
    serve(proto, |_req: Request<Incoming>| async { ok("hello") }).await
}

fn pool(upstream: &Upstream, version: HttpVersion, settings: HttpPoolSettings) -> HttpPool {
    HttpPool::new(upstream.addr, version, settings)
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

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

/// A bare HTTP/1.1 upstream for the stale-connection races hyper's server
/// cannot stage: on each connection it answers the first `answer` request
/// heads with `200 ok` (keep-alive), then closes the socket at the next
/// one (`close_on_next_head`) or right after its last answer.
async fn scripted_h1(answer: usize, close_on_next_head: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepts);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut answered = 0;
                let mut chunk = [0u8; 4096];
                // Bounded: a test sends a handful of small requests.
                for _ in 0..64 {
                    if answered == answer && !close_on_next_head {
                        return;
                    }
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if answered == answer {
                            return; // close at this head, unanswered
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                        answered += 1;
                    }
                }
            });
        }
    });
    (addr, accepts)
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

/// A lazily generated body of `total` bytes in 64 KiB chunks; `produced`
/// counts what was pulled from it.
fn lazy_body(total: u64, produced: Arc<AtomicU64>) -> HttpBody {
    const CHUNK: u64 = 64 * 1024;
    let chunk = Bytes::from(vec![b'x'; CHUNK as usize]);
    let stream = futures_util::stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        let produced = Arc::clone(&produced);
        async move {
            if sent >= total {
                return None;
            }
            let n = CHUNK.min(total - sent);
            produced.fetch_add(n, Ordering::SeqCst);
            Some((Ok(Frame::data(chunk.slice(..n as usize))), sent + n))
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

const BIG: u64 = 64 * 1024 * 1024;
/// What may sit in socket buffers and hyper/h2 buffers between the body
/// and a reader that stopped: far below BIG, so a pool that buffered the
/// body whole would fail.
const IN_TRANSIT_MAX: u64 = 16 * 1024 * 1024;

/// The upstream reads 1 MiB of the request body, stops until released,
/// then reads the rest and answers with the byte count.
async fn request_body_is_pulled_as_the_upstream_reads(proto: Proto, version: HttpVersion) {
    let read = Arc::new(AtomicU64::new(0));
    let release = Arc::new(Notify::new());
    let upstream = serve(proto, {
        let read = Arc::clone(&read);
        let release = Arc::clone(&release);
        move |req: Request<Incoming>| {
            let read = Arc::clone(&read);
            let release = Arc::clone(&release);
            async move {
                let mut body = req.into_body();
                let mut paused = false;
                while let Some(frame) = body.frame().await {
                    let Ok(frame) = frame else {
                        return ok("broken");
                    };
                    if let Some(data) = frame.data_ref() {
                        read.fetch_add(data.len() as u64, Ordering::SeqCst);
                    }
                    if !paused && read.load(Ordering::SeqCst) >= 1024 * 1024 {
                        paused = true;
                        release.notified().await;
                    }
                }
                Response::new(
                    Full::new(Bytes::from(read.load(Ordering::SeqCst).to_string()))
                        .map_err(|never: Infallible| match never {})
                        .boxed_unsync(),
                )
            }
        }
    })
    .await;
    let pool = pool(&upstream, version, HttpPoolSettings::default());
    let produced = Arc::new(AtomicU64::new(0));
    let req = Request::post("/upload")
        .header(http::header::HOST, "upstream.test")
        .body(lazy_body(BIG, Arc::clone(&produced)))
        .expect("request");
    let upload = tokio::spawn({
        let pool = pool.clone();
        async move { fetch(&pool, req).await }
    });
    eventually("upstream paused", || {
        read.load(Ordering::SeqCst) >= 1024 * 1024
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pulled = produced.load(Ordering::SeqCst);
    let consumed = read.load(Ordering::SeqCst);
    assert!(
        pulled - consumed < IN_TRANSIT_MAX,
        "pulled {pulled} bytes while the upstream read {consumed}"
    );
    release.notify_one();
    let (status, body) = tokio::time::timeout(LIMIT, upload)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, BIG.to_string());
    assert_eq!(produced.load(Ordering::SeqCst), BIG);
}

#[tokio::test]
async fn h1_request_body_streams_without_buffering() {
    request_body_is_pulled_as_the_upstream_reads(Proto::H1, HttpVersion::Http1).await;
}

#[tokio::test]
async fn h2_request_body_streams_without_buffering() {
    request_body_is_pulled_as_the_upstream_reads(
        Proto::H2 { max_streams: 100 },
        HttpVersion::Http2,
    )
    .await;
}

/// The upstream answers with a lazily generated BIG body; the caller
/// reads 1 MiB, stops, and the upstream may not run far ahead.
async fn response_body_is_produced_as_the_caller_reads(proto: Proto, version: HttpVersion) {
    let produced = Arc::new(AtomicU64::new(0));
    let upstream = serve(proto, {
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
    let pool = pool(&upstream, version, HttpPoolSettings::default());
    let resp = send(&pool, get("/download")).await.expect("send");
    let mut body = resp.into_body();
    let mut read = 0u64;
    while read < 1024 * 1024 {
        let frame = tokio::time::timeout(LIMIT, body.frame())
            .await
            .expect("frame in time");
        let frame = frame.expect("more frames").expect("frame");
        read += frame.data_ref().map_or(0, |data| data.len() as u64);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ahead = produced.load(Ordering::SeqCst) - read;
    assert!(
        ahead < IN_TRANSIT_MAX,
        "upstream produced {ahead} bytes past the reader"
    );
    let start = Instant::now();
    while let Some(frame) = tokio::time::timeout(LIMIT, body.frame())
        .await
        .expect("frame in time")
    {
        read += frame
            .expect("frame")
            .data_ref()
            .map_or(0, |data| data.len() as u64);
        assert!(start.elapsed() < LIMIT * 3, "download too slow");
    }
    assert_eq!(read, BIG);
    assert_eq!(pool.stats().in_flight, 0);
}

#[tokio::test]
async fn h1_response_body_streams_without_buffering() {
    response_body_is_produced_as_the_caller_reads(Proto::H1, HttpVersion::Http1).await;
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

/// A listener that never accepts, its queue filled: further SYNs are
/// dropped, so a connect to it hangs until the connector's timeout. The
/// listener and the filler connections must stay alive meanwhile.
async fn black_hole() -> (
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
    SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..16 {
        let attempt = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), attempt).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(err)) => panic!("filler connect: {err}"),
            Err(_) => return (listener, fillers, addr),
        }
    }
    panic!("the accept queue never filled");
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
