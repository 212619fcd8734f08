//! The socket as hyper sees it: the bytes protocol detection already read
//! come first, then the socket; reads and writes are counted into the
//! listener's byte counters.

use crate::stats::{CountingWriter, ListenerStats};
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A downstream socket with detection's bytes replayed in front of it.
#[derive(Debug)]
pub(super) struct PrefixedStream {
    prefix: BytesMut,
    /// Writes are counted by the same writer the framed driver uses.
    stream: CountingWriter<TcpStream>,
    stats: Arc<ListenerStats>,
}

impl PrefixedStream {
    /// `prefix` was read from `stream` already (and counted).
    pub(super) fn new(
        stream: TcpStream,
        prefix: BytesMut,
        stats: Arc<ListenerStats>,
    ) -> PrefixedStream {
        PrefixedStream {
            prefix,
            stream: CountingWriter::new(stream, Arc::clone(&stats)),
            stats,
        }
    }

    /// Puts bytes read from the socket but not served back in front of
    /// it, for the next reader.
    pub(super) fn unread(&mut self, mut bytes: BytesMut) {
        bytes.extend_from_slice(&self.prefix);
        self.prefix = bytes;
    }
}

impl AsyncRead for PrefixedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(self.stream.get_mut()).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len() - before;
            if n > 0 {
                self.stats.read(n);
            }
        }
        polled
    }
}

impl AsyncWrite for PrefixedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
