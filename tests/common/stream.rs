//! Large streamed bodies through the gateway binary: a hyper upstream that
//! generates downloads and consumes uploads without holding them, hyper
//! clients for HTTP/1.1 and h2c (prior knowledge), a checksum computed on
//! both ends, and a sampler of the gateway process's memory.
//!
//! Bodies are never stored: byte `i` of every body is a function of `i`
//! ([`Pattern`]), so the sender generates it chunk by chunk and the
//! receiver folds what arrives into a [`Checksum`]. Included with
//! `#[path]` beside `mod common;`.

#![allow(dead_code)] // Each test file uses its own subset.

use crate::common::process::{GatewayProcess, TempDir};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshgate_test_support::mem::{ProcessMemory, process_memory};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One mebibyte.
pub(crate) const MIB: u64 = 1024 * 1024;
/// The size of the big bodies.
pub(crate) const BIG: u64 = 200 * MIB;
/// The bound on the gateway's RSS growth while big bodies stream.
pub(crate) const RSS_BOUND_KIB: u64 = 32 * 1024;
/// Bytes per generated chunk.
const CHUNK: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The bytes of every generated body: a fixed pseudo-random block of
/// [`CHUNK`] bytes, with each chunk's index written over its first 8 bytes
/// (so a dropped, repeated or reordered chunk changes the checksum).
#[derive(Clone)]
pub(crate) struct Pattern(Arc<Vec<u8>>);

impl Pattern {
    pub(crate) fn new() -> Pattern {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let block = (0..CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[3]
            })
            .collect();
        Pattern(Arc::new(block))
    }

    /// Chunk `index` of a body of `total` bytes.
    fn chunk(&self, index: u64, total: u64) -> Bytes {
        let start = index * CHUNK as u64;
        let len = usize::try_from((total - start).min(CHUNK as u64)).expect("a chunk length");
        let mut bytes = self.0[..len].to_vec();
        let stamp = index.to_le_bytes();
        let n = len.min(stamp.len());
        bytes[..n].copy_from_slice(&stamp[..n]);
        Bytes::from(bytes)
    }

    /// The checksum of a whole body of `total` bytes.
    pub(crate) fn checksum_of(&self, total: u64) -> (u64, u64) {
        let mut sum = Checksum::default();
        for index in 0..total.div_ceil(CHUNK as u64) {
            sum.update(&self.chunk(index, total));
        }
        sum.finish()
    }

    /// A body of `total` bytes, generated chunk by chunk as it is polled.
    pub(crate) fn body(&self, total: u64) -> Body {
        let pattern = self.clone();
        let chunks = futures_util::stream::iter(
            (0..total.div_ceil(CHUNK as u64))
                .map(move |index| Ok::<_, BoxError>(Frame::data(pattern.chunk(index, total)))),
        );
        StreamBody::new(chunks).boxed()
    }
}

/// FNV-1a over the bytes, and their count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checksum {
    hash: u64,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Checksum {
        Checksum {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }
}

impl Checksum {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut hash = self.hash;
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.hash = hash;
        self.len += bytes.len() as u64;
    }

    /// `(length, hash)`.
    pub(crate) fn finish(&self) -> (u64, u64) {
        (self.len, self.hash)
    }
}

// ---- the upstream -------------------------------------------------------

