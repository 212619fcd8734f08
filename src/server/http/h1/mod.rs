//! The gateway's own HTTP/1.1 server path, for the requests most traffic
//! is made of: a head whose framing leaves nothing to interpret, with its
//! body (if any, up to 64 KiB) read whole before it is served ([`head`]
//! says which). A request head and such a body must arrive within the
//! listener's frame read timeout, as a head alone must on hyper's path. It costs
//! about a third of what hyper's server connection does per request (no
//! dispatch channel, no read buffer reallocated per request).
//!
//! ```text
//!  socket ─► read buffer ─► head::parse_request ─┬─ Request ─► service ─► response head + body ─► socket
//!                                                 └─ Elsewhere (upgrade, chunked or streamed upload,
//!                                                    Expect, malformed head, ...) ─► hyper serves the
//!                                                    connection from that request on ([`Ended::ToHyper`])
//! ```
//!
//! While a request is served the socket is still read, as hyper does: a
//! client that closes its connection cancels its request, and pipelined
//! requests wait in the buffer (reading stops when it is full).

mod body;
mod date;
mod head;

pub(crate) use body::FullBody;

use super::TrackedBody;
use super::io::PrefixedStream;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::FutureExt;
use head::{BodySize, Framing, Parsed};
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use std::future::{Future, poll_fn};
use std::io;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use tokio::io::AsyncWriteExt;

/// What a read asks room for: hyper's first read buffer size.
const READ_SIZE: usize = 8 * 1024;
/// Below this much room the buffer grows (or, once the requests that
/// share it are gone, is reused from its start) before a read.
const MIN_ROOM: usize = 1024;
/// Body chunks up to this size are copied behind the head, so a small
/// response goes out in one write.
const COPY_MAX: usize = 16 * 1024;
/// Buffered response bytes that are written out before more body is
/// polled.
const FLUSH_AT: usize = 64 * 1024;

/// How the path ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The connection is over: closed by either side, or failed.
    Closed,
    /// hyper serves the rest: the socket, with the bytes read but not
    /// served put back in front of it.
    ToHyper(PrefixedStream),
}

/// Why a response stopped short; the connection closes after it.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("writing to the client: {0}")]
    Io(#[from] io::Error),
    #[error("the response body failed: {0}")]
    Body(crate::proxy::http::BoxError),
    #[error("the response body is longer than its content-length")]
    TooLong,
    #[error("the response body ended before its content-length")]
    TooShort,
}

/// Serves requests on `io` until the connection ends or a request needs
/// hyper. `shutdown` asks for a graceful end: an idle connection closes at
/// once, a busy one after its response. A head must fit `max_buf` bytes
/// (hyper answers a longer one with a 431).
pub(super) async fn serve<F, Fut>(
    mut io: PrefixedStream,
    shutdown: &AtomicBool,
    max_buf: usize,
    peer: SocketAddr,
    service: F,
) -> Ended
where
    F: Fn(Request<FullBody>) -> Fut,
    Fut: Future<Output = Response<TrackedBody>>,
{
    let mut read = BytesMut::new();
    // Grown by the first response: an idle connection holds no more than
    // its read buffer.
    let mut out = BytesMut::new();
    // A request takes the field map the last response left (as hyper
    // does), so no map is allocated or regrown per request.
    let mut spare = HeaderMap::new();
    loop {
        let (request, mut closing) = loop {
            // How many bytes the buffer must hold before parsing again.
            let wanted = match head::parse_request(&mut read, &mut spare) {
                Parsed::Request { request, close } => break (request, close),
                Parsed::Elsewhere(why) => {
                    tracing::trace!(%peer, why, "HTTP/1 request handed to hyper");
                    io.unread(read);
                    return Ended::ToHyper(io);
                }
                Parsed::Partial if read.len() >= max_buf => {
                    io.unread(read);
                    return Ended::ToHyper(io);
                }
                Parsed::Partial => read.len() + 1,
                Parsed::Short(total) => total,
            };
            while read.len() < wanted {
                let filled = poll_fn(|cx| {
                    if shutdown.load(Ordering::Acquire) {
                        return Poll::Ready(None);
                    }
                    make_room(&mut read);
                    tokio_util::io::poll_read_buf(Pin::new(&mut io), cx, &mut read).map(Some)
                })
                .await;
                match filled {
                    Some(Ok(0)) | None => return Ended::Closed,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "reading a request failed");
                        return Ended::Closed;
                    }
                }
            }
        };
        let head_request = request.method() == Method::HEAD;
        make_room(&mut read);
        // Pinned where it is made: the service's future is large, and every
        // move of it is a copy.
        let served = pin!(service(request));
        let Some(response) = serve_watching(&mut io, &mut read, served).await else {
            tracing::debug!(%peer, "client closed its connection with a request in flight");
            return Ended::Closed;
        };
        let (parts, body) = response.into_parts();
        let size = if body.is_end_stream() {
            BodySize::Ended
        } else {
            body.size_hint()
                .exact()
                .map_or(BodySize::Unknown, BodySize::Exact)
        };
        closing |= shutdown.load(Ordering::Acquire);
        out.clear();
        let framing = match head::encode_response(
            &parts,
            size,
            head_request,
            &mut closing,
            &mut out,
        ) {
            Ok(framing) => framing,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "answering 500 instead of a response that cannot be sent");
                let _ = io
                        .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                return Ended::Closed;
            }
        };
        spare = parts.headers;
        if let Err(e) = write_body(&mut io, &mut out, body, framing).await {
            tracing::debug!(%peer, error = %e, "HTTP/1 response cut short, closing");
            return Ended::Closed;
        }
        if closing || framing == Framing::UntilClose {
            let _ = io.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// Room for a read without growing the buffer per request: it grows (or
/// is reused from its start) only once the room left is small.
fn make_room(read: &mut BytesMut) {
    if read.capacity() - read.len() < MIN_ROOM {
        read.reserve(READ_SIZE);
    }
}

/// Runs the service's future to its response while reading the socket:
/// `None` when the client closed (or broke) its connection first, which
/// drops, and so cancels, the request.
fn serve_watching<'a, Fut>(
    io: &'a mut PrefixedStream,
    read: &'a mut BytesMut,
    mut served: Pin<&'a mut Fut>,
) -> impl Future<Output = Option<Fut::Output>> + 'a
where
    Fut: Future,
{
    let mut watching = true;
    poll_fn(move |cx| {
        if let Poll::Ready(response) = served.as_mut().poll(cx) {
            return Poll::Ready(Some(response));
        }
        // Pipelined requests wait in the buffer while it has room.
        while watching && read.capacity() > read.len() {
            match tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, read) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        watching = false;
        Poll::Pending
    })
}

