//! The bodies crossing an HTTP pool: [`HttpBody`] going up, [`UpstreamBody`]
//! coming back.

use super::h1::WireBody;
use super::h2::H2Body;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Why a request body could not produce its next frame (the downstream
/// went away, a body filter failed, ...). Boxed so any source fits.
pub type HttpBodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the pool takes it: streaming, trailers allowed. Build
/// one with `http_body_util::BodyExt::boxed_unsync` (after `map_err` into
/// [`HttpBodyError`]) from hyper's `Incoming`, `Full`, `Empty`, a stream.
pub type HttpBody = UnsyncBoxBody<Bytes, HttpBodyError>;

/// An empty request body.
pub fn empty_body() -> HttpBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response body from the upstream, streamed as the upstream sends it
/// (nothing is buffered beyond a read buffer, or hyper's and h2's flow
/// control windows), trailers included: HTTP/1 read by the pool's own
/// client straight from the connection, h2 from its stream, HTTP/1
/// upgrades hyper's [`Incoming`].
///
/// It also holds the request's place in the pool: the request counts as
/// in flight, and its HTTP/1 connection stays out of the idle list, until
/// this body has yielded its last frame, failed, or been dropped. Drop it
/// (or read it to the end) promptly: an HTTP/1 connection whose body is
/// dropped half-read is closed, not reused.
pub struct UpstreamBody {
    inner: Inner,
}

enum Inner {
    Wire(WireBody),
    H2 {
        body: H2Body,
        lease: Option<Box<dyn Send + Sync>>,
    },
    Hyper {
        body: Incoming,
        lease: Option<Box<dyn Send + Sync>>,
    },
}

impl UpstreamBody {
    pub(crate) fn new(body: Incoming, lease: Box<dyn Send + Sync>) -> UpstreamBody {
        // A response without a body (204, 304, HEAD, an empty h2 stream)
        // finishes the exchange at once.
        let lease = (!body.is_end_stream()).then_some(lease);
        UpstreamBody {
            inner: Inner::Hyper { body, lease },
        }
    }

    pub(crate) fn h2(body: H2Body, lease: Box<dyn Send + Sync>) -> UpstreamBody {
        let lease = (!body.is_end_stream()).then_some(lease);
        UpstreamBody {
            inner: Inner::H2 { body, lease },
        }
    }

    pub(crate) fn wire(body: WireBody) -> UpstreamBody {
        UpstreamBody {
            inner: Inner::Wire(body),
        }
    }
}

impl fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Wire(body) => body.fmt(f),
            Inner::H2 { body, lease } => f
                .debug_struct("UpstreamBody")
                .field("inner", body)
                .field("finished", &lease.is_none())
                .finish(),
            Inner::Hyper { body, lease } => f
                .debug_struct("UpstreamBody")
                .field("inner", body)
                .field("finished", &lease.is_none())
                .finish(),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = HttpBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpBodyError>>> {
        match &mut self.get_mut().inner {
            Inner::Wire(body) => body.poll_frame(cx),
            Inner::H2 { body, lease } => {
                let polled = body.poll_frame(cx);
                release_at_end(&polled, body.is_end_stream(), lease);
                polled.map_err(HttpBodyError::from)
            }
            Inner::Hyper { body, lease } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                release_at_end(&polled, body.is_end_stream(), lease);
                polled.map_err(HttpBodyError::from)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Wire(body) => body.is_end_stream(),
            Inner::H2 { body, .. } => body.is_end_stream(),
            Inner::Hyper { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Wire(body) => body.size_hint(),
            Inner::H2 { body, .. } => body.size_hint(),
            Inner::Hyper { body, .. } => body.size_hint(),
        }
    }
}

/// Ends the exchange's hold on its connection (`lease`) once `polled` is
/// the body's end, its last frame (`ended` after it) or an error.
fn release_at_end<T, E>(
    polled: &Poll<Option<Result<T, E>>>,
    ended: bool,
    lease: &mut Option<Box<dyn Send + Sync>>,
) {
    match polled {
        Poll::Ready(None) | Poll::Ready(Some(Err(_))) => *lease = None,
        Poll::Ready(Some(Ok(_))) if ended => *lease = None,
        Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
    }
}
