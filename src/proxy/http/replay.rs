//! A request body that can be sent again: it streams from the downstream
//! connection as it arrives and keeps a copy of what went by, up to
//! [`REPLAY_LIMIT`] bytes (as Envoy buffers for retries). A retry replays
//! the copy and then carries on reading the downstream. A body larger than
//! the limit drops its copy and cannot be retried once its first bytes
//! were sent; the upload itself is never held back or buffered whole.
//!
//! The same copy feeds a request mirror ([`ReplaySource::copy_when_read`]):
//! once the tries have read the whole body, a body within the limit is
//! handed over; a larger one is reported too large, and none is kept for it.

use super::BoxError;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Bytes of request body kept for a retry.
pub(crate) const REPLAY_LIMIT: usize = 64 * 1024;

/// The whole request body as a mirror gets it, once the tries read it.
#[derive(Debug)]
pub(crate) enum BodyCopy {
    /// The body (within [`REPLAY_LIMIT`]) and its trailers.
    Whole {
        chunks: Vec<Bytes>,
        trailers: Option<HeaderMap>,
    },
    /// More than [`REPLAY_LIMIT`] bytes: no copy was kept.
    TooLarge,
}

/// The downstream body and what has been read of it, shared by the tries.
#[derive(Debug)]
pub(crate) struct ReplaySource {
    state: Mutex<State>,
    hint: SizeHint,
}

#[derive(Debug)]
struct State {
    body: BoxBody<Bytes, BoxError>,
    kept: Vec<Bytes>,
    kept_len: usize,
    trailers: Option<HeaderMap>,
    /// The copy was dropped: more than the limit went by.
    overflowed: bool,
    /// The downstream body ended.
    finished: bool,
    /// The try whose body may read the source; older tries' bodies end.
    generation: u32,
    /// The downstream body grew past the listener's `max_request_body_size`.
    over_limit: bool,
    /// Body bytes read from the downstream so far.
    read_len: u64,
    /// Where the copy goes once the body is settled (a mirror waits on it);
    /// dropped, so the mirror gives up, when the body fails.
    copy_to: Option<oneshot::Sender<BodyCopy>>,
}

impl State {
    /// Hands the copy over if the body is settled: read whole (ended, or
    /// all of a declared length: hyper's HTTP/1 client stops polling a
    /// body once its `Content-Length` went out), or too large.
    fn settle_copy(&mut self, declared: Option<u64>) {
        let copy = if self.overflowed {
            BodyCopy::TooLarge
        } else if self.finished || declared == Some(self.read_len) {
            BodyCopy::Whole {
                chunks: self.kept.clone(),
                trailers: self.trailers.clone(),
            }
        } else {
            return;
        };
        if let Some(to) = self.copy_to.take() {
            // The mirror may have given up already; nothing to do then.
            let _ = to.send(copy);
        }
    }
}

impl ReplaySource {
    /// Wraps the downstream body.
    pub(crate) fn new(body: BoxBody<Bytes, BoxError>) -> Arc<ReplaySource> {
        let hint = body.size_hint();
        Arc::new(ReplaySource {
            state: Mutex::new(State {
                body,
                kept: Vec::new(),
                kept_len: 0,
                trailers: None,
                overflowed: false,
                finished: false,
                generation: 0,
                over_limit: false,
                read_len: 0,
                copy_to: None,
            }),
            hint,
        })
    }

    /// The source of every HTTP/1 request without a body (most GETs): one
    /// shared instance, so such a request allocates none. Nothing reads
    /// it: tries and mirrors send an empty body when the source
    /// [`is_empty`](ReplaySource::is_empty).
    pub(crate) fn empty() -> Arc<ReplaySource> {
        static EMPTY: LazyLock<Arc<ReplaySource>> = LazyLock::new(|| {
            ReplaySource::new(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed(),
            )
        });
        Arc::clone(&EMPTY)
    }

    /// A body for the next try, from the start; `None` when the body can
    /// no longer be replayed (more than the limit was sent already).
    pub(crate) fn next_try(self: &Arc<Self>) -> Option<ReplayBody> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.overflowed {
            return None;
        }
        state.generation = state.generation.wrapping_add(1);
        Some(ReplayBody {
            source: Arc::clone(self),
            generation: state.generation,
            position: 0,
            trailers_sent: false,
        })
    }

    /// True when the downstream body was cut off at the listener's
    /// `max_request_body_size` (the client gets 413, not the upstream's
    /// failure to read it).
    pub(crate) fn over_limit(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .over_limit
    }

    /// True when the request declares no body at all (nothing to wait for).
    pub(crate) fn is_empty(&self) -> bool {
        self.hint.exact() == Some(0)
    }

    /// The whole body, once the tries have read it (the mirror's copy).
    /// The receiver gets [`BodyCopy::TooLarge`] past [`REPLAY_LIMIT`], and
    /// an error when the body fails or is abandoned unread. One copy per
    /// source: a second call replaces the first receiver's sender.
    pub(crate) fn copy_when_read(&self) -> oneshot::Receiver<BodyCopy> {
        let (to, copy) = oneshot::channel();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.copy_to = Some(to);
        state.settle_copy(self.hint.exact());
        copy
    }

    /// True when another try can still send the whole body.
    pub(crate) fn replayable(&self) -> bool {
        !self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .overflowed
    }
}

