//! The frames the codec benches and the instruction-count loop
//! (`examples/forward_loop.rs`) forward: one bolt and one Dubbo request
//! with a 1 KiB body, and the read buffer of 64 of them.

use bytes::{BufMut, Bytes, BytesMut};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::{FrameCodec, Limits};

/// Frames per batch: a read buffer holding this many frames back to back.
pub(crate) const BATCH: usize = 64;
pub(crate) const BODY_LEN: usize = 1024;

/// A bolt v1 request with the header map Java sofa-rpc sends and a 1 KiB
/// body, built from the golden vector.
pub(crate) fn bolt_request() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/vectors/bolt/v1_request_hessian2_java_style_header.bin"
    );
    let bytes = std::fs::read(path).expect("vector present");
    let codec = BoltCodec::v1();
    let mut frame = codec
        .decode(&mut BytesMut::from(&bytes[..]), &Limits::default())
        .expect("vector decodes")
        .expect("whole frame");
    frame.set_body(Bytes::from(vec![b'x'; BODY_LEN]));
    frame.set_wire(None);
    let mut out = BytesMut::new();
    codec.encode(&frame, &mut out).expect("encodes");
    out.to_vec()
}

fn hessian_str(out: &mut BytesMut, s: &str) {
    let n = s.chars().count();
    match n {
        0..=31 => out.put_u8(n as u8),
        32..=1023 => out.put_slice(&[0x30 + (n >> 8) as u8, n as u8]),
        _ => {
            out.put_u8(b'S');
            out.put_u16(n as u16);
        }
    }
    out.put_slice(s.as_bytes());
}

/// A Dubbo request `DemoService:1.0.0#sayHello(String)` whose argument is a
/// 1 KiB string, with the attachments dubbo-remoting sends.
pub(crate) fn dubbo_request() -> Vec<u8> {
    let mut body = BytesMut::new();
    for s in [
        "2.0.2",
        "org.apache.dubbo.samples.DemoService",
        "1.0.0",
        "sayHello",
        "Ljava/lang/String;",
    ] {
        hessian_str(&mut body, s);
    }
    hessian_str(&mut body, &"x".repeat(BODY_LEN));
    body.put_u8(b'H');
    for (k, v) in [
        ("dubbo", "2.0.2"),
        ("group", "g1"),
        ("interface", "org.apache.dubbo.samples.DemoService"),
        ("path", "org.apache.dubbo.samples.DemoService"),
        ("timeout", "3000"),
        ("version", "1.0.0"),
    ] {
        hessian_str(&mut body, k);
        hessian_str(&mut body, v);
    }
    body.put_u8(b'Z');
    let mut frame = BytesMut::new();
    frame.put_slice(&[0xda, 0xbb, 0xc2, 0x00]);
    frame.put_u64(1);
    frame.put_u32(body.len() as u32);
    frame.put_slice(&body);
    frame.to_vec()
}

pub(crate) fn batch_of(frame: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(frame.len() * BATCH);
    for _ in 0..BATCH {
        buf.extend_from_slice(frame);
    }
    buf
}
