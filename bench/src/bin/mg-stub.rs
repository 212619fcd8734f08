//! A fast stub upstream: answers every bolt or Dubbo request at once with
//! its own body, on one thread, batching replies per read. With
//! `--protocol http1` or `h2` it serves HTTP/1.1 or HTTP/2 cleartext
//! (plain requests and gRPC unary), see `meshgate_bench::http_stub`.
//!
//! `mg-stub --protocol bolt --listen 127.0.0.1:12201 [--tag A]`
//!
//! With `--tag`, every reply's body is the request's body followed by the
//! tag's bytes, so a client behind a proxy can tell which host answered
//! (the fault soak test counts replies per host this way). Bodies are
//! opaque to the proxy, so the tag changes nothing on the way.

#![allow(clippy::print_stdout)] // A command-line tool reports on stdout.

use anyhow::Result;
use bytes::{Bytes, BytesMut};
use clap::Parser;
use meshgate_bench::{Proto, Reader, dubbo_rpc_result, echo, http_stub};
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(about = "A single-threaded echo upstream for bolt, Dubbo, HTTP/1.1 or HTTP/2")]
struct Args {
    /// Protocol to serve.
    #[arg(long, value_enum)]
    protocol: StubProto,
    /// Address to listen on (port 0: any; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Bytes appended to every reply's body (names the host; bolt and
    /// Dubbo only).
    #[arg(long, default_value = "")]
    tag: String,
    /// Dubbo replies are RpcResults (a `RESPONSE_VALUE` byte before the
    /// echoed body), as Envoy's `dubbo_proxy` requires.
    #[arg(long)]
    dubbo_rpc_result: bool,
}

/// What the stub serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StubProto {
    /// SOFARPC bolt v1.
    Bolt,
    /// Dubbo 2 (hessian2).
    Dubbo,
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 cleartext (prior knowledge), plain and gRPC unary.
    H2,
}

/// A listener with the accept queue the kernel allows at most (as the
/// gateway's): with `TcpListener::bind`'s 128, a proxy opening its pool
/// in a burst overflowed it and waited out SYN retransmits.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = listen(args.listen)?;
        println!(
            "READY port={} protocol={:?}",
            listener.local_addr()?.port(),
            args.protocol
        );
        let framed = match args.protocol {
            StubProto::Bolt => Some(Proto::Bolt),
            StubProto::Dubbo => Some(Proto::Dubbo),
            StubProto::Http1 | StubProto::H2 => None,
        };
        let codec = framed.map(Proto::codec);
        let tag = Bytes::from(args.tag.into_bytes());
        let rpc_result = args.dubbo_rpc_result && args.protocol == StubProto::Dubbo;
        loop {
            let (stream, _) = listener.accept().await?;
            match (&codec, args.protocol) {
                (Some(codec), _) => {
                    tokio::spawn(serve(stream, Arc::clone(codec), tag.clone(), rpc_result));
                }
                (None, StubProto::H2) => {
                    tokio::spawn(http_stub::serve_h2(stream));
                }
                (None, _) => {
                    tokio::spawn(http_stub::serve_http1(stream));
                }
            }
        }
    })
}

async fn serve(stream: TcpStream, codec: Arc<dyn FrameCodec>, tag: Bytes, rpc_result: bool) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = Reader::new(read, Arc::clone(&codec));
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        // Answer every frame already read, then write once: one syscall
        // for a burst of requests.
        loop {
            match reader.try_decode() {
                Ok(Some(frame)) => {
                    let reply = match frame.kind {
                        FrameKind::Request => {
                            let mut reply = echo(&frame);
                            if rpc_result {
                                let body = dubbo_rpc_result(reply.body());
                                reply.set_body(body);
                            }
                            Some(tagged(reply, &tag))
                        }
                        FrameKind::Heartbeat { reply: false } => codec.heartbeat_reply(&frame),
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        let _ = codec.encode(&reply, &mut out);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !out.is_empty() {
            if write.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match reader.fill().await {
            Ok(true) => {}
            _ => return,
        }
    }
}

/// `reply` with `tag` appended to its body (unchanged for an empty tag).
fn tagged(mut reply: Frame, tag: &Bytes) -> Frame {
    if !tag.is_empty() {
        let mut body = BytesMut::with_capacity(reply.body().len() + tag.len());
        body.extend_from_slice(reply.body());
        body.extend_from_slice(tag);
        reply.set_body(body.freeze());
    }
    reply
}
