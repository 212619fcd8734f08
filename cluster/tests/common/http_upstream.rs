//! hyper upstream servers for the HTTP pool tests: HTTP/1.1 or h2c on
//! 127.0.0.1, a handler per request, counters of accepted and finished
//! connections, and a switch that sends every open h2 connection a
//! graceful GOAWAY.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
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
