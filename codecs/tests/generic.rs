//! The config-driven generic codec against the golden vectors, through the
//! example configs in `examples/generic/`: x_example (the layout MOSN's
//! sample sub-protocol defines) and Dubbo 2's 16-byte header.

#[path = "generic/props.rs"]
mod props;
#[path = "generic/validation.rs"]
mod validation;

use bytes::BytesMut;
use meshgate_codecs::generic::{GenericCodec, GenericConfig};
use meshgate_codecs::{
    CodecError, Detect, Detection, Frame, FrameCodec, FrameKind, Limits, PoolMode, Registry,
    ReplyStatus,
};
use meshgate_test_support::vectors::{self, Checks, Vector, check_framed, check_tricky};
use std::path::PathBuf;
use std::sync::Arc;

/// An example config from `examples/generic/`.
pub(crate) fn example_config(file: &str) -> GenericConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/generic")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn x_example() -> GenericCodec {
    GenericCodec::new(example_config("x_example.json")).expect("x_example.json is valid")
}

pub(crate) fn dubbo() -> GenericCodec {
    GenericCodec::new(example_config("dubbo.json")).expect("dubbo.json is valid")
}

fn decode_one(codec: &GenericCodec, bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = codec
        .decode(&mut buf, &Limits::default())
        .expect("decodes")
        .expect("one whole frame");
    assert!(buf.is_empty());
    frame
}

fn encode(codec: &GenericCodec, frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    codec.encode(frame, &mut dst).expect("encodes");
    dst.to_vec()
}

/// The status a vector lists, checked against the frame: raw code, and the
/// neutral code (200 exactly for the success value).
fn assert_status(v: &Vector, frame: &Frame, success: u32) {
    let want = v.expected_u64("status").map(|s| s as u32);
    let response_side = !frame.kind.is_request_side() && frame.kind != FrameKind::GoAway;
    if response_side {
        let status = frame
            .status
            .unwrap_or_else(|| panic!("{}: no status", v.file));
        assert_eq!(Some(status.code), want, "{}: status", v.file);
        let neutral = if status.code == success { 200 } else { 500 };
        assert_eq!(status.neutral, neutral, "{}: neutral status", v.file);
    } else {
        assert_eq!(frame.status, None, "{}: requests carry no status", v.file);
    }
}

#[test]
fn x_example_vectors_decode_forward_and_patch() {
    let codec = x_example();
    let all = vectors::of(&["x_example"]);
    assert_eq!(all.len(), 6, "every xprotocol vector is listed");
    let checks = Checks {
        id_bytes: 3..7,
        crc_bytes: None,
        encode_from_fields: false,
    };
    for v in &all {
        let frame = check_framed(&codec, v, &checks);
        let payload = v.expected_str("payload_utf8").expect("payload listed");
        assert_eq!(frame.body(), payload.as_bytes(), "{}: payload", v.file);
        assert!(
            frame.headers().is_empty(),
            "{}: the payload is opaque",
            v.file
        );
        assert_status(v, &frame, 0);

        // Every x_example header byte is modelled (magic, type through the
        // markers, dir, id, status, length), so even a frame without its
        // wire bytes re-encodes exactly.
        let mut from_fields = frame.clone();
        from_fields.set_wire(None);
        assert_eq!(
            encode(&codec, &from_fields),
            v.bytes,
            "{}: from fields",
            v.file
        );
    }
}

#[test]
fn x_example_absurd_length_is_rejected_from_the_header() {
    let codec = x_example();
    let tricky = vectors::tricky(&["x_example"]);
    assert_eq!(tricky.len(), 1);
    for v in &tricky {
        check_tricky(&codec, v);
    }
    let bytes = vectors::read("tricky/x_example_absurd_length.bin");
    let mut buf = BytesMut::from(&bytes[..]);
    let err = codec
        .decode(&mut buf, &Limits::default())
        .expect_err("too large");
    assert!(
        matches!(err, CodecError::FrameTooLarge { len, .. } if len == 0xFFFF_FFFD + 11),
        "{err}"
    );
    assert_eq!(buf.capacity(), bytes.len(), "nothing reserved for it");

    // The header was a whole two-way request: it can still be answered.
    let reply = codec
        .decode_error_reply(&buf, &err)
        .expect("an error reply for request 9");
    assert_eq!(reply.kind, FrameKind::Response);
    assert_eq!(reply.request_id, 9);
    assert_eq!(reply.status.map(|s| s.code), Some(1));
    let body = std::str::from_utf8(reply.body()).expect("UTF-8 message");
    assert!(body.contains("exceeds the limit"), "{body}");
    let again = decode_one(&codec, &encode(&codec, &reply));
    assert_eq!(again.request_id, 9);
    assert_eq!(again.body(), reply.body());
}

