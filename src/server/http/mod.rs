//! The downstream driver for HTTP/1.1 and HTTP/2 cleartext. HTTP/1.1
//! starts on the gateway's own path ([`h1`]), which takes requests whose
//! framing leaves nothing to interpret; from the first one it does not
//! take, hyper serves the connection (parsing, keep-alive, pipelining,
//! limits on the header section), as it serves HTTP/2 from the start. Every
//! request goes to [`ProxyCore::serve_http`] with its body still streaming
//! (or, on the own path, read whole when small).
//!
//! ```text
//!  detected Http1 ─► own HTTP/1.1 path ─► serve_http per request
//!        │                  └► a request it does not take ─► hyper connection ─► serve_http
//!  detected Http2 ─► hyper connection ─► serve_http per request
//!        │  drain signal or idle timeout ─► graceful shutdown (HTTP/1: close
//!        │    once the request in flight is answered; HTTP/2: GOAWAY, then
//!        │    close once the open streams finish)
//!        └► close signal (the stop's grace period is over) ─► socket dropped
//! ```
//!
//! The bytes detection read are replayed first ([`io`]), and so are those
//! the own path read but did not serve when it hands over. Malformed
//! requests are hyper's to answer: 400 for a bad request line or framing,
//! 431 for a header section over the limit, a GOAWAY or RST_STREAM with a
//! protocol error on HTTP/2.

mod h1;
mod io;

use super::framed::ConnContext;
use super::tracker::ConnectionGuard;
use crate::config::http::HttpVersion;
use crate::proxy::http::upgrade::{self, TunnelSlot};
use crate::proxy::http::{HttpConnection, ResponseBody};
use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use meshgate_tasks::{LocalExecutor, LocalTasks};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Response bytes h2 queues per stream beyond what the client's window
/// lets out (hyper's default is 400 KiB). A client that stops reading
/// holds this much per stream in the gateway, plus the upstream read
/// buffers the queued chunks keep alive; with many streams open it adds up
/// (tests/http_streaming.rs, `h2c_many_stalled_streams_stay_bounded`).
const H2_SEND_BUFFER: usize = 64 * 1024;

/// Requests of one connection in flight and when the last one ended, for
/// the idle timeout and, on HTTP/1, the header read timeout. Requests only
/// touch atomics (and read the clock at their end when there is a
/// timeout): the connection's task is not woken per request; its timer
/// checks these when it fires.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection started), in
    /// nanoseconds after `since`; kept only with an idle timeout.
    last_end: AtomicU64,
    since: Instant,
    timed: bool,
}

impl Activity {
    fn new(timed: bool) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
            since: Instant::now(),
            timed,
        }
    }

    fn ended_now(&self) {
        if self.timed {
            let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.last_end.store(nanos, Ordering::Release);
        }
    }

    /// When the connection has been idle for `limit`, if nothing is in
    /// flight; `None` while a request is.
    fn idle_deadline(&self, limit: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last_end = Duration::from_nanos(self.last_end.load(Ordering::Acquire));
        Some(self.since + last_end + limit)
    }
}

/// Ends a request's count when its response is ready (or the request is
/// dropped by hyper).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The end time first: the timer that sees nothing in flight must
        // also see when the last request ended.
        self.0.ended_now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request body that keeps its request counted in flight until hyper
/// has delivered all of it or the proxy dropped it: a client still
/// uploading after its response went out is not idle, nor waiting to send
/// a head (as hyper's own header timer saw it).
pub(crate) struct TrackedRequestBody {
    inner: Incoming,
    in_flight: Option<InFlight>,
}

impl http_body::Body for TrackedRequestBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(None | Some(Err(_))) => this.in_flight = None,
            std::task::Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                this.in_flight = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted in flight until it
