//! What the HTTP path keeps per downstream connection and reuses for each
//! request on it: the `x-forwarded-for` value, the request timer. Several
//! requests on one keep-alive connection (HTTP/1.1) or one h2c connection,
//! from clients on two loopback addresses, each get their own answer.

mod common;
#[path = "common/http.rs"]
#[allow(dead_code)]
mod http_common;

use bytes::Bytes;
use common::{bounded, start};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use http_common::HttpUpstream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// One `Auto` listener `rpc` in front of `up`: `/short/MS` and `/long/MS`
/// go to the upstream's `/slow/MS` with a 300 ms and a 3 s route timeout,
/// anything else is echoed.
fn document(up: &HttpUpstream) -> Value {
    let to_slow = |prefix: &str, timeout: &str| {
        json!({"match": {"prefix": prefix},
               "route": {"cluster_name": "web", "timeout": timeout, "prefix_rewrite": "/slow/"}})
    };
    let mut doc = common::document(
        "Auto",
        json!([
            to_slow("/short/", "300ms"),
            to_slow("/long/", "3s"),
            {"match": {"prefix": "/"}, "route": {"cluster_name": "web"}}
        ]),
        json!([common::cluster("web", "LB_ROUNDROBIN", &[up.addr()])]),
        json!([]),
    );
    common::merge(
        &mut doc["servers"][0]["listeners"][0]["filter_chains"][0]["filters"][0]["config"],
        json!({"upstream_protocol": "Http1"}),
    );
    doc
}

/// A connection to `gateway` from the loopback address `from`.
async fn connect_from(from: IpAddr, gateway: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(gateway).await.expect("connect")
}

/// An HTTP/1.1 or h2c client on one connection.
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Client {
    async fn h1(stream: TcpStream) -> Client {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        Client::H1(sender)
    }

    async fn h2(stream: TcpStream) -> Client {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        Client::H2(sender)
    }

    /// GET `path` (with `headers`): the status and the body.
    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, Bytes) {
        let mut request = Request::get(match self {
            Client::H1(_) => path.to_owned(),
            Client::H2(_) => format!("http://gw{path}"),
        });
        if matches!(self, Client::H1(_)) {
            request = request.header("host", "gw");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).expect("request");
        let response = match self {
            Client::H1(sender) => {
                sender.ready().await.expect("h1 ready");
                sender.send_request(request).await
            }
            Client::H2(sender) => sender.clone().send_request(request).await,
        }
        .expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }

    /// The `x-forwarded-for` the upstream saw for a GET of `/echo` (and it
    /// saw `x-forwarded-proto: http`).
    async fn forwarded_for(&mut self, headers: &[(&str, &str)]) -> String {
        let (status, body) = self.get("/echo", headers).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        let echo: Value = serde_json::from_slice(&body).expect("echo json");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "http", "{echo}");
        echo["headers"]["x-forwarded-for"]
            .as_str()
            .unwrap_or_else(|| panic!("no x-forwarded-for in {echo}"))
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_each_client_on_every_request_of_its_connection() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = start(&document(&up)).await;
        let first: IpAddr = "127.0.0.1".parse().expect("ip");
        let second: IpAddr = "127.0.0.2".parse().expect("ip");
        let mut a = Client::h1(connect_from(first, addr).await).await;
        let mut b = Client::h1(connect_from(second, addr).await).await;
        let mut c = Client::h2(connect_from(second, addr).await).await;
        for _ in 0..3 {
            assert_eq!(a.forwarded_for(&[]).await, "127.0.0.1");
            assert_eq!(b.forwarded_for(&[]).await, "127.0.0.2");
            assert_eq!(c.forwarded_for(&[]).await, "127.0.0.2");
        }
        // A client's own value is extended, on the same connections.
        let prior = [("x-forwarded-for", "10.1.2.3")];
        assert_eq!(a.forwarded_for(&prior).await, "10.1.2.3, 127.0.0.1");
        assert_eq!(c.forwarded_for(&prior).await, "10.1.2.3, 127.0.0.2");
        assert_eq!(a.forwarded_for(&[]).await, "127.0.0.1");
        assert_eq!(up.requests(), 12);
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

