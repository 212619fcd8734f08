//! Reading a connection's first bytes until its protocol is known.

use bytes::BytesMut;
use meshgate_codecs::{Detection, Protocol, ProtocolSet};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why no protocol was chosen.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The first bytes match no protocol of the listener.
    #[error("no protocol of the listener matches the first bytes {prefix:02x?}")]
    NoMatch {
        /// Up to 16 of the bytes seen.
        prefix: Vec<u8>,
    },
    /// Not enough bytes arrived in time.
    #[error("no protocol decided within {0:?}")]
    Timeout(Duration),
    /// The peer closed before a protocol was decided.
    #[error("connection closed during protocol detection")]
    Closed,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl DetectError {
    /// A short label for logs and stats.
    pub fn reason(&self) -> &'static str {
        match self {
            DetectError::NoMatch { .. } => "no_match",
            DetectError::Timeout(_) => "timeout",
            DetectError::Closed => "closed",
            DetectError::Io(_) => "io",
        }
    }
}

/// Reads until `set` decides, within `timeout`. Returns the protocol and
/// every byte read so far (the driver decodes them first). A listener with
/// a single framed protocol skips detection (MOSN's named protocol).
pub async fn detect(
    stream: &mut TcpStream,
    set: &ProtocolSet,
    timeout: Duration,
) -> Result<(Protocol, BytesMut), DetectError> {
    let mut buf = BytesMut::with_capacity(ProtocolSet::DETECT_MAX_BYTES * 2);
    let protocol = detect_into(stream, set, timeout, &mut buf).await?;
    Ok((protocol, buf))
}

/// [`detect`], reading into `buf`, which keeps the bytes read whatever the
/// outcome (a fallback TCP proxy forwards them).
pub async fn detect_into(
    stream: &mut TcpStream,
    set: &ProtocolSet,
    timeout: Duration,
    buf: &mut BytesMut,
) -> Result<Protocol, DetectError> {
    if let Some(only @ Protocol::Framed(_)) = set.single() {
        return Ok(only.clone());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match set.detect(buf) {
            Detection::Match(protocol) => return Ok(protocol.clone()),
            Detection::NoMatch => {
                return Err(DetectError::NoMatch {
                    prefix: buf[..buf.len().min(16)].to_vec(),
                });
            }
            Detection::NeedMore => {}
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return Err(DetectError::Timeout(timeout)),
            Ok(Ok(0)) => return Err(DetectError::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}
