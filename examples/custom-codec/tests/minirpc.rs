//! The custom codec goes through the same registry and contract as the
//! built-in ones: detect among them, decode, forward with a new id, reply.

use bytes::BytesMut;
use meshgate_codecs::{Detection, FrameKind, Limits, Registry, ReplyStatus};
use meshgate_example_custom_codec::MiniRpc;
use std::sync::Arc;

/// A request for service "echo" with id 7 and body "hi".
const REQUEST: &[u8] = b"MR\x00\x04\x00\x00\x00\x07\x00\x00\x00\x02echohi";

fn registry() -> Registry {
    let mut registry = Registry::builtin();
    registry
        .register(Arc::new(MiniRpc))
        .expect("minirpc is a new name");
    registry
}

#[test]
fn detected_among_the_builtin_protocols() {
    let mut registry = registry();
    let auto = registry.select("Auto").expect("Auto selects everything");
    match auto.detect(REQUEST) {
        Detection::Match(protocol) => assert_eq!(protocol.name(), "minirpc"),
        other => panic!("expected minirpc, got {other:?}"),
    }
    assert!(matches!(auto.detect(b"M"), Detection::NeedMore));
    assert!(
        registry.register(Arc::new(MiniRpc)).is_err(),
        "duplicate names are rejected"
    );
}

#[test]
fn decodes_forwards_and_replies() {
    let codec = registry().codec("minirpc").expect("registered");
    let mut buf = BytesMut::from(&REQUEST[..5]);
    assert!(
        codec
            .decode(&mut buf, &Limits::default())
            .unwrap()
            .is_none(),
        "half a frame"
    );
    buf.extend_from_slice(&REQUEST[5..]);
    let mut frame = codec
        .decode(&mut buf, &Limits::default())
        .unwrap()
        .expect("whole frame");
    assert_eq!((frame.kind, frame.request_id), (FrameKind::Request, 7));
    assert_eq!(frame.service(), Some("echo"));
    assert_eq!(frame.body(), b"hi");

    // Forward with a new upstream id: only the id bytes change.
    codec.set_request_id(&mut frame, 0x0102_0304);
    let mut out = BytesMut::new();
    codec.encode(&frame, &mut out).unwrap();
    assert_eq!(&out[..4], &REQUEST[..4]);
    assert_eq!(&out[4..8], &[1, 2, 3, 4]);
    assert_eq!(&out[8..], &REQUEST[8..]);

    // The gateway's own error reply, in minirpc's terms.
    let reply = codec
        .error_reply(&frame, ReplyStatus::NoRoute, "")
        .expect("requests get replies");
    let mut out = BytesMut::new();
    codec.encode(&reply, &mut out).unwrap();
    let back = codec
        .decode(&mut out, &Limits::default())
        .unwrap()
        .expect("a reply frame");
    assert_eq!(back.request_id, 0x0102_0304);
    assert_eq!(back.status.map(|s| s.neutral), Some(500));
    assert_eq!(back.body(), b"404|router unavailable");
}

#[test]
fn rejects_bad_input_without_buffering_it() {
    let codec = MiniRpc;
    let mut huge = BytesMut::from(&b"MR\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff"[..]);
    let limits = Limits::new(1024);
    assert!(meshgate_codecs::FrameCodec::decode(&codec, &mut huge, &limits).is_err());
    assert!(
        huge.capacity() < 1024,
        "no room reserved for a frame over the limit"
    );
    let mut garbage = BytesMut::from(&b"MR\x09\x00\x00\x00\x00\x01\x00\x00\x00\x00"[..]);
    assert!(meshgate_codecs::FrameCodec::decode(&codec, &mut garbage, &limits).is_err());
}