/// GETs `path` and checks the status and how long the answer took.
async fn timed(client: &mut Client, path: &str, status: StatusCode, within: (u64, u64)) {
    let started = Instant::now();
    let (got, body) = client.get(path, &[]).await;
    let took = started.elapsed();
    assert_eq!(got, status, "{path}: {body:?}");
    assert!(
        took >= Duration::from_millis(within.0) && took < Duration::from_millis(within.1),
        "{path} answered after {took:?}, expected {within:?} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_timeouts_bound_every_request_of_a_connection() {
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let (gw, addr) = start(&document(&up)).await;
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut h1 = Client::h1(connect_from(local, addr).await).await;
        // One keep-alive connection: each request has its own deadline,
        // shorter or longer than the one before.
        timed(
            &mut h1,
            "/short/2000",
            StatusCode::GATEWAY_TIMEOUT,
            (290, 1500),
        )
        .await;
        timed(&mut h1, "/short/10", StatusCode::OK, (0, 290)).await;
        timed(&mut h1, "/long/600", StatusCode::OK, (590, 2900)).await;
        timed(
            &mut h1,
            "/short/2000",
            StatusCode::GATEWAY_TIMEOUT,
            (290, 1500),
        )
        .await;
        timed(
            &mut h1,
            "/long/5000",
            StatusCode::GATEWAY_TIMEOUT,
            (2990, 4500),
        )
        .await;
        timed(&mut h1, "/echo", StatusCode::OK, (0, 1000)).await;
        // h2c: streams in flight together, each bounded by its own route.
        let h2 = Client::h2(connect_from(local, addr).await).await;
        let (mut one, mut two) = match &h2 {
            Client::H2(sender) => (Client::H2(sender.clone()), Client::H2(sender.clone())),
            Client::H1(_) => unreachable!("an h2 client"),
        };
        tokio::join!(
            timed(
                &mut one,
                "/short/2000",
                StatusCode::GATEWAY_TIMEOUT,
                (290, 1500)
            ),
            timed(&mut two, "/long/600", StatusCode::OK, (590, 2900)),
        );
        timed(
            &mut one,
            "/short/2000",
            StatusCode::GATEWAY_TIMEOUT,
            (290, 1500),
        )
        .await;
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

/// Reads until the gateway closes `conn` (or fails it): how long that took
/// from `since`, and the bytes read; `None` if still open after `limit`.
async fn closed_after(
    conn: &mut TcpStream,
    since: Instant,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut read = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let deadline = since + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some((since.elapsed(), read)),
            Ok(Ok(n)) => read.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_heads_must_arrive_within_the_frame_read_timeout() {
    use tokio::io::AsyncWriteExt;
    bounded(async {
        let up = HttpUpstream::start("web").await;
        let mut doc = document(&up);
        common::extend_config(&mut doc, json!({ "frame_read_timeout": "500ms" }));
        let (gw, addr) = start(&doc).await;
        let local: IpAddr = "127.0.0.1".parse().expect("ip");

        // Slowloris: a head trickling in, a field every 100 ms, is cut off.
        let mut slow = connect_from(local, addr).await;
        let started = Instant::now();
        slow.write_all(b"GET /echo HTTP/1.1\r\nHost: gw\r\n")
            .await
            .expect("write");
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let field = format!("x-slow-{i}: 1\r\n");
            if slow.write_all(field.as_bytes()).await.is_err() {
                break;
            }
            if started.elapsed() > Duration::from_millis(400) {
                break;
            }
        }
        let (took, answer) = closed_after(&mut slow, started, Duration::from_secs(5))
            .await
            .expect("the slow head's connection is closed");
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(3),
            "closed after {took:?}"
        );
        assert!(answer.is_empty(), "no response: {answer:?}");

        // A small body is read whole with its head, within the same limit.
        let mut stalled = connect_from(local, addr).await;
        let started = Instant::now();
        stalled
            .write_all(b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .expect("write");
        let (took, answer) = closed_after(&mut stalled, started, Duration::from_secs(5))
            .await
            .expect("the stalled body's connection is closed");
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(3),
            "closed after {took:?}"
        );
        assert!(answer.is_empty(), "no response: {answer:?}");

        // A request slower than the limit is not cut off, nor is the next
        // one; then, with no head coming, the connection is closed.
        let mut h1 = connect_from(local, addr).await;
        for _ in 0..2 {
            h1.write_all(b"GET /long/700 HTTP/1.1\r\nHost: gw\r\n\r\n")
                .await
                .expect("write");
            let mut head = [0u8; 12];
            tokio::io::AsyncReadExt::read_exact(&mut h1, &mut head)
                .await
                .expect("answer");
            assert_eq!(&head, b"HTTP/1.1 200");
            // The rest of the (short) answer.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut rest = vec![0u8; 8192];
            let _ = tokio::time::timeout(
                Duration::from_millis(100),
                tokio::io::AsyncReadExt::read(&mut h1, &mut rest),
            )
            .await;
        }
        // A body uploaded more slowly than the limit is a request in
        // flight, not a slow head.
        h1.write_all(b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .expect("write");
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            h1.write_all(b"5\r\nhello\r\n").await.expect("chunk");
        }
        h1.write_all(b"0\r\n\r\n").await.expect("last chunk");
        let mut answer = Vec::new();
        let mut chunk = vec![0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"body_len\":60") {
            let n = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read(&mut h1, &mut chunk),
            )
            .await
            .expect("answered in time")
            .expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        let idle_from = Instant::now();
        let (took, _) = closed_after(&mut h1, idle_from, Duration::from_secs(5))
            .await
            .expect("the idle connection is closed");
        assert!(took < Duration::from_secs(2), "closed after {took:?}");
        assert_eq!(up.requests(), 3);
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}
