//! HTTP/1.1 upgrades (`Connection: upgrade` with `Upgrade: websocket` or
//! any other token, RFC 9110 §7.8) passed through as a byte tunnel.
//!
//! ```text
//!  upgrade request ─► routed like any request (matchers, header lists,
//!    │                host rewrite, cluster, LB, breakers, stats), with
//!    │                Upgrade + Connection: upgrade kept, always HTTP/1.1
//!    │                upstream, retried only when nothing reached a host
//!    ├─ upstream answers anything but 101 ─► a normal response
//!    └─ upstream answers 101 ─► 101 to the client, then both connections
//!         are handed over (hyper::upgrade::on on each side) and bytes
//!         are copied both ways through two fixed buffers until both
//!         directions end (a close is passed on; the other direction then
//!         has CLOSE_LINGER to finish), a side fails, nothing moves for
//!         the listener's idle timeout, or the gateway's grace period ends
//! ```
//!
//! The proxy side ([`requested`], [`restore_request_headers`],
//! [`switched`], [`restore_response_headers`]) keeps the upgrade's headers
//! through the hop-by-hop strip. The downstream driver holds a
//! [`TunnelSlot`] per connection: the service arms it when it returns a
//! 101, and once hyper has written that 101 and given the connection up,
//! the driver runs the tunnel ([`run`]) while the connection stays counted
//! and its bytes go on being counted by the listener's counters.
//!
//! HTTP/2 extended CONNECT (RFC 8441) is not supported: an h2 request
//! carries no `Upgrade`, so it is proxied as an ordinary request.

use super::super::error::ProxyError;
use super::super::filter::LocalReply;
use super::{ResponseBody, reply};
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use meshgate_codecs::ReplyStatus;
use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// The `Upgrade` value of an HTTP/1.1 request that asks to switch
/// protocols: `Upgrade` present and `upgrade` among `Connection`'s tokens
/// (an `Upgrade` not named by `Connection` is an ordinary hop-by-hop
/// field, and HTTP/1.0 upgrades are ignored, RFC 9110 §7.8).
pub(crate) fn requested(head: &Parts) -> Option<HeaderValue> {
    if head.version != Version::HTTP_11 || !connection_names_upgrade(&head.headers) {
        return None;
    }
    joined(&head.headers, &header::UPGRADE)
}

/// Puts back what the upstream needs to see the upgrade, after the
/// hop-by-hop fields were stripped: `Upgrade` as the client sent it and
/// `Connection: upgrade` (and nothing else the client's `Connection`
/// named).
pub(crate) fn restore_request_headers(headers: &mut HeaderMap, protocol: &HeaderValue) {
    headers.insert(header::UPGRADE, protocol.clone());
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// For a response about to lose its hop-by-hop fields: the protocol a 101
/// switches to (the upstream's `Upgrade`, else the one requested), `None`
/// for any other status. A 101 to a request that asked for no upgrade is
/// the upstream's error: the client could not follow it.
pub(crate) fn switched<B>(
    response: &Response<B>,
    requested: Option<&HeaderValue>,
) -> Result<Option<HeaderValue>, ProxyError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(None);
    }
    let Some(requested) = requested else {
        return Err(unasked_switch());
    };
    Ok(Some(
        joined(response.headers(), &header::UPGRADE).unwrap_or_else(|| requested.clone()),
    ))
}

/// Puts a 101's `Upgrade` and `Connection: upgrade` back after the
/// hop-by-hop strip.
pub(crate) fn restore_response_headers(headers: &mut HeaderMap, switched: Option<HeaderValue>) {
    if let Some(protocol) = switched {
        restore_request_headers(headers, &protocol);
    }
}

fn unasked_switch() -> ProxyError {
    ProxyError::Local(LocalReply {
        status: ReplyStatus::UpstreamReset,
        message: Cow::Borrowed("502|upstream switched protocols without an upgrade request"),
    })
}

