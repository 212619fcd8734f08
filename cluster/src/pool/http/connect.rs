//! Opening an upstream TCP connection for an HTTP pool: the breaker's
//! `max_connections` permit, the connect timeout, and the reconnect
//! back-off that makes requests to a failing host fail fast.

use crate::breaker::BreakerPermit;
use crate::pool::Backoff;
use crate::pool::http::{HttpPoolCounters, HttpPoolError, HttpPoolSettings};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A connect failure, kept to be handed again (as a fresh error) to the
/// requests that arrive during the back-off or waited for that connect.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConnectFailure {
    Refused(io::ErrorKind),
    Timeout,
}

impl ConnectFailure {
    fn of(err: &HttpPoolError) -> Option<ConnectFailure> {
        match err {
            HttpPoolError::Connect { source, .. } => Some(ConnectFailure::Refused(source.kind())),
            HttpPoolError::ConnectTimeout { .. } => Some(ConnectFailure::Timeout),
            _ => None,
        }
    }

    fn error(self, addr: SocketAddr, timeout: Duration) -> HttpPoolError {
        match self {
            ConnectFailure::Refused(kind) => HttpPoolError::Connect {
                addr,
                source: kind.into(),
            },
            ConnectFailure::Timeout => HttpPoolError::ConnectTimeout { addr, timeout },
        }
    }
}

/// A host's connect history: failures in a row, the last one and when it
/// happened, and when the next attempt may start.
#[derive(Debug, Default)]
pub(crate) struct ConnectGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    failures: u32,
    retry_at: Option<Instant>,
    last: Option<(Instant, ConnectFailure)>,
}

impl ConnectGate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        // Plain assignments only: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last connect failure if it ended at or after `since`.
    pub(crate) fn failed_since(
        &self,
        since: Instant,
        settings: &HttpPoolSettings,
        addr: SocketAddr,
    ) -> Option<HttpPoolError> {
        let (at, failure) = self.state().last?;
        (at >= since).then(|| failure.error(addr, settings.connect_timeout))
    }

    /// The error to fail fast with while the host is in back-off.
    fn blocked(
        &self,
        now: Instant,
        settings: &HttpPoolSettings,
        addr: SocketAddr,
    ) -> Option<HttpPoolError> {
        let state = self.state();
        match (state.retry_at, state.last) {
            (Some(at), Some((_, failure))) if now < at => {
                Some(failure.error(addr, settings.connect_timeout))
            }
            _ => None,
        }
    }

    fn on_failure(&self, failure: ConnectFailure, backoff: &Backoff) {
        let now = Instant::now();
        let mut state = self.state();
        state.failures = state.failures.saturating_add(1);
        state.retry_at = Some(now + backoff.delay(state.failures));
        state.last = Some((now, failure));
    }

    fn on_success(&self) {
        let mut state = self.state();
        state.failures = 0;
        state.retry_at = None;
    }
}

/// Opens a TCP connection to `addr` within the connect timeout, holding a
/// breaker `max_connections` permit for it; counts the attempt. During a
/// back-off it fails at once with the last connect error.
pub(crate) async fn open_tcp(
    addr: SocketAddr,
    settings: &HttpPoolSettings,
    counters: &HttpPoolCounters,
    gate: &ConnectGate,
) -> Result<(TcpStream, Option<BreakerPermit>), HttpPoolError> {
    if let Some(err) = gate.blocked(Instant::now(), settings, addr) {
        return Err(err);
    }
    let permit = match &settings.breaker {
        None => None,
        Some(breaker) => match breaker.try_connection() {
            Some(permit) => Some(permit),
            None => {
                HttpPoolCounters::inc(&counters.overflows);
                return Err(HttpPoolError::Overflow {
                    addr,
                    what: "cluster max_connections",
                });
            }
        },
    };
    HttpPoolCounters::inc(&counters.connect_attempts);
    let connected = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            return Err(failed(
                HttpPoolError::Connect { addr, source },
                settings,
                counters,
                gate,
            ));
        }
        Err(_) => {
            let timeout = settings.connect_timeout;
            return Err(failed(
                HttpPoolError::ConnectTimeout { addr, timeout },
                settings,
                counters,
                gate,
            ));
        }
    };
    gate.on_success();
    // Best effort: hyper writes whole heads; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    if HttpPoolCounters::get(&counters.connections_opened) > 0 {
        HttpPoolCounters::inc(&counters.reconnects);
    }
    Ok((stream, permit))
}

fn failed(
    err: HttpPoolError,
    settings: &HttpPoolSettings,
    counters: &HttpPoolCounters,
    gate: &ConnectGate,
) -> HttpPoolError {
    HttpPoolCounters::inc(&counters.connect_failures);
    if let Some(host) = &settings.host_stats {
        host.connect_failures.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(failure) = ConnectFailure::of(&err) {
        gate.on_failure(failure, &settings.backoff);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn back_off_fails_fast_with_the_last_error_then_lets_a_try_through() {
        let gate = ConnectGate::default();
        let settings = HttpPoolSettings {
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(1),
                jitter: 0.0,
            },
            ..HttpPoolSettings::default()
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let start = Instant::now();
        assert!(gate.blocked(start, &settings, addr).is_none());
        gate.on_failure(ConnectFailure::Timeout, &settings.backoff);
        let blocked = gate.blocked(Instant::now(), &settings, addr);
        assert!(matches!(
            blocked,
            Some(HttpPoolError::ConnectTimeout { .. })
        ));
        assert!(gate.failed_since(start, &settings, addr).is_some());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(gate.blocked(Instant::now(), &settings, addr).is_none());
        assert!(gate.failed_since(Instant::now(), &settings, addr).is_none());
        // A second failure in a row doubles the delay.
        gate.on_failure(
            ConnectFailure::Refused(io::ErrorKind::ConnectionRefused),
            &settings.backoff,
        );
        tokio::time::advance(Duration::from_millis(150)).await;
        let blocked = gate.blocked(Instant::now(), &settings, addr);
        assert!(matches!(blocked, Some(HttpPoolError::Connect { .. })));
        gate.on_success();
        assert!(gate.blocked(Instant::now(), &settings, addr).is_none());
    }
}
