//! Raw HTTP/1.1 upgrade peers over plain tokio sockets, for tests that
//! look at the bytes themselves: an upstream that switches to a made-up
//! protocol, and a client that asks for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The made-up protocol the raw peers switch to.
pub(crate) const RAW_PROTOCOL: &str = "x-raw/1";

/// What the upstream sends right after its 101, in the same write.
pub(crate) const SERVER_HELLO: &[u8] = b"server-hello|";

/// What the upstream sends when the client closed its sending half.
pub(crate) const SERVER_BYE: &[u8] = b"|server-bye";

/// An upstream speaking HTTP/1.1 until an upgrade, then a byte protocol:
/// every byte received is sent back inverted (`!b`), so an echo is told
/// apart from a loop-back. Paths:
/// - `/status/NNN...`: answers NNN with a short body, no upgrade.
/// - `/silent...`: switches, sends nothing and never closes by itself.
/// - anything else: `101` with `Upgrade: x-raw/1` and [`SERVER_HELLO`],
///   then inverted echo; on the client's close, [`SERVER_BYE`] and close.
///
/// Keeps every request head it read and counts the tunnels that ended.
#[derive(Debug)]
pub(crate) struct RawUpgradeUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    ended: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RawUpgradeUpstream {
    /// Starts on 127.0.0.1:0.
    pub(crate) async fn start() -> RawUpgradeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(Vec::new()));
        let (seen_in, ended_in) = (Arc::clone(&seen), Arc::clone(&ended));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, ended) = (Arc::clone(&seen_in), Arc::clone(&ended_in));
                tokio::spawn(async move {
                    let how = serve(stream, &seen).await;
                    ended.lock().expect("lock").push(how);
                });
            }
        });
        RawUpgradeUpstream {
            addr,
            seen,
            ended,
            task,
        }
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request heads read so far (lowercased).
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    /// How each finished connection ended (`eof`, `error`, `answered`).
    pub(crate) fn ended(&self) -> Vec<String> {
        self.ended.lock().expect("lock").clone()
    }

    /// Waits (up to `limit`) until `n` connections have ended.
    pub(crate) async fn wait_ended(&self, n: usize, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let ended = self.ended();
            if ended.len() >= n || tokio::time::Instant::now() >= deadline {
                return ended;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RawUpgradeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, seen: &Mutex<Vec<String>>) -> String {
    let Ok((head, early)) = read_head(&mut stream).await else {
        return "error".to_owned();
    };
    let lower = head.to_ascii_lowercase();
    seen.lock().expect("lock").push(lower.clone());
    let path = lower.split_whitespace().nth(1).unwrap_or("/").to_owned();
    if let Some(code) = path.strip_prefix("/status/") {
        let code = &code[..3.min(code.len())];
        let body = format!("no upgrade here: {code}\n");
        let answer = format!(
            "HTTP/1.1 {code} Whatever\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return "answered".to_owned();
    }
    let mut switch = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: {RAW_PROTOCOL}\r\nconnection: Upgrade\r\n\r\n"
    )
    .into_bytes();
    let silent = path.starts_with("/silent");
    if !silent {
        switch.extend_from_slice(SERVER_HELLO);
    }
    if stream.write_all(&switch).await.is_err() {
        return "error".to_owned();
    }
    // Bytes the client sent behind its request head, before the 101.
    if !silent && !early.is_empty() && stream.write_all(&invert(&early)).await.is_err() {
        return "error".to_owned();
    }
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => {
                if !silent {
                    let _ = stream.write_all(SERVER_BYE).await;
                }
                let _ = stream.shutdown().await;
                return "eof".to_owned();
            }
            Ok(n) => {
                if !silent && stream.write_all(&invert(&buf[..n])).await.is_err() {
                    return "error".to_owned();
                }
            }
            Err(_) => return "error".to_owned(),
        }
    }
}

/// Every byte inverted.
pub(crate) fn invert(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| !b).collect()
}

/// Reads an HTTP head (up to 64 KiB); returns it and the bytes read past
/// it.
pub(crate) async fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("head over 64 KiB"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connects to `gateway`, sends an upgrade request for [`RAW_PROTOCOL`]
/// on `path` (with `extra` header lines and `early` bytes right behind
/// the head), and returns the socket, the response head and the bytes
/// read past it.
pub(crate) async fn raw_upgrade(
    gateway: SocketAddr,
    path: &str,
    extra: &str,
    early: &[u8],
) -> (TcpStream, String, Vec<u8>) {
    let mut stream = TcpStream::connect(gateway).await.expect("connect");
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nhost: raw.example\r\nconnection: keep-alive, Upgrade\r\nupgrade: {RAW_PROTOCOL}\r\n{extra}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(early);
    stream.write_all(&request).await.expect("send the request");
    let (head, rest) = read_head(&mut stream).await.expect("a response head");
    (stream, head, rest)
}

/// Reads from `stream` until `want` bytes arrived (appended to `got`) or
/// the stream ended; bounded by `limit`.
pub(crate) async fn read_exactly(
    stream: &mut TcpStream,
    got: &mut Vec<u8>,
    want: usize,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut chunk = vec![0u8; 64 * 1024];
    while got.len() < want {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} bytes within {limit:?}", got.len()))
            .expect("read");
        if n == 0 {
            return;
        }
        got.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the peer closes; everything read. Bounded by `limit`.
pub(crate) async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(limit, async {
        let mut chunk = vec![0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the peer did not close within {limit:?}"));
    got
}
