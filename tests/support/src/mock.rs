//! Mock upstream servers over any framed codec (`Arc<dyn FrameCodec>`), for
//! pool, proxy and end-to-end tests.
//!
//! A [`MockUpstream`] listens on 127.0.0.1 (port 0), decodes requests with
//! its codec and answers each one through a responder (by default
//! [`echo_response`]: same id, same body), after a random delay from a
//! configurable range, so answers on one connection come back out of order
//! as they do from a real multiplexing server. It answers pings, counts
//! everything it sees, and checks that a client never reuses a request id
//! that is still outstanding on a connection.
//!
//! Faults: [`Mode::Hang`] (read, never answer), [`MockUpstream::kill`]
//! (stop listening and reset every connection), [`MockUpstream::restart`]
//! (listen again on the same port), [`MockUpstream::kill_connections`]
//! (reset connections, keep listening), [`MockUpstream::stop_listening`]
//! (connects are refused, live connections stay).

use crate::net::bind_loopback;
use bytes::BytesMut;
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits, WireMeta};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Builds the answer to a request; `None` = no answer.
pub type Responder = Arc<dyn Fn(&Frame) -> Option<Frame> + Send + Sync>;

/// A success response carrying the request's id and body, encoded from
/// fields by the codec. It keeps the request's version, serialization and
/// class, but neither its flag bits (Dubbo's flag byte says "request") nor a
/// status: each codec encodes a response without a status as its own
/// success (bolt 0, Dubbo 20, the test codec's OK kind). The body is the
/// request's, opaque: right for pool and proxy tests, not for a real
/// client that deserializes it (give those a responder closure).
pub fn echo_response(req: &Frame) -> Frame {
    let mut resp = Frame::new(FrameKind::Response, req.request_id);
    resp.set_body(req.body_bytes());
    resp.meta = WireMeta {
        flags: 0,
        ..req.meta
    };
    resp
}

/// What a mock does with the requests it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer each request through the responder, after the delay.
    Echo,
    /// Read and count requests, never answer them (pings still answered
    /// unless [`MockUpstream::set_answer_pings`] says otherwise).
    Hang,
    /// Read a request, then reset its connection without answering.
    Drop,
    /// Stop reading: the client's writes fill the socket buffers.
    Stall,
}

/// What a mock saw and did. Plain atomics, read with [`MockCounters::get`].
#[derive(Debug, Default)]
pub struct MockCounters {
    /// Connections accepted, ever.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Two-way requests received.
    pub requests: AtomicU64,
    /// Oneway requests received.
    pub oneways: AtomicU64,
    /// Responses sent.
    pub responses: AtomicU64,
    /// Pings received.
    pub pings: AtomicU64,
    /// Pongs received (answers to [`MockUpstream::ping_all`]).
    pub pongs: AtomicU64,
    /// GoAway frames received.
    pub goaways: AtomicU64,
    /// Requests whose id was still outstanding on their connection (a
    /// client bug: it must be 0).
    pub id_reuse: AtomicU64,
}

impl MockCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Configures and starts a [`MockUpstream`].
pub struct MockBuilder {
    codec: Arc<dyn FrameCodec>,
    responder: Responder,
    delay: (Duration, Duration),
    mode: Mode,
    answer_pings: bool,
    recv_buffer: Option<u32>,
}