/// Writes the head in `out` and the body after it, framed. A body that
/// fails, or does not match its content-length, ends the connection.
async fn write_body(
    io: &mut PrefixedStream,
    out: &mut BytesMut,
    mut body: TrackedBody,
    framing: Framing,
) -> Result<(), WriteError> {
    let mut remaining = match framing {
        Framing::Length(length) => length,
        // A HEAD, 204 or 304 response, or an empty body: nothing to poll.
        Framing::Nothing => return flush(io, out).await,
        Framing::Chunked | Framing::UntilClose => 0,
    };
    loop {
        // What is ready goes behind the head; only a body that has to wait
        // sends what is buffered first.
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                flush(io, out).await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(WriteError::Body(e)),
            // Trailers go only to clients that asked for them (`TE`), and
            // those are served by hyper.
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        match framing {
            Framing::Length(_) => {
                remaining = remaining
                    .checked_sub(data.len() as u64)
                    .ok_or(WriteError::TooLong)?;
                put(io, out, data).await?;
            }
            Framing::Chunked => {
                put_hex(out, data.len());
                out.put_slice(b"\r\n");
                put(io, out, data).await?;
                out.put_slice(b"\r\n");
            }
            _ => put(io, out, data).await?,
        }
        if out.len() >= FLUSH_AT {
            flush(io, out).await?;
        }
    }
    match framing {
        Framing::Chunked => out.put_slice(b"0\r\n\r\n"),
        Framing::Length(_) if remaining > 0 => {
            flush(io, out).await?;
            return Err(WriteError::TooShort);
        }
        _ => {}
    }
    flush(io, out).await
}

/// A chunk's size line, without a `String` per chunk.
fn put_hex(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

/// Appends a small chunk to `out`; writes a large one out together with
/// what `out` holds.
async fn put(io: &mut PrefixedStream, out: &mut BytesMut, data: Bytes) -> io::Result<()> {
    if data.len() <= COPY_MAX {
        out.extend_from_slice(&data);
        return Ok(());
    }
    let (mut first, mut second) = (&out[..], &data[..]);
    while !first.is_empty() || !second.is_empty() {
        let slices = [IoSlice::new(first), IoSlice::new(second)];
        let n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_first = n.min(first.len());
        first = &first[from_first..];
        second = &second[n - from_first..];
    }
    out.clear();
    Ok(())
}

async fn flush(io: &mut PrefixedStream, out: &mut BytesMut) -> Result<(), WriteError> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    Ok(())
}
