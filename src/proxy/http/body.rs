//! The bodies crossing the HTTP path's edges: what the downstream driver
//! hands over ([`RequestBody`]) and what goes back ([`ResponseBody`]).

use super::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use meshgate_cluster::UpstreamBody;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A downstream request body as the driver hands it over: hyper's
/// `Incoming`, or a wrapper around it.
pub trait RequestBody:
    Body<Data = Bytes, Error = hyper::Error> + Send + Sync + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: Body<Data = Bytes, Error = hyper::Error> + Send + Sync + Unpin + 'static
{
}

/// The body of every response the gateway sends downstream: an upstream's
/// streamed body as the pool returns it (no box per request), or any
/// other body, boxed (a local reply's, one that writes the access log).
#[derive(Debug)]
pub enum ResponseBody {
    /// An upstream's body, unwrapped.
    Upstream(UpstreamBody),
    /// Any other body.
    Boxed(BoxBody<Bytes, BoxError>),
}

impl ResponseBody {
    /// `body`, boxed.
    pub(crate) fn boxed<B>(body: B) -> ResponseBody
    where
        B: Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
    {
        ResponseBody::Boxed(BoxBody::new(body))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(BoxError::from),
            ResponseBody::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(body) => body.is_end_stream(),
            ResponseBody::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(body) => body.size_hint(),
            ResponseBody::Boxed(body) => body.size_hint(),
        }
    }
}