impl fmt::Debug for MockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBuilder")
            .field("codec", &self.codec.name())
            .field("delay", &self.delay)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl MockBuilder {
    /// Each answer waits a uniformly random time in `min..=max`.
    pub fn delay(mut self, min: Duration, max: Duration) -> MockBuilder {
        self.delay = (min, max.max(min));
        self
    }

    /// Answers with `f` instead of [`echo_response`].
    pub fn responder(
        mut self,
        f: impl Fn(&Frame) -> Option<Frame> + Send + Sync + 'static,
    ) -> MockBuilder {
        self.responder = Arc::new(f);
        self
    }

    /// Starts in `mode` (default [`Mode::Echo`]).
    pub fn mode(mut self, mode: Mode) -> MockBuilder {
        self.mode = mode;
        self
    }

    /// Whether pings are answered (default yes).
    pub fn answer_pings(mut self, answer: bool) -> MockBuilder {
        self.answer_pings = answer;
        self
    }

    /// Caps the kernel receive buffer of accepted connections (`SO_RCVBUF`
    /// set on the listener, inherited on accept). With [`Mode::Stall`] it
    /// bounds what the kernel absorbs for a host that reads nothing; the
    /// default buffer grows with incoming data (Linux `tcp_rmem` max, often
    /// 32 MiB), so a stalled host could otherwise swallow a large frame.
    pub fn recv_buffer(mut self, bytes: u32) -> MockBuilder {
        self.recv_buffer = Some(bytes);
        self
    }

    /// Binds 127.0.0.1:0 and starts accepting. Must be called inside a
    /// tokio runtime.
    pub fn start(self) -> MockUpstream {
        let listener = match self.recv_buffer {
            Some(bytes) => crate::net::bind_loopback_with_recv_buffer(bytes)
                .expect("binding 127.0.0.1:0 should always work"),
            None => crate::net::bind_loopback_port0(),
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            codec: self.codec,
            responder: self.responder,
            addr,
            delay_us: (
                AtomicU64::new(self.delay.0.as_micros() as u64),
                AtomicU64::new(self.delay.1.as_micros() as u64),
            ),
            mode: AtomicU8::new(self.mode as u8),
            answer_pings: AtomicBool::new(self.answer_pings),
            counters: MockCounters::default(),
            state: Mutex::new(State::default()),
        });
        let upstream = MockUpstream { shared };
        upstream.listen(listener);
        upstream
    }
}

/// A mock upstream server. Dropping it stops it and resets its connections.
pub struct MockUpstream {
    shared: Arc<Shared>,
}

impl fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.shared.addr)
            .field("codec", &self.shared.codec.name())
            .field("counters", &self.shared.counters)
            .finish()
    }
}

struct Shared {
    codec: Arc<dyn FrameCodec>,
    responder: Responder,
    addr: SocketAddr,
    delay_us: (AtomicU64, AtomicU64),
    mode: AtomicU8,
    answer_pings: AtomicBool,
    counters: MockCounters,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    listener: Option<AbortHandle>,
    conns: HashMap<u64, ConnEntry>,
    /// Requests received per connection, in accept order (closed ones too).
    per_conn: Vec<Arc<AtomicU64>>,
    next_conn: u64,
}

struct ConnEntry {
    tx: mpsc::UnboundedSender<Frame>,
    reader: Option<AbortHandle>,
    writer: AbortHandle,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the counters from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            m if m == Mode::Hang as u8 => Mode::Hang,
            m if m == Mode::Drop as u8 => Mode::Drop,
            m if m == Mode::Stall as u8 => Mode::Stall,
            _ => Mode::Echo,
        }
    }

    fn pick_delay(&self) -> Duration {
        let min = self.delay_us.0.load(Ordering::Relaxed);
        let max = self.delay_us.1.load(Ordering::Relaxed).max(min);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(rand::rng().random_range(min..=max))
    }
}

impl MockUpstream {
    /// An echo server for `codec`, no delay.
    pub fn start(codec: Arc<dyn FrameCodec>) -> MockUpstream {
        MockUpstream::builder(codec).start()
    }

    /// A builder: echo, no delay, pings answered.
    pub fn builder(codec: Arc<dyn FrameCodec>) -> MockBuilder {
        MockBuilder {
            codec,
            responder: Arc::new(|req: &Frame| Some(echo_response(req))),
            delay: (Duration::ZERO, Duration::ZERO),
            mode: Mode::Echo,
            answer_pings: true,
            recv_buffer: None,
        }
    }

