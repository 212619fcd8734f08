//! Each codec's GoAway (`FrameCodec::goaway`) encodes to the protocol's
//! own frame and decodes back as a GoAway.

use bytes::BytesMut;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{FrameCodec, FrameKind, Limits};

fn round_trip(codec: &dyn FrameCodec) -> (Vec<u8>, FrameKind) {
    let frame = codec.goaway().expect("the protocol has a GoAway");
    let mut wire = BytesMut::new();
    codec.encode(&frame, &mut wire).expect("a GoAway encodes");
    let bytes = wire.to_vec();
    let decoded = codec
        .decode(&mut wire, &Limits::default())
        .expect("decodes")
        .expect("whole");
    assert!(wire.is_empty());
    (bytes, decoded.kind)
}

#[test]
fn bolt_goaway_is_mosn_command_100() {
    let (bytes, kind) = round_trip(&BoltCodec::v1());
    assert_eq!(kind, FrameKind::GoAway);
    // proto 1, type 1 (request), cmd_code 100.
    assert_eq!(&bytes[..4], &[0x01, 0x01, 0x00, 100]);
}

#[test]
fn dubbo_goaway_is_the_read_only_event() {
    let (bytes, kind) = round_trip(&DubboCodec::new());
    assert_eq!(kind, FrameKind::GoAway);
    assert_eq!(bytes[2], 0xA2, "request, event, not two-way, hessian2");
    assert_eq!(
        &bytes[16..],
        &[0x01, b'R'],
        "body: the hessian string \"R\""
    );
}
