//! For the HTTP pool tests: hyper upstream servers (HTTP/1.1 or h2c on
//! 127.0.0.1, a handler per request, counters of accepted and finished
//! connections, a switch that sends every open h2 connection a graceful
//! GOAWAY, a kill switch), a scripted bare HTTP/1.1 upstream for the stale
//! connection races, a black-hole listener for connect timeouts, lazily
//! generated big bodies, and bounded client-side helpers.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshgate_cluster::pool::http::empty_body;
use meshgate_cluster::{
    HttpBody, HttpPool, HttpPoolError, HttpPoolSettings, HttpVersion, UpstreamBody,
};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// A response body the handlers build.
pub type ServerBody = UnsyncBoxBody<Bytes, Infallible>;

/// Which protocol the upstream speaks.
#[derive(Clone, Copy, Debug)]
pub enum Proto {
    /// HTTP/1.1 with keep-alive.
    H1,
    /// h2c prior knowledge, with this `SETTINGS_MAX_CONCURRENT_STREAMS`.
    H2 { max_streams: u32 },
}

/// A running upstream; dropping it stops accepting (open connections
/// live on until their peer closes them).
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepts: Arc<AtomicUsize>,
    /// Connections whose serving ended (either side closed).
    pub closed: Arc<AtomicUsize>,
    goaway: watch::Sender<bool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Accepted connections.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Connections served to their end.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sends a graceful GOAWAY on every open h2 connection (they finish
    /// their streams, then close). Later connections are served normally.
    pub fn goaway(&self) {
        let _ = self.goaway.send(true);
    }

    /// Kills every open connection at once (sockets closed, no GOAWAY, no
    /// response): the upstream process dying, as the pool sees it.
    pub fn kill_connections(&self) {
        for conn in self.conns.lock().expect("conns").drain(..) {
            conn.abort();
        }
    }

    /// Waits (at most 5 s) until `closed()` reaches `n`.
    pub async fn wait_closed(&self, n: usize) {
        for _ in 0..500 {
            if self.closed() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} connections closed, expected {n}", self.closed());
    }
}

/// Serves `proto` on a fresh 127.0.0.1 port with `handler`.
pub async fn serve<H, F>(proto: Proto, handler: H) -> Upstream
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ServerBody>> + Send + 'static,
{
    serve_on(SocketAddr::from(([127, 0, 0, 1], 0)), proto, handler).await
}

/// Serves `proto` on `addr` (port 0: a fresh one) with `handler`.
pub async fn serve_on<H, F>(addr: SocketAddr, proto: Proto, handler: H) -> Upstream
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ServerBody>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepts = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (goaway, goaway_rx) = watch::channel(false);
    let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
    let task = tokio::spawn({
        let accepts = Arc::clone(&accepts);
        let closed = Arc::clone(&closed);
        let conns = Arc::clone(&conns);
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepts.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let closed = Arc::clone(&closed);
                let mut goaway_rx = goaway_rx.clone();
                goaway_rx.mark_unchanged();
                let conn = tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let answer = handler(req);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let io = TokioIo::new(stream);
                    match proto {
                        Proto::H1 => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .with_upgrades()
                                .await;
                        }
                        Proto::H2 { max_streams } => {
                            let conn =
                                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                    .max_concurrent_streams(max_streams)
                                    .serve_connection(io, service);
                            let mut conn = std::pin::pin!(conn);
                            tokio::select! {
                                _ = conn.as_mut() => {}
                                _ = goaway_rx.changed() => {
                                    conn.as_mut().graceful_shutdown();
                                    let _ = conn.await;
                                }
                            }
                        }
                    }
                    closed.fetch_add(1, Ordering::SeqCst);
                });
                conns.lock().expect("conns").push(conn.abort_handle());
            }
        }
    });
    Upstream {
        addr,
        accepts,
        closed,
        goaway,
        conns,
        task,
    }
}

/// The bound on every wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(10);

pub fn text(body: &'static str) -> ServerBody {
    Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn ok(body: &'static str) -> Response<ServerBody> {
    Response::new(text(body))
}

pub fn get(path: &str) -> Request<HttpBody> {
    Request::get(path)
        .header(http::header::HOST, "upstream.test")
        .body(empty_body())
        .expect("request")
}

pub fn with_body(method: http::Method, path: &str, body: &'static str) -> Request<HttpBody> {
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

pub async fn send(
    pool: &HttpPool,
    req: Request<HttpBody>,
) -> Result<Response<UpstreamBody>, HttpPoolError> {
    tokio::time::timeout(LIMIT, pool.send(req))
        .await
        .expect("send within the limit")
}

/// Sends and reads the whole answer.
pub async fn fetch(pool: &HttpPool, req: Request<HttpBody>) -> (StatusCode, Bytes) {
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

pub async fn hello_upstream(proto: Proto) -> Upstream {
    serve(proto, |_req: Request<Incoming>| async { ok("hello") }).await
}

pub fn pool(upstream: &Upstream, version: HttpVersion, settings: HttpPoolSettings) -> HttpPool {
    HttpPool::new(upstream.addr, version, settings)
}

pub use meshgate_test_support::eventually;

/// A bare HTTP/1.1 upstream for the stale-connection races hyper's server
/// cannot stage: on each connection it answers the first `answer` request
/// heads with `200 ok` (keep-alive), then closes the socket at the next
/// one (`close_on_next_head`) or right after its last answer.
pub async fn scripted_h1(
    answer: usize,
    close_on_next_head: bool,
) -> (SocketAddr, Arc<AtomicUsize>) {
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

/// A lazily generated body of `total` bytes in 64 KiB chunks; `produced`
/// counts what was pulled from it.
pub fn lazy_body(total: u64, produced: Arc<AtomicU64>) -> HttpBody {
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

pub const BIG: u64 = 64 * 1024 * 1024;
/// What may sit in socket buffers and hyper/h2 buffers between the body
/// and a reader that stopped: far below BIG, so a pool that buffered the
/// body whole would fail.
pub const IN_TRANSIT_MAX: u64 = 16 * 1024 * 1024;

/// The upstream reads 1 MiB of the request body, stops until released,
/// then reads the rest and answers with the byte count.
pub async fn request_body_is_pulled_as_the_upstream_reads(proto: Proto, version: HttpVersion) {
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

/// The upstream answers with a lazily generated BIG body; the caller
/// reads 1 MiB, stops, and the upstream may not run far ahead.
pub async fn response_body_is_produced_as_the_caller_reads(proto: Proto, version: HttpVersion) {
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

/// A listener that never accepts, its queue filled: further SYNs are
/// dropped, so a connect to it hangs until the connector's timeout. The
/// listener and the filler connections must stay alive meanwhile.
pub async fn black_hole() -> (
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
