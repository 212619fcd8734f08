//! An upstream HTTP server (hyper, HTTP/1.1 and h2c on one port) that
//! records every request it gets, whole, and answers 200 `recorded`: the
//! mirror cluster of `tests/http_mirror.rs`, whose responses the gateway
//! discards, so what it saw is only known here.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the recorder read it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// Path and query.
    pub(crate) target: String,
    /// Lowercased names with their (first) value.
    pub(crate) headers: Vec<(String, String)>,
    /// The whole body.
    pub(crate) body: Bytes,
}

impl Recorded {
    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The recording server; dropping it stops accepting.
#[derive(Debug)]
pub(crate) struct RecordingUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl RecordingUpstream {
    /// Starts on 127.0.0.1:0.
    pub(crate) async fn start() -> RecordingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let (head, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            let body = body.unwrap_or_else(|_| Bytes::from_static(b"<failed>"));
                            let headers = head
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                                    (k.as_str().to_owned(), v)
                                })
                                .collect();
                            let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
                            log.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Recorded {
                                    method: head.method.to_string(),
                                    target: target.to_owned(),
                                    headers,
                                    body,
                                });
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"recorded",
                            ))))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RecordingUpstream { addr, seen, task }
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What was recorded so far, in arrival order.
    pub(crate) fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (up to `limit`) until a recorded request satisfies `wanted`.
    pub(crate) async fn wait_for(
        &self,
        limit: Duration,
        wanted: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(found) = self.seen().into_iter().find(|r| wanted(r)) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
