//! The downstream driver for every framed protocol: one task per
//! connection reads frames, serves its requests concurrently inside that
//! task and writes the replies, many per write.
//!
//! ```text
//!            ┌──────────── Reading ─────────────┐   peer closed, decode error,
//!  accept ─► │ frame → ping: pong               │── idle timeout ────────────► Closing
//!            │       → request: serve in place  │                                 │
//!            │       (pauses at max_in_flight   │── drain signal ─► Draining ─────┤
//!            │        or a full reply buffer)   │   (keeps serving; closes once   │
//!            └──────────────────────────────────┘    nothing is in flight)        ▼
//!                                             every reply written, then the socket shut
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
//!
//! Frames are decoded at the top of the connection's loop, all that a
//! read brought in and the limits let in, each going from the read buffer
//! straight into its request's future; the loop waits only when none is
//! left (the socket read is one branch of its `select!`).
//!
//! Why one task and no reply channel: a task and a channel per request
//! cost more than the proxying itself (each spawn copies the request's
//! future three times), and an idle connection should hold nothing but
//! its socket and a small future. Until its first bytes arrive a
//! connection owns no buffer at all; the read buffer, the set of requests
//! in flight and the reply buffer are made then.

use super::tracker::ConnectionGuard;
use crate::config::ListenerLimits;
use crate::proxy::{Downstream, ProxyCore, RequestCx};
use crate::stats::{CountingWriter, ListenerStats};
use bytes::BytesMut;
use meshgate_cluster::pool::FramedError;
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits};
use meshgate_tasks::FutureSet;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::Instant;

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

/// Serves one downstream connection until it closes. `prefix` holds the
/// bytes detection already read.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    prefix: BytesMut,
    codec: Arc<dyn FrameCodec>,
    mut cx: ConnContext,
    _guard: ConnectionGuard,
) {
    let mut opening = Opening::Readable;
    let mut probe = [0u8; 1];
    if prefix.is_empty() {
        opening = tokio::select! {
            // `peek`, not `readable`: readiness may be reported before any
            // byte arrived, and would make an idle connection allocate.
            // An error or EOF is reported by the read that follows.
            _ = stream.peek(&mut probe) => Opening::Readable,
            () = idle_for(cx.limits.idle_timeout) => Opening::IdleExpired,
            () = super::tracker::raised(cx.close.clone()) => return,
            _ = cx.drain.wait_for(|draining| *draining) => Opening::Readable,
        };
    }
    // Boxed so that an idle connection's task stays as small as the wait
    // above, not as large as a busy connection's state.
    Box::pin(serve_active(stream, prefix, codec, cx, opening)).await;
}

/// How a connection's first wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Bytes arrived (or the socket failed, or a drain began): serve.
    Readable,
    /// Nothing arrived within the idle timeout: say goodbye and close.
    IdleExpired,
}

