//! The probes: one check of one host, bounded by the check timeout.
//!
//! - TCP: the connect succeeds (the connection is closed at once).
//! - HTTP/1: a fresh connection, one request (`Connection: close`), the
//!   status line read (at most [`MAX_HTTP_HEAD`] bytes) and matched against
//!   the expected statuses.
//! - Heartbeat: the codec's `heartbeat_request` over a connection kept
//!   between checks (as MOSN's session keeps its codec client); the reply
//!   must be a heartbeat reply with the same id. Pings the upstream sends
//!   on that connection are answered; anything else is ignored. After a
//!   failed or timed-out check the connection is closed and the next check
//!   connects anew, so a stale reply can never pass for a fresh one.

use super::config::{CheckKind, HealthCheckSettings, HttpCheck};
use crate::pool::FramedCodec;
use futures_util::{SinkExt, StreamExt};
use meshgate_codecs::{FrameCodec, FrameKind, Limits};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// The most of an HTTP response read to find its status line.
pub const MAX_HTTP_HEAD: usize = 8 * 1024;

/// Why a check failed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// The check did not finish within the timeout.
    Timeout(Duration),
    /// Connecting, writing or reading failed.
    Network(String),
    /// The host answered, wrongly.
    BadAnswer(String),
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Timeout(t) => write!(f, "no answer within {t:?}"),
            CheckFailure::Network(e) => write!(f, "network: {e}"),
            CheckFailure::BadAnswer(e) => f.write_str(e),
        }
    }
}

/// One host's probe, with the state it keeps between checks.
#[derive(Debug)]
pub(crate) enum Probe {
    Tcp,
    Http(Arc<HttpCheck>, String),
    Heartbeat(HeartbeatProbe),
}

impl Probe {
    /// The probe for `settings`; `codec` is the heartbeat protocol's codec
    /// (looked up by the caller).
    pub(crate) fn new(
        settings: &HealthCheckSettings,
        codec: Option<Arc<dyn FrameCodec>>,
        host_label: &str,
    ) -> Option<Probe> {
        match &settings.kind {
            CheckKind::Tcp => Some(Probe::Tcp),
            CheckKind::Http(http) => {
                let authority = if settings.service_name.is_empty() {
                    host_label.to_owned()
                } else {
                    settings.service_name.clone()
                };
                Some(Probe::Http(Arc::new(http.clone()), authority))
            }
            CheckKind::Heartbeat { .. } => codec.map(HeartbeatProbe::new).map(Probe::Heartbeat),
        }
    }

    /// One check of `addr`, bounded by `timeout`.
    pub(crate) async fn check(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), CheckFailure> {
        let outcome = tokio::time::timeout(timeout, async {
            match self {
                Probe::Tcp => TcpStream::connect(addr)
                    .await
                    .map(drop)
                    .map_err(|e| CheckFailure::Network(e.to_string())),
                Probe::Http(http, authority) => http_check(addr, http, authority).await,
                Probe::Heartbeat(probe) => probe.check(addr).await,
            }
        })
        .await
        .unwrap_or(Err(CheckFailure::Timeout(timeout)));
        if outcome.is_err()
            && let Probe::Heartbeat(probe) = self
        {
            probe.conn = None;
        }
        outcome
    }
}

async fn http_check(
    addr: SocketAddr,
    http: &HttpCheck,
    authority: &str,
) -> Result<(), CheckFailure> {
    let net = |e: std::io::Error| CheckFailure::Network(e.to_string());
    let target = match http.port {
        Some(port) => SocketAddr::new(addr.ip(), port),
        None => addr,
    };
    let mut stream = TcpStream::connect(target).await.map_err(net)?;
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: meshgate-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        http.method, http.path
    );
    stream.write_all(request.as_bytes()).await.map_err(net)?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    let line_end = loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            break end;
        }
        if head.len() >= MAX_HTTP_HEAD {
            return Err(CheckFailure::BadAnswer(format!(
                "no status line in the first {MAX_HTTP_HEAD} bytes"
            )));
        }
        let n = stream.read(&mut buf).await.map_err(net)?;
        if n == 0 {
            return Err(CheckFailure::BadAnswer(
                "connection closed before a status line".into(),
            ));
        }
        head.extend_from_slice(&buf[..n]);
    };
    let status = parse_status_line(&head[..line_end]).ok_or_else(|| {
        CheckFailure::BadAnswer(format!(
            "not an HTTP/1 status line: {:?}",
            String::from_utf8_lossy(&head[..line_end.min(64)])
        ))
    })?;
    if http.expects(status) {
        Ok(())
    } else {
        Err(CheckFailure::BadAnswer(format!("HTTP status {status}")))
    }
}

/// The status of `HTTP/1.x NNN reason`.
pub(crate) fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The heartbeat probe: a connection and the next ping id.
pub(crate) struct HeartbeatProbe {
    codec: Arc<dyn FrameCodec>,
    conn: Option<Framed<TcpStream, FramedCodec>>,
    next_id: u64,
}

impl fmt::Debug for HeartbeatProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeartbeatProbe")
            .field("codec", &self.codec.name())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl HeartbeatProbe {
    fn new(codec: Arc<dyn FrameCodec>) -> HeartbeatProbe {
        HeartbeatProbe {
            codec,
            conn: None,
            next_id: 1,
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        let max = self.codec.max_request_id().max(1);
        self.next_id = if id >= max { 1 } else { id + 1 };
        id
    }

    async fn check(&mut self, addr: SocketAddr) -> Result<(), CheckFailure> {
        let net = |e: &dyn fmt::Display| CheckFailure::Network(e.to_string());
        let id = self.take_id();
        let ping = self.codec.heartbeat_request(id).ok_or_else(|| {
            CheckFailure::BadAnswer(format!("{} has no heartbeat", self.codec.name()))
        })?;
        if self.conn.is_none() {
            let stream = TcpStream::connect(addr).await.map_err(|e| net(&e))?;
            let _ = stream.set_nodelay(true);
            let framed = FramedCodec::new(Arc::clone(&self.codec), Limits::default());
            self.conn = Some(Framed::new(stream, framed));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(CheckFailure::Network("not connected".into()));
        };
        conn.send(ping).await.map_err(|e| net(&e))?;
        loop {
            let frame = match conn.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => return Err(net(&e)),
                None => return Err(CheckFailure::Network("connection closed".into())),
            };
            match frame.kind {
                FrameKind::Heartbeat { reply: true } if frame.request_id == id => return Ok(()),
                FrameKind::Heartbeat { reply: false } => {
                    if let Some(pong) = self.codec.heartbeat_reply(&frame) {
                        conn.send(pong).await.map_err(|e| net(&e))?;
                    }
                }
                // A late reply to an earlier ping, or anything else: skip.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_strictly() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status_line(b"HTTP/2 200"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2x0 OK"), None);
        assert_eq!(parse_status_line(b""), None);
    }
}
