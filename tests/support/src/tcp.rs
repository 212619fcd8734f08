//! A plain TCP upstream for the TCP proxy tests: it answers every chunk
//! it reads at once with the same bytes XORed with [`XOR`], and when the
//! client closes its sending half, records everything the connection
//! carried and closes its own. So a client proves both directions byte
//! for byte (what it reads back is what it sent, transformed) and the
//! half-close (its EOF reaches the server, the server's reaches it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The byte every byte is XORed with on the way back.
pub const XOR: u8 = 0x5A;

/// `bytes` as the server sends them back.
pub fn transformed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ XOR).collect()
}

#[derive(Debug, Default)]
struct Seen {
    accepted: AtomicU64,
    /// Connections that ended (EOF or error) on the server's side.
    ended: AtomicU64,
    /// Everything each connection carried, once its client half-closed.
    received: Mutex<Vec<Vec<u8>>>,
}

/// The XOR-echo TCP server on 127.0.0.1 (port 0). Stops on drop.
#[derive(Debug)]
pub struct XorEchoServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl XorEchoServer {
    /// Starts listening.
    pub async fn start() -> XorEchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let seen = Arc::new(Seen::default());
        let shared = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        XorEchoServer { addr, seen, task }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted.
    pub fn accepted(&self) -> u64 {
        self.seen.accepted.load(Ordering::Relaxed)
    }

    /// Connections that ended on the server's side.
    pub fn ended(&self) -> u64 {
        self.seen.ended.load(Ordering::Relaxed)
    }

    /// What each half-closed connection carried, in the order they ended.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.seen
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for XorEchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Seen>) {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => {
                seen.received
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(all);
                let _ = stream.shutdown().await;
                break;
            }
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                if stream.write_all(&transformed(&buf[..n])).await.is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    seen.ended.fetch_add(1, Ordering::Relaxed);
}
