//! One upstream HTTP/1.1 connection driven by the request that holds it:
//! the exchange (request out, response head in) and the response body
//! read from the socket as the caller polls it. No task and no channel per
//! connection: the caller's task does the I/O, and the connection goes
//! back to the pool when the body ends.

use super::Shared;
use super::wire::{self, BodyFraming, ChunkStep, Chunked, SendFraming, WireError};
use crate::pool::http::body::HttpBodyError;
use crate::pool::http::counters::{CountedStream, InFlight};
use crate::pool::http::{HttpBody, LentHead};
use bytes::{Buf, Bytes, BytesMut};
use http::Method;
use http_body::{Body, Frame, SizeHint};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::AsyncWrite;
use tokio_util::io::poll_read_buf;

/// Read buffer growth: the first read of an exchange reserves this much.
const READ_CHUNK: usize = 8 * 1024;
/// A connection going idle gives back buffers larger than this.
const KEEP_BUFFER: usize = 64 * 1024;

pub(crate) struct WireConn {
    io: CountedStream,
    read: BytesMut,
    write: BytesMut,
    /// Exchanges carried, for `max_requests_per_conn`.
    pub(super) uses: u64,
    /// Bound on the response head and a chunked body's trailers, and on
    /// a single read.
    max_head: usize,
    /// How much the next read makes room for.
    read_size: usize,
}

/// Why an exchange produced no response head.
pub(super) enum Failed {
    /// Nothing was written: the request can go elsewhere as it is (its
    /// body comes back untouched).
    Unsent(WireError, HttpBody),
    /// Written, at least in part, and no usable response. `response_bytes`:
    /// some of a response had arrived.
    Lost {
        error: WireError,
        response_bytes: bool,
    },
}

impl WireConn {
    pub(super) fn new(io: CountedStream, max_head: usize) -> WireConn {
        WireConn {
            io,
            read: BytesMut::new(),
            write: BytesMut::new(),
            uses: 0,
            max_head: max_head.max(READ_CHUNK),
            read_size: READ_CHUNK,
        }
    }

