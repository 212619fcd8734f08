//! The connection's task: connect, then a reader loop in this task and a
//! writer task, until the connection closes.

use super::keepalive::{Beat, Keepalive};
use super::{Conn, ConnState, Outgoing, Shared};
use crate::pool::connect::connect;
use crate::pool::{FramedCodec, FramedError, PoolCounters, PoolError};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};

/// Frames the writer takes from its queue per flush, at most.
const WRITE_BATCH: usize = 128;

/// Why a connection's reader stopped (logged when it closes).
#[derive(Debug)]
enum End {
    Eof,
    ReadError(#[allow(dead_code, reason = "logged through Debug")] FramedError),
    HeartbeatTimeout,
    Drained,
    DrainTimeout,
    /// Cancelled from elsewhere (the writer failed).
    Aborted,
}

/// Drives one connection through its states (see the module docs).
pub(in crate::pool::multiplex) async fn run(
    conn: Arc<Conn>,
    pool: Weak<Shared>,
    rx: mpsc::Receiver<Outgoing>,
) {
    let stream = match connect(conn.addr, conn.config.connect_timeout).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(upstream = %conn.addr, %err, "upstream connect failed");
            conn.close();
            if let Some(pool) = pool.upgrade() {
                pool.on_connect_failed(err);
            }
            return;
        }
    };
    conn.book().state = ConnState::Ready;
    let published = pool.upgrade().is_some_and(|pool| pool.on_connected(&conn));
    if !published {
        conn.close();
        return;
    }
    conn.stats
        .active_connections
        .fetch_add(1, Ordering::Relaxed);
    PoolCounters::inc(&conn.counters.connections_opened);

    let framed = FramedCodec::new(Arc::clone(&conn.codec), conn.config.limits);
    let (rd, wr) = stream.into_split();
    let writer = tokio::spawn(write_loop(
        Arc::clone(&conn),
        FramedWrite::new(wr, framed.clone()),
        rx,
    ));
    let end = read_loop(&conn, &pool, FramedRead::new(rd, framed)).await;

    conn.close();
    if let Some(pool) = pool.upgrade() {
        pool.retire(&conn);
    }
    // The writer stops on the cancellation `close` fired; waiting for it
    // means the socket is closed when this task ends.
    let _ = writer.await;
    conn.stats
        .active_connections
        .fetch_sub(1, Ordering::Relaxed);
    PoolCounters::inc(&conn.counters.connections_closed);
    if matches!(end, End::HeartbeatTimeout) {
        PoolCounters::inc(&conn.counters.heartbeat_timeouts);
    }
    tracing::debug!(upstream = %conn.addr, conn = conn.serial, ?end, "upstream connection closed");
}

async fn write_loop(
    conn: Arc<Conn>,
    sink: FramedWrite<OwnedWriteHalf, FramedCodec>,
    rx: mpsc::Receiver<Outgoing>,
) {
    tokio::select! {
        () = conn.cancel.cancelled() => {}
        result = write_frames(&conn, sink, rx) => {
            if let Err(err) = result {
                tracing::debug!(upstream = %conn.addr, conn = conn.serial, %err, "upstream write failed");
            }
            conn.cancel.cancel();
        }
    }
}

