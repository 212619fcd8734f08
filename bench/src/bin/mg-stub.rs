//! A fast stub upstream: answers every bolt or Dubbo request at once with
//! its own body, on one thread, batching replies per read.
//!
//! `mg-stub --protocol bolt --listen 127.0.0.1:12201`

#![allow(clippy::print_stdout)] // A command-line tool reports on stdout.

use anyhow::Result;
use bytes::BytesMut;
use clap::Parser;
use meshgate_bench::{Proto, Reader, echo};
use meshgate_codecs::{FrameCodec, FrameKind};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(about = "A single-threaded echo upstream for bolt or Dubbo")]
struct Args {
    /// Protocol to serve.
    #[arg(long, value_enum)]
    protocol: Proto,
    /// Address to listen on (port 0: any; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&args.listen).await?;
        println!(
            "READY port={} protocol={:?}",
            listener.local_addr()?.port(),
            args.protocol
        );
        let codec = args.protocol.codec();
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream, Arc::clone(&codec)));
        }
    })
}

async fn serve(stream: TcpStream, codec: Arc<dyn FrameCodec>) {
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
                        FrameKind::Request => Some(echo(&frame)),
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