#[test]
fn x_example_heartbeat_reply_is_the_golden_pong() {
    let codec = x_example();
    let ping = decode_one(
        &codec,
        &vectors::read("xprotocol/x_example_heartbeat_request.bin"),
    );
    assert_eq!(ping.kind, FrameKind::Heartbeat { reply: false });
    let pong = codec
        .heartbeat_reply(&ping)
        .expect("x_example answers pings");
    assert_eq!(pong.kind, FrameKind::Heartbeat { reply: true });
    assert_eq!(pong.request_id, 2);
    assert_eq!(
        encode(&codec, &pong),
        vectors::read("xprotocol/x_example_heartbeat_response.bin")
    );
    let built = codec.heartbeat_request(2).expect("x_example can ping");
    assert_eq!(
        encode(&codec, &built),
        vectors::read("xprotocol/x_example_heartbeat_request.bin")
    );
    // Only pings get a pong.
    let request = decode_one(&codec, &vectors::read("xprotocol/x_example_request.bin"));
    assert_eq!(codec.heartbeat_reply(&request), None);
    assert_eq!(codec.heartbeat_reply(&pong), None);
}

#[test]
fn x_example_error_reply_is_the_golden_error_response() {
    let codec = x_example();
    let request = decode_one(&codec, &vectors::read("xprotocol/x_example_request.bin"));
    let reply = codec
        .error_reply(&request, ReplyStatus::Internal, "upstream failed")
        .expect("two-way requests get error replies");
    assert_eq!(
        encode(&codec, &reply),
        vectors::read("xprotocol/x_example_response_error.bin")
    );
    assert_eq!(reply.status.map(|s| (s.code, s.neutral)), Some((1, 500)));

    // An empty message falls back to MOSN's text for the reason.
    let reply = codec
        .error_reply(&request, ReplyStatus::Timeout, "")
        .expect("reply");
    assert_eq!(reply.body(), b"504|timeout");
    assert_eq!(reply.status.map(|s| s.neutral), Some(504));

    // The reply's id is patched in place like a decoded frame's.
    let mut reply = reply;
    codec.set_request_id(&mut reply, 0x1_0000_0007);
    assert_eq!(reply.request_id, 7, "truncated to the 4-byte id");
    assert_eq!(decode_one(&codec, &encode(&codec, &reply)).request_id, 7);

    // No reply to what takes none.
    for file in [
        "xprotocol/x_example_response_ok.bin",
        "xprotocol/x_example_heartbeat_request.bin",
        "xprotocol/x_example_goaway.bin",
    ] {
        let frame = decode_one(&codec, &vectors::read(file));
        assert_eq!(codec.error_reply(&frame, ReplyStatus::Internal, "x"), None);
    }
}

/// The generic model frames Dubbo but does not read its hessian2 body, so it
/// cannot produce the `service`/`method` routing keys the index lists in
/// `header_map` (the built-in Dubbo codec does). Everything else is checked.
fn without_header_map(v: &Vector) -> Vector {
    let mut v = v.clone();
    if let Some(expected) = v.expected.as_object_mut() {
        expected.remove("header_map");
    }
    v
}

#[test]
fn dubbo_vectors_frame_through_the_generic_model() {
    let codec = dubbo();
    let all = vectors::of(&["dubbo"]);
    assert!(all.len() >= 20, "dubbo vectors listed: {}", all.len());
    // Serialization bits of the flag byte are not modelled, so frames
    // without their wire bytes do not re-encode identically.
    let checks = Checks {
        id_bytes: 4..12,
        crc_bytes: None,
        encode_from_fields: false,
    };
    for v in &all {
        let frame = check_framed(&codec, &without_header_map(v), &checks);
        assert!(frame.headers().is_empty());
        assert_eq!(
            Some(frame.body().len() as u64),
            v.expected_u64("body_len"),
            "{}: body",
            v.file
        );
        assert_status(v, &frame, 20);
        // The readonly event (flag 0xA2) is a GoAway through the goaway
        // marker (request, event, not two-way), not a heartbeat.
        if v.kind == "event" {
            assert_eq!(frame.kind, FrameKind::GoAway, "{}", v.file);
        }
    }
}

#[test]
fn dubbo_tricky_framing_vectors() {
    let codec = dubbo();
    let tricky = vectors::tricky(&["dubbo"]);
    let names: Vec<&str> = tricky.iter().map(|v| v.file.as_str()).collect();
    for expected in [
        "tricky/dubbo_absurd_length.bin",
        "tricky/dubbo_negative_length.bin",
        "tricky/dubbo_request_split.part1.bin",
        "tricky/dubbo_truncated.bin",
        "tricky/dubbo_two_frames.bin",
        "tricky/dubbo_bad_magic.bin",
    ] {
        assert!(names.contains(&expected), "{expected} is listed");
    }
    for v in &tricky {
        check_tricky(&codec, v);
    }
}