/// Takes what is queued (up to [`WRITE_BATCH`]), feeds it all to the
/// framed sink (which writes early only when its buffer passes its
/// back-pressure mark), flushes once.
async fn write_frames(
    conn: &Conn,
    mut sink: FramedWrite<OwnedWriteHalf, FramedCodec>,
    mut rx: mpsc::Receiver<Outgoing>,
) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        if rx.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            return Ok(());
        }
        // Coalesce: let the request tasks that are already runnable queue
        // their frames too, so one write carries them all (a syscall on
        // loopback costs far more than the frames it carries).
        if batch.len() < WRITE_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(out) => batch.push(out),
                    Err(_) => break,
                }
            }
        }
        for Outgoing { id, frame } in batch.drain(..) {
            // Room first, then the written mark: a frame waiting here for
            // the socket to drain is not written yet, so if the connection
            // dies meanwhile its caller learns `written: false` and the
            // request may safely go to another host.
            match std::future::poll_fn(|cx| sink.poll_ready_unpin(cx)).await {
                Ok(()) => {}
                Err(FramedError::Io(err)) => return Err(err),
                Err(FramedError::Codec(_)) => {}
            }
            if id.is_some_and(|id| !conn.check_write(id)) {
                continue;
            }
            match sink.start_send_unpin(frame) {
                Ok(()) => {}
                Err(FramedError::Io(err)) => return Err(err),
                Err(FramedError::Codec(err)) => match id {
                    Some(id) => conn.fail_request(id, PoolError::Encode(err)),
                    None => {
                        tracing::warn!(upstream = %conn.addr, %err, "dropping a frame that cannot be encoded")
                    }
                },
            }
        }
        match sink.flush().await {
            Ok(()) => {}
            Err(FramedError::Io(err)) => return Err(err),
            Err(FramedError::Codec(_)) => {}
        }
    }
}

async fn read_loop(
    conn: &Arc<Conn>,
    pool: &Weak<Shared>,
    mut frames: FramedRead<OwnedReadHalf, FramedCodec>,
) -> End {
    const FAR: Duration = Duration::from_secs(86_400);
    let start = Instant::now();
    let heartbeats = conn
        .config
        .heartbeat_interval
        .filter(|_| conn.codec.heartbeat_request(1).is_some());
    let mut keepalive = Keepalive::new(heartbeats, conn.config.heartbeat_max_misses, start);
    let mut next_beat = keepalive.deadline();
    let mut drain_deadline: Option<Instant> = None;
    let timer = tokio::time::sleep_until(next_beat.unwrap_or(start + FAR));
    tokio::pin!(timer);
    // Made once and kept across turns (a fresh one per frame registered
    // and unregistered a waiter under a lock each time). Under load the
    // frames branch is ready every turn, so cancellation is also checked
    // by a plain load at the top of each turn.
    let cancelled = conn.cancel.cancelled();
    tokio::pin!(cancelled);
    let woken = conn.wake.notified();
    tokio::pin!(woken);
    loop {
        if conn.cancel.is_cancelled() {
            return End::Aborted;
        }
        tokio::select! {
            biased;
            next = frames.next() => match next {
                Some(Ok(frame)) => {
                    if next_beat.is_some() {
                        keepalive.on_read(Instant::now());
                    }
                    conn.on_frame(frame, pool);
                    continue;
                }
                Some(Err(err)) => return End::ReadError(err),
                None => return End::Eof,
            },
            () = &mut woken => {
                woken.set(conn.wake.notified());
                let (state, requests) = {
                    let book = conn.book();
                    (book.state, book.requests())
                };
                if state != ConnState::Draining {
                    continue;
                }
                if requests == 0 {
                    return End::Drained;
                }
                if drain_deadline.is_some() {
                    continue;
                }
                drain_deadline = Some(Instant::now() + conn.config.drain_timeout);
            }
            () = &mut timer => {
                let now = Instant::now();
                if drain_deadline.is_some_and(|at| now >= at) {
                    return End::DrainTimeout;
                }
                match keepalive.on_timer(now) {
                    Beat::Wait => {}
                    Beat::Ping => {
                        if !conn.send_ping() {
                            tracing::debug!(upstream = %conn.addr, "keep-alive ping not sent");
                        }
                    }
                    Beat::Dead => return End::HeartbeatTimeout,
                }
            }
            () = &mut cancelled => return End::Aborted,
        }
        // Re-arm the timer for the earlier of the next beat and the drain
        // deadline (reached only after a state or timer event, never per
        // frame).
        let now = Instant::now();
        next_beat = keepalive.deadline();
        let at = match (next_beat, drain_deadline) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => now + FAR,
        };
        timer.as_mut().reset(at);
    }
}
