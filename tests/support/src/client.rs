//! A downstream test client over any framed codec: connect to a listener,
//! send frames, read replies (in order of arrival, by id for pipelining).

use bytes::BytesMut;
use meshgate_codecs::{Frame, FrameCodec, Limits};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long [`FramedClient::call`] waits for a reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One client connection.
#[derive(Debug)]
pub struct FramedClient {
    writer: FrameWriter,
    reader: FrameReader,
}

/// The sending half of a [`FramedClient`].
#[derive(Debug)]
pub struct FrameWriter {
    half: OwnedWriteHalf,
    codec: Arc<dyn FrameCodec>,
    buf: BytesMut,
}

/// The receiving half of a [`FramedClient`].
#[derive(Debug)]
pub struct FrameReader {
    half: OwnedReadHalf,
    codec: Arc<dyn FrameCodec>,
    buf: BytesMut,
}

impl FramedClient {
    /// Connects to `addr` speaking `codec`.
    pub async fn connect(addr: SocketAddr, codec: Arc<dyn FrameCodec>) -> io::Result<FramedClient> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(FramedClient {
            writer: FrameWriter {
                half: write,
                codec: Arc::clone(&codec),
                buf: BytesMut::new(),
            },
            reader: FrameReader {
                half: read,
                codec,
                buf: BytesMut::new(),
            },
        })
    }

    /// The client's own address (what the server sees as its peer).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.half.local_addr()
    }

    /// Sends `frame`.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.writer.send(frame).await
    }

    /// Sends raw bytes (malformed-input tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.send_raw(bytes).await
    }

    /// The next frame; `Ok(None)` when the server closed the connection.
    pub async fn recv(&mut self) -> io::Result<Option<Frame>> {
        self.reader.recv().await
    }

    /// Sends `frame` and waits (up to [`CALL_TIMEOUT`]) for the next frame.
    pub async fn call(&mut self, frame: &Frame) -> io::Result<Frame> {
        self.send(frame).await?;
        match tokio::time::timeout(CALL_TIMEOUT, self.recv()).await {
            Ok(Ok(Some(frame))) => Ok(frame),
            Ok(Ok(None)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no reply")),
        }
    }

    /// Splits into halves for pipelining from two tasks.
    pub fn split(self) -> (FrameWriter, FrameReader) {
        (self.writer, self.reader)
    }
}

impl FrameWriter {
    /// Encodes and writes `frame`.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.buf.clear();
        self.codec
            .encode(frame, &mut self.buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.half.write_all(&self.buf).await
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.half.write_all(bytes).await
    }

    /// Half-closes the connection (no more requests).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.half.shutdown().await
    }
}

impl FrameReader {
    /// The next frame; `Ok(None)` when the server closed cleanly between
    /// frames; an error when it closed mid-frame or sent bytes the codec
    /// rejects.
    pub async fn recv(&mut self) -> io::Result<Option<Frame>> {
        loop {
            match self.codec.decode(&mut self.buf, &Limits::default()) {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.half.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed mid-frame",
                    ))
                };
            }
        }
    }
}
