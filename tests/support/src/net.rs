//! Loopback sockets for tests: listeners on port 0, a listener on a known
//! port that can be rebound (to restart an upstream in place), and a
//! listener whose accept queue is full (a connect to it never completes).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A listener on 127.0.0.1 with a port chosen by the kernel. Must be
/// called inside a tokio runtime. Panics if the bind fails (a test helper).
pub fn bind_loopback_port0() -> TcpListener {
    bind_loopback(0).expect("binding 127.0.0.1:0 should always work")
}

/// A listener on `127.0.0.1:port` with `SO_REUSEADDR`, so a test can stop an
/// upstream and bind its port again while old connections linger in
/// TIME_WAIT. Must be called inside a tokio runtime.
pub fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(1024)
}

/// A listener on 127.0.0.1:0 whose accepted connections have a receive
/// buffer of about `bytes` (the kernel may round it).
pub fn bind_loopback_with_recv_buffer(bytes: u32) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_recv_buffer_size(bytes)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(1024)
}

/// A loopback listener that never accepts and whose accept queue is full:
/// the kernel drops new SYNs, so a connect to [`Unaccepting::addr`] hangs
/// until the caller's timeout. The reliable stand-in for a non-routable
/// address on a machine without a network.
#[derive(Debug)]
pub struct Unaccepting {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Unaccepting {
    /// Where connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Builds an [`Unaccepting`] listener: backlog 1, then connects until one
/// connect does not complete within 200 ms (the queue is full).
pub async fn unaccepting_listener() -> Unaccepting {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(err)) => panic!("filling the accept queue of {addr}: {err}"),
            Err(_) => {
                return Unaccepting {
                    addr,
                    _listener: listener,
                    _fillers: fillers,
                };
            }
        }
    }
    panic!("the accept queue of {addr} never filled: connects always complete");
}

/// An address on 127.0.0.1 where nothing listens (a port bound then
/// released): connects are refused at once.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}