/// ends or is dropped.
pub(crate) struct TrackedBody {
    inner: ResponseBody,
    _in_flight: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = crate::proxy::http::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one downstream HTTP connection until it closes. `prefix` holds
/// the bytes detection already read.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    prefix: BytesMut,
    version: HttpVersion,
    cx: ConnContext,
    _guard: ConnectionGuard,
) {
    let peer = cx.downstream.peer;
    let io = io::PrefixedStream::new(stream, prefix, Arc::clone(&cx.stats));
    let limits = cx
        .core
        .config()
        .listener(&cx.downstream.listener)
        .map(|spec| spec.http)
        .unwrap_or_default();
    // HTTP/1: a request head must arrive whole within `frame_read_timeout`
    // of the previous request's end (or of the connection's start): the
    // drive loop's timer enforces it, as hyper's own header read timer
    // would, without a timer armed and dropped per request.
    let header_limit = match version {
        HttpVersion::Http1 => cx.limits.frame_read_timeout,
        HttpVersion::Http2 => None,
    };
    let timeouts = Timeouts {
        idle: cx.limits.idle_timeout,
        header: header_limit,
    };
    let activity = Arc::new(Activity::new(
        timeouts.idle.is_some() || timeouts.header.is_some(),
    ));
    let tunnel = TunnelSlot::default();
    let requests = Arc::new(Requests {
        core: Arc::clone(&cx.core),
        connection: Arc::new(HttpConnection::new(Arc::clone(&cx.downstream))),
        activity: Arc::clone(&activity),
        tunnel: tunnel.clone(),
    });
    let service = {
        let requests = Arc::clone(&requests);
        service_fn(move |mut request: hyper::Request<Incoming>| {
            let requests = Arc::clone(&requests);
            let in_flight = InFlight::start(&requests.activity);
            let upgrade = TunnelSlot::downstream(&mut request);
            let request = request.map(|body| {
                // Nothing to wait for in a body that has ended already.
                let in_flight = (!http_body::Body::is_end_stream(&body))
                    .then(|| InFlight::start(&requests.activity));
                TrackedRequestBody {
                    inner: body,
                    in_flight,
                }
            });
            async move { Ok::<_, Infallible>(requests.serve(request, in_flight, upgrade).await) }
        })
    };
    match version {
        HttpVersion::Http1 => {
            // The bound on a request head on both paths; hyper's floor for
            // its read buffer is 8 KiB.
            let max_buf = limits.max_header_size.max(8192);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .keep_alive(true)
                .max_buf_size(max_buf)
                // The drive loop's timer reads heads' time (`Timeouts::header`).
                .header_read_timeout(None);
            // The gateway's own path first; hyper from the first request
            // that path does not take.
            let shutdown = Arc::new(AtomicBool::new(false));
            let run = {
                let shutdown = Arc::clone(&shutdown);
                Box::pin(async move {
                    h1::serve(io, &shutdown, max_buf, peer, |request| {
                        let in_flight = InFlight::start(&requests.activity);
                        requests.serve(request, in_flight, None)
                    })
                    .await
                })
            };
            let conn = Graceful::Own {
                run,
                shutdown,
                hyper: Some((builder, service)),
            };
            drive(conn, &cx, &activity, timeouts, peer).await;
            // After a 101 hyper has given the connection up: it is the
            // tunnel's now, still counted by the guard and the listener.
            if let Some(pending) = tunnel.take() {
                let closing = super::tracker::raised(cx.close.clone());
                upgrade::run(pending, cx.limits.idle_timeout, closing, peer).await;
            }
        }
        HttpVersion::Http2 => {
            // Streams run inside this task, not a task each.
            let streams = LocalExecutor::default();
            let mut builder = hyper::server::conn::http2::Builder::new(streams.clone());
            builder
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX))
                .max_concurrent_streams(
                    u32::try_from(cx.limits.max_in_flight_per_conn).unwrap_or(u32::MAX),
                )
                .max_send_buf_size(H2_SEND_BUFFER);
            // The stream's future is not boxed on its own: the executor
            // boxes each stream once (boxing it too measured no fewer
            // instructions per request, and one allocation more).
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let streams = LocalTasks::new(&streams);
            drive(
                Graceful::H2(Box::pin(conn), streams),
                &cx,
                &activity,
                timeouts,
                peer,
            )
            .await;
        }
    }
}

type H1Conn<S> = hyper::server::conn::http1::UpgradeableConnection<TokioIo<io::PrefixedStream>, S>;
type H2Conn<S> =
    hyper::server::conn::http2::Connection<TokioIo<io::PrefixedStream>, S, LocalExecutor>;

/// What serves each request of a connection, on either path.
struct Requests {
    core: Arc<crate::proxy::ProxyCore>,
    connection: Arc<HttpConnection>,
    activity: Arc<Activity>,
    tunnel: TunnelSlot,
}

impl Requests {
    async fn serve<B: crate::proxy::http::RequestBody>(
        &self,
        request: hyper::Request<B>,
        in_flight: InFlight,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> hyper::Response<TrackedBody> {
        let mut response = self.core.serve_http(request, &self.connection).await;
        self.tunnel.arm(&mut response, upgrade);
        // Counted until the body has gone out, so a long download or gRPC
        // stream is not taken for an idle connection.
        response.map(|body| TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })
    }
}

/// The connection being served: by the gateway's own HTTP/1.1 path until
/// a request needs hyper's, or by one of hyper's server connections (which
/// share no trait for their graceful shutdown).
enum Graceful<S>
where
    S: hyper::service::HttpService<Incoming, ResBody = TrackedBody>,
{
    Own {
        run: Pin<Box<dyn Future<Output = h1::Ended> + Send>>,
        shutdown: Arc<AtomicBool>,
        /// What serves the connection once the own path hands it over.
        hyper: Option<(hyper::server::conn::http1::Builder, S)>,
    },
    H1(Pin<Box<H1Conn<S>>>),
    H2(Pin<Box<H2Conn<S>>>, LocalTasks),
}

