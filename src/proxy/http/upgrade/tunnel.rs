//! The tunnel after a 101: both connections handed over by hyper, then
//! the gateway's byte relay (`crate::relay`) between them, until both
//! sides closed (a close is passed on, the other side then has
//! [`CLOSE_LINGER`] to follow), a side fails, nothing moves for the idle
//! timeout, or the gateway's grace period ends.

use super::PendingTunnel;
use crate::relay::{RelayCounters, RelayEnd, RelayLimits, relay};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// The relay ran and ended so.
    Relayed(RelayEnd),
    /// hyper did not hand a connection over (the client left before the
    /// 101 was written, the upstream connection died).
    NotHandedOver(String),
    /// The gateway's grace period ended before the hand-over.
    GatewayClosing,
}

impl std::fmt::Display for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelEnd::Relayed(end) => end.fmt(f),
            TunnelEnd::NotHandedOver(why) => write!(f, "connection not handed over: {why}"),
            TunnelEnd::GatewayClosing => f.write_str("the gateway is closing"),
        }
    }
}

/// Runs an armed tunnel to its end: waits for both connections, then
/// relays bytes both ways (`crate::relay`, with [`CLOSE_LINGER`]).
/// `closing` resolves when the gateway's grace period is over. Dropping
/// the future closes both connections.
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
    let (to_upstream, to_downstream) = (AtomicU64::new(0), AtomicU64::new(0));
    let end = relay(
        tokio::io::split(TokioIo::new(downstream)),
        tokio::io::split(TokioIo::new(upstream)),
        &[],
        RelayLimits {
            idle_timeout,
            linger: Some(CLOSE_LINGER),
        },
        closing,
        RelayCounters {
            to_upstream: &to_upstream,
            to_downstream: &to_downstream,
        },
    )
    .await;
    tracing::debug!(
        %peer,
        %end,
        to_upstream = to_upstream.load(Ordering::Relaxed),
        to_downstream = to_downstream.load(Ordering::Relaxed),
        "upgrade tunnel ended"
    );
    TunnelEnd::Relayed(end)
}
