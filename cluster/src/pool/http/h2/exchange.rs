//! One stream's exchange on the h2 crate, in the caller's task: the
//! request head made fit for h2, the request body sent as the peer's flow
//! control allows while the response head is awaited, and the response
//! body read with the stream's window released as it is read.

use crate::pool::http::HttpBody;
use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{Reason, RecvStream, SendStream};
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Makes `req` fit for h2: an absolute URI (scheme `http`, the request's
/// authority, else its `Host`, else `addr`), no connection-specific
/// fields (h2 refuses them; a message the proxy already stripped costs
/// one pass over its names), and `content-length` when the body's length is known (as
/// hyper's client sets it: not 0 for methods without a defined payload).
pub(super) fn prepare(req: &mut Request<()>, addr: SocketAddr, body: &HttpBody) {
    absolute_form(req, addr);
    crate::pool::http::strip_hop_by_hop(req.headers_mut());
    if let Some(len) = body.size_hint().exact()
        && (len != 0 || has_payload_semantics(req.method()))
        && !req.headers().contains_key(header::CONTENT_LENGTH)
    {
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
}

fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

/// h2 requests carry `:scheme` and `:authority` (RFC 9113 §8.3.1): the
/// scheme is `http` (cleartext), the authority the request's own, else its
/// `Host`, else the upstream address.
pub(super) fn absolute_form<B>(req: &mut Request<B>, addr: SocketAddr) {
    let uri = req.uri();
    if uri.scheme().is_some() && uri.authority().is_some() {
        return;
    }
    let authority = uri
        .authority()
        .cloned()
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|host| Authority::try_from(host.as_bytes()).ok())
        })
        .or_else(|| Authority::try_from(addr.to_string()).ok());
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// Why sending a request body stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum PipeError {
    #[error("request body failed: {0}")]
    Body(crate::pool::http::HttpBodyError),
    #[error("sending the request body: {0}")]
    Stream(#[from] h2::Error),
}

/// Sends a request body on its stream: a frame is read from the body only
/// when the stream can take it (flow control holds back the body, not a
/// buffer in the gateway), and the last data frame carries END_STREAM
/// (no empty DATA frame after it) when the body ends right after it.
pub(super) struct BodyPipe {
    body: HttpBody,
    stream: SendStream<Bytes>,
    /// A chunk read and waiting for the stream's window.
    held: Option<Bytes>,
    /// A frame read while looking past `held` for the body's end.
    next: Option<Frame<Bytes>>,
}

impl BodyPipe {
    pub(super) fn new(body: HttpBody, stream: SendStream<Bytes>) -> BodyPipe {
        BodyPipe {
            body,
            stream,
            held: None,
            next: None,
        }
    }

    fn fail(&mut self, err: crate::pool::http::HttpBodyError) -> Poll<Result<(), PipeError>> {
        // The upstream must not take a cut-off body for a whole one.
        self.stream.send_reset(Reason::CANCEL);
        Poll::Ready(Err(PipeError::Body(err)))
    }
}