    /// The address it listens on (kept across [`MockUpstream::restart`]).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Its counters.
    pub fn counters(&self) -> &MockCounters {
        &self.shared.counters
    }

    /// Two-way requests received so far.
    pub fn requests(&self) -> u64 {
        MockCounters::get(&self.shared.counters.requests)
    }

    /// Requests received on each connection, in accept order.
    pub fn requests_per_connection(&self) -> Vec<u64> {
        self.shared
            .state()
            .per_conn
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Switches between answering and hanging.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::Relaxed);
    }

    /// Changes the answer delay range.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        let max = max.max(min);
        self.shared
            .delay_us
            .0
            .store(min.as_micros() as u64, Ordering::Relaxed);
        self.shared
            .delay_us
            .1
            .store(max.as_micros() as u64, Ordering::Relaxed);
    }

    /// Whether pings are answered.
    pub fn set_answer_pings(&self, answer: bool) {
        self.shared.answer_pings.store(answer, Ordering::Relaxed);
    }

    /// Stops accepting: new connects are refused; open connections stay.
    pub fn stop_listening(&self) {
        if let Some(listener) = self.shared.state().listener.take() {
            listener.abort();
        }
    }

    /// Resets every open connection (in-flight requests are lost), keeps
    /// listening.
    pub fn kill_connections(&self) {
        let conns: Vec<ConnEntry> = self.shared.state().conns.drain().map(|(_, c)| c).collect();
        let n = conns.len() as u64;
        for conn in conns {
            conn.writer.abort();
            if let Some(reader) = conn.reader {
                reader.abort();
            }
        }
        self.shared.counters.open.fetch_sub(n, Ordering::Relaxed);
    }

    /// The upstream dies: stops listening and resets every connection.
    pub fn kill(&self) {
        self.stop_listening();
        self.kill_connections();
    }

    /// Listens again on the same port after [`MockUpstream::kill`] or
    /// [`MockUpstream::stop_listening`].
    pub fn restart(&self) -> io::Result<()> {
        if self.shared.state().listener.is_some() {
            return Ok(());
        }
        let listener = bind_loopback(self.shared.addr.port())?;
        self.listen(listener);
        Ok(())
    }

    /// Sends `frame` on every open connection; returns how many.
    pub fn send_to_all(&self, frame: &Frame) -> usize {
        let state = self.shared.state();
        state
            .conns
            .values()
            .filter(|c| c.tx.send(frame.clone()).is_ok())
            .count()
    }

    /// Pings every open connection (the codec's `heartbeat_request`);
    /// answers are counted in [`MockCounters::pongs`]. Returns how many
    /// pings were sent.
    pub fn ping_all(&self) -> usize {
        match self.shared.codec.heartbeat_request(0x7000_0001) {
            Some(ping) => self.send_to_all(&ping),
            None => 0,
        }
    }

    fn listen(&self, listener: TcpListener) {
        let shared = Arc::clone(&self.shared);
        let mut state = self.shared.state();
        let task = tokio::spawn(accept_loop(shared, listener));
        state.listener = Some(task.abort_handle());
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or similar: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Closing with linger 0 sends RST: a killed upstream resets its
        // connections instead of closing them politely.
        let _ = stream.set_zero_linger();
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.open.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let requests = Arc::new(AtomicU64::new(0));
        // The lock is held while both tasks are spawned and registered, so a
        // reader that ends at once still finds its entry to remove.
        let mut state = shared.state();
        let id = state.next_conn;
        state.next_conn += 1;
        state.per_conn.push(Arc::clone(&requests));
        let (rd, wr) = stream.into_split();
        let writer = tokio::spawn(write_loop(Arc::clone(&shared.codec), wr, rx));
        let conn = Conn {
            shared: Arc::clone(&shared),
            id,
            tx: tx.clone(),
            requests,
            outstanding: Arc::new(Mutex::new(HashSet::new())),
        };
        let reader = tokio::spawn(conn.read_loop(rd));
        state.conns.insert(
            id,
            ConnEntry {
                tx,
                reader: Some(reader.abort_handle()),
                writer: writer.abort_handle(),
            },
        );
    }
}

