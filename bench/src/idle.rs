//! Idle connections for the memory scenario (`mg-load --idle-connections
//! N`): open N connections to a proxy, send nothing, hold them for a
//! bounded time, so the harness can read the proxy's RSS per connection.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Connections opened at once while connecting (loopback accepts fast;
/// this only bounds the listen backlog's queue).
const CONNECT_BATCH: usize = 256;

/// Opens `count` connections to `target`, in batches; each connect is
/// bounded by `timeout`. Returns the open connections.
pub async fn open(
    target: SocketAddr,
    count: usize,
    timeout: Duration,
) -> std::io::Result<Vec<TcpStream>> {
    let mut open = Vec::with_capacity(count);
    while open.len() < count {
        let batch = CONNECT_BATCH.min(count - open.len());
        let mut connecting = tokio::task::JoinSet::new();
        for _ in 0..batch {
            connecting.spawn(tokio::time::timeout(timeout, TcpStream::connect(target)));
        }
        while let Some(joined) = connecting.join_next().await {
            let connected = joined.map_err(std::io::Error::other)?;
            let stream = connected.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
            open.push(stream);
        }
    }
    Ok(open)
}

/// How many of `streams` the peer has closed (a read that returns at once
/// with end of stream or an error); the others are still open.
pub fn closed_by_peer(streams: &[TcpStream]) -> usize {
    let mut probe = [0u8; 1];
    streams
        .iter()
        .filter(|stream| match stream.try_read(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count()
}