/// An upstream (HTTP/1.1 and h2c on one port). Paths:
/// - `GET /download/N`: N pattern bytes, `content-length: N`.
/// - `POST /upload?stall_ms=M`: waits M ms before reading the body, then
///   reads it to the end; answers `{"len": .., "hash": ..}`.
/// - `POST /grpc/...` with `content-type: application/grpc`: echoes the
///   request's messages with `grpc-status: 0` trailers.
/// - `POST /hang`: never answers (for 30 s).
pub(crate) struct StreamUpstream {
    addr: SocketAddr,
    /// gRPC requests answered with a well-formed message.
    grpc_ok: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl StreamUpstream {
    pub(crate) async fn start() -> StreamUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pattern = Pattern::new();
        let grpc_ok = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&grpc_ok);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (pattern, counter) = (pattern.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (pattern, counter) = (pattern.clone(), Arc::clone(&counter));
                        async move { Ok::<_, Infallible>(answer(req, &pattern, &counter).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        StreamUpstream {
            addr,
            grpc_ok,
            task,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// gRPC requests answered.
    pub(crate) fn grpc_ok(&self) -> u64 {
        self.grpc_ok.load(Ordering::Relaxed)
    }
}

impl Drop for StreamUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|n| match n {}).boxed()
}

async fn answer(req: Request<Incoming>, pattern: &Pattern, grpc_ok: &AtomicU64) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(n) = path.strip_prefix("/download/") {
        let total: u64 = n.parse().unwrap_or(0);
        let mut response = Response::new(pattern.body(total));
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, total.into());
        return response;
    }
    if path == "/upload" {
        let stall = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("stall_ms="))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(stall)).await;
        let mut body = req.into_body();
        let mut sum = Checksum::default();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        sum.update(data);
                    }
                }
                Err(e) => return status(StatusCode::BAD_REQUEST, format!("body failed: {e}")),
            }
        }
        let (len, hash) = sum.finish();
        return Response::new(full(json!({"len": len, "hash": hash}).to_string()));
    }
    if path == "/hang" {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return status(StatusCode::OK, "too late");
    }
    if path.starts_with("/grpc/") {
        return grpc_echo(req, grpc_ok).await;
    }
    status(StatusCode::NOT_FOUND, "no such path")
}

fn status(code: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(full(text.into()));
    *response.status_mut() = code;
    response
}

/// Echoes a gRPC request's length-prefixed messages back with status 0;
/// a body that is not whole gRPC messages gets `grpc-status: 13`.
async fn grpc_echo(req: Request<Incoming>, grpc_ok: &AtomicU64) -> Response<Body> {
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return status(StatusCode::BAD_REQUEST, format!("body failed: {e}")),
    };
    let well_formed = grpc_messages_well_formed(&body);
    if well_formed {
        grpc_ok.fetch_add(1, Ordering::Relaxed);
    }
    let mut trailers = http::HeaderMap::new();
    trailers.insert(
        "grpc-status",
        if well_formed { "0" } else { "13" }
            .parse()
            .expect("a value"),
    );
    let frames = futures_util::stream::iter([
        Ok::<_, BoxError>(Frame::data(body)),
        Ok(Frame::trailers(trailers)),
    ]);
    let mut response = Response::new(StreamBody::new(frames).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/grpc".parse().expect("a value"),
    );
    response
}

/// True when `body` is one or more whole gRPC messages (flag byte,
/// 4-byte big-endian length, payload).
pub(crate) fn grpc_messages_well_formed(mut body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    while !body.is_empty() {
        if body.len() < 5 || body[0] > 1 {
            return false;
        }
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body.len() < 5 + len {
            return false;
        }
        body = &body[5 + len..];
    }
    true
}

// ---- the gateway ----------------------------------------------------------

/// A MOSN document: one listener speaking `protocol` (`Http1`, `Http2`)
/// to the upstream over the same protocol, every path to `upstream`.
pub(crate) fn document(protocol: &str, upstream: SocketAddr) -> Value {
    document_between(protocol, protocol, upstream)
}

/// As [`document`], with the listener speaking `downstream` and the
/// upstream connections `upstream_protocol`.
pub(crate) fn document_between(
    downstream: &str,
    upstream_protocol: &str,
    upstream: SocketAddr,
) -> Value {
    json!({
        "servers": [{
            "graceful_timeout": "2s",
            "routers": [{
                "router_config_name": "web",
                "virtual_hosts": [{"name": "any", "domains": ["*"], "routers": [
                    {"match": {"prefix": "/"}, "route": {"cluster_name": "web"}}
                ]}]
            }],
            "listeners": [{
                "name": "rpc",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{ "filters": [{
                    "type": "proxy",
                    "config": {
                        "downstream_protocol": downstream,
                        "upstream_protocol": upstream_protocol,
                        "router_config_name": "web"
                    }
                }]}]
            }]
        }],
        "cluster_manager": {"clusters": [crate::common::cluster("web", "LB_ROUNDROBIN", &[upstream])]}
    })
}

/// The gateway binary started on `document` in `dir`.
pub(crate) fn start_gateway(dir: &TempDir, document: &Value) -> GatewayProcess {
    let file = dir.path("meshgate.json");
    std::fs::write(&file, document.to_string()).expect("write the config");
    GatewayProcess::start(&file)
}

/// Samples a process's `VmRSS` every 20 ms until stopped; the peak seen,
/// and `VmHWM` at the end, bound how much it grew.
pub(crate) struct MemorySampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
    pid: u32,
}