fn connection_names_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Every value of `name` as one comma-joined value; `None` when absent or
/// empty.
fn joined(headers: &HeaderMap, name: &header::HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return (!first.is_empty()).then(|| first.clone());
    };
    let mut all = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        all.extend_from_slice(b", ");
        all.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&all).ok()
}

/// Both sides of an upgrade the gateway agreed to, waiting for hyper to
/// hand the connections over.
pub(crate) struct PendingTunnel {
    downstream: OnUpgrade,
    upstream: OnUpgrade,
}

/// Where a downstream connection's service leaves the tunnel a 101 opens,
/// for the connection's driver to run once hyper has written the 101 and
/// given the connection up. Cheap to clone (clones share the slot).
#[derive(Clone, Default)]
pub(crate) struct TunnelSlot(Arc<Mutex<Option<PendingTunnel>>>);

impl TunnelSlot {
    /// The downstream half of a possible upgrade, taken from the request
    /// before it is served (hyper offers one for every HTTP/1.1 request
    /// with an `Upgrade` field; it resolves only if the response is a 101).
    pub(crate) fn downstream<B>(request: &mut Request<B>) -> Option<OnUpgrade> {
        (request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE))
            .then(|| hyper::upgrade::on(request))
    }

    /// Called with the response the service is about to return: a 101
    /// with both halves of the upgrade at hand arms the slot; a 101 with
    /// either missing (a local reply, a request that asked for none) is
    /// replaced by a 502, since nothing could carry the switched protocol.
    pub(crate) fn arm(&self, response: &mut Response<ResponseBody>, downstream: Option<OnUpgrade>) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let upstream = response.extensions_mut().remove::<OnUpgrade>();
        match (downstream, upstream) {
            (Some(downstream), Some(upstream)) => {
                let pending = PendingTunnel {
                    downstream,
                    upstream,
                };
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pending);
            }
            _ => {
                let version = response.version();
                *response = reply::error_response(&unasked_switch(), false);
                *response.version_mut() = version;
            }
        }
    }

    /// The armed tunnel, if any.
    pub(crate) fn take(&self) -> Option<PendingTunnel> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

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
        tokio::time::timeout(
            HANDOVER_LIMIT,
            futures_util::future::try_join(pending.downstream, pending.upstream),
        )
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

    fn head(version: Version, pairs: &[(&str, &str)]) -> Parts {
        let mut builder = Request::get("/chat").version(version);
        for (k, v) in pairs {
            builder = builder.header(*k, *v);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn an_upgrade_needs_connection_upgrade_and_http_1_1() {
        let ws = head(
            Version::HTTP_11,
            &[
                ("connection", "keep-alive, Upgrade"),
                ("upgrade", "websocket"),
            ],
        );
        assert_eq!(requested(&ws).expect("an upgrade"), "websocket");
        let unnamed = head(Version::HTTP_11, &[("upgrade", "websocket")]);
        assert!(requested(&unnamed).is_none());
        let old = head(
            Version::HTTP_10,
            &[("connection", "upgrade"), ("upgrade", "websocket")],
        );
        assert!(requested(&old).is_none());
        let two = head(
            Version::HTTP_11,
            &[
                ("connection", "upgrade"),
                ("upgrade", "h2c"),
                ("upgrade", "x-raw/1"),
            ],
        );
        assert_eq!(requested(&two).expect("an upgrade"), "h2c, x-raw/1");
    }

    #[test]
    fn a_101_keeps_its_protocol_and_an_unasked_one_is_an_error() {
        let asked = HeaderValue::from_static("websocket");
        let response = Response::builder()
            .status(101)
            .header("upgrade", "WebSocket")
            .body(())
            .expect("response");
        let protocol = switched(&response, Some(&asked)).expect("asked for");
        assert_eq!(protocol.expect("a switch"), "WebSocket");
        assert!(switched(&response, None).is_err());
        let ok = Response::builder().status(200).body(()).expect("response");
        assert!(switched(&ok, Some(&asked)).expect("fine").is_none());
        let mut headers = HeaderMap::new();
        restore_response_headers(&mut headers, Some(asked));
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "upgrade");
    }

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
