//! HTTP semantics through the gateway: pipelined HTTP/1.1 requests
//! answered in order (also when one midway needs hyper's server rather than
//! the gateway's own HTTP/1.1 path), bodies of unknown length chunked and
//! HEAD answers keeping their length, `Expect: 100-continue` (a raw client and curl) answered
//! with 100 before the upstream's answer, and a gRPC request's
//! `grpc-timeout` enforced by the gateway itself with a trailers-only
//! DEADLINE_EXCEEDED (a raw `h2` client with no deadline of its own).

mod common;
#[path = "common/http.rs"]
#[allow(dead_code)]
mod http_common;
#[path = "common/stream.rs"]
mod stream;

use common::{bounded, start};
use http_common::HttpUpstream;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// The status line and header section.
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn echo(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not an echo ({e}): {self:?}"))
    }
}

/// Reads responses off `conn` (which must carry `content-length`) until
/// `count` arrived; at most 10 s in all.
async fn read_responses(conn: &mut TcpStream, buf: &mut Vec<u8>, count: usize) -> Vec<RawResponse> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    while out.len() < count {
        if let Some((response, used)) = parse_response(buf) {
            buf.drain(..used);
            out.push(response);
            continue;
        }
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{} of {count} responses in time", out.len()))
            .expect("read");
        assert!(n > 0, "the connection closed after {} responses", out.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    out
}

/// One whole response at the start of `buf` and the bytes it used.
fn parse_response(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = if (100..200).contains(&status) {
        0
    } else {
        head.lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("responses here carry content-length")
    };
    let body = buf.get(end..end + length)?.to_vec();
    Some((RawResponse { status, head, body }, end + length))
}

async fn http1_gateway(up: &HttpUpstream) -> (meshgate::control::Gateway, SocketAddr) {
    let document = stream::document("Http1", up.addr());
    start(&document).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_http1_requests_are_answered_in_order() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = http1_gateway(&up).await;
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        // All written at once; the first is the slowest to answer.
        let requests = "GET /slow/300?n=1 HTTP/1.1\r\nHost: x\r\n\r\n\
                        GET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n\
                        POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree\
                        GET /slow/100?n=4 HTTP/1.1\r\nHost: x\r\n\r\n\
                        DELETE /echo?n=5 HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.write_all(requests.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let responses = read_responses(&mut conn, &mut buf, 5).await;
        let uris: Vec<String> = responses
            .iter()
            .map(|r| {
                assert_eq!(r.status, 200, "{r:?}");
                r.echo()["uri"].as_str().expect("uri").to_owned()
            })
            .collect();
        assert_eq!(
            uris,
            [
                "/slow/300?n=1",
                "/echo?n=2",
                "/echo?n=3",
                "/slow/100?n=4",
                "/echo?n=5"
            ]
        );
        assert_eq!(responses[2].echo()["body"], "three");
        assert_eq!(responses[4].echo()["method"], "DELETE");
        // The connection stays usable.
        conn.write_all(b"GET /echo?n=6 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let last = read_responses(&mut conn, &mut buf, 1).await;
        assert_eq!(last[0].echo()["uri"], "/echo?n=6");
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_that_needs_hyper_midway_is_answered_in_order() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = http1_gateway(&up).await;
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        let mut buf = Vec::new();
        // A small body written apart from its head, in pieces, is awaited
        // whole.
        for piece in [
            &b"POST /echo?n=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"[..],
            b"pie",
            b"ces",
        ] {
            conn.write_all(piece).await.expect("write");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let first = read_responses(&mut conn, &mut buf, 1).await;
        assert_eq!(first[0].echo()["body"], "pieces", "{first:?}");
        // The gateway's own path takes the next two; the chunked upload
        // hands the connection to hyper, which serves the rest.
        let requests = "GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n\
                        POST /echo?n=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo\
                        POST /echo?n=3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\nthree\r\n0\r\n\r\n\
                        GET /echo?n=4 HTTP/1.1\r\nHost: x\r\n\r\n";
        conn.write_all(requests.as_bytes()).await.expect("write");
        let responses = read_responses(&mut conn, &mut buf, 4).await;
        let echoes: Vec<Value> = responses
            .iter()
            .map(|r| {
                assert_eq!(r.status, 200, "{r:?}");
                assert!(r.head.to_ascii_lowercase().contains("\r\ndate: "), "{r:?}");
                r.echo()
            })
            .collect();
        let uris: Vec<&str> = echoes
            .iter()
            .map(|e| e["uri"].as_str().expect("uri"))
            .collect();
        assert_eq!(uris, ["/echo?n=1", "/echo?n=2", "/echo?n=3", "/echo?n=4"]);
        assert_eq!(echoes[1]["body"], "two");
        assert_eq!(echoes[2]["body"], "three");
        // Conflicting framing is hyper's to settle (RFC 9112 §6.3): the
        // chunked coding wins over the length, and the connection closes
        // after the answer, so nothing can be smuggled behind it.
        conn.write_all(
            b"POST /echo?n=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo?n=6 HTTP/1.1\r\n\r\n",
        )
        .await
        .expect("write");
        let settled = read_responses(&mut conn, &mut buf, 1).await;
        assert_eq!(settled[0].status, 200, "{settled:?}");
        assert_eq!(settled[0].echo()["uri"], "/echo?n=5");
        assert_eq!(settled[0].echo()["body_len"], 0);
        assert!(
            settled[0].head.contains("\r\nconnection: close\r\n"),
            "{settled:?}"
        );
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
            .await
            .expect("closed in time");
        assert!(
            read.is_err() || rest.is_empty(),
            "nothing answered after the close: {:?}",
            String::from_utf8_lossy(&rest)
        );
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

/// An upstream speaking raw HTTP/1.1: HEAD gets a head announcing 11 bytes
/// and no body, anything else "hello world" in two chunks, with no length.
async fn chunking_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head_request = buf.starts_with(b"HEAD ");
                        buf.drain(..end + 4);
                        let reply: &[u8] = if head_request {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"
                        } else {
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                        };
                        if conn.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Reads off `conn` until `buf` ends with `end`; at most 10 s.
async fn read_until_end(conn: &mut TcpStream, buf: &mut Vec<u8>, end: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(end) {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no {end:?} in time: {:?}", String::from_utf8_lossy(buf)))
            .expect("read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_unknown_length_goes_out_chunked_and_a_head_answer_keeps_its_length() {
    bounded(async {
        let (gw, addr) = start(&stream::document("Http1", chunking_upstream().await)).await;
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        let mut buf = Vec::new();
        for round in 0..2 {
            conn.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            read_until_end(&mut conn, &mut buf, b"\r\n0\r\n\r\n").await;
            let text = String::from_utf8_lossy(&buf).into_owned();
            let (head, mut body) = text.split_once("\r\n\r\n").expect("a head");
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
            assert!(head.contains("\r\ntransfer-encoding: chunked"), "{text:?}");
            assert!(!head.contains("content-length"), "{text:?}");
            let mut decoded = String::new();
            loop {
                let (size, rest) = body.split_once("\r\n").expect("a size line");
                let size = usize::from_str_radix(size, 16).expect("hex size");
                if size == 0 {
                    break;
                }
                decoded.push_str(&rest[..size]);
                body = rest[size..]
                    .strip_prefix("\r\n")
                    .expect("CRLF after the data");
            }
            assert_eq!(decoded, "hello world", "round {round}: {text:?}");
            buf.clear();

            // HEAD: the length the upstream announced, and no body; the
            // next request on the connection proves none was expected.
            conn.write_all(b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            read_until_end(&mut conn, &mut buf, b"\r\n\r\n").await;
            let head = String::from_utf8_lossy(&buf).into_owned();
            assert!(head.contains("\r\ncontent-length: 11\r\n"), "{head:?}");
            buf.clear();
        }
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_gets_100_then_the_upstream_answer() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = http1_gateway(&up).await;
        // A raw client: the body goes only after the 100.
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("write the head");
        let mut buf = Vec::new();
        let interim = read_responses(&mut conn, &mut buf, 1).await;
        assert_eq!(interim[0].status, 100, "{interim:?}");
        assert!(
            interim[0].head.starts_with("HTTP/1.1 100 Continue"),
            "{interim:?}"
        );
        conn.write_all(b"hello world")
            .await
            .expect("write the body");
        let answer = read_responses(&mut conn, &mut buf, 1).await;
        assert_eq!(answer[0].status, 200, "{answer:?}");
        let echo = answer[0].echo();
        assert_eq!(echo["body"], "hello world");
        assert!(
            echo["headers"].get("expect").is_none(),
            "the gateway answered the expectation itself: {echo}"
        );

        // curl, which waits for the 100 (up to 1 s) before sending.
        let file = std::env::temp_dir().join(format!("mg-expect-{}", std::process::id()));
        std::fs::write(&file, vec![b'e'; 200_000]).expect("write the upload");
        let started = Instant::now();
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "-i", "--max-time", "10", "--noproxy", "*"])
            .args(["-H", "Expect: 100-continue", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{addr}/echo"))
            .kill_on_drop(true)
            .output()
            .await
            .expect("curl runs");
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "curl failed: {text}");
        assert!(
            text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
            "100 then 200: {text}"
        );
        assert!(text.contains("\"body_len\":200000"), "{text}");
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "curl got the 100 and did not wait out its 1 s expect timeout: {:?}",
            started.elapsed()
        );
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_is_enforced_by_the_gateway_with_deadline_exceeded() {
    bounded(async {
        let upstream = stream::StreamUpstream::start().await;
        let (gw, addr) = start(&stream::document("Http2", upstream.addr())).await;
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(connection);
        let mut client = client.ready().await.expect("ready");
        let request = http::Request::post(format!("http://{addr}/hang"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "300m")
            .body(())
            .expect("a request");
        let started = Instant::now();
        let (response, mut body) = client.send_request(request, false).expect("send");
        // One message: a 5-byte prefix and a 3-byte payload.
        body.send_data(
            bytes::Bytes::from_static(&[0, 0, 0, 0, 3, 0x0a, 0x01, b'x']),
            true,
        )
        .expect("send the message");
        let response = response.await.expect("a response");
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 200, "{response:?}");
        assert_eq!(
            response.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"4"[..]),
            "trailers-only DEADLINE_EXCEEDED: {response:?}"
        );
        assert!(
            response.body().is_end_stream(),
            "trailers-only: the header block ends the stream"
        );
        assert!(
            elapsed >= Duration::from_millis(300),
            "the deadline is not cut short: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "the gateway answered at the request's deadline, not its 60 s default: {elapsed:?}"
        );
        println!("grpc-timeout 300m answered DEADLINE_EXCEEDED after {elapsed:?}");
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}
