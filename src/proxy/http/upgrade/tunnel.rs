//! The tunnel after a 101: both connections handed over by hyper, bytes
//! copied both ways through one fixed buffer per direction, until both
//! sides closed (a close is passed on, the other side then has
//! [`CLOSE_LINGER`] to follow), a side fails, nothing moves for the idle
//! timeout, or the gateway's grace period ends.

use super::PendingTunnel;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// One direction's copy buffer: a tunnel holds two, whatever it carries.
const CHUNK: usize = 16 * 1024;

/// Once one side has closed its sending half (passed on to the other),
/// how long the other direction may still run before both sockets close:
/// room for a close handshake's reply, not for a half-open tunnel.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// How long hyper may take to hand over a connection after the 101; both
/// are ready at once in practice (the 101 has been written, the upstream's
/// 101 read).
const HANDOVER_LIMIT: Duration = Duration::from_secs(10);

/// How a tunnel ended.
#[derive(Debug)]
pub(crate) enum TunnelEnd {
    /// Both directions finished (each side closed its sending half).
    Closed,
    /// One side closed and the other did not follow within
    /// [`CLOSE_LINGER`].
    Lingered,
    /// Nothing moved for the idle timeout.
    Idle,
    /// The gateway's grace period ended.
    GatewayClosing,
    /// A side failed (reset, write error).
    Failed(std::io::Error),
    /// hyper did not hand a connection over (the client left before the
    /// 101 was written, the upstream connection died).
    NotHandedOver(String),
}

impl std::fmt::Display for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelEnd::Closed => f.write_str("both sides closed"),
            TunnelEnd::Lingered => {
                write!(f, "one side closed, the other not within {CLOSE_LINGER:?}")
            }
            TunnelEnd::Idle => f.write_str("idle timeout"),
            TunnelEnd::GatewayClosing => f.write_str("the gateway is closing"),
            TunnelEnd::Failed(e) => write!(f, "failed: {e}"),
            TunnelEnd::NotHandedOver(why) => write!(f, "connection not handed over: {why}"),
        }
    }
}

/// Bytes a tunnel moved, each way.
#[derive(Debug, Default)]
pub(crate) struct TunnelBytes {
    /// Client to upstream.
    pub(crate) upstream: AtomicU64,
    /// Upstream to client.
    pub(crate) downstream: AtomicU64,
}

/// Runs an armed tunnel to its end: waits for both connections, then
/// copies bytes both ways (see the module doc). `closing` resolves when
/// the gateway's grace period is over. Dropping the future closes both
/// connections.
pub(crate) async fn run(
    pending: PendingTunnel,
    idle_timeout: Option<Duration>,
    closing: impl Future<Output = ()>,
    peer: SocketAddr,
) -> TunnelEnd {
    tokio::pin!(closing);
    let handover = async {
        tokio::time::timeout(HANDOVER_LIMIT, {
            let (downstream, upstream) = pending.into_halves();
            futures_util::future::try_join(downstream, upstream)
        })
        .await
    };
    let (downstream, upstream) = tokio::select! {
        handed = handover => match handed {
            Ok(Ok(both)) => both,
            Ok(Err(e)) => return TunnelEnd::NotHandedOver(e.to_string()),
            Err(_) => return TunnelEnd::NotHandedOver(format!("not within {HANDOVER_LIMIT:?}")),
        },
        () = &mut closing => return TunnelEnd::GatewayClosing,
    };
    let bytes = TunnelBytes::default();
    let end = relay(
        TokioIo::new(downstream),
        TokioIo::new(upstream),
        Limits {
            idle_timeout,
            linger: CLOSE_LINGER,
        },
        closing,
        &bytes,
    )
    .await;
    tracing::debug!(
        %peer,
        %end,
        to_upstream = bytes.upstream.load(Ordering::Relaxed),
        to_downstream = bytes.downstream.load(Ordering::Relaxed),
        "upgrade tunnel ended"
    );
    end
}

/// A tunnel's time limits.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// No byte either way for this long ends the tunnel.
    idle_timeout: Option<Duration>,
    /// After one side's close, the other's time to follow.
    linger: Duration,
}

