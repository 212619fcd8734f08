//! Malformed HTTP against the gateway binary, over raw TCP: invalid
//! HTTP/2 frames after a valid connection preface are answered with a
//! GOAWAY carrying RFC 9113's error code (or, in two cases, h2's
//! PROTOCOL_ERROR: see the test) and the connection is closed;
//! malformed HTTP/1.1 heads get a 400. The process never panics and keeps
//! serving other connections. (`tests/http_proxy.rs`'s
//! `malformed_and_oversized_requests` covers a bad request line → 400,
//! an oversized header section → 431, conflicting `Content-Length` → 400
//! and body limits → 413.)
//!
//! Needs the binary: `cargo build --workspace --bins` first.

mod common;
#[path = "common/http.rs"]
#[allow(dead_code)]
mod http_common;
#[path = "common/stream.rs"]
mod stream;

use common::bounded;
use common::process::{GatewayProcess, TempDir};
use http_common::{HttpUpstream, curl};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// HTTP/2's connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// RFC 9113 §7 error codes.
const PROTOCOL_ERROR: u32 = 0x1;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;

/// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// A frame header announcing `len` payload bytes.
fn frame_header(len: u32, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out
}

/// A whole frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small payload");
    let mut out = frame_header(len, kind, flags, stream);
    out.extend_from_slice(payload);
    out
}

/// What the gateway did after the bad frame.
#[derive(Debug)]
struct Answer {
    /// The GOAWAY's error code, if one came.
    goaway: Option<u32>,
    /// The connection was closed (EOF or reset) within the time limit.
    closed: bool,
}

/// Sends the preface, an empty SETTINGS frame and `bad`, then reads the
/// gateway's frames until it closes (at most 5 s).
async fn send_bad_frame(addr: SocketAddr, bad: &[u8]) -> Answer {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let mut opening = PREFACE.to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    conn.write_all(&opening).await.expect("write the preface");
    conn.write_all(bad).await.expect("write the bad frame");
    let mut buf = Vec::new();
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    Answer {
        goaway: goaway_code(&buf),
        closed,
    }
}

/// The error code of the first GOAWAY among `bytes`' frames.
fn goaway_code(mut bytes: &[u8]) -> Option<u32> {
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let kind = bytes[3];
        let payload = bytes.get(9..9 + len)?;
        if kind == GOAWAY && payload.len() >= 8 {
            return Some(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ]));
        }
        bytes = &bytes[9 + len..];
    }
    None
}

/// A gateway binary with an h2c listener (or `protocol`) in front of an
/// echoing upstream.
fn gateway(dir: &TempDir, protocol: &str, upstream: &HttpUpstream) -> GatewayProcess {
    stream::start_gateway(dir, &stream::document(protocol, upstream.addr()))
}

fn assert_no_panic(gateway: &GatewayProcess) {
    assert!(
        !gateway.logged("panicked"),
        "the gateway panicked:\n{}",
        gateway.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_h2_frames_get_goaway_with_an_error_code_and_close() {
    bounded(async {
        let upstream = HttpUpstream::start("web").await;
        let dir = TempDir::new("h2-malformed");
        let mut gateway = gateway(&dir, "Http2", &upstream);
        // A valid request first: the listener speaks h2c.
        let fine = curl(gateway.addr, "/echo", &["--http2-prior-knowledge"]).await;
        assert_eq!(fine.status, 200, "{fine:?}");
        let valid_headers = [0x82, 0x86, 0x84, 0x41, 0x01, b'x']; // GET http / :authority x
        // Two codes are h2's (0.4.20, used as it is) and differ from
        // RFC 9113: an HPACK decoding error is COMPRESSION_ERROR (§4.3) and
        // a SETTINGS length not a multiple of 6 is FRAME_SIZE_ERROR (§6.5),
        // but h2 sends PROTOCOL_ERROR for both. Either way a connection
        // error: GOAWAY, then close. The RFC's code is accepted too, so the
        // test keeps passing once h2 follows the RFC.
        let hpack_error = &[COMPRESSION_ERROR, PROTOCOL_ERROR][..];
        let settings_length_error = &[FRAME_SIZE_ERROR, PROTOCOL_ERROR][..];
        let cases: Vec<(&str, Vec<u8>, &[u32])> = vec![
            (
                "DATA on stream 0",
                frame(DATA, END_STREAM, 0, b"x"),
                &[PROTOCOL_ERROR],
            ),
            (
                "HEADERS with an HPACK index 0",
                frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x80]),
                hpack_error,
            ),
            (
                "HEADERS with an index past the tables",
                frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0xff, 0xff, 0x7f]),
                hpack_error,
            ),
            (
                "a frame over SETTINGS_MAX_FRAME_SIZE (16384)",
                frame_header(1 << 20, DATA, 0, 1),
                &[FRAME_SIZE_ERROR],
            ),
            (
                "SETTINGS of 5 bytes (not a multiple of 6)",
                frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0]),
                settings_length_error,
            ),
            (
                "SETTINGS on a stream",
                frame(SETTINGS, 0, 1, &[]),
                &[PROTOCOL_ERROR],
            ),
            (
                "WINDOW_UPDATE of 0 on the connection",
                frame(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
                &[PROTOCOL_ERROR],
            ),
            (
                "HEADERS on an even (server-initiated) stream",
                frame(HEADERS, END_HEADERS | END_STREAM, 2, &valid_headers),
                &[PROTOCOL_ERROR],
            ),
        ];
        for (what, bad, codes) in cases {
            let answer = send_bad_frame(gateway.addr, &bad).await;
            assert!(
                answer.goaway.is_some_and(|code| codes.contains(&code)),
                "{what}: GOAWAY with error code {codes:x?} expected, got {answer:?}"
            );
            assert!(answer.closed, "{what}: the gateway closes the connection");
            assert!(gateway.is_running(), "{what}: the gateway still runs");
            let next = curl(gateway.addr, "/echo", &["--http2-prior-knowledge"]).await;
            assert_eq!(
                next.status, 200,
                "{what}: others are still served: {next:?}"
            );
        }
        assert_no_panic(&gateway);
    })
    .await;
}

/// Sends `request` on a fresh connection and reads the answer to its end
/// (at most 5 s).
async fn raw_http1(addr: SocketAddr, request: &[u8]) -> String {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http1_heads_get_400_and_the_gateway_keeps_serving() {
    bounded(async {
        let upstream = HttpUpstream::start("web").await;
        let dir = TempDir::new("h1-malformed");
        let mut gateway = gateway(&dir, "Http1", &upstream);
        let cases: [(&str, &[u8]); 5] = [
            (
                "a bad request line",
                b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
            (
                "a header name with a space",
                b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
            ),
            (
                "a header line without a colon",
                b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
            ),
            (
                "conflicting Content-Length",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            ),
            (
                "a non-numeric Content-Length",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
            ),
        ];
        for (what, request) in cases {
            let answer = raw_http1(gateway.addr, request).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
            assert!(gateway.is_running(), "{what}: the gateway still runs");
        }
        let huge = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(100_000)
        );
        let too_big = raw_http1(gateway.addr, huge.as_bytes()).await;
        assert!(too_big.starts_with("HTTP/1.1 431"), "{too_big}");
        let fine = curl(gateway.addr, "/echo", &[]).await;
        assert_eq!(fine.status, 200, "the gateway still serves: {fine:?}");
        assert_no_panic(&gateway);
    })
    .await;
}
