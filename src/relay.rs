//! Bytes both ways between two connections, through one fixed buffer per
//! direction: the TCP proxy's relay and the HTTP upgrade tunnel's.
//!
//! A relay ends when both sides have closed their sending half (each close
//! is passed on to the other side), a side fails, nothing moves either way
//! for the idle timeout, the gateway's grace period ends, or, with a
//! linger, when one side closed and the other did not follow in time.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// One direction's copy buffer: a relay holds two, whatever it carries.
const CHUNK: usize = 16 * 1024;

/// A relay's time limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelayLimits {
    /// No byte either way for this long ends the relay.
    pub(crate) idle_timeout: Option<Duration>,
    /// After one side's close, the other's time to follow (`None`: as
    /// long as it keeps moving bytes, a TCP half-close being legitimate).
    pub(crate) linger: Option<Duration>,
}

/// Bytes a relay moved, each way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RelayCounters<'a> {
    /// Client to upstream.
    pub(crate) to_upstream: &'a AtomicU64,
    /// Upstream to client.
    pub(crate) to_downstream: &'a AtomicU64,
}

/// How a relay ended.
#[derive(Debug)]
pub(crate) enum RelayEnd {
    /// Both directions finished (each side closed its sending half).
    Closed,
    /// One side closed and the other did not follow within the linger.
    Lingered(Duration),
    /// Nothing moved for the idle timeout.
    Idle,
    /// The gateway's grace period ended.
    GatewayClosing,
    /// A side failed (reset, write error).
    Failed(std::io::Error),
}

impl fmt::Display for RelayEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayEnd::Closed => f.write_str("both sides closed"),
            RelayEnd::Lingered(linger) => {
                write!(f, "one side closed, the other not within {linger:?}")
            }
            RelayEnd::Idle => f.write_str("idle timeout"),
            RelayEnd::GatewayClosing => f.write_str("the gateway is closing"),
            RelayEnd::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// Copies between the two connections, given as read and write halves,
/// until the relay ends; `prefix` goes upstream first (bytes already read
/// from the client). `closing` resolves when the gateway's grace period is
/// over. Dropping the halves afterwards closes both connections.
pub(crate) async fn relay<DR, DW, UR, UW>(
    (mut down_read, mut down_write): (DR, DW),
    (mut up_read, mut up_write): (UR, UW),
    prefix: &[u8],
    RelayLimits {
        idle_timeout,
        linger,
    }: RelayLimits,
    closing: impl Future<Output = ()>,
    counters: RelayCounters<'_>,
) -> RelayEnd
where
    DR: AsyncRead + Unpin,
    DW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let started = Instant::now();
    // Milliseconds since `started` of the last byte moved either way.
    let last_active = AtomicU64::new(0);
    let activity = Activity {
        started,
        last_active: &last_active,
    };
    let to_upstream = pump(
        &mut down_read,
        &mut up_write,
        prefix,
        counters.to_upstream,
        activity,
    );
    let to_downstream = pump(
        &mut up_read,
        &mut down_write,
        &[],
        counters.to_downstream,
        activity,
    );
    tokio::pin!(to_upstream, to_downstream, closing);
    let (mut upstream_done, mut downstream_done) = (false, false);
    let mut linger_until: Option<Instant> = None;
    let idle_at = || {
        idle_timeout
            .map(|idle| started + Duration::from_millis(last_active.load(Ordering::Relaxed)) + idle)
    };
    loop {
        let wake_at = match (idle_at(), linger_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wake = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = &mut to_upstream, if !upstream_done => {
                if let Err(e) = ended {
                    return RelayEnd::Failed(e);
                }
                upstream_done = true;
            }
            ended = &mut to_downstream, if !downstream_done => {
                if let Err(e) = ended {
                    return RelayEnd::Failed(e);
                }
                downstream_done = true;
            }
            () = wake => {
                let now = Instant::now();
                if let (Some(at), Some(linger)) = (linger_until, linger)
                    && now >= at
                {
                    return RelayEnd::Lingered(linger);
                }
                // Read again: a byte may have moved while asleep.
                if idle_at().is_some_and(|at| now >= at) {
                    return RelayEnd::Idle;
                }
                // A byte moved meanwhile: the idle deadline moved on.
            }
            () = closing.as_mut() => return RelayEnd::GatewayClosing,
        }
        match (upstream_done, downstream_done) {
            (true, true) => return RelayEnd::Closed,
            (false, false) => {}
            // The first close starts the other side's time to follow.
            _ => {
                if let Some(linger) = linger {
                    linger_until.get_or_insert_with(|| Instant::now() + linger);
                }
            }
        }
    }
}

