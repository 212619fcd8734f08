//! Request timeouts: gRPC's `grpc-timeout` header (the caller's deadline,
//! which bounds the request when the route sets no timeout), and the
//! timer that bounds a request, kept by its connection between requests.

use http::HeaderMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A deadline this far ahead stands for "never" (as tokio's own timeout
/// does for a duration past what `Instant` holds).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A request timer a connection keeps between its requests. Every request
/// has a deadline (the route's timeout, or the default), and a fresh tokio
/// timer per request costs a registration in the timer wheel and a removal
/// under the wheel's lock (about 1,000 instructions per request). The kept
/// timer is left where it is when it fires no later than the request's
/// deadline (the usual case: the same timeout for every request, so an
/// earlier request's deadline); when it fires before the request's
/// deadline, the request moves it on then. So a request only reads the
/// clock, and the timer is touched about once per timeout period. An
/// HTTP/1 connection serves its requests one at a time and always finds
/// the timer here; concurrent HTTP/2 streams that find it taken make
/// their own and leave it for the next one.
#[derive(Debug, Default)]
pub(crate) struct TimerSlot(Mutex<Option<Pin<Box<Sleep>>>>);

impl TimerSlot {
    /// `future` bounded by `limit`, as `tokio::time::timeout` bounds it:
    /// `None` when `limit` passed first.
    pub(crate) fn timeout<F: Future + Unpin>(&self, limit: Duration, future: F) -> Timeout<'_, F> {
        let now = Instant::now();
        let deadline = now.checked_add(limit).unwrap_or_else(|| now + FAR_FUTURE);
        let sleep = match self.lock().take() {
            Some(mut kept) => {
                // Past its deadline it has fired (or is about to): set anew.
                if kept.deadline() > deadline || kept.deadline() <= now {
                    kept.as_mut().reset(deadline);
                }
                kept
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        Timeout {
            future,
            sleep: Some(sleep),
            deadline,
            slot: self,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Pin<Box<Sleep>>>> {
        // A take or a put only: a poisoned lock still holds a consistent value.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A future bounded by a [`TimerSlot`]'s timer; the timer goes back to the
/// slot when this ends or is dropped.
pub(crate) struct Timeout<'s, F> {
    future: F,
    /// The timer fires at or before this.
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: Instant,
    slot: &'s TimerSlot,
}

impl<F: Future + Unpin> Future for Timeout<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.get_mut();
        // The future first: a result that is there at the deadline counts.
        if let Poll::Ready(output) = Pin::new(&mut this.future).poll(cx) {
            return Poll::Ready(Some(output));
        }
        let Some(sleep) = &mut this.sleep else {
            return Poll::Pending;
        };
        while sleep.as_mut().poll(cx).is_ready() {
            if sleep.deadline() >= this.deadline || Instant::now() >= this.deadline {
                return Poll::Ready(None);
            }
            // An earlier request's deadline: on to this one's.
            sleep.as_mut().reset(this.deadline);
        }
        Poll::Pending
    }
}

impl<F> Drop for Timeout<'_, F> {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            let mut kept = self.slot.lock();
            if kept.is_none() {
                *kept = Some(sleep);
            }
        }
    }
}

/// The deadline a gRPC request carries: up to 8 digits and a unit (`H`,
/// `M`, `S`, `m`, `u`, `n`); `None` when absent or malformed.
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", v.parse().unwrap());
        grpc_timeout(&h)
    }

    #[test]
    fn grpc_timeouts() {
        assert_eq!(parse("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse("123456789S"), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("-1S"), None);
        assert_eq!(parse("10x"), None);
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_timer_bounds_each_request_anew() {
        let slot = TimerSlot::default();
        let pending = || Box::pin(std::future::pending::<()>());
        let start = Instant::now();
        assert_eq!(
            slot.timeout(Duration::from_millis(100), pending()).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        assert!(
            slot.lock().is_some(),
            "the timer is kept for the next request"
        );
        // A later request: its own deadline, counted from its start.
        let ready = slot.timeout(Duration::from_millis(100), Box::pin(async { 7 }));
        assert_eq!(ready.await, Some(7));
        let start = Instant::now();
        assert_eq!(
            slot.timeout(Duration::from_millis(250), pending()).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        // The kept timer fires at an earlier request's deadline: this one
        // still gets its whole limit.
        let early = slot.timeout(Duration::from_millis(300), Box::pin(async {}));
        assert_eq!(early.await, Some(()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let start = Instant::now();
        assert_eq!(
            slot.timeout(Duration::from_millis(300), pending()).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        // A shorter deadline after a longer one still fires on time.
        let start = Instant::now();
        let long = slot.timeout(Duration::from_secs(60), Box::pin(async {}));
        assert_eq!(long.await, Some(()));
        assert_eq!(
            slot.timeout(Duration::from_millis(50), pending()).await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_each_get_a_timer() {
        let slot = TimerSlot::default();
        let start = Instant::now();
        let first = slot.timeout(
            Duration::from_millis(300),
            Box::pin(std::future::pending::<()>()),
        );
        let second = slot.timeout(
            Duration::from_millis(100),
            Box::pin(std::future::pending::<()>()),
        );
        let (first, second) = tokio::join!(first, async {
            let out = second.await;
            (out, start.elapsed())
        });
        assert_eq!(first, None);
        assert_eq!(second, (None, Duration::from_millis(100)));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        // Not timed out: the future's output, however long the limit.
        let huge = slot.timeout(Duration::MAX, Box::pin(async { 1 }));
        assert_eq!(huge.await, Some(1));
    }
}
