//! The downstream driver for every framed protocol: one generic read loop
//! over a `FrameCodec`, one writer task that batches replies.
//!
//! ```text
//!            ┌──────────── Reading ────────────┐   peer closed, decode error,
//!  accept ─► │ frame → ping: pong              │── idle timeout ─────────────► Closing
//!            │       → request: spawn serve()  │                                  │
//!            │       (pauses at max_in_flight) │── drain signal ─► Draining ──────┤
//!            └─────────────────────────────────┘   (keeps serving; closes once    │
//!                                                    nothing is in flight)         ▼
//!                                                             writer flushes every reply, then shuts the socket
//! ```
//!
//! When a stop's grace period ends, the close signal ends the connection
//! at once from any state: the socket closes, requests still in flight
//! are abandoned.
//!
//! Every request that expects an answer gets exactly one: the upstream's,
//! or its codec's error reply. Oneway requests and pings never wait for a
//! slot in the proxy. A corrupt stream is answered with the codec's
//! `decode_error_reply` (when it can address a request) and closed.

use super::tracker::ConnectionGuard;
use crate::config::ListenerLimits;
use crate::proxy::{Downstream, ProxyCore, RequestCx};
use crate::stats::{CountingWriter, ListenerStats};
use bytes::BytesMut;
use futures_util::SinkExt;
use meshgate_cluster::pool::{FramedCodec, FramedError};
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::codec::FramedWrite;

/// The write side of a downstream connection, counting bytes written.
type Downward = CountingWriter<OwnedWriteHalf>;

/// What a connection needs from its listener.
#[derive(Debug, Clone)]
pub(crate) struct ConnContext {
    pub(crate) core: Arc<ProxyCore>,
    /// The listener's counters (bytes in and out).
    pub(crate) stats: Arc<ListenerStats>,
    pub(crate) downstream: Arc<Downstream>,
    pub(crate) limits: ListenerLimits,
    pub(crate) drain: watch::Receiver<bool>,
    /// Turns `true` when the connection must close at once.
    pub(crate) close: watch::Receiver<bool>,
}

/// Requests of one connection still being served.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    done: Notify,
}

