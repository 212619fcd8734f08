//! A minimal HTTP/1 server answering every request with a settable status,
//! for health-check tests. It reads one request head per connection (up to
//! 8 KiB), answers `HTTP/1.1 <status>` with `Connection: close`, and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// The server. Dropping it stops accepting.
#[derive(Debug)]
pub struct MockHttp {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicU64>,
    paths: Arc<std::sync::Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl MockHttp {
    /// Binds 127.0.0.1:0 and answers `status` until told otherwise. Must be
    /// called inside a tokio runtime.
    pub fn start(status: u16) -> MockHttp {
        let listener = crate::net::bind_loopback_port0();
        let addr = listener.local_addr().expect("bound");
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(AtomicU64::new(0));
        let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, r, p) = (status.clone(), requests.clone(), paths.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (s, r, p) = (s.clone(), r.clone(), p.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    r.fetch_add(1, Ordering::Relaxed);
                    let line = String::from_utf8_lossy(&head);
                    if let Some(first) = line.lines().next()
                        && let Ok(mut paths) = p.lock()
                    {
                        paths.push(first.to_owned());
                    }
                    let status = s.load(Ordering::Relaxed);
                    let reply = format!(
                        "HTTP/1.1 {status} Mock\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        MockHttp {
            addr,
            status,
            requests,
            paths,
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status the next requests get.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The request lines seen (`GET /health HTTP/1.1`), in order.
    pub fn request_lines(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Drop for MockHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
