//! The connection's task: connect, then a reader loop in this task and a
//! writer task, until the connection closes.

use super::keepalive::{Beat, Keepalive};
use super::{Conn, ConnState, Shared};
use crate::pool::connect::connect;
use crate::pool::{FramedError, PoolCounters};
use bytes::BytesMut;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// Read size: room made before each socket read.
const READ_CHUNK: usize = 8 * 1024;

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
pub(in crate::pool::multiplex) async fn run(conn: Arc<Conn>, pool: Weak<Shared>) {
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

    let (rd, wr) = stream.into_split();
    let writer = tokio::spawn(write_loop(Arc::clone(&conn), wr));
    let end = read_loop(&conn, &pool, rd).await;

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

async fn write_loop(conn: Arc<Conn>, wr: OwnedWriteHalf) {
    tokio::select! {
        () = conn.cancel.cancelled() => {}
        result = write_batches(&conn, wr) => {
            if let Err(err) = result {
                tracing::debug!(upstream = %conn.addr, conn = conn.serial, %err, "upstream write failed");
            }
            conn.cancel.cancel();
        }
    }
}

/// Woken when the write buffer gets its first frame: lets the request
/// tasks that are already runnable encode theirs too, then takes the
/// buffer whole (the batch is written from here on) and writes it with
/// one syscall when the socket takes it all.
async fn write_batches(conn: &Conn, mut wr: OwnedWriteHalf) -> std::io::Result<()> {
    let mut batch = BytesMut::new();
    loop {
        conn.writer.notified().await;
        // Coalesce: a syscall on loopback costs far more than the frames
        // it carries.
        tokio::task::yield_now().await;
        conn.take_batch(&mut batch);
        if batch.is_empty() {
            continue;
        }
        wr.write_all(&batch).await?;
        batch.clear();
    }
}

async fn read_loop(conn: &Arc<Conn>, pool: &Weak<Shared>, mut rd: OwnedReadHalf) -> End {
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
    // read branch is ready every turn, so cancellation is also checked
    // by a plain load at the top of each turn.
    let cancelled = conn.cancel.cancelled();
    tokio::pin!(cancelled);
    let woken = conn.wake.notified();
    tokio::pin!(woken);
    // Read and decoded here, not through a `FramedRead`: each frame goes
    // straight from the decoder to its caller.
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if conn.cancel.is_cancelled() {
            return End::Aborted;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) if buf.is_empty() => return End::Eof,
                Ok(0) => {
                    let err = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "upstream closed mid-frame");
                    return End::ReadError(FramedError::Io(err));
                }
                Ok(_) => {
                    if next_beat.is_some() {
                        keepalive.on_read(Instant::now());
                    }
                    loop {
                        match conn.codec.decode(&mut buf, &conn.config.limits) {
                            Ok(Some(frame)) => conn.on_frame(frame, pool),
                            Ok(None) => break,
                            Err(err) => return End::ReadError(FramedError::Codec(err)),
                        }
                    }
                    continue;
                }
                Err(err) => return End::ReadError(FramedError::Io(err)),
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
