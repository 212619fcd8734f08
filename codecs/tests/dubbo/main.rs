//! The Dubbo codec through its public API: golden vectors, frames the codec
//! builds, hand-written requests, header changes, response attachments,
//! and properties over arbitrary input.

mod handmade;
mod props;
mod responses;
mod vectors;

use bytes::{BufMut, BytesMut};
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::dubbo::hessian::write_string;
use meshgate_codecs::{Frame, FrameCodec, Limits};

/// Hessian2 request bodies, piece by piece.
#[derive(Default)]
struct Body(BytesMut);

impl Body {
    fn new() -> Body {
        Body::default()
    }

    /// A string value.
    fn s(mut self, s: &str) -> Body {
        write_string(&mut self.0, s);
        self
    }

    /// Raw hessian bytes.
    fn raw(mut self, bytes: &[u8]) -> Body {
        self.0.put_slice(bytes);
        self
    }

    /// The head: dubbo version, service, version, method, descriptor.
    fn head(self, service: &str, version: &str, method: &str, desc: &str) -> Body {
        self.s("2.0.2").s(service).s(version).s(method).s(desc)
    }

    /// An untyped attachments map of string pairs.
    fn attachments(mut self, pairs: &[(&str, &str)]) -> Body {
        self.0.put_u8(b'H');
        for (k, v) in pairs {
            write_string(&mut self.0, k);
            write_string(&mut self.0, v);
        }
        self.0.put_u8(b'Z');
        self
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A whole frame: header with `flag`, `status`, `id`, then `body`.
fn frame_bytes(flag: u8, status: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xDA, 0xBB, flag, status];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Decodes exactly one frame from `bytes`.
fn decode_one(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = DubboCodec::new()
        .decode(&mut buf, &Limits::default())
        .unwrap_or_else(|e| panic!("decode failed: {e}"))
        .expect("a whole frame");
    assert!(buf.is_empty(), "one frame, nothing left");
    frame
}

/// Encodes `frame` into fresh bytes.
fn encode(frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    DubboCodec::new()
        .encode(frame, &mut dst)
        .unwrap_or_else(|e| panic!("encode failed: {e}"));
    dst.to_vec()
}

/// The `(key, value)` wire fields of a frame's header view, as strings.
fn wire_fields(frame: &Frame) -> Vec<(String, String)> {
    frame
        .headers()
        .wire_fields()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}
