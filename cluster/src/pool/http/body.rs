//! The bodies crossing an HTTP pool: [`HttpBody`] going up, [`UpstreamBody`]
//! coming back, and the internal wrapper that lets the pool take a request
//! body back when hyper gave up on the request before reading any of it.

use super::h1::WireBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
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
/// client straight from the connection, h2 (and HTTP/1 upgrades) hyper's
/// [`Incoming`].
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
            Inner::Hyper { body, lease } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) | Poll::Ready(Some(Err(_))) => *lease = None,
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => *lease = None,
                    Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
                }
                polled.map_err(HttpBodyError::from)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Wire(body) => body.is_end_stream(),
            Inner::Hyper { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Wire(body) => body.size_hint(),
            Inner::Hyper { body, .. } => body.size_hint(),
        }
    }
}

/// The request body handed to hyper. Until hyper first polls it the real
/// body stays in a slot shared with the pool, so a request hyper never
/// started sending (connection closed, stream refused) can be sent again
/// with its body whole. Once polled, the body moves in here and the slot
/// is empty: what was read cannot be read again. A body known to be empty
/// needs no slot (the pool sends a new empty one again): no allocation and
/// no lock for most GETs.
pub(crate) struct SendBody {
    slot: Option<Arc<Mutex<Option<HttpBody>>>>,
    body: Option<HttpBody>,
}

/// The pool's side of a [`SendBody`]'s slot.
pub(crate) struct BodySlot(Option<Arc<Mutex<Option<HttpBody>>>>);

impl SendBody {
    /// Wraps `body`; the [`BodySlot`] can take it back while unpolled
    /// (an empty body: never, the caller makes a new one).
    pub(crate) fn new(body: HttpBody) -> (SendBody, BodySlot) {
        if body.is_end_stream() {
            return (
                SendBody {
                    slot: None,
                    body: Some(body),
                },
                BodySlot(None),
            );
        }
        let slot = Arc::new(Mutex::new(Some(body)));
        (
            SendBody {
                slot: Some(Arc::clone(&slot)),
                body: None,
            },
            BodySlot(Some(slot)),
        )
    }

    fn slot(&self) -> Option<MutexGuard<'_, Option<HttpBody>>> {
        self.slot.as_deref().map(lock)
    }
}

impl BodySlot {
    /// The body, if hyper never started reading it.
    pub(crate) fn reclaim(&self) -> Option<HttpBody> {
        lock(self.0.as_deref()?).take()
    }
}

fn lock(slot: &Mutex<Option<HttpBody>>) -> MutexGuard<'_, Option<HttpBody>> {
    // A take or a put only: a poisoned lock still holds a consistent value.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Body for SendBody {
    type Data = Bytes;
    type Error = HttpBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpBodyError>>> {
        let this = self.get_mut();
        if this.body.is_none() {
            let taken = this.slot().and_then(|mut slot| slot.take());
            this.body = taken;
        }
        match &mut this.body {
            Some(body) => Pin::new(body).poll_frame(cx),
            // Reclaimed by the pool for a retry: this attempt is over.
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Some(body) => body.is_end_stream(),
            None => self
                .slot()
                .is_none_or(|slot| slot.as_ref().is_none_or(Body::is_end_stream)),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Some(body) => body.size_hint(),
            None => self
                .slot()
                .and_then(|slot| slot.as_ref().map(Body::size_hint))
                .unwrap_or_else(|| SizeHint::with_exact(0)),
        }
    }
}
