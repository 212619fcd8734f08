//! The future [`crate::Pool::send`] returns.

use super::conn::{Answer, Conn};
use crate::pool::PoolError;
use meshgate_codecs::Frame;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// A request's response, once it comes: the future of
/// [`crate::Pool::send`].
///
/// On the usual path the request was registered on a connection and
/// encoded into its write buffer when `send` was called, and this future
/// holds only the channel its answer comes back on (no copy of the
/// request). Dropping it abandons the request: if its bytes had not been
/// taken by the connection's writer yet they are withdrawn and the
/// upstream never sees them; otherwise the late answer is discarded and
/// counted in [`crate::pool::PoolCounters::late_responses`].
#[must_use = "the request is abandoned when its response future is dropped"]
pub struct ResponseFuture<'a> {
    state: State<'a>,
}

/// A boxed future answering with a response.
pub(crate) type BoxedResponse<'a> =
    Pin<Box<dyn Future<Output = Result<Frame, PoolError>> + Send + 'a>>;

enum State<'a> {
    /// Registered and encoded: waits for the answer.
    Waiting(Waiting),
    /// Waits for a connection or for room first (or a ping-pong pool).
    Boxed(BoxedResponse<'a>),
    /// Failed at once.
    Failed(Option<PoolError>),
}

impl fmt::Debug for ResponseFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting(_) => "waiting",
            State::Boxed(_) => "boxed",
            State::Failed(_) => "failed",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<'a> ResponseFuture<'a> {
    /// Waits for the answer to request `id` on `conn`.
    pub(super) fn waiting(conn: Arc<Conn>, id: u64, rx: Answer) -> ResponseFuture<'a> {
        ResponseFuture {
            state: State::Waiting(Waiting::new(conn, id, rx)),
        }
    }

    /// Drives `fut`.
    pub(crate) fn boxed(fut: BoxedResponse<'a>) -> ResponseFuture<'a> {
        ResponseFuture {
            state: State::Boxed(fut),
        }
    }

    /// Answers `err` at once.
    pub(super) fn failed(err: PoolError) -> ResponseFuture<'a> {
        ResponseFuture {
            state: State::Failed(Some(err)),
        }
    }
}

impl Future for ResponseFuture<'_> {
    type Output = Result<Frame, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Waiting(waiting) => Pin::new(waiting).poll(cx),
            State::Boxed(fut) => fut.as_mut().poll(cx),
            State::Failed(err) => Poll::Ready(Err(err
                .take()
                .unwrap_or(PoolError::UpstreamReset { written: false }))),
        }
    }
}

/// A registered request's answer channel; abandons the request when
/// dropped before the answer came (while `rx` is still there).
pub(super) struct Waiting {
    conn: Arc<Conn>,
    id: u64,
    rx: Option<Answer>,
}

impl Waiting {
    pub(super) fn new(conn: Arc<Conn>, id: u64, rx: Answer) -> Waiting {
        Waiting {
            conn,
            id,
            rx: Some(rx),
        }
    }

    /// The connection the request is on.
    pub(super) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Future for Waiting {
    type Output = Result<Frame, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(rx) = &mut self.rx else {
            return Poll::Ready(Err(PoolError::UpstreamReset { written: true }));
        };
        let answer = ready!(rx.poll_answer(cx));
        if let Some(slot) = self.rx.take().and_then(|rx| rx.into_spare()) {
            self.conn.keep_slot(slot);
        }
        Poll::Ready(answer)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.rx.is_some() {
            self.conn.abandon(self.id);
        }
    }
}