impl MemorySampler {
    pub(crate) fn start(pid: u32) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut peak = 0;
            // Bounded: the tests stop it well within 10 minutes.
            for _ in 0..30_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(memory) = process_memory(pid) {
                    peak = peak.max(memory.rss_kib);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        });
        MemorySampler { stop, task, pid }
    }

    /// The peak `VmRSS` sampled and the memory at the end.
    pub(crate) async fn finish(self) -> (u64, ProcessMemory) {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.task.await.expect("the sampler");
        let end = process_memory(self.pid).expect("the gateway's /proc status");
        (peak.max(end.rss_kib), end)
    }
}

/// The gateway's memory now.
pub(crate) fn memory(gateway: &GatewayProcess) -> ProcessMemory {
    process_memory(gateway.pid()).expect("the gateway's /proc status")
}

// ---- clients --------------------------------------------------------------

/// HTTP/1.1 or h2c (prior knowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http1,
    H2c,
}

/// A hyper client connection of either version.
pub(crate) enum Client {
    Http1(hyper::client::conn::http1::SendRequest<Body>),
    H2c(hyper::client::conn::http2::SendRequest<Body>),
}

impl Client {
    /// Connects to `addr` and starts the connection's task.
    pub(crate) async fn connect(addr: SocketAddr, version: Version) -> Client {
        let io = TokioIo::new(TcpStream::connect(addr).await.expect("connect"));
        match version {
            Version::Http1 => {
                let (send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .expect("HTTP/1.1 handshake");
                tokio::spawn(conn);
                Client::Http1(send)
            }
            Version::H2c => {
                let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("h2c handshake");
                tokio::spawn(conn);
                Client::H2c(send)
            }
        }
    }

    /// Sends `request` (its URI a path; the version is set here).
    pub(crate) async fn send(&mut self, mut request: Request<Body>) -> Response<Incoming> {
        match self {
            Client::Http1(send) => {
                *request.version_mut() = http::Version::HTTP_11;
                request
                    .headers_mut()
                    .insert(http::header::HOST, "stream.test".parse().expect("a value"));
                send.ready().await.expect("connection ready");
                send.send_request(request).await.expect("a response")
            }
            Client::H2c(send) => {
                let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                *request.uri_mut() = format!("http://stream.test{path}").parse().expect("a URI");
                *request.version_mut() = http::Version::HTTP_2;
                send.ready().await.expect("connection ready");
                send.send_request(request).await.expect("a response")
            }
        }
    }

    /// `GET path`.
    pub(crate) async fn get(&mut self, path: &str) -> Response<Incoming> {
        let request = Request::get(path)
            .body(Empty::new().map_err(|n| match n {}).boxed())
            .expect("a request");
        self.send(request).await
    }

    /// `POST path` with `total` pattern bytes, declared in
    /// `content-length` when `declared` (else HTTP/1.1 sends it chunked,
    /// HTTP/2 as DATA frames of unannounced length).
    pub(crate) async fn upload(
        &mut self,
        path: &str,
        pattern: &Pattern,
        total: u64,
        declared: bool,
    ) -> Response<Incoming> {
        let mut request = Request::post(path);
        if declared {
            request = request.header(http::header::CONTENT_LENGTH, total);
        }
        let request = request.body(pattern.body(total)).expect("a request");
        self.send(request).await
    }
}

/// Reads `body` to its end into a checksum; `pause` = `(after, for)`:
/// stop reading for a while once `after` bytes arrived.
pub(crate) async fn read_body(
    mut body: Incoming,
    pause: Option<(u64, Duration)>,
) -> Result<(u64, u64), hyper::Error> {
    let mut sum = Checksum::default();
    let mut paused = pause.is_none();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            sum.update(data);
        }
        if let Some((after, stall)) = pause
            && !paused
            && sum.len >= after
        {
            paused = true;
            tokio::time::sleep(stall).await;
        }
    }
    Ok(sum.finish())
}

/// The upstream's `{"len", "hash"}` answer to an upload.
pub(crate) async fn upload_receipt(response: Response<Incoming>) -> (u64, u64) {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the receipt")
        .to_bytes();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let receipt: Value = serde_json::from_slice(&body).expect("a JSON receipt");
    (
        receipt["len"].as_u64().expect("len"),
        receipt["hash"].as_u64().expect("hash"),
    )
}
