//! The HTTP/1.1 pool's own client against raw upstreams on 127.0.0.1 that
//! answer with scripted bytes: what it writes, and how it reads chunked
//! bodies with trailers, bodies delimited by the connection's close,
//! HTTP/1.0, interim 1xx responses, early answers to an upload, and heads
//! that are malformed or too large.

#[path = "common/http_upstream.rs"]
mod http_upstream;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use http_upstream::*;
use meshgate_cluster::{HttpPool, HttpPoolError, HttpPoolSettings, HttpVersion};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// An upstream that reads each request head (and `drain` more bytes of
/// body, at most), reports the bytes it read, and writes `answer`, then
/// closes if `close` is set. Serves connections one by one.
async fn raw_upstream(
    answer: &'static [u8],
    close: bool,
) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (seen, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Bounded: a test sends a few small requests.
                for _ in 0..64 {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let _ = seen.send(std::mem::take(&mut buf));
                        if stream.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, requests)
}

async fn body_and_trailers(
    resp: http::Response<meshgate_cluster::UpstreamBody>,
) -> (Bytes, Option<http::HeaderMap>) {
    let collected = tokio::time::timeout(LIMIT, resp.into_body().collect())
        .await
        .expect("body within the limit")
        .expect("body");
    let trailers = collected.trailers().cloned();
    (collected.to_bytes(), trailers)
}

#[tokio::test]
async fn requests_go_out_in_origin_form_with_their_framing() {
    let (addr, mut requests) =
        raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    assert_eq!(fetch(&pool, get("/a?b=c")).await.0, StatusCode::OK);
    let head = String::from_utf8(requests.recv().await.expect("request")).expect("ascii");
    assert_eq!(head, "GET /a?b=c HTTP/1.1\r\nhost: upstream.test\r\n\r\n");
    let post = with_body(http::Method::POST, "/p", "payload");
    assert_eq!(
        fetch(&pool, post).await,
        (StatusCode::OK, Bytes::from("ok"))
    );
    let mut sent = requests.recv().await.expect("request");
    // The body may arrive with the head or after it.
    while !sent.ends_with(b"payload") {
        sent.extend(requests.recv().await.unwrap_or_default());
    }
    let sent = String::from_utf8(sent).expect("ascii");
    assert!(sent.starts_with("POST /p HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("content-length: 7\r\n"), "{sent}");
    assert_eq!(pool.stats().open, 1, "one keep-alive connection for both");
}

#[tokio::test]
async fn chunked_bodies_arrive_whole_with_their_trailers_and_the_connection_is_reused() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n";
    let (addr, _requests) = raw_upstream(answer, false).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    for _ in 0..3 {
        let resp = send(&pool, get("/")).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        let (body, trailers) = body_and_trailers(resp).await;
        assert_eq!(body, "hello world");
        assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
    }
    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle, stats.in_flight), (1, 1, 0));
}

#[tokio::test]
async fn a_body_delimited_by_close_ends_with_the_connection() {
    let (addr, _requests) = raw_upstream(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", true).await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    let resp = send(&pool, get("/")).await.expect("response");
    assert_eq!(resp.version(), http::Version::HTTP_10);
    assert_eq!(body_and_trailers(resp).await.0, "until the end");
    let stats = pool.stats();
    assert_eq!((stats.open, stats.idle, stats.in_flight), (0, 0, 0));
}

#[tokio::test]
async fn malformed_or_oversized_heads_are_protocol_errors() {
    let settings = HttpPoolSettings {
        h1_max_buf_size: 8192,
        ..HttpPoolSettings::default()
    };
    let huge: &'static [u8] = Box::leak(
        format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(20_000))
            .into_bytes()
            .into_boxed_slice(),
    );
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx"[..],
        b"NOT HTTP AT ALL\r\n\r\n",
        huge,
    ] {
        let (addr, _requests) = raw_upstream(answer, false).await;
        let pool = HttpPool::new(addr, HttpVersion::Http1, settings.clone());
        let err = send(&pool, get("/")).await.expect_err("no response");
        assert!(matches!(err, HttpPoolError::Protocol { .. }), "{err}");
        assert!(!err.is_retriable_if_idempotent(), "{err}");
        eventually("the broken connection is closed", || pool.stats().open == 0).await;
    }
}

#[tokio::test]
async fn a_chunked_body_cut_short_fails_and_closes_the_connection() {
    let (addr, _requests) = raw_upstream(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
        true,
    )
    .await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    let resp = send(&pool, get("/")).await.expect("response head");
    let read = tokio::time::timeout(LIMIT, resp.into_body().collect())
        .await
        .expect("in time");
    assert!(
        read.is_err(),
        "a truncated body is an error, not a short body"
    );
    let stats = pool.stats();
    assert_eq!((stats.open, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn an_early_answer_to_an_upload_comes_back_and_the_upload_stops() {
    // The upstream answers 413 as soon as it has the head, and reads no
    // more: the pool returns the answer instead of waiting to send 64 MiB,
    // and does not reuse that connection.
    let (addr, _requests) = raw_upstream(
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig",
        false,
    )
    .await;
    let pool = HttpPool::new(addr, HttpVersion::Http1, HttpPoolSettings::default());
    let produced = Arc::new(AtomicU64::new(0));
    let req = http::Request::post("/upload")
        .header(http::header::HOST, "upstream.test")
        .body(lazy_body(BIG, Arc::clone(&produced)))
        .expect("request");
    let resp = send(&pool, req).await.expect("the early answer");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body_and_trailers(resp).await.0, "big");
    assert!(produced.load(Ordering::SeqCst) < IN_TRANSIT_MAX);
    let stats = pool.stats();
    assert_eq!(
        (stats.idle, stats.in_flight),
        (0, 0),
        "not reused after a partial upload"
    );
}