    /// True when the upstream closed the idle connection (or sent bytes
    /// nobody asked for). Reads the socket only when the reactor saw it
    /// become readable.
    pub(super) fn is_stale(&mut self) -> bool {
        if !self.read.is_empty() {
            return true;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.tcp().poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                match self.io.tcp().try_read(&mut probe) {
                    Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
                    Ok(_) => true,
                }
            }
        }
    }

    /// Drops oversized buffers before the connection waits idle.
    pub(super) fn trim(&mut self) {
        self.read_size = READ_CHUNK;
        if self.read.capacity() > KEEP_BUFFER {
            self.read = BytesMut::new();
        }
        if self.write.capacity() > KEEP_BUFFER {
            self.write = BytesMut::new();
        }
    }

    /// The socket, for a protocol upgrade through hyper (the read buffer
    /// is empty between exchanges).
    pub(super) fn into_stream(self) -> CountedStream {
        self.io
    }

    /// Writes the request and reads the final response head. Returns it
    /// with its body framing, whether the connection may be reused after
    /// the body, and whether the whole request body went out (a response
    /// may come early, while the body is still being sent; the rest of it
    /// is then dropped and the connection not reused).
    pub(super) async fn exchange(
        &mut self,
        head: &LentHead<'_>,
        mut body: HttpBody,
    ) -> Result<(wire::ResponseHead, bool), Failed> {
        let framing = if body.is_end_stream() {
            SendFraming::Empty
        } else {
            match body.size_hint().exact() {
                Some(length) => SendFraming::Length(length),
                None => SendFraming::Chunked,
            }
        };
        self.write.clear();
        wire::encode_head(head, framing, &mut self.write);
        let mut sending = Sending {
            framing,
            sent: 0,
            done: framing == SendFraming::Empty,
            failed: None,
        };
        // The head alone goes first when it can be written at once; the
        // body is polled only after, so a connection that fails on the very
        // first write leaves the body whole for another try.
        let unsent = self.write.len();
        if let Err(error) = self.flush_now() {
            if self.write.len() == unsent {
                return Err(Failed::Unsent(error, body));
            }
            return Err(Failed::Lost {
                error,
                response_bytes: false,
            });
        }
        let method = head.method;
        let result = poll_fn(|cx| {
            if !sending.done && sending.failed.is_none() {
                match self.poll_send(&mut body, &mut sending, cx) {
                    Poll::Ready(Ok(())) => sending.done = true,
                    // The request cannot be completed: no answer to wait for.
                    Poll::Ready(Err(error @ WireError::Body(_))) => return Poll::Ready(Err(error)),
                    // The upstream may still have answered before it stopped
                    // reading (an early 413, say): read on.
                    Poll::Ready(Err(error)) => sending.failed = Some(error),
                    Poll::Pending => {}
                }
            }
            self.poll_head(method, cx)
        })
        .await;
        match result {
            Ok(head) => Ok((head, sending.done)),
            Err(error) => {
                // A failed send explains a missing response better than the
                // read side's end of file.
                let error = match sending.failed {
                    Some(send_error) if error.is_connection_lost() => send_error,
                    _ => error,
                };
                Err(Failed::Lost {
                    error,
                    response_bytes: !self.read.is_empty(),
                })
            }
        }
    }

    /// One non-blocking attempt to write the buffered bytes.
    fn flush_now(&mut self) -> Result<(), WireError> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_flush_buffer(&mut cx) {
            Poll::Ready(Err(error)) => Err(error),
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
        }
    }

    fn poll_flush_buffer(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        while !self.write.is_empty() {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.write))?;
            if written == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.write.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is buffered, then the body's frames as they come.
    fn poll_send(
        &mut self,
        body: &mut HttpBody,
        sending: &mut Sending,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WireError>> {
        // Each turn writes out one frame (or the end) before pulling the
        // next: bounded by the body, and by the upstream's reading.
        loop {
            ready!(self.poll_flush_buffer(cx))?;
            if sending.done {
                return Poll::Ready(Ok(()));
            }
            let frame = match ready!(Pin::new(&mut *body).poll_frame(cx)) {
                None => {
                    sending.finish(None, &mut self.write)?;
                    continue;
                }
                Some(Err(error)) => return Poll::Ready(Err(WireError::Body(error.to_string()))),
                Some(Ok(frame)) => frame,
            };
            match frame.into_data() {
                Ok(data) => sending.data(&data, &mut self.write)?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        sending.finish(Some(&trailers), &mut self.write)?;
                    }
                }
            }
        }
    }

    /// Reads until the final response head is complete.
    fn poll_head(
        &mut self,
        method: &Method,
        cx: &mut Context<'_>,
    ) -> Poll<Result<wire::ResponseHead, WireError>> {
        // Each turn parses or reads at least one byte more, up to the head
        // size limit.
        loop {
            if !self.read.is_empty()
                && let Some(head) = wire::parse_response(&mut self.read, method)?
            {
                return Poll::Ready(Ok(head));
            }
            if self.read.len() >= self.max_head {
                return Poll::Ready(Err(WireError::HeadTooLarge(self.max_head)));
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(WireError::Closed(if self.read.is_empty() {
                    "before any response"
                } else {
                    "inside the response head"
                })));
            }
        }
    }

    /// Reads more of the socket into the read buffer (0: end of file).
    /// A read that fills all the room there was doubles the next one's,
    /// up to the buffer limit, so a long body takes fewer reads.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.read.capacity() - self.read.len() < 1024 {
            self.read.reserve(self.read_size);
        }
        let room = self.read.capacity() - self.read.len();
        let read = ready!(poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read))?;
        if read == room {
            self.read_size = (self.read_size * 2).min(self.max_head);
        }
        Poll::Ready(Ok(read))
    }
}

/// The request body's progress.
struct Sending {
    framing: SendFraming,
    /// Body bytes sent (for `content-length`).
    sent: u64,
    done: bool,
    failed: Option<WireError>,
}