impl<S> Graceful<S>
where
    S: hyper::service::HttpService<Incoming, ResBody = TrackedBody> + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shutdown(&mut self) {
        match self {
            Graceful::Own { shutdown, .. } => shutdown.store(true, Ordering::Release),
            Graceful::H1(conn) => conn.as_mut().graceful_shutdown(),
            Graceful::H2(conn, _) => conn.as_mut().graceful_shutdown(),
        }
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        match self {
            Graceful::Own {
                run,
                shutdown,
                hyper,
            } => {
                let io = match run.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(h1::Ended::Closed) => return Poll::Ready(Ok(())),
                    Poll::Ready(h1::Ended::ToHyper(io)) => io,
                };
                let Some((builder, service)) = hyper.take() else {
                    return Poll::Ready(Ok(()));
                };
                let mut conn = Box::pin(
                    builder
                        .serve_connection(TokioIo::new(io), service)
                        .with_upgrades(),
                );
                if shutdown.load(Ordering::Acquire) {
                    conn.as_mut().graceful_shutdown();
                }
                *self = Graceful::H1(conn);
                self.poll_run(cx)
            }
            Graceful::H1(conn) => conn.as_mut().poll(cx),
            // The connection first: polling it may queue new streams.
            Graceful::H2(conn, streams) => {
                let ended = conn.as_mut().poll(cx);
                streams.poll_tasks(cx);
                ended
            }
        }
    }
}

/// Wakes the drive loop's task for one of its signals (close, drain, the
/// timer) and notes that a signal did, so the loop polls the signals only
/// then. Polled on every wake of a busy connection (twice per HTTP/1
/// request), they cost about 1,400 instructions a request.
#[derive(Default)]
struct SignalWaker {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for SignalWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The bounds the drive loop's timer enforces.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    /// `connection_idle_timeout`: graceful shutdown after this long with
    /// nothing in flight.
    idle: Option<Duration>,
    /// HTTP/1's header read timeout: closed when no request head has
    /// arrived this long after the last request ended.
    header: Option<Duration>,
}

/// Polls the connection to its end, turning the drain signal and the idle
/// timeout into a graceful shutdown, and the close signal and the header
/// read timeout into an abrupt one. The signals are polled only when one
/// of them woke the task ([`SignalWaker`]), never per request.
async fn drive<S>(
    mut conn: Graceful<S>,
    cx: &ConnContext,
    activity: &Activity,
    timeouts: Timeouts,
    peer: std::net::SocketAddr,
) where
    S: hyper::service::HttpService<Incoming, ResBody = TrackedBody> + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut drain = cx.drain.clone();
    let mut shutting_down = false;
    if *drain.borrow() {
        conn.shutdown();
        shutting_down = true;
    }
    // The drain raised, or the gateway that could raise it gone: either
    // way the connection winds down.
    let drained = async move {
        let _ = drain.wait_for(|up| *up).await;
    };
    tokio::pin!(drained);
    let closed = super::tracker::raised(cx.close.clone());
    tokio::pin!(closed);
    let (limit, header) = (timeouts.idle, timeouts.header);
    let first = [limit, header].into_iter().flatten().min();
    let idle = tokio::time::sleep_until(activity.since + first.unwrap_or_default());
    tokio::pin!(idle);
    let signals = Arc::new(SignalWaker {
        // Polled once at the start, to register.
        woken: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let signal_waker = Waker::from(Arc::clone(&signals));
    std::future::poll_fn(|task| {
        loop {
            if let Poll::Ready(ended) = conn.poll_run(task) {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
                return Poll::Ready(());
            }
            signals.task.register(task.waker());
            if !signals.woken.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            let mut signal_cx = Context::from_waker(&signal_waker);
            if closed.as_mut().poll(&mut signal_cx).is_ready() {
                tracing::debug!(%peer, "closing now");
                return Poll::Ready(());
            }
            // Whatever fired changes what the connection does: it is polled
            // again, and the signals once more to register anew.
            let mut fired = false;
            if !shutting_down && drained.as_mut().poll(&mut signal_cx).is_ready() {
                conn.shutdown();
                shutting_down = true;
                fired = true;
            }
            let timed = header.is_some() || (limit.is_some() && !shutting_down);
            if timed && idle.as_mut().poll(&mut signal_cx).is_ready() {
                fired = true;
                let now = Instant::now();
                let header_deadline = header.and_then(|h| activity.idle_deadline(h));
                if header_deadline.is_some_and(|deadline| deadline <= now) {
                    tracing::debug!(%peer, "no request head within the header read timeout, closing");
                    return Poll::Ready(());
                }
                let idle_deadline = limit
                    .filter(|_| !shutting_down)
                    .and_then(|l| activity.idle_deadline(l));
                if idle_deadline.is_some_and(|deadline| deadline <= now) {
                    tracing::debug!(%peer, "idle timeout, closing");
                    conn.shutdown();
                    shutting_down = true;
                }
                let pending = [header_deadline, idle_deadline.filter(|_| !shutting_down)];
                match pending.into_iter().flatten().min() {
                    Some(deadline) => idle.as_mut().reset(deadline),
                    // Busy: look again in a while.
                    None => {
                        let every = [header, limit].into_iter().flatten().min();
                        idle.as_mut().reset(now + every.unwrap_or_default());
                    }
                }
            }
            if !fired {
                return Poll::Pending;
            }
            signals.woken.store(true, Ordering::Release);
        }
    })
    .await;
}