/// When the relay started and when a byte last moved (milliseconds since
/// the start), shared by both directions.
#[derive(Clone, Copy)]
struct Activity<'a> {
    started: Instant,
    last_active: &'a AtomicU64,
}

impl Activity<'_> {
    fn moved(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.fetch_max(now, Ordering::Relaxed);
    }
}

/// Writes `prefix`, then copies `from` to `to` through one fixed buffer
/// until `from` ends, then shuts `to`'s sending half (the close travels
/// on).
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    prefix: &[u8],
    counter: &AtomicU64,
    activity: Activity<'_>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !prefix.is_empty() {
        to.write_all(prefix).await?;
        counter.fetch_add(prefix.len() as u64, Ordering::Relaxed);
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        // A TCP socket's flush does nothing; an upgraded hyper connection
        // may hold the bytes until flushed.
        to.flush().await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.moved();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    #[tokio::test]
    async fn pump_copies_and_passes_the_close_on() {
        let (mut client, mut gateway_in) = tokio::io::duplex(64);
        let (mut gateway_out, mut server) = tokio::io::duplex(64);
        let counter = AtomicU64::new(0);
        let active = AtomicU64::new(0);
        let activity = Activity {
            started: Instant::now(),
            last_active: &active,
        };
        let copy = pump(&mut gateway_in, &mut gateway_out, b"", &counter, activity);
        let write = async {
            let payload = vec![7u8; 100_000];
            client.write_all(&payload).await.expect("write");
            client.shutdown().await.expect("shutdown");
        };
        let read = async {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.expect("read");
            got
        };
        let (copied, (), got) = tokio::join!(copy, write, read);
        copied.expect("copied");
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().all(|b| *b == 7));
        assert_eq!(counter.load(Ordering::Relaxed), 100_000);
    }

    /// Short real durations: the crate's tokio has no paused clock.
    const LINGER: Duration = Duration::from_millis(300);

    /// Runs a relay between in-memory pipes: `gateway_down` is the client's
    /// connection, `gateway_up` the upstream's. Returns how it ended and
    /// the bytes it moved (to upstream, to downstream).
    async fn run_relay(
        gateway_down: DuplexStream,
        gateway_up: DuplexStream,
        limits: RelayLimits,
        closing: impl Future<Output = ()>,
    ) -> (RelayEnd, u64, u64) {
        let (to_upstream, to_downstream) = (AtomicU64::new(0), AtomicU64::new(0));
        let counters = RelayCounters {
            to_upstream: &to_upstream,
            to_downstream: &to_downstream,
        };
        let end = relay(
            tokio::io::split(gateway_down),
            tokio::io::split(gateway_up),
            b"",
            limits,
            closing,
            counters,
        )
        .await;
        (
            end,
            to_upstream.load(Ordering::Relaxed),
            to_downstream.load(Ordering::Relaxed),
        )
    }

    /// A relay with a linger between in-memory pipes: returns the client's
    /// and the upstream's ends and the relay's future.
    fn relay_pair(
        idle_timeout: Option<Duration>,
    ) -> (
        DuplexStream,
        DuplexStream,
        impl Future<Output = (RelayEnd, u64, u64)>,
    ) {
        let (client, gateway_down) = tokio::io::duplex(4096);
        let (gateway_up, server) = tokio::io::duplex(4096);
        let limits = RelayLimits {
            idle_timeout,
            linger: Some(LINGER),
        };
        let relay = run_relay(gateway_down, gateway_up, limits, std::future::pending());
        (client, server, relay)
    }

    #[tokio::test]
    async fn a_close_followed_by_the_other_side_ends_the_relay() {
        let (mut client, mut server, relay) = relay_pair(None);
        let peers = async {
            client.write_all(b"ping").await.expect("write");
            let mut got = [0u8; 4];
            server.read_exact(&mut got).await.expect("read");
            server.write_all(b"pong!").await.expect("write");
            server.shutdown().await.expect("upstream closes");
            let mut rest = Vec::new();
            client
                .read_to_end(&mut rest)
                .await
                .expect("client sees the close");
            assert_eq!(rest, b"pong!");
            client.shutdown().await.expect("client closes");
        };
        let ((end, up, down), ()) = tokio::join!(relay, peers);
        assert!(matches!(end, RelayEnd::Closed), "{end}");
        assert_eq!((up, down), (4, 5));
    }

    #[tokio::test]
    async fn a_side_that_does_not_follow_a_close_is_cut_after_the_linger() {
        let (client, mut server, relay) = relay_pair(None);
        let started = Instant::now();
        server.shutdown().await.expect("upstream closes");
        let (end, ..) = relay.await;
        assert!(matches!(end, RelayEnd::Lingered(_)), "{end}");
        let took = started.elapsed();
        assert!(took >= LINGER && took < LINGER * 10, "{took:?}");
        drop(client);
    }

    #[tokio::test]
    async fn traffic_keeps_a_relay_open_and_silence_closes_it() {
        let idle = Duration::from_millis(300);
        let (mut client, mut server, relay) = relay_pair(Some(idle));
        let started = Instant::now();
        let peers = async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                client.write_all(b"x").await.expect("write");
                let mut got = [0u8; 1];
                server.read_exact(&mut got).await.expect("read");
            }
        };
        let ((end, up, _), ()) = tokio::join!(relay, peers);
        assert!(matches!(end, RelayEnd::Idle), "{end}");
        assert_eq!(up, 5);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1000) + idle, "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn the_grace_period_ending_closes_the_relay() {
        let (client, gateway_down) = tokio::io::duplex(64);
        let (gateway_up, server) = tokio::io::duplex(64);
        let limits = RelayLimits {
            idle_timeout: None,
            linger: Some(LINGER),
        };
        let closing = tokio::time::sleep(Duration::from_millis(100));
        let (end, ..) = run_relay(gateway_down, gateway_up, limits, closing).await;
        assert!(matches!(end, RelayEnd::GatewayClosing), "{end}");
        drop((client, server));
    }

    #[tokio::test]
    async fn the_prefix_goes_upstream_first_and_is_counted() {
        let (mut client, gateway_down) = tokio::io::duplex(4096);
        let (gateway_up, mut server) = tokio::io::duplex(4096);
        let (to_upstream, to_downstream) = (AtomicU64::new(0), AtomicU64::new(0));
        let limits = RelayLimits {
            idle_timeout: None,
            linger: None,
        };
        let counters = RelayCounters {
            to_upstream: &to_upstream,
            to_downstream: &to_downstream,
        };
        let relay = relay(
            tokio::io::split(gateway_down),
            tokio::io::split(gateway_up),
            b"head:",
            limits,
            std::future::pending(),
            counters,
        );
        let peers = async {
            client.write_all(b"body").await.expect("write");
            client.shutdown().await.expect("client closes");
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.expect("read");
            assert_eq!(got, b"head:body");
            server.shutdown().await.expect("upstream closes");
        };
        let (end, ()) = tokio::join!(relay, peers);
        assert!(matches!(end, RelayEnd::Closed), "{end}");
        assert_eq!(to_upstream.load(Ordering::Relaxed), 9);
    }
}
