#![no_main]
//! Arbitrary frames built in memory: encode → decode gives the same frame
//! back (kind, id, header fields, body, status), for bolt v1/v2 (with and
//! without CRC), Dubbo requests whose head and attachments come from the
//! input, and the x_example generic layout.

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::{DubboCodec, hessian};
use meshgate_codecs::generic::{GenericCodec, GenericConfig};
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits, Status};
use std::sync::LazyLock;

static X_EXAMPLE: LazyLock<GenericCodec> = LazyLock::new(|| {
    let config: GenericConfig =
        serde_json::from_str(include_str!("../../examples/generic/x_example.json")).expect("parses");
    GenericCodec::new(config).expect("valid")
});

#[derive(Arbitrary, Debug)]
enum Input {
    Bolt {
        kind: u8,
        id: u32,
        v2: bool,
        crc: bool,
        serialization: u8,
        timeout: Option<u16>,
        status: u16,
        class: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Dubbo {
        id: u64,
        two_way: bool,
        service: String,
        method: String,
        version: String,
        attachments: Vec<(String, String)>,
    },
    Generic {
        kind: u8,
        id: u32,
        body: Vec<u8>,
    },
}

fn round_trip(codec: &dyn FrameCodec, frame: &Frame) -> Option<Frame> {
    let mut buf = BytesMut::new();
    codec.encode(frame, &mut buf).ok()?; // Some inputs cannot be encoded (too long): fine.
    let wire_len = buf.len();
    let back = codec
        .decode(&mut buf, &Limits::default())
        .expect("what we encoded decodes")
        .expect("a whole frame");
    assert!(buf.is_empty(), "decode consumed {} of {wire_len} bytes", wire_len - buf.len());
    Some(back)
}

fn bolt(input: Input) {
    let Input::Bolt { kind, id, v2, crc, serialization, timeout, status, class, headers, body } = input else {
        return;
    };
    let kind = [FrameKind::Request, FrameKind::Oneway, FrameKind::Response, FrameKind::Heartbeat { reply: false }]
        [usize::from(kind % 4)];
    let mut frame = Frame::new(kind, u64::from(id));
    frame.meta.version = if v2 { 2 } else { 1 };
    frame.meta.sub_version = if v2 && crc { 2 } else { 1 };
    frame.meta.flags = u8::from(v2 && crc);
    frame.meta.serialization = serialization;
    if !matches!(kind, FrameKind::Heartbeat { .. }) {
        frame.set_class(Bytes::from(class.into_bytes()));
        frame.set_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect());
        frame.set_body(Bytes::from(body));
    }
    if kind == FrameKind::Response {
        frame.status = Some(Status::new(u32::from(status), 0));
    } else {
        frame.set_timeout_ms(timeout.map(u32::from));
    }
    let codec = BoltCodec::v1();
    let Some(back) = round_trip(&codec, &frame) else { return };
    assert_eq!(back.kind, frame.kind);
    assert_eq!(back.request_id, frame.request_id);
    assert_eq!(back.body(), frame.body());
    assert_eq!(back.class(), frame.class());
    assert!(back.headers().wire_fields().eq(frame.headers().wire_fields()), "header fields differ");
    assert_eq!(back.status.map(|s| s.code), frame.status.map(|s| s.code));
    assert_eq!(back.timeout_ms(), frame.timeout_ms());
}

fn dubbo(input: Input) {
    let Input::Dubbo { id, two_way, service, method, version, attachments } = input else { return };
    let mut body = BytesMut::new();
    for s in ["2.0.2", &service, &version, &method, ""] {
        hessian::write_string(&mut body, s);
    }
    body.extend_from_slice(b"H");
    // Attachment names of our own, so none shadows a routing key.
    let attachments: Vec<(String, String)> = attachments.into_iter().map(|(k, v)| (format!("x-{k}"), v)).collect();
    for (k, v) in &attachments {
        hessian::write_string(&mut body, k);
        hessian::write_string(&mut body, v);
    }
    body.extend_from_slice(b"Z");
    let mut frame = Frame::new(if two_way { FrameKind::Request } else { FrameKind::Oneway }, id);
    frame.meta.flags = if two_way { 0xC2 } else { 0x82 };
    frame.meta.serialization = 2;
    frame.set_body(body.freeze());
    let Some(back) = round_trip(&DubboCodec::new(), &frame) else { return };
    assert_eq!((back.kind, back.request_id), (frame.kind, id));
    assert_eq!(back.body(), frame.body());
    assert_eq!(back.method(), Some(method.as_str()));
    assert_eq!(back.service(), Some(service.as_str()));
    assert_eq!(back.headers().get_str("version"), Some(version.as_str()));
    for (k, _) in &attachments {
        let last = attachments.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_bytes());
        assert_eq!(back.headers().get(k), last, "attachment {k}");
    }
}

fn generic(input: Input) {
    let Input::Generic { kind, id, body } = input else { return };
    let kind = [FrameKind::Request, FrameKind::Response, FrameKind::Heartbeat { reply: false }, FrameKind::GoAway]
        [usize::from(kind % 4)];
    let mut frame = Frame::new(kind, u64::from(id));
    frame.set_body(Bytes::from(body));
    if kind == FrameKind::Response {
        frame.status = Some(Status::new(0, 200));
    }
    let Some(back) = round_trip(&*X_EXAMPLE, &frame) else { return };
    assert_eq!((back.kind, back.request_id), (frame.kind, frame.request_id));
    assert_eq!(back.body(), frame.body());
}

fuzz_target!(|input: Input| {
    match input {
        Input::Bolt { .. } => bolt(input),
        Input::Dubbo { .. } => dubbo(input),
        Input::Generic { .. } => generic(input),
    }
});
