//! Binding a listener and its accept loop.

use super::detect::detect_into;
use super::framed::{ConnContext, serve_connection};
use super::limits::{ConnectionSlot, ConnectionSlots};
use super::tcp_proxy::{self, TcpConnection};
use super::tracker::Tracker;
use crate::config::http::HttpVersion;
use crate::config::{ListenerSpec, TcpProxyRole};
use crate::proxy::{Downstream, ProxyCore};
use crate::stats::{ListenerStats, OpenConnection};
use bytes::BytesMut;
use meshgate_codecs::{Protocol, ProtocolSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A bound, accepting listener.
#[derive(Debug)]
pub struct ListenerHandle {
    name: Arc<str>,
    addr: SocketAddr,
    /// What it was bound for; a reload that changes these rebinds.
    signature: (SocketAddr, String),
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    stats: Arc<ListenerStats>,
}

impl ListenerHandle {
    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// True when `spec` can keep using this socket (same address and
    /// protocol selection).
    pub fn serves(&self, spec: &ListenerSpec) -> bool {
        self.signature == (spec.addr, spec.protocol_spec.clone())
    }

    /// Accepted connections and detection outcomes.
    pub fn stats(&self) -> &Arc<ListenerStats> {
        &self.stats
    }

    /// Stops accepting; connections already accepted carry on.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Binds `spec`'s address and starts accepting. Each connection looks up
/// the listener's current settings by name, so a reload applies to new
/// connections and new requests without rebinding.
pub async fn bind_listener(
    spec: &ListenerSpec,
    core: Arc<ProxyCore>,
    tracker: Arc<Tracker>,
) -> std::io::Result<ListenerHandle> {
    let listener = listen(spec.addr)?;
    let addr = listener.local_addr()?;
    let name: Arc<str> = Arc::from(spec.name.as_str());
    let (stop, stopped) = watch::channel(false);
    tracing::info!(listener = %name, %addr, protocols = %spec.protocol_spec, "listening");
    let stats = core.stats().listener(&spec.name);
    let task = tokio::spawn(accept_loop(
        listener,
        Arc::clone(&name),
        core,
        tracker,
        Arc::clone(&stats),
        stopped,
    ));
    Ok(ListenerHandle {
        name,
        addr,
        signature: (spec.addr, spec.protocol_spec.clone()),
        stop,
        task,
        stats,
    })
}

/// The accept queue asked for: as long as the kernel allows. Linux caps a
/// listen backlog at `net.core.somaxconn` (4096 by default since 5.4), so
/// this gets that, as MOSN's Go listeners do. `TcpListener::bind`'s 128
/// overflowed under a burst of connects: the kernel then drops the SYNs,
/// and each client waits 1 s, then 3 s, … for its retransmit; 10,000
/// connects to a bolt listener took 21 s instead of under 4.
const LISTEN_BACKLOG: u32 = 65_535;

/// A listening socket on `addr` with the backlog above (and
/// `SO_REUSEADDR`, as `TcpListener::bind` sets it, so a restart can bind
/// while old connections are in TIME_WAIT).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(
    listener: TcpListener,
    name: Arc<str>,
    core: Arc<ProxyCore>,
    tracker: Arc<Tracker>,
    stats: Arc<ListenerStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(ConnectionSlots::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let open = stats.accepted();
                let Some(slot) = admit(&slots, &core, &name, &stats) else {
                    drop(stream);
                    continue;
                };
                let guard = tracker.open();
                let signals = Signals {
                    drain: tracker.drain_signal(),
                    close: tracker.close_signal(),
                };
                let (core, name, stats) =
                    (Arc::clone(&core), Arc::clone(&name), Arc::clone(&stats));
                tokio::spawn(async move {
                    handle_connection(stream, peer, core, name, stats, signals, (guard, open))
                        .await;
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of descriptors and similar: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A slot under the listener's `max_connections`, or `None` (counted,
/// logged at most once a second) when it is full.
fn admit(
    slots: &Arc<ConnectionSlots>,
    core: &ProxyCore,
    name: &str,
    stats: &ListenerStats,
) -> Option<ConnectionSlot> {
    let max = core
        .config()
        .listener(name)
        .and_then(|spec| spec.limits.max_connections);
    let slot = slots.admit(max);
    if slot.is_none() {
        stats.over_limit();
        let refused = slots.refused();
        if refused > 0 {
            tracing::warn!(listener = %name, max_connections = ?max, refused, "listener at max_connections: new connections closed");
        }
    }
    slot
}

/// The gateway's drain and close signals, as each connection watches them.
struct Signals {
    drain: watch::Receiver<bool>,
    close: watch::Receiver<bool>,
}

async fn handle_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    core: Arc<ProxyCore>,
    listener: Arc<str>,
    stats: Arc<ListenerStats>,
    signals: Signals,
    (guard, _open): (super::tracker::ConnectionGuard, OpenConnection),
) {
    let _ = stream.set_nodelay(true);
    tracing::debug!(listener = %listener, %peer, "accepted");
    let config = core.config();
    let Some(spec) = config.listener(&listener) else {
        return;
    };
    let limits = spec.limits;
    let mut prefix = BytesMut::with_capacity(ProtocolSet::DETECT_MAX_BYTES * 2);
    let detected = match spec.tcp_proxy.as_ref().map(|t| t.role) {
        Some(TcpProxyRole::EveryConnection) => Err(None),
        _ => tokio::select! {
            detected = detect_into(&mut stream, &spec.protocols, limits.detect_timeout, &mut prefix) => detected.map_err(Some),
            () = super::tracker::raised(signals.close.clone()) => return,
        },
    };
    let protocol = match detected {
        Ok(found) => found,
        Err(e) => {
            if let Some(e) = &e {
                stats.detect_failed(e.reason());
            }
            if let Some(tcp) = spec
                .tcp_proxy
                .as_ref()
                .filter(|_| tcp_proxy::takes(e.as_ref(), &prefix))
            {
                let (tcp, clusters) = (Arc::clone(&tcp.spec), Arc::clone(&config.clusters));
                drop(config);
                let conn = TcpConnection {
                    stream,
                    peer,
                    prefix,
                    fallback: e.is_some(),
                    close: signals.close,
                    guard,
                };
                tcp_proxy::serve(conn, tcp, clusters, stats.tcp_proxy()).await;
                return;
            }
            if let Some(e) = e {
                tracing::info!(listener = %listener, %peer, reason = e.reason(), error = %e, "protocol detection failed, closing");
            }
            return;
        }
    };
    stats.detected();
    drop(config);
    stats.read(prefix.len());
    let protocol_name: &str = match &protocol {
        Protocol::Framed(codec) => codec.name(),
        Protocol::Http1 => HttpVersion::Http1.name(),
        Protocol::Http2 => HttpVersion::Http2.name(),
    };
    let protocol_stats = core.stats().protocol(protocol_name);
    let cx = ConnContext {
        stats: Arc::clone(&stats),
        core,
        downstream: Arc::new(Downstream {
            listener,
            peer,
            local: stream.local_addr().ok(),
            protocol: Arc::from(protocol_name),
            protocol_stats,
        }),
        limits,
        drain: signals.drain,
        close: signals.close,
    };
    // The HTTP drivers are boxed: this task's future is sized for its
    // largest state, and every connection, idle ones included, pays it.
    match protocol {
        Protocol::Framed(codec) => serve_connection(stream, prefix, codec, cx, guard).await,
        Protocol::Http1 => {
            Box::pin(super::http::serve_connection(
                stream,
                prefix,
                HttpVersion::Http1,
                cx,
                guard,
            ))
            .await;
        }
        Protocol::Http2 => {
            Box::pin(super::http::serve_connection(
                stream,
                prefix,
                HttpVersion::Http2,
                cx,
                guard,
            ))
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects beyond `TcpListener::bind`'s backlog of 128 wait in the
    /// accept queue rather than having their SYNs dropped: every one of
    /// them completes while nothing accepts. With a full queue a connect
    /// hangs for the client's SYN retransmit, a second or more, so the
    /// short bound per connect is what tells the two apart.
    #[tokio::test]
    async fn a_burst_of_connects_queues_past_128_while_nothing_accepts() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(128);
        let burst = somaxconn.min(1000);
        let listener = listen("127.0.0.1:0".parse().unwrap()).expect("binds");
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::with_capacity(burst);
        for n in 0..burst {
            let connected =
                tokio::time::timeout(Duration::from_millis(700), TcpStream::connect(addr))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("connect {n} of {burst} was not queued (somaxconn {somaxconn})")
                    })
                    .expect("connects");
            held.push(connected);
        }
        assert_eq!(held.len(), burst);
        // Queued, not lost: they are all there to accept.
        for _ in 0..burst {
            tokio::time::timeout(Duration::from_secs(5), listener.accept())
                .await
                .expect("a queued connection")
                .expect("accepts");
        }
    }
}