impl Future for BodyPipe {
    type Output = Result<(), PipeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // The peer may reset the stream (an early response) while the
            // body waits for data or for the window.
            if let Poll::Ready(reason) = this.stream.poll_reset(cx)? {
                return Poll::Ready(Err(PipeError::Stream(reason.into())));
            }
            if let Some(chunk) = this.held.take() {
                if this.stream.capacity() == 0 {
                    match this.stream.poll_capacity(cx) {
                        Poll::Pending => {
                            this.held = Some(chunk);
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(_))) => {
                            this.held = Some(chunk);
                            continue;
                        }
                        Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err.into())),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err(PipeError::Stream(
                                Reason::STREAM_CLOSED.into(),
                            )));
                        }
                    }
                }
                // Whether this chunk is the last: asked of the body now, so
                // the end goes on this frame.
                let last = this.body.is_end_stream()
                    || match Pin::new(&mut this.body).poll_frame(cx) {
                        Poll::Ready(None) => true,
                        Poll::Ready(Some(Ok(frame))) => {
                            this.next = Some(frame);
                            false
                        }
                        Poll::Ready(Some(Err(err))) => return this.fail(err),
                        Poll::Pending => false,
                    };
                this.stream.send_data(chunk, last)?;
                if last {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let frame = match this.next.take() {
                Some(frame) => frame,
                None => match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                    Some(Ok(frame)) => frame,
                    Some(Err(err)) => return this.fail(err),
                    None => {
                        this.stream.send_data(Bytes::new(), true)?;
                        return Poll::Ready(Ok(()));
                    }
                },
            };
            match frame.into_data() {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    // A claim on the window only once data is in hand (a
                    // reservation made while the body idles would pin
                    // connection window other streams need), and of one
                    // byte: h2 raises it to what `send_data` buffers.
                    this.stream.reserve_capacity(1);
                    this.held = Some(chunk);
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        this.stream.reserve_capacity(0);
                        this.stream.send_trailers(trailers)?;
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

/// Awaits the response head while the request body goes up. Returns the
/// response and, when the body is not all sent yet, its pipe, to finish
/// beside the response (a gRPC stream sends and receives at once).
pub(super) struct Exchange {
    pub(super) response: ResponseFuture,
    pub(super) pipe: Option<BodyPipe>,
}

impl Future for Exchange {
    type Output = Result<(Response<RecvStream>, Option<BodyPipe>), h2::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(pipe) = &mut this.pipe
            && let Poll::Ready(sent) = Pin::new(pipe).poll(cx)
        {
            if let Err(err) = sent {
                // The response future reports the stream's fate (a reset,
                // or an early response the upstream sent anyway).
                tracing::debug!(%err, "h2 request body not sent whole");
            }
            this.pipe = None;
        }
        let response = ready!(Pin::new(&mut this.response).poll(cx))?;
        Poll::Ready(Ok((response, this.pipe.take())))
    }
}

/// An h2 response body: data as it arrives (each chunk's window released
/// as it is handed on, so the upstream sends only as fast as the
/// downstream reads), then the trailers.
pub(crate) struct H2Body {
    stream: RecvStream,
    data_done: bool,
    /// What is left of a `content-length`, if the response had one.
    remaining: Option<u64>,
}

impl H2Body {
    pub(super) fn new(stream: RecvStream, headers: &HeaderMap) -> H2Body {
        let remaining = match content_length(headers) {
            Some(len) => Some(len),
            None if stream.is_end_stream() => Some(0),
            None => None,
        };
        H2Body {
            stream,
            data_done: false,
            remaining,
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(chunk)) => {
                    // Releasing can fail only on a stream already gone,
                    // which the next poll reports.
                    let _ = self.stream.flow_control().release_capacity(chunk.len());
                    if let Some(left) = &mut self.remaining {
                        *left = left.saturating_sub(chunk.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => self.data_done = true,
            }
        }
        match ready!(self.stream.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

impl std::fmt::Debug for H2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Body")
            .field("data_done", &self.data_done)
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// A response's `content-length`, when it has exactly one valid value.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> HttpBody {
        crate::pool::http::empty_body()
    }

    #[test]
    fn origin_form_gets_scheme_and_the_host_as_authority() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut req = Request::post("/svc/Method?x=1")
            .header(header::HOST, "api.example:81")
            .body(())
            .expect("request");
        prepare(&mut req, addr, &empty());
        assert_eq!(req.uri(), "http://api.example:81/svc/Method?x=1");
        // A POST's empty body is declared; a GET's is not.
        assert_eq!(req.headers()[header::CONTENT_LENGTH], "0");
        let mut bare = Request::get("/").body(()).expect("request");
        prepare(&mut bare, addr, &empty());
        assert_eq!(bare.uri(), "http://127.0.0.1:9/");
        assert!(!bare.headers().contains_key(header::CONTENT_LENGTH));
        let mut kept = Request::get("http://a.b/c").body(()).expect("request");
        prepare(&mut kept, addr, &empty());
        assert_eq!(kept.uri(), "http://a.b/c");
    }

    #[test]
    fn content_length_needs_one_valid_value() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        assert_eq!(content_length(&headers), Some(42));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        assert_eq!(content_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("-1"));
        assert_eq!(content_length(&headers), None);
    }
}