impl Sending {
    fn data(&mut self, data: &Bytes, out: &mut BytesMut) -> Result<(), WireError> {
        self.sent += data.len() as u64;
        match self.framing {
            SendFraming::Chunked => wire::encode_chunk(data, out),
            SendFraming::Length(length) if self.sent <= length => out.extend_from_slice(data),
            SendFraming::Length(length) => {
                return Err(WireError::Body(format!(
                    "longer than its announced {length} bytes"
                )));
            }
            SendFraming::Empty if data.is_empty() => {}
            SendFraming::Empty => return Err(WireError::Body("data in an empty body".into())),
        }
        Ok(())
    }

    fn finish(
        &mut self,
        trailers: Option<&http::HeaderMap>,
        out: &mut BytesMut,
    ) -> Result<(), WireError> {
        match self.framing {
            SendFraming::Chunked => wire::encode_last_chunk(trailers, out),
            SendFraming::Length(length) if self.sent != length => {
                return Err(WireError::Body(format!(
                    "ended after {} of its announced {length} bytes",
                    self.sent
                )));
            }
            SendFraming::Length(_) | SendFraming::Empty => {}
        }
        self.done = true;
        Ok(())
    }
}

/// A response body read straight from its connection. It holds the
/// connection, and the request's place in flight, until it ends: then the
/// connection goes back to the pool if it can carry another exchange,
/// else it closes. Dropped half-read, it closes the connection.
pub(crate) struct WireBody {
    conn: Option<Box<WireConn>>,
    state: Reading,
    reusable: bool,
    pool: Arc<Shared>,
    in_flight: Option<InFlight>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

impl WireBody {
    pub(super) fn new(
        conn: Box<WireConn>,
        framing: BodyFraming,
        reusable: bool,
        pool: Arc<Shared>,
        in_flight: InFlight,
    ) -> WireBody {
        let state = match framing {
            BodyFraming::Empty => Reading::Done,
            BodyFraming::Length(length) => Reading::Length(length),
            BodyFraming::Chunked => Reading::Chunked(Chunked::Size),
            BodyFraming::UntilClose => Reading::UntilClose,
        };
        let mut body = WireBody {
            conn: Some(conn),
            state,
            reusable,
            pool,
            in_flight: Some(in_flight),
        };
        if state == Reading::Done {
            body.finish();
        }
        body
    }

    /// The exchange is over: the connection goes back or closes.
    fn finish(&mut self) {
        self.state = Reading::Done;
        if let Some(mut conn) = self.conn.take()
            && self.reusable
            && conn.read.is_empty()
        {
            conn.trim();
            self.pool.checkin(conn);
        }
        self.in_flight = None;
    }

    fn fail(
        &mut self,
        error: impl Into<HttpBodyError>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpBodyError>>> {
        self.state = Reading::Done;
        self.conn = None;
        self.in_flight = None;
        Poll::Ready(Some(Err(error.into())))
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpBodyError>>> {
        // Each turn yields, or reads at least one byte more, or ends.
        loop {
            // Done gives the connection up, so a body still holding it is
            // not done.
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut self.state {
                Reading::Done => return Poll::Ready(None),
                Reading::Length(left) if !conn.read.is_empty() => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(conn.read.len());
                    let data = conn.read.split_to(take).freeze();
                    *left -= take as u64;
                    if *left == 0 {
                        // Back in the pool before the caller even asks for
                        // the end: the next request may reuse it at once.
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Reading::UntilClose if !conn.read.is_empty() => {
                    let data = conn.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Reading::Chunked(chunked) => match chunked.step(&mut conn.read, conn.max_head) {
                    Ok(ChunkStep::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(ChunkStep::Trailers(trailers)) => {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(ChunkStep::End) => {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    Ok(ChunkStep::NeedMore) => {}
                    Err(error) => return self.fail(error),
                },
                Reading::Length(_) | Reading::UntilClose => {}
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if self.state == Reading::UntilClose => {
                    self.reusable = false;
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => return self.fail(WireError::Closed("inside the response body")),
                Ok(_) => {}
                Err(error) => return self.fail(WireError::Io(error)),
            }
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.state == Reading::Done
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.state {
            Reading::Done => SizeHint::with_exact(0),
            Reading::Length(left) => SizeHint::with_exact(left),
            Reading::Chunked(_) | Reading::UntilClose => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for WireBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireBody")
            .field("state", &self.state)
            .field("reusable", &self.reusable)
            .finish_non_exhaustive()
    }
}
