//! The listener, the connections and shutdown.
//!
//! One task accepts; each connection is its own task serving HTTP/1.1 with
//! keep-alive through hyper. [`AdminServer::shutdown`] stops accepting,
//! asks every connection to finish the request it is on and close (idle
//! keep-alive connections close at once), and aborts whatever is still open
//! after [`SHUTDOWN_GRACE`].

use crate::routes;
use crate::source::AdminSource;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The largest request body accepted; a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for in-progress requests before it closes their
/// connections anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Connections served at once; more are closed as soon as accepted. The
/// admin API is for a few operators and one dashboard, not for traffic.
const MAX_CONNECTIONS: usize = 256;

/// What every request handler may read: the source and when the server
/// started.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) source: Arc<dyn AdminSource>,
    pub(crate) started: Instant,
}

/// A running admin server. Dropping it stops it too (without waiting);
/// [`AdminServer::shutdown`] stops it and waits until it has.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Binds `addr` (port 0 picks a free port) and serves the admin API from
/// `source` until [`AdminServer::shutdown`]. The address is used as given:
/// the gateway's config defaults it to `127.0.0.1`, and an operator who
/// writes `0.0.0.0` still gets mutating endpoints (POST) answered only for
/// loopback peers.
pub async fn bind(addr: SocketAddr, source: Arc<dyn AdminSource>) -> io::Result<AdminServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let app = App {
        source,
        started: Instant::now(),
    };
    let task = tokio::spawn(accept_loop(listener, app, stop_rx));
    tracing::info!(%local_addr, "admin API listening");
    Ok(AdminServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

impl AdminServer {
    /// The address the server listens on (the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in progress finish (at most
    /// `SHUTDOWN_GRACE`, 2 s), closes every connection and returns once
    /// the listener is closed.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "admin server task ended abnormally");
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, app: App, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if connections.len() < MAX_CONNECTIONS => {
                    connections.spawn(serve_connection(stream, peer, app.clone(), stop.clone()));
                }
                Ok((_, peer)) => tracing::warn!(%peer, "admin connection refused: too many open"),
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "admin connections still open after the grace period: closing them"
        );
        connections.shutdown().await;
    }
    tracing::info!("admin API stopped");
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: App,
    mut stop: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(routes::dispatch(&app, request, peer).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error while closing");
            }
        }
    }
}

/// Resolves once shutdown is asked for, or the [`AdminServer`] is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped with the AdminServer: stop too.
    let _ = stop.wait_for(|stopped| *stopped).await;
}