/// Sleeps for `limit`, or forever without one.
async fn idle_for(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

async fn serve_active(
    stream: TcpStream,
    prefix: BytesMut,
    codec: Arc<dyn FrameCodec>,
    mut cx: ConnContext,
    opening: Opening,
) {
    let peer = cx.downstream.peer;
    let (read_half, write_half) = stream.into_split();
    let mut reader = FrameSource {
        half: read_half,
        buf: prefix,
        codec: Arc::clone(&codec),
        limits: Limits::new(cx.limits.max_frame_len),
        frame_timeout: cx.limits.frame_read_timeout,
        frame_started: None,
        stats: Arc::clone(&cx.stats),
    };
    let mut writer = ReplyWriter {
        half: CountingWriter::new(write_half, Arc::clone(&cx.stats)),
        out: BytesMut::new(),
        codec: Arc::clone(&codec),
        peer,
    };
    let max_in_flight = cx.limits.max_in_flight_per_conn.max(1);
    let core = Arc::clone(&cx.core);
    let listener = Arc::clone(&cx.downstream.listener);
    let mut in_flight = FutureSet::new();
    let mut draining = *cx.drain.borrow();
    let mut reading = true;
    if opening == Opening::IdleExpired {
        tracing::debug!(%peer, "idle timeout before the first frame, closing");
        say_goaway(&mut writer, codec.as_ref(), &cx.limits);
        reading = false;
    }
    // The signals are read twice: by version (one atomic load) at the top
    // of every turn, which is what notices them under load, and as the
    // last branches of the select, which wake an otherwise idle
    // connection. Polling them first in every turn cost a lock each.
    let closed = super::tracker::raised(cx.close.clone());
    tokio::pin!(closed);
    let mut drain_watch = cx.drain.clone();
    let drain_raised = async move {
        // A gateway gone without a stop drains too.
        let _ = drain_watch.wait_for(|draining| *draining).await;
    };
    tokio::pin!(drain_raised);
    let idle = tokio::time::sleep_until(Instant::now());
    tokio::pin!(idle);
    let mut idle_armed = false;
    // Gives back the requests' memory the in-flight set keeps for reuse
    // once the connection has been quiet a while; armed at most once per
    // `RELEASE_AFTER`, so a busy connection pays one timer a second.
    let release = tokio::time::sleep_until(Instant::now());
    tokio::pin!(release);
    let mut release_armed = false;

    loop {
        if raised_now(&mut cx.close) {
            tracing::debug!(%peer, in_flight = in_flight.len(), "closing now");
            return;
        }
        if !draining && raised_now(&mut cx.drain) {
            draining = true;
            say_goaway(&mut writer, codec.as_ref(), &cx.limits);
        }
        // Serve every whole frame already read, as far as the limits
        // allow, before waiting on anything: a frame goes from the read
        // buffer straight into its request's future, one turn of this
        // loop for a whole read's worth of frames.
        while reading && in_flight.len() < max_in_flight && writer.has_room() {
            match reader.codec.decode_checked(&mut reader.buf, &reader.limits) {
                Ok(Some(frame)) => {
                    reader.frame_started = None;
                    idle_armed = false;
                    match frame.kind {
                        FrameKind::Heartbeat { reply: false } => {
                            if let Some(pong) = codec.heartbeat_reply(&frame) {
                                writer.push(pong);
                            }
                        }
                        FrameKind::Request | FrameKind::Oneway => {
                            let request =
                                RequestCx::new(frame, Arc::clone(&cx.downstream), rand::random());
                            in_flight.push(core.serve(&listener, &codec, request));
                        }
                        // Pongs, stray responses and a peer's GoAway need no answer.
                        FrameKind::Heartbeat { reply: true }
                        | FrameKind::Response
                        | FrameKind::GoAway => {}
                    }
                }
                Ok(None) => {
                    reader.note_partial_frame();
                    break;
                }
                Err(e) => {
                    reading = false;
                    read_failed(&reader, &mut writer, &cx, FramedError::Codec(e));
                }
            }
        }
        let quiet = in_flight.is_empty() && writer.is_empty();
        if quiet && (!reading || draining) {
            break;
        }
        match cx.limits.idle_timeout {
            // The idle clock starts when the last reply is written, and
            // again after every frame read while nothing is in flight.
            Some(limit) if quiet && !idle_armed => {
                idle.as_mut().reset(Instant::now() + limit);
                idle_armed = true;
            }
            _ if !quiet => idle_armed = false,
            _ => {}
        }
        if quiet && !release_armed && in_flight.keeps_memory() {
            release.as_mut().reset(Instant::now() + RELEASE_AFTER);
            release_armed = true;
        }
        tokio::select! {
            biased;
            Some(reply) = in_flight.next_finished(), if !in_flight.is_empty() => {
                if let Some(reply) = reply {
                    writer.push(reply);
                }
            }
            // Written only once every reply already finished is encoded,
            // so one write carries them all.
            written = writer.write_some(), if !writer.is_empty() => {
                if let Err(e) = written {
                    tracing::debug!(%peer, error = %e, "downstream write failed");
                    return;
                }
            }
            // Only when the buffer holds no whole frame the limits would
            // let in: the loop above took all it could.
            read = reader.fill(), if reading && in_flight.len() < max_in_flight && writer.has_room() => {
                match read {
                    Ok(true) => {}
                    Ok(false) => reading = false,
                    Err(e) => {
                        reading = false;
                        read_failed(&reader, &mut writer, &cx, e);
                    }
                }
            }
            () = &mut idle, if idle_armed => {
                tracing::debug!(%peer, "idle timeout, closing");
                idle_armed = false;
                reading = false;
                say_goaway(&mut writer, codec.as_ref(), &cx.limits);
            }
            () = &mut release, if release_armed => {
                release_armed = false;
                // Busy now: armed again at the next quiet moment.
                if in_flight.is_empty() {
                    in_flight.release();
                }
            }
            () = &mut closed => {
                // The stop's grace period is over: whatever is in flight
                // is abandoned, nothing more is written.
                tracing::debug!(%peer, in_flight = in_flight.len(), "closing now");
                return;
            }
            () = &mut drain_raised, if !draining => {
                // Tell the client to send nothing new (where the protocol
                // can); requests in flight are still answered.
                draining = true;
                say_goaway(&mut writer, codec.as_ref(), &cx.limits);
            }
        }
    }
    if let Err(e) = writer.half.shutdown().await {
        tracing::debug!(%peer, error = %e, "downstream shutdown failed");
    }
}

/// How long a connection stays quiet before its in-flight set gives back
/// the memory it keeps for the next requests.
const RELEASE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether `signal` turned `true` since this receiver last looked: one
/// atomic load while nothing changed.
fn raised_now(signal: &mut watch::Receiver<bool>) -> bool {
    signal.has_changed().unwrap_or(false) && *signal.borrow_and_update()
}

/// Queues the protocol's GoAway, where it has one (and, for bolt, where
/// the listener enables it).
fn say_goaway(writer: &mut ReplyWriter, codec: &dyn FrameCodec, limits: &ListenerLimits) {
    if let Some(goaway) = super::limits::goaway(codec, limits) {
        writer.push(goaway);
    }
}

/// The stream cannot be read further: log why and answer the request it
/// broke off in, when the codec can address it.
fn read_failed(reader: &FrameSource, writer: &mut ReplyWriter, cx: &ConnContext, e: FramedError) {
    let peer = cx.downstream.peer;
    let codec = reader.codec.as_ref();
    let err = match e {
        FramedError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            // Slowloris: a frame started and did not finish in time.
            let err = super::limits::frame_timeout_error(cx.limits.frame_read_timeout);
            tracing::info!(%peer, protocol = %cx.downstream.protocol, error = %err, "frame read timeout, closing");
            err
        }
        FramedError::Io(e) => {
            tracing::debug!(%peer, error = %e, "downstream read failed");
            return;
        }
        FramedError::Codec(e) => {
            tracing::warn!(%peer, protocol = %cx.downstream.protocol, error = %e, "corrupt downstream stream, closing");
            e
        }
    };
    if let Some(reply) = codec.decode_error_reply(&reader.buf, &err) {
        writer.push(reply);
    }
}

