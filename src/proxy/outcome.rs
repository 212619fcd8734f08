//! How one upstream attempt ended, in the terms outlier detection counts
//! ([`AttemptOutcome`]): the proxy reports every try's result to its
//! cluster, which books it against the host.

use super::error::ProxyError;
use meshgate_cluster::AttemptOutcome;
use meshgate_cluster::pool::PoolError;
use meshgate_codecs::Frame;

/// The outcome of one try: a reply is a success unless its neutral status
/// is 5xx (the codec's mapping of its own error statuses); connect
/// failures, per-try timeouts and resets are the host's failures; the
/// gateway's own refusals (overflow, a closed pool, a frame it could not
/// encode) are not the host's doing.
pub(crate) fn attempt_outcome(result: &Result<Frame, ProxyError>) -> AttemptOutcome {
    match result {
        Ok(reply) => match reply.status {
            Some(status) if status.neutral >= 500 => AttemptOutcome::ErrorReply(status.neutral),
            _ => AttemptOutcome::Success,
        },
        Err(err) => error_outcome(err),
    }
}

/// [`attempt_outcome`] for an HTTP try: `Ok(status)` when the upstream
/// answered; 5xx is the host's error reply.
pub(crate) fn http_attempt_outcome(result: Result<u16, &ProxyError>) -> AttemptOutcome {
    match result {
        Ok(status) if status >= 500 => AttemptOutcome::ErrorReply(status),
        Ok(_) => AttemptOutcome::Success,
        Err(err) => error_outcome(err),
    }
}

/// A failed try's outcome.
fn error_outcome(err: &ProxyError) -> AttemptOutcome {
    match err {
        ProxyError::Pool(e) if e.is_connect_failure() => AttemptOutcome::ConnectFailure,
        ProxyError::Pool(PoolError::UpstreamReset { .. }) => AttemptOutcome::Reset,
        ProxyError::PerTryTimeout(_) => AttemptOutcome::Timeout,
        _ => AttemptOutcome::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshgate_codecs::{FrameKind, Status};
    use std::time::Duration;

    fn reply(neutral: Option<u16>) -> Result<Frame, ProxyError> {
        let mut f = Frame::new(FrameKind::Response, 1);
        f.status = neutral.map(|n| Status::new(0, n));
        Ok(f)
    }

    #[test]
    fn replies_and_failures_map_to_outcomes() {
        assert_eq!(attempt_outcome(&reply(None)), AttemptOutcome::Success);
        assert_eq!(attempt_outcome(&reply(Some(200))), AttemptOutcome::Success);
        assert_eq!(attempt_outcome(&reply(Some(404))), AttemptOutcome::Success);
        assert_eq!(
            attempt_outcome(&reply(Some(503))),
            AttemptOutcome::ErrorReply(503)
        );
        let timeout = Err(ProxyError::PerTryTimeout(Duration::from_millis(5)));
        assert_eq!(attempt_outcome(&timeout), AttemptOutcome::Timeout);
        let reset = Err(ProxyError::Pool(PoolError::UpstreamReset { written: true }));
        assert_eq!(attempt_outcome(&reset), AttemptOutcome::Reset);
        assert_eq!(
            attempt_outcome(&Err(ProxyError::NoRoute)),
            AttemptOutcome::Ignored
        );
    }

    #[test]
    fn http_statuses_map_to_outcomes() {
        assert_eq!(http_attempt_outcome(Ok(200)), AttemptOutcome::Success);
        assert_eq!(http_attempt_outcome(Ok(404)), AttemptOutcome::Success);
        assert_eq!(
            http_attempt_outcome(Ok(502)),
            AttemptOutcome::ErrorReply(502)
        );
        let reset = ProxyError::Pool(PoolError::UpstreamReset { written: true });
        assert_eq!(http_attempt_outcome(Err(&reset)), AttemptOutcome::Reset);
    }
}
