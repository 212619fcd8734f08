//! Opening one upstream TCP connection, bounded by the connect timeout.

use crate::pool::PoolError;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Connects to `addr` within `timeout`, with `TCP_NODELAY` set (pools
/// batch their own writes; Nagle would only add latency).
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, PoolError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Best effort: a socket that refuses the option still works.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(err)) => Err(PoolError::ConnectRefused {
            addr,
            kind: err.kind(),
        }),
        Err(_) => Err(PoolError::ConnectTimeout { addr, timeout }),
    }
}