async fn write_loop(
    codec: Arc<dyn FrameCodec>,
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Frame>,
) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    while let Some(frame) = rx.recv().await {
        let _ = codec.encode(&frame, &mut buf);
        while let Ok(frame) = rx.try_recv() {
            let _ = codec.encode(&frame, &mut buf);
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
}

struct Conn {
    shared: Arc<Shared>,
    id: u64,
    tx: mpsc::UnboundedSender<Frame>,
    requests: Arc<AtomicU64>,
    outstanding: Arc<Mutex<HashSet<u64>>>,
}

impl Conn {
    async fn read_loop(self, mut rd: tokio::net::tcp::OwnedReadHalf) {
        let limits = Limits::default();
        let mut buf = BytesMut::with_capacity(8 * 1024);
        'read: loop {
            if self.shared.mode() == Mode::Stall {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match self.shared.codec.decode(&mut buf, &limits) {
                    Ok(Some(frame)) => {
                        if !self.on_frame(frame) {
                            break 'read;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'read,
                }
            }
        }
        let entry = self.shared.state().conns.remove(&self.id);
        if let Some(entry) = entry {
            entry.writer.abort();
            self.shared.counters.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Handles one frame; false when the connection must be reset.
    fn on_frame(&self, frame: Frame) -> bool {
        let counters = &self.shared.counters;
        match frame.kind {
            FrameKind::Request => return self.on_request(frame),
            FrameKind::Oneway => {
                counters.oneways.fetch_add(1, Ordering::Relaxed);
                self.requests.fetch_add(1, Ordering::Relaxed);
            }
            FrameKind::Heartbeat { reply: false } => {
                counters.pings.fetch_add(1, Ordering::Relaxed);
                if self.shared.answer_pings.load(Ordering::Relaxed)
                    && let Some(pong) = self.shared.codec.heartbeat_reply(&frame)
                {
                    let _ = self.tx.send(pong);
                }
            }
            FrameKind::Heartbeat { reply: true } => {
                counters.pongs.fetch_add(1, Ordering::Relaxed);
            }
            FrameKind::GoAway => {
                counters.goaways.fetch_add(1, Ordering::Relaxed);
            }
            FrameKind::Response => {}
        }
        true
    }

    fn on_request(&self, frame: Frame) -> bool {
        let counters = &self.shared.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let id = frame.request_id;
        let fresh = lock(&self.outstanding).insert(id);
        if !fresh {
            counters.id_reuse.fetch_add(1, Ordering::Relaxed);
        }
        match self.shared.mode() {
            Mode::Hang => return true,
            Mode::Drop => return false,
            Mode::Echo | Mode::Stall => {}
        }
        let Some(resp) = (self.shared.responder)(&frame) else {
            lock(&self.outstanding).remove(&id);
            return true;
        };
        let delay = self.shared.pick_delay();
        let reply = Reply {
            shared: Arc::clone(&self.shared),
            tx: self.tx.clone(),
            outstanding: Arc::clone(&self.outstanding),
            id,
        };
        if delay.is_zero() {
            reply.send(resp);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                reply.send(resp);
            });
        }
        true
    }
}

struct Reply {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Frame>,
    outstanding: Arc<Mutex<HashSet<u64>>>,
    id: u64,
}

impl Reply {
    fn send(self, resp: Frame) {
        // The id is free again before the client can see the answer.
        lock(&self.outstanding).remove(&self.id);
        if self.tx.send(resp).is_ok() {
            self.shared
                .counters
                .responses
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connects to `addr` and returns the stream (a convenience for tests that
/// talk to a mock directly).
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