#[test]
fn dubbo_heartbeat_reply_is_what_dubbo_remoting_sends() {
    let codec = dubbo();
    let ping = decode_one(
        &codec,
        &vectors::read("dubbo/heartbeat_request_dubbo_remoting.bin"),
    );
    let pong = codec.heartbeat_reply(&ping).expect("pong");
    // Flag 0x22: serialization bits copied, event bit set, two-way cleared
    // by the direction; status 20; body = the configured payload "N".
    assert_eq!(
        encode(&codec, &pong),
        vectors::read("dubbo/heartbeat_response_dubbo_remoting.bin")
    );
    let built = codec.heartbeat_request(10).expect("ping");
    let mut wire = encode(&codec, &built);
    // A built ping has no serialization bits (nothing to copy them from).
    assert_eq!(wire[2], 0xE0);
    wire[2] |= 0x02;
    assert_eq!(
        wire,
        vectors::read("dubbo/heartbeat_request_dubbo_remoting.bin")
    );

    let oneway = decode_one(
        &codec,
        &vectors::read("dubbo/request_oneway_dubbo_remoting.bin"),
    );
    assert_eq!(codec.error_reply(&oneway, ReplyStatus::Internal, "x"), None);
    let request = decode_one(&codec, &vectors::read("dubbo/request_dubbo_remoting.bin"));
    let reply = codec
        .error_reply(&request, ReplyStatus::Internal, "")
        .expect("reply");
    let bytes = encode(&codec, &reply);
    assert_eq!(&bytes[..4], &[0xDA, 0xBB, 0x02, 70]);
    assert_eq!(&bytes[4..12], &1u64.to_be_bytes());
    assert_eq!(&bytes[16..], b"500|internal error");
}

#[test]
fn registered_after_the_builtins_and_detected_by_name() {
    let mut registry = Registry::builtin();
    registry
        .register(Arc::new(x_example()))
        .expect("x_example is a new name");
    registry
        .register(Arc::new(dubbo()))
        .expect("dubbo_generic is a new name");
    assert!(registry.register(Arc::new(x_example())).is_err());
    let names: Vec<&str> = registry.names().collect();
    assert_eq!(names.last(), Some(&"dubbo_generic"));

    let auto = registry.select("Auto").expect("Auto");
    let bytes = vectors::read("xprotocol/x_example_request.bin");
    match auto.detect(&bytes) {
        Detection::Match(p) => assert_eq!(p.name(), "x_example"),
        other => panic!("expected x_example, got {other:?}"),
    }
    assert!(matches!(auto.detect(&[0x78]), Detection::Match(p) if p.name() == "x_example"));
    let codec = registry.codec("x_example").expect("registered codec");
    assert_eq!(codec.pool_mode(), PoolMode::Multiplex);
    assert_eq!(codec.max_request_id(), u64::from(u32::MAX));
}

#[test]
fn detect_compares_the_magic_byte_by_byte() {
    let codec = dubbo();
    assert_eq!(codec.detect(&[]), Detect::NeedMore);
    assert_eq!(codec.detect(&[0xDA]), Detect::NeedMore);
    assert_eq!(codec.detect(&[0xDA, 0xBB]), Detect::Match);
    assert_eq!(codec.detect(&[0xDB]), Detect::NoMatch);
    assert_eq!(codec.detect(&[0xDA, 0xBC, 0x02]), Detect::NoMatch);

    let mut config = example_config("x_example.json");
    config.magic = None;
    config.magic_offset = None;
    let blind = GenericCodec::new(config).expect("valid without magic");
    assert_eq!(
        blind.detect(&vectors::read("xprotocol/x_example_request.bin")),
        Detect::NoMatch
    );
}

#[test]
fn a_later_frame_with_the_wrong_magic_is_malformed() {
    let codec = x_example();
    let good = vectors::read("xprotocol/x_example_request.bin");
    let mut bad = good.clone();
    bad[0] = 0x79;
    let mut buf = BytesMut::from(&[good.as_slice(), &bad[..3]].concat()[..]);
    let first = codec
        .decode(&mut buf, &Limits::default())
        .expect("first frame");
    assert!(first.is_some());
    let before = buf.clone();
    let err = codec
        .decode(&mut buf, &Limits::default())
        .expect_err("bad magic");
    assert!(matches!(err, CodecError::Malformed { .. }), "{err}");
    assert_eq!(buf, before, "errors leave the buffer as it was");
    assert_eq!(codec.decode_error_reply(&buf, &err), None, "not our header");
}
