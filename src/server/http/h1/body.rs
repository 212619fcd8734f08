//! The body of a request taken by the gateway's own HTTP/1.1 path: read
//! whole with its head, so it is there at once.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A request body that arrived with its head (none for most requests).
#[derive(Debug, Default)]
pub(crate) struct FullBody(Option<Bytes>);

impl FullBody {
    pub(super) fn new(bytes: Bytes) -> FullBody {
        FullBody((!bytes.is_empty()).then_some(bytes))
    }

    pub(super) fn empty() -> FullBody {
        FullBody(None)
    }
}

impl Body for FullBody {
    type Data = Bytes;
    // What the proxy takes from hyper's bodies too; this one never fails.
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }
}