/// Serves one downstream connection until it closes. `prefix` holds the
/// bytes detection already read.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    prefix: BytesMut,
    codec: Arc<dyn FrameCodec>,
    mut cx: ConnContext,
    _guard: ConnectionGuard,
) {
    let peer = cx.downstream.peer;
    let (read_half, write_half) = stream.into_split();
    let limits = Limits::new(cx.limits.max_frame_len);
    let framing = FramedCodec::new(Arc::clone(&codec), limits);
    let mut reader = FrameSource {
        half: read_half,
        buf: prefix,
        codec: Arc::clone(&codec),
        limits,
        frame_timeout: cx.limits.frame_read_timeout,
        frame_started: None,
        stats: Arc::clone(&cx.stats),
    };
    let max_in_flight = cx.limits.max_in_flight_per_conn.max(1);
    // Room for every in-flight reply plus pongs and an error reply, so a
    // reply never waits for the channel.
    let (replies, queue) = mpsc::channel::<Frame>(max_in_flight + 64);
    let write_half = CountingWriter::new(write_half, Arc::clone(&cx.stats));
    let writer = tokio::spawn(write_replies(
        FramedWrite::new(write_half, framing),
        queue,
        peer,
    ));
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let in_flight = Arc::new(InFlight::default());
    let mut draining = *cx.drain.borrow();
    let closed = super::tracker::raised(cx.close.clone());
    tokio::pin!(closed);

    loop {
        if draining && in_flight.count.load(Ordering::Acquire) == 0 {
            break;
        }
        let idle = async {
            match cx.limits.idle_timeout {
                Some(limit) if in_flight.count.load(Ordering::Acquire) == 0 => {
                    tokio::time::sleep(limit).await
                }
                _ => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            next = reader.next() => next,
            () = idle => {
                tracing::debug!(%peer, "idle timeout, closing");
                if let Some(goaway) = super::limits::goaway(codec.as_ref(), &cx.limits) {
                    let _ = replies.send(goaway).await;
                }
                break;
            }
            () = &mut closed => {
                // The stop's grace period is over: whatever is in flight
                // is abandoned, nothing more is written.
                tracing::debug!(%peer, in_flight = in_flight.count.load(Ordering::Acquire), "closing now");
                writer.abort();
                return;
            }
            changed = cx.drain.changed(), if !draining => {
                draining = changed.is_err() || *cx.drain.borrow();
                // Tell the client to send nothing new (where the protocol
                // can); requests in flight are still answered.
                if draining && let Some(goaway) = super::limits::goaway(codec.as_ref(), &cx.limits) {
                    let _ = replies.send(goaway).await;
                }
                continue;
            }
            // A request finished: when draining, maybe the last one; with
            // an idle timeout, the idle clock starts again from now (the
            // `idle` future above was built while it was in flight, and
            // would otherwise wait for the next frame forever).
            () = in_flight.done.notified(), if draining || cx.limits.idle_timeout.is_some() => continue,
        };
        let frame = match next {
            Some(Ok(frame)) => frame,
            None => break,
            Some(Err(FramedError::Io(e))) if e.kind() == std::io::ErrorKind::TimedOut => {
                // Slowloris: a frame started and did not finish in time.
                let err = super::limits::frame_timeout_error(cx.limits.frame_read_timeout);
                tracing::info!(%peer, protocol = %cx.downstream.protocol, error = %err, "frame read timeout, closing");
                if let Some(reply) = codec.decode_error_reply(&reader.buf, &err) {
                    let _ = replies.send(reply).await;
                }
                break;
            }
            Some(Err(FramedError::Io(e))) => {
                tracing::debug!(%peer, error = %e, "downstream read failed");
                break;
            }
            Some(Err(FramedError::Codec(e))) => {
                tracing::warn!(%peer, protocol = %cx.downstream.protocol, error = %e, "corrupt downstream stream, closing");
                if let Some(reply) = codec.decode_error_reply(&reader.buf, &e) {
                    let _ = replies.send(reply).await;
                }
                break;
            }
        };
        match frame.kind {
            FrameKind::Heartbeat { reply: false } => {
                if let Some(pong) = codec.heartbeat_reply(&frame) {
                    let _ = replies.send(pong).await;
                }
            }
            FrameKind::Request | FrameKind::Oneway => {
                // Backpressure: at the in-flight limit, stop reading until a
                // request finishes.
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                in_flight.count.fetch_add(1, Ordering::AcqRel);
                let core = Arc::clone(&cx.core);
                let codec = Arc::clone(&codec);
                let replies = replies.clone();
                let in_flight = Arc::clone(&in_flight);
                let request = RequestCx::new(frame, Arc::clone(&cx.downstream), rand::random());
                tokio::spawn(async move {
                    let listener = Arc::clone(&request.downstream.listener);
                    if let Some(reply) = core.serve(&listener, &codec, request).await {
                        let _ = replies.send(reply).await;
                    }
                    drop(slot);
                    in_flight.count.fetch_sub(1, Ordering::AcqRel);
                    in_flight.done.notify_one();
                });
            }
            // Pongs, stray responses and a peer's GoAway need no answer.
            FrameKind::Heartbeat { reply: true } | FrameKind::Response | FrameKind::GoAway => {}
        }
    }
    // The writer ends once every request task dropped its sender.
    drop(replies);
    let _ = writer.await;
}

/// The read side: decodes frames from the bytes detection already read,
/// then from the socket. (A `FramedRead` would read the socket before
/// decoding bytes handed to it, and wait forever on a client that sent one
/// request and now waits for its answer.)
struct FrameSource {
    half: OwnedReadHalf,
    buf: BytesMut,
    codec: Arc<dyn FrameCodec>,
    limits: Limits,
    /// How long a frame may take once started (`frame_read_timeout`).
    frame_timeout: Option<std::time::Duration>,
    /// When the first byte of the frame being read arrived.
    frame_started: Option<tokio::time::Instant>,
    stats: Arc<ListenerStats>,
}

impl FrameSource {
    /// Read size: room made before each socket read.
    const READ_CHUNK: usize = 8 * 1024;

    /// The next frame; `None` when the peer closed between frames.
    async fn next(&mut self) -> Option<Result<Frame, FramedError>> {
        loop {
            match self.codec.decode_checked(&mut self.buf, &self.limits) {
                Ok(Some(frame)) => {
                    self.frame_started = None;
                    return Some(Ok(frame));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(FramedError::Codec(e))),
            }
            if !self.buf.is_empty() && self.frame_started.is_none() {
                self.frame_started = Some(tokio::time::Instant::now());
            }
            if self.buf.capacity() - self.buf.len() < Self::READ_CHUNK / 2 {
                self.buf.reserve(Self::READ_CHUNK);
            }
            let read = self.half.read_buf(&mut self.buf);
            let deadline = super::limits::frame_deadline(self.frame_started, self.frame_timeout);
            let read = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                    Ok(read) => read,
                    Err(_) => {
                        let e =
                            std::io::Error::new(std::io::ErrorKind::TimedOut, "frame read timeout");
                        return Some(Err(FramedError::Io(e)));
                    }
                },
                None => read.await,
            };
            match read {
                Ok(0) if self.buf.is_empty() => return None,
                Ok(0) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "peer closed mid-frame",
                    );
                    return Some(Err(FramedError::Io(e)));
                }
                Ok(n) => self.stats.read(n),
                Err(e) => return Some(Err(FramedError::Io(e))),
            }
        }
    }
}

/// Writes replies as they come, many frames per write: everything queued
/// is encoded, then flushed once.
async fn write_replies(
    mut sink: FramedWrite<Downward, FramedCodec>,
    mut queue: mpsc::Receiver<Frame>,
    peer: std::net::SocketAddr,
) {
    while let Some(frame) = queue.recv().await {
        if !feed(&mut sink, frame, peer).await {
            return;
        }
        while let Ok(frame) = queue.try_recv() {
            if !feed(&mut sink, frame, peer).await {
                return;
            }
        }
        // Coalesce: let the request tasks that are already runnable queue
        // their replies too, so one write carries them all.
        tokio::task::yield_now().await;
        while let Ok(frame) = queue.try_recv() {
            if !feed(&mut sink, frame, peer).await {
                return;
            }
        }
        if let Err(e) = sink.flush().await {
            tracing::debug!(%peer, error = %e, "downstream write failed");
            return;
        }
    }
    let _ = sink.close().await;
}

/// Queues one frame; false when the socket failed. A frame that cannot be
/// encoded is logged and skipped (its request then times out at the
/// client), the connection carries on.
async fn feed(
    sink: &mut FramedWrite<Downward, FramedCodec>,
    frame: Frame,
    peer: std::net::SocketAddr,
) -> bool {
    let id = frame.request_id;
    match sink.feed(frame).await {
        Ok(()) => true,
        Err(FramedError::Codec(e)) => {
            tracing::error!(%peer, id, error = %e, "reply could not be encoded; dropped");
            true
        }
        Err(FramedError::Io(e)) => {
            tracing::debug!(%peer, error = %e, "downstream write failed");
            false
        }
    }
}
