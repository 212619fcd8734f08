//! Counting the bytes a downstream connection writes, below the framing.

use super::ListenerStats;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// An `AsyncWrite` that adds every byte the socket accepted to its
/// listener's `bytes_out_total`: one relaxed add per write call (the
/// driver coalesces many replies into one write).
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    stats: Arc<ListenerStats>,
}

impl<W> CountingWriter<W> {
    /// Wraps `inner`, counting into `stats`.
    pub fn new(inner: W, stats: Arc<ListenerStats>) -> CountingWriter<W> {
        CountingWriter { inner, stats }
    }

    /// The wrapped writer (for reading, when it is a socket).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    fn count(&self, n: usize) {
        self.stats
            .written_counter()
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.count(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.count(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