/// The write side: replies encoded back to back into one buffer, written
/// as the socket takes them.
struct ReplyWriter {
    half: CountingWriter<OwnedWriteHalf>,
    out: BytesMut,
    codec: Arc<dyn FrameCodec>,
    peer: std::net::SocketAddr,
}

impl ReplyWriter {
    /// Encoded replies beyond this stop the reading of new requests until
    /// the peer takes some: a client that sends and never reads cannot
    /// grow the buffer without bound.
    const HIGH_WATER: usize = 256 * 1024;

    /// Encodes one reply. A reply that cannot be encoded is logged and
    /// skipped (its request then times out at the client); the
    /// connection carries on.
    fn push(&mut self, frame: Frame) {
        let start = self.out.len();
        if let Err(e) = self.codec.encode(&frame, &mut self.out) {
            self.out.truncate(start);
            tracing::error!(peer = %self.peer, id = frame.request_id, error = %e, "reply could not be encoded; dropped");
        }
    }

    fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    fn has_room(&self) -> bool {
        self.out.len() < Self::HIGH_WATER
    }

    /// One write of what is buffered. Cancel-safe: bytes leave the buffer
    /// only once the socket took them.
    async fn write_some(&mut self) -> std::io::Result<()> {
        match self.half.write_buf(&mut self.out).await? {
            0 => Err(std::io::ErrorKind::WriteZero.into()),
            _ => Ok(()),
        }
    }
}

/// The read side: the bytes detection already read, then the socket's;
/// the connection's loop decodes frames from `buf`. (A `FramedRead` would
/// read the socket before decoding bytes handed to it, and wait forever on
/// a client that sent one request and now waits for its answer.)
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

    /// After a decode that needs more bytes: a frame has started once
    /// some of its bytes are here, and its read timeout runs from then.
    fn note_partial_frame(&mut self) {
        if !self.buf.is_empty() && self.frame_started.is_none() {
            self.frame_started = Some(tokio::time::Instant::now());
        }
    }

    /// Reads more bytes into the buffer: `Ok(false)` when the peer closed
    /// between frames. Cancel-safe: bytes read are in the buffer.
    async fn fill(&mut self) -> Result<bool, FramedError> {
        if self.buf.capacity() - self.buf.len() < Self::READ_CHUNK / 2 {
            self.buf.reserve(Self::READ_CHUNK);
        }
        let read = self.half.read_buf(&mut self.buf);
        let deadline = super::limits::frame_deadline(self.frame_started, self.frame_timeout);
        let read = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                Ok(read) => read,
                Err(_) => {
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "frame read timeout");
                    return Err(FramedError::Io(e));
                }
            },
            None => read.await,
        };
        match read {
            Ok(0) if self.buf.is_empty() => Ok(false),
            Ok(0) => {
                let e =
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "peer closed mid-frame");
                Err(FramedError::Io(e))
            }
            Ok(n) => {
                self.stats.read(n);
                Ok(true)
            }
            Err(e) => Err(FramedError::Io(e)),
        }
    }
}