/// Copies between the two connections until the tunnel ends.
async fn relay<D, U>(
    downstream: D,
    upstream: U,
    Limits {
        idle_timeout,
        linger,
    }: Limits,
    closing: std::pin::Pin<&mut impl Future<Output = ()>>,
    bytes: &TunnelBytes,
) -> TunnelEnd
where
    D: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let started = Instant::now();
    // Milliseconds since `started` of the last byte moved either way.
    let last_active = AtomicU64::new(0);
    let (mut down_read, mut down_write) = tokio::io::split(downstream);
    let (mut up_read, mut up_write) = tokio::io::split(upstream);
    let to_upstream = pump(
        &mut down_read,
        &mut up_write,
        &bytes.upstream,
        &last_active,
        started,
    );
    let to_downstream = pump(
        &mut up_read,
        &mut down_write,
        &bytes.downstream,
        &last_active,
        started,
    );
    tokio::pin!(to_upstream, to_downstream);
    let mut closing = closing;
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
                    return TunnelEnd::Failed(e);
                }
                upstream_done = true;
            }
            ended = &mut to_downstream, if !downstream_done => {
                if let Err(e) = ended {
                    return TunnelEnd::Failed(e);
                }
                downstream_done = true;
            }
            () = wake => {
                let now = Instant::now();
                if linger_until.is_some_and(|at| now >= at) {
                    return TunnelEnd::Lingered;
                }
                // Read again: a byte may have moved while asleep.
                if idle_at().is_some_and(|at| now >= at) {
                    return TunnelEnd::Idle;
                }
                // A byte moved meanwhile: the idle deadline moved on.
            }
            () = closing.as_mut() => return TunnelEnd::GatewayClosing,
        }
        match (upstream_done, downstream_done) {
            (true, true) => return TunnelEnd::Closed,
            (false, false) => {}
            // The first close starts the other side's time to follow.
            _ => {
                linger_until.get_or_insert_with(|| Instant::now() + linger);
            }
        }
    }
}

/// Copies `from` to `to` through one fixed buffer until `from` ends, then
/// shuts `to`'s sending half (the close travels on).
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    counter: &AtomicU64,
    last_active: &AtomicU64,
    started: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_active.fetch_max(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_copies_and_passes_the_close_on() {
        let (mut client, mut gateway_in) = tokio::io::duplex(64);
        let (mut gateway_out, mut server) = tokio::io::duplex(64);
        let counter = AtomicU64::new(0);
        let active = AtomicU64::new(0);
        let started = Instant::now();
        let copy = pump(
            &mut gateway_in,
            &mut gateway_out,
            &counter,
            &active,
            started,
        );
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

    /// A relay between in-memory pipes: returns the client's and the
    /// upstream's ends and the relay's future.
    fn relay_pair(
        idle_timeout: Option<Duration>,
    ) -> (
        tokio::io::DuplexStream,
        tokio::io::DuplexStream,
        impl Future<Output = (TunnelEnd, u64, u64)>,
    ) {
        let (client, gateway_down) = tokio::io::duplex(4096);
        let (gateway_up, server) = tokio::io::duplex(4096);
        let relay = async move {
            let bytes = TunnelBytes::default();
            let closing = std::future::pending::<()>();
            tokio::pin!(closing);
            let limits = Limits {
                idle_timeout,
                linger: LINGER,
            };
            let end = relay(gateway_down, gateway_up, limits, closing, &bytes).await;
            (
                end,
                bytes.upstream.load(Ordering::Relaxed),
                bytes.downstream.load(Ordering::Relaxed),
            )
        };
        (client, server, relay)
    }

    #[tokio::test]
    async fn a_close_followed_by_the_other_side_ends_the_tunnel() {
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
        assert!(matches!(end, TunnelEnd::Closed), "{end}");
        assert_eq!((up, down), (4, 5));
    }

    #[tokio::test]
    async fn a_side_that_does_not_follow_a_close_is_cut_after_the_linger() {
        let (client, mut server, relay) = relay_pair(None);
        let started = Instant::now();
        server.shutdown().await.expect("upstream closes");
        let (end, ..) = relay.await;
        assert!(matches!(end, TunnelEnd::Lingered), "{end}");
        let took = started.elapsed();
        assert!(took >= LINGER && took < LINGER * 10, "{took:?}");
        drop(client);
    }

    #[tokio::test]
    async fn traffic_keeps_a_tunnel_open_and_silence_closes_it() {
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
        assert!(matches!(end, TunnelEnd::Idle), "{end}");
        assert_eq!(up, 5);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1000) + idle, "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn the_grace_period_ending_closes_the_tunnel() {
        let (client, gateway_down) = tokio::io::duplex(64);
        let (gateway_up, server) = tokio::io::duplex(64);
        let bytes = TunnelBytes::default();
        let closing = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(closing);
        let limits = Limits {
            idle_timeout: None,
            linger: LINGER,
        };
        let end = relay(gateway_down, gateway_up, limits, closing, &bytes).await;
        assert!(matches!(end, TunnelEnd::GatewayClosing), "{end}");
        drop((client, server));
    }
}
