//! Benchmark tools shared code: building requests for a protocol and
//! reading frames off a socket.
//!
//! - `mg-load`: N connections × M requests in flight, multiplexed by
//!   request id, every reply checked against its request's payload, for a
//!   bounded time; prints throughput and latency percentiles.
//! - `mg-stub`: a single-threaded upstream that answers every request at
//!   once (a fast backend, so the proxy, not the backend, is measured):
//!   bolt, Dubbo, HTTP/1.1, HTTP/2 and gRPC unary ([`http_stub`]).
//! - `mg-load --idle-connections N`: holds N idle connections ([`idle`]),
//!   for the harness's memory scenario.
//!
//! `bench/run.sh` drives them (and wrk, h2load) against the backend,
//! meshgate, Envoy and nginx.

pub mod http_stub;
pub mod idle;

use bytes::{Bytes, BytesMut};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::{DubboCodec, hessian::write_string};
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits, WireMeta};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

/// The protocols the tools speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// SOFARPC bolt v1.
    Bolt,
    /// Dubbo 2 (hessian2).
    Dubbo,
}

impl Proto {
    /// The codec.
    pub fn codec(self) -> Arc<dyn FrameCodec> {
        match self {
            Proto::Bolt => Arc::new(BoltCodec::v1()),
            Proto::Dubbo => Arc::new(DubboCodec::new()),
        }
    }

    /// A request with id `id` carrying `payload`, encoded, and the body an
    /// echoing upstream sends back: bolt puts the payload in the content;
    /// Dubbo in the (only) string argument of `DemoService.sayHello`, and
    /// the echo is the whole hessian body.
    pub fn request(self, id: u64, payload: &str) -> (BytesMut, Bytes) {
        let mut frame = Frame::new(FrameKind::Request, id);
        match self {
            Proto::Bolt => {
                frame.meta = WireMeta {
                    version: 1,
                    serialization: 1,
                    ..WireMeta::default()
                };
                frame.set_class(Bytes::from_static(
                    b"com.alipay.sofa.rpc.core.request.SofaRequest",
                ));
                frame.set_timeout_ms(Some(3000));
                frame
                    .headers_mut()
                    .insert("service", b"com.alipay.test.EchoService:1.0");
                frame.set_body(Bytes::copy_from_slice(payload.as_bytes()));
            }
            Proto::Dubbo => {
                let mut body = BytesMut::new();
                for s in [
                    "2.0.2",
                    "org.apache.dubbo.samples.DemoService",
                    "1.0.0",
                    "sayHello",
                    "Ljava/lang/String;",
                    payload,
                ] {
                    write_string(&mut body, s);
                }
                body.extend_from_slice(b"H");
                for (k, v) in [
                    ("path", "org.apache.dubbo.samples.DemoService"),
                    ("version", "1.0.0"),
                ] {
                    write_string(&mut body, k);
                    write_string(&mut body, v);
                }
                body.extend_from_slice(b"Z");
                frame.meta.flags = 0xC2;
                frame.meta.serialization = 2;
                frame.set_body(body.freeze());
            }
        }
        let mut out = BytesMut::new();
        // Our own well-formed frames always encode.
        let _ = self.codec().encode(&frame, &mut out);
        (out, frame.body_bytes())
    }
}

/// The hessian2 int 1 (`RESPONSE_VALUE`) that starts a Dubbo reply's
/// body: an RpcResult carrying a value. Envoy's `dubbo_proxy` parses it
/// (and refuses a reply without it); meshgate passes bodies through.
pub const DUBBO_RESPONSE_VALUE: u8 = 0x91;

/// `body` as the value of a Dubbo RpcResult: [`DUBBO_RESPONSE_VALUE`]
/// followed by `body`'s bytes (what `mg-stub --dubbo-rpc-result` replies
/// and `mg-load --dubbo-rpc-result` expects).
pub fn dubbo_rpc_result(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 1);
    out.extend_from_slice(&[DUBBO_RESPONSE_VALUE]);
    out.extend_from_slice(body);
    out.freeze()
}

/// The echo answer to `req`: a success response with the request's id and
/// body (opaque to any proxy in between).
pub fn echo(req: &Frame) -> Frame {
    let mut resp = Frame::new(FrameKind::Response, req.request_id);
    resp.set_body(req.body_bytes());
    resp.meta = WireMeta {
        flags: 0,
        ..req.meta
    };
    resp
}

/// Reads frames off a socket.
#[derive(Debug)]
pub struct Reader {
    half: OwnedReadHalf,
    buf: BytesMut,
    codec: Arc<dyn FrameCodec>,
}

impl Reader {
    /// A reader over `half`.
    pub fn new(half: OwnedReadHalf, codec: Arc<dyn FrameCodec>) -> Reader {
        Reader {
            half,
            buf: BytesMut::with_capacity(64 * 1024),
            codec,
        }
    }

    /// The next frame among the bytes already read, without reading.
    pub fn try_decode(&mut self) -> std::io::Result<Option<Frame>> {
        self.codec
            .decode(&mut self.buf, &Limits::default())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Reads more bytes; `Ok(false)` when the peer closed.
    pub async fn fill(&mut self) -> std::io::Result<bool> {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        Ok(self.half.read_buf(&mut self.buf).await? > 0)
    }

    /// The next frame; `Ok(None)` when the peer closed.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.try_decode()? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }
}