/// One try's view of the request body.
#[derive(Debug)]
pub(crate) struct ReplayBody {
    source: Arc<ReplaySource>,
    generation: u32,
    /// Kept chunks this try has sent.
    position: usize,
    trailers_sent: bool,
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut state = this
            .source
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if state.generation != this.generation {
            return Poll::Ready(Some(Err("request body taken over by a retry".into())));
        }
        if let Some(chunk) = state.kept.get(this.position) {
            this.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(chunk.clone()))));
        }
        if state.finished {
            if !this.trailers_sent
                && let Some(trailers) = &state.trailers
            {
                this.trailers_sent = true;
                return Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))));
            }
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut state.body).poll_frame(cx);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                state.finished = true;
                state.settle_copy(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                if e.is::<http_body_util::LengthLimitError>() {
                    state.over_limit = true;
                }
                state.copy_to = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        state.read_len += data.len() as u64;
                        if !state.overflowed {
                            state.kept_len += data.len();
                            if state.kept_len > REPLAY_LIMIT {
                                state.overflowed = true;
                                state.kept = Vec::new();
                            } else {
                                state.kept.push(data.clone());
                                this.position = state.kept.len();
                            }
                        }
                        state.settle_copy(this.source.hint.exact());
                        Frame::data(data)
                    }
                    Err(frame) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            state.trailers = Some(trailers.clone());
                            this.trailers_sent = true;
                        }
                        frame
                    }
                };
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.source.hint.exact() == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        // Every try sends the whole body, so the downstream's hint holds.
        self.source.hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    fn boxed(chunks: Vec<&'static [u8]>) -> BoxBody<Bytes, BoxError> {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from_static(c))));
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }

    #[tokio::test]
    async fn a_retry_replays_what_the_first_try_read_then_continues() {
        let source = ReplaySource::new(boxed(vec![b"ab", b"cd", b"ef"]));
        let mut first = source.next_try().unwrap();
        let chunk = first.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(chunk, "ab");
        drop(first);
        let second = source.next_try().unwrap();
        let all = second.collect().await.unwrap().to_bytes();
        assert_eq!(all, "abcdef");
        let third = source.next_try().unwrap();
        assert_eq!(third.collect().await.unwrap().to_bytes(), "abcdef");
    }

    #[tokio::test]
    async fn an_older_try_cannot_read_after_a_retry_started() {
        let source = ReplaySource::new(boxed(vec![b"ab", b"cd"]));
        let mut first = source.next_try().unwrap();
        let _second = source.next_try().unwrap();
        assert!(first.frame().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn the_copy_is_handed_over_once_the_body_was_read() {
        let source = ReplaySource::new(boxed(vec![b"ab", b"cd"]));
        let copy = source.copy_when_read();
        let body = source.next_try().unwrap().collect().await.unwrap();
        assert_eq!(body.to_bytes(), "abcd");
        match copy.await.unwrap() {
            BodyCopy::Whole { chunks, trailers } => {
                assert_eq!(chunks.concat(), b"abcd");
                assert!(trailers.is_none());
            }
            BodyCopy::TooLarge => panic!("a small body is copied"),
        }
    }

    #[tokio::test]
    async fn the_copy_is_handed_over_at_the_declared_length() {
        // A body whose length is known ends when that much was read, even
        // if nobody polls it to its end.
        let body = Full::new(Bytes::from_static(b"abcd"))
            .map_err(|n| match n {})
            .boxed();
        let source = ReplaySource::new(body);
        let copy = source.copy_when_read();
        let mut try1 = source.next_try().unwrap();
        let chunk = try1.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(chunk, "abcd");
        match copy.await.unwrap() {
            BodyCopy::Whole { chunks, .. } => assert_eq!(chunks.concat(), b"abcd"),
            BodyCopy::TooLarge => panic!("a small body is copied"),
        }
    }

    #[tokio::test]
    async fn no_copy_of_a_body_over_the_limit_or_of_one_never_read() {
        let big = vec![0u8; REPLAY_LIMIT + 1];
        let body = Full::new(Bytes::from(big)).map_err(|n| match n {}).boxed();
        let source = ReplaySource::new(body);
        let copy = source.copy_when_read();
        source.next_try().unwrap().collect().await.unwrap();
        assert!(matches!(copy.await.unwrap(), BodyCopy::TooLarge));

        let source = ReplaySource::new(boxed(vec![b"ab"]));
        let copy = source.copy_when_read();
        drop(source);
        assert!(copy.await.is_err(), "an unread body never settles");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_not_replayable() {
        let big = vec![0u8; REPLAY_LIMIT + 1];
        let body = Full::new(Bytes::from(big)).map_err(|n| match n {}).boxed();
        let source = ReplaySource::new(body);
        let try1 = source.next_try().unwrap();
        assert_eq!(try1.size_hint().exact(), Some(REPLAY_LIMIT as u64 + 1));
        let all = try1.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), REPLAY_LIMIT + 1);
        assert!(!source.replayable());
        assert!(source.next_try().is_none());
    }
}
