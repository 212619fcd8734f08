//! HTTP end-to-end helpers: an upstream HTTP server (hyper, HTTP/1.1 and
//! h2c on one port) that echoes what it received, and curl as the client.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// An upstream HTTP server. Paths:
/// - `/status/NNN`: answers NNN.
/// - `/slow/MS`: waits MS milliseconds, then echoes.
/// - `/bytes/N`: N bytes of `x`, streamed in 16 KiB chunks.
/// - `/reset-mid-body`: a 200 announcing 1 MB, 1 KB of it, then a broken
///   stream (connection closed / RST_STREAM).
/// - `/fail-on/NAME`: 503 from the server named NAME, an echo from others.
/// - anything else: 200 with a JSON echo of the request (method, uri,
///   version, host, headers, body length and body when short).
///
/// Every response carries `x-upstream: NAME` and `x-upstream-secret`.
#[derive(Debug)]
pub(crate) struct HttpUpstream {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl HttpUpstream {
    /// Starts a server named `name` on 127.0.0.1:0.
    pub(crate) async fn start(name: &str) -> HttpUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicU64::new(0));
        let name: Arc<str> = Arc::from(name);
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (name, counter) = (Arc::clone(&name), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let name = Arc::clone(&name);
                        async move { Ok::<_, Infallible>(answer(req, &name).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HttpUpstream {
            addr,
            requests,
            task,
        }
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|n| match n {}).boxed()
}

async fn answer(req: Request<Incoming>, name: &str) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let mut response = if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = Response::new(full(format!("status {code}")));
        *r.status_mut() = status;
        r
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        let chunks = (0..n.div_ceil(16 * 1024)).map(move |i| {
            let len = (n - i * 16 * 1024).min(16 * 1024);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(vec![
                b'x';
                len
            ])))
        });
        let mut r = Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed());
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, n.into());
        r
    } else if path.strip_prefix("/fail-on/") == Some(name) {
        let mut r = Response::new(full("failing on purpose"));
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r
    } else if path == "/reset-mid-body" {
        let frames = futures_util::stream::unfold(0u8, |step| async move {
            match step {
                0 => Some((Ok(Frame::data(Bytes::from(vec![b'x'; 1024]))), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((Err("upstream gives up mid-body".into()), 2))
                }
                _ => None,
            }
        });
        let mut r = Response::new(StreamBody::new(frames).boxed());
        r.headers_mut()
            .insert(http::header::CONTENT_LENGTH, 1_000_000.into());
        r
    } else {
        if let Some(ms) = path.strip_prefix("/slow/") {
            let ms = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        echo(req).await
    };
    let headers = response.headers_mut();
    headers.insert("x-upstream", name.parse().expect("header value"));
    headers.insert("x-upstream-secret", "1".parse().expect("header value"));
    response
}

async fn echo(req: Request<Incoming>) -> Response<Body> {
    let (head, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Response::new(full(format!("body failed: {e}"))),
    };
    let mut headers = Map::new();
    for (name, value) in &head.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(prior)) => *prior = format!("{prior}, {value}"),
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let host = head
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            head.headers
                .get(http::header::HOST)
                .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        })
        .unwrap_or_default();
    let echo = json!({
        "method": head.method.as_str(),
        "uri": head.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "version": format!("{:?}", head.version),
        "host": host,
        "headers": headers,
        "body_len": body.len(),
        "body": if body.len() <= 4096 { String::from_utf8_lossy(&body).into_owned() } else { String::new() },
    });
    let mut r = Response::new(full(echo.to_string()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().expect("header value"),
    );
    r
}

// ---- curl ---------------------------------------------------------------

/// What curl got: the final response's status, headers and body.
#[derive(Debug)]
pub(crate) struct CurlAnswer {
    /// curl's exit code (0: a complete response).
    pub(crate) exit: i32,
    /// The status line's code (0 when none arrived).
    pub(crate) status: u16,
    /// The status line's protocol (`HTTP/1.1`, `HTTP/2`).
    pub(crate) protocol: String,
    /// Lowercased names, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text.
    pub(crate) body: String,
    /// curl's stderr.
    pub(crate) stderr: String,
}

impl CurlAnswer {
    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (the upstream's echo).
    pub(crate) fn echo(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not an echo ({e}): {self:?}"))
    }
}

/// Runs curl against `http://{addr}{path}` with `args` (e.g. `-X POST`,
/// `--http2-prior-knowledge`), bounded to 20 s.
pub(crate) async fn curl(addr: SocketAddr, path: &str, args: &[&str]) -> CurlAnswer {
    let url = format!("http://{addr}{path}");
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--noproxy", "*"])
        .args(args)
        .arg(&url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut answer = CurlAnswer {
        exit: output.status.code().unwrap_or(-1),
        status: 0,
        protocol: String::new(),
        headers: Vec::new(),
        body: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    // Skip interim (1xx) responses; the last header block is the answer.
    let mut rest = text.as_str();
    loop {
        let Some((head, body)) = rest.split_once("\r\n\r\n") else {
            answer.body = rest.to_owned();
            return answer;
        };
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.split_whitespace();
        answer.protocol = parts.next().unwrap_or_default().to_owned();
        answer.status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        answer.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        rest = body;
        if !(100..200).contains(&answer.status) {
            answer.body = rest.to_owned();
            return answer;
        }
    }
}
