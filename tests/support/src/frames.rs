//! Frame builders for tests.

use bytes::{Bytes, BytesMut};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits};

/// `frame` as a peer would receive it: encoded by `codec`, then decoded,
/// so it carries wire bytes and takes the zero-copy forward path.
pub fn decoded(codec: &dyn FrameCodec, frame: &Frame) -> Frame {
    let mut buf = BytesMut::new();
    codec
        .encode(frame, &mut buf)
        .expect("test frames must encode");
    codec
        .decode(&mut buf, &Limits::default())
        .expect("an encoded frame decodes")
        .expect("an encoded frame is complete")
}

/// A decoded bolt v1 request (hessian2, timeout 3 s) with id `id`, a
/// `service` header and `body` as its content.
pub fn bolt_request(id: u64, body: impl Into<Bytes>) -> Frame {
    let mut frame = Frame::new(FrameKind::Request, id);
    frame.meta.version = 1;
    frame.meta.serialization = 1;
    frame.set_class(Bytes::from_static(
        b"com.alipay.sofa.rpc.core.request.SofaRequest",
    ));
    frame.set_timeout_ms(Some(3000));
    frame
        .headers_mut()
        .insert("service", b"com.example.Echo:1.0");
    frame.set_body(body.into());
    decoded(&BoltCodec::v1(), &frame)
}

/// A decoded bolt v1 oneway request.
pub fn bolt_oneway(id: u64, body: impl Into<Bytes>) -> Frame {
    let mut frame = bolt_request(id, body);
    frame.kind = FrameKind::Oneway;
    frame.set_wire(None);
    decoded(&BoltCodec::v1(), &frame)
}

/// A bolt GoAway (MOSN's command 100), as an upstream sends it.
pub fn bolt_goaway() -> Frame {
    decoded(&BoltCodec::v1(), &Frame::new(FrameKind::GoAway, 0))
}

/// A decoded Dubbo two-way request (hessian2): `service` version `1.0.0`,
/// `method(String)` with `arg`, and the attachments dubbo-remoting sends
/// (`path`, `interface`, `version`), plus `group` when given.
pub fn dubbo_request(
    id: u64,
    service: &str,
    method: &str,
    group: Option<&str>,
    arg: &str,
) -> Frame {
    use meshgate_codecs::dubbo::{DubboCodec, hessian::write_string};
    let mut body = BytesMut::new();
    for s in ["2.0.2", service, "1.0.0", method, "Ljava/lang/String;", arg] {
        write_string(&mut body, s);
    }
    body.extend_from_slice(b"H");
    let mut attachments = vec![
        ("path", service),
        ("interface", service),
        ("version", "1.0.0"),
    ];
    if let Some(group) = group {
        attachments.push(("group", group));
    }
    for (k, v) in attachments {
        write_string(&mut body, k);
        write_string(&mut body, v);
    }
    body.extend_from_slice(b"Z");
    let mut frame = Frame::new(FrameKind::Request, id);
    frame.meta.flags = 0xC2;
    frame.meta.serialization = 2;
    frame.set_body(body.freeze());
    decoded(&DubboCodec::new(), &frame)
}
