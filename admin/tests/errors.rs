//! 404, 405, 413 and 400 as JSON errors; keep-alive; shutdown.

mod common;

use common::{FakeSource, get, request, start};
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn unknown_path_is_404() {
    let server = start(Arc::new(FakeSource::default())).await;
    let v = get(server.local_addr(), "/api/v1/nope")
        .await
        .assert_json_error(404);
    assert_eq!(v["path"], "/api/v1/nope");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    for path in [
        "/api/v1/update_loglevel",
        "/api/v1/enable_log",
        "/api/v1/disable_log",
    ] {
        let reply = get(addr, path).await;
        reply.assert_json_error(405);
        assert_eq!(
            reply.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some("POST"),
            "{path}"
        );
    }
    let reply = request(addr, Method::POST, "/api/v1/stats", &[], "{}").await;
    reply.assert_json_error(405);
    assert_eq!(
        reply.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    request(addr, Method::DELETE, "/metrics", &[], "")
        .await
        .assert_json_error(405);
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_body_is_413() {
    let fake = Arc::new(FakeSource::default());
    let server = start(fake.clone()).await;
    let addr = server.local_addr();
    let big = vec![b'x'; meshgate_admin::MAX_BODY_BYTES + 1];
    let v = request(addr, Method::POST, "/api/v1/update_loglevel", &[], big)
        .await
        .assert_json_error(413);
    assert_eq!(v["limit_bytes"], meshgate_admin::MAX_BODY_BYTES);

    // Declared too large before any body byte: refused on the header alone.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /api/v1/enable_log HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n",
        )
        .await
        .expect("write");
    let head = read_some(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");

    // Chunked, no length: cut off at the limit while it streams. The body
    // is `default` padded with spaces, which the handler would trim and
    // obey: the logger staying enabled shows it never ran.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /api/v1/disable_log HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndefault\r\n")
        .await
        .expect("write");
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    for _ in 0..5 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server may close once it has answered
        }
    }
    let head = read_some(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    assert!(
        fake.loggers.lock().expect("lock")[0].1,
        "the oversized body reached the handler"
    );
    server.shutdown().await;
}

/// Reads what arrives within 5 s (at least the status line).
async fn read_some(stream: &mut TcpStream) -> String {
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("a reply within 5 s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn malformed_http_is_answered_400() {
    let server = start(Arc::new(FakeSource::default())).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"GARBAGE\x01\x02 / HTTP/9\r\n\r\n")
        .await
        .expect("write");
    let head = read_some(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = start(Arc::new(FakeSource::default())).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut seen = String::new();
    for _ in 0..3 {
        stream
            .write_all(b"GET /api/v1/version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let before = seen.matches("meshgate 0.1.0 (fake)").count();
        while seen.matches("meshgate 0.1.0 (fake)").count() == before {
            assert!(tokio::time::Instant::now() < deadline, "no reply: {seen}");
            seen.push_str(&read_some(&mut stream).await);
        }
    }
    assert_eq!(seen.matches("HTTP/1.1 200 OK").count(), 3, "{seen}");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_the_listener_promptly() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /api/v1/version HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(read_some(&mut idle).await.starts_with("HTTP/1.1 200"));

    let started = tokio::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read_to_end(&mut rest))
        .await
        .expect("the idle keep-alive connection is closed by shutdown");
    assert!(n.is_ok_and(|n| n == 0) || rest.is_empty());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn head_answers_headers_without_a_body() {
    let server = start(Arc::new(FakeSource::default())).await;
    let reply = request(
        server.local_addr(),
        Method::HEAD,
        "/api/v1/version",
        &[],
        "",
    )
    .await;
    assert_eq!(
        (reply.status, reply.content_type()),
        (200, "application/json")
    );
    assert_eq!(reply.body, "");
    server.shutdown().await;
}
