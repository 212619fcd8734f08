//! Config validation: every rejected config names the offending field by
//! its JSON path; plus layouts other than the two examples.

use super::example_config;
use bytes::BytesMut;
use meshgate_codecs::generic::{GenericCodec, GenericConfig, GenericConfigError};
use meshgate_codecs::{CodecError, Detect, Frame, FrameCodec, FrameKind, Limits, PoolMode};
use serde_json::{Value, json};

/// The x_example config as JSON, changed by `edit`, then validated.
fn x_example_with(edit: impl FnOnce(&mut Value)) -> Result<GenericCodec, GenericConfigError> {
    let mut value = serde_json::to_value(example_config("x_example.json")).expect("serializes");
    edit(&mut value);
    let config: GenericConfig = serde_json::from_value(value).expect("still parses");
    GenericCodec::new(config)
}

/// Sets the value at a JSON pointer, creating the last key if absent.
fn set(path: &str, to: Value) -> impl FnOnce(&mut Value) {
    let path = path.to_owned();
    move |v| {
        let (parent, key) = path.rsplit_once('/').expect("a JSON pointer");
        match v
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"))
        {
            Value::Array(items) => items[key.parse::<usize>().expect("an index")] = to,
            parent => parent[key] = to,
        }
    }
}

fn remove(parent: &str, key: &str) -> impl FnOnce(&mut Value) {
    let (parent, key) = (parent.to_owned(), key.to_owned());
    move |v| {
        let object = v.pointer_mut(&parent).and_then(Value::as_object_mut);
        object.expect("an object").remove(&key);
    }
}

type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn bad_configs_name_the_field_and_the_fix() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(set("/name", json!(""))), "name"),
        (Box::new(set("/name", json!("Auto"))), "name"),
        (Box::new(set("/name", json!("a,b"))), "name"),
        (Box::new(set("/magic", json!("7"))), "magic"),
        (Box::new(set("/magic", json!("zz"))), "magic"),
        (Box::new(set("/magic", json!(""))), "magic"),
        (Box::new(set("/magic_offset", json!(11))), "magic"),
        (Box::new(set("/magic_offset", json!(u64::MAX))), "magic"),
        (
            Box::new(|v: &mut Value| {
                remove("", "magic")(v);
            }),
            "magic_offset",
        ),
        (Box::new(remove("", "direction")), "direction"),
        (Box::new(remove("/direction", "offset")), "direction.offset"),
        (
            Box::new(set("/direction/offset", json!(11))),
            "direction.offset",
        ),
        (Box::new(set("/direction/mask", json!(0))), "direction.mask"),
        (
            Box::new(set("/direction/mask", json!("ff"))),
            "direction.mask",
        ),
        (
            Box::new(set("/direction/mask", json!(256))),
            "direction.mask",
        ),
        (
            Box::new(set("/direction/mask", json!("0x02"))),
            "direction.response",
        ),
        (
            Box::new(set("/direction/response", json!("0x100"))),
            "direction.response",
        ),
        (Box::new(remove("", "request")), "request"),
        (
            Box::new(|v: &mut Value| v["layout"] = v["request"].clone()),
            "layout",
        ),
        (
            Box::new(remove("/request", "header_len")),
            "request.header_len",
        ),
        (
            Box::new(set("/request/header_len", json!(0))),
            "request.header_len",
        ),
        (
            Box::new(set("/request/header_len", json!(1u64 << 40))),
            "request.header_len",
        ),
        (
            Box::new(remove("/response", "length_offset")),
            "response.length_offset",
        ),
        (
            Box::new(set("/response/length_offset", json!(10))),
            "response.length_offset",
        ),
        (
            Box::new(set("/response/length_offset", json!(u64::MAX))),
            "response.length_offset",
        ),
        (
            Box::new(set("/request/length_width", json!(3))),
            "request.length_width",
        ),
        (
            Box::new(set("/request/length_adjust", json!(-(1i64 << 40)))),
            "request.length_adjust",
        ),
        (
            Box::new(set("/response/status_width", json!(8))),
            "response.status_width",
        ),
        (
            Box::new(set("/response/success_value", json!(70000))),
            "response.success_value",
        ),
        (
            Box::new(set("/request/status_offset", json!(7))),
            "request.status_offset",
        ),
        (
            Box::new(remove("/response", "status_offset")),
            "response.status_offset",
        ),
        (
            Box::new(remove("/request_id", "offset")),
            "request_id.offset",
        ),
        (
            Box::new(set("/request_id/width", json!(5))),
            "request_id.width",
        ),
        (
            Box::new(set("/request_id/offset", json!(8))),
            "request_id.offset",
        ),
        (
            Box::new(set("/heartbeat/offset", json!(3))),
            "heartbeat.offset",
        ),
        (
            Box::new(set("/heartbeat/value", json!("0x100"))),
            "heartbeat.value",
        ),
        (Box::new(remove("/heartbeat", "value")), "heartbeat.value"),
        (
            Box::new(set("/heartbeat/payload", json!("4"))),
            "heartbeat.payload",
        ),
        (
            Box::new(set("/goaway/payload", json!("4e"))),
            "goaway.payload",
        ),
        // A goaway marker equal to the heartbeat's always wins: no frame can
        // be a heartbeat.
        (Box::new(set("/goaway/value", json!(0))), "heartbeat"),
        (
            Box::new(|v: &mut Value| v["oneway"] = json!({"offset": 11, "value": 3})),
            "oneway.offset",
        ),
        (Box::new(remove("", "error_status")), "error_status"),
        (Box::new(set("/error_status", json!(0))), "error_status"),
        (Box::new(set("/error_status", json!(65536))), "error_status"),
        (
            Box::new(set("/reply_copy/0/len", json!(0))),
            "reply_copy[0].len",
        ),
        (
            Box::new(set("/reply_copy/0/offset", json!(11))),
            "reply_copy[0].offset",
        ),
        (
            Box::new(remove("/reply_copy/0", "offset")),
            "reply_copy[0].offset",
        ),
        (Box::new(set("/max_frame_len", json!(12))), "max_frame_len"),
        (
            Box::new(set("/max_frame_len", json!(1u64 << 31))),
            "max_frame_len",
        ),
    ];
    for (i, (edit, path)) in cases.into_iter().enumerate() {
        let err = x_example_with(edit).expect_err(&format!("case {i} ({path}) must fail"));
        assert_eq!(err.path(), path, "case {i}: {err}");
        let text = err.to_string();
        assert!(text.contains(path), "case {i}: {text}");
        assert!(text.contains(';'), "case {i}: says how to fix it: {text}");
    }
}

#[test]
fn overlapping_fields_say_which_other_field() {
    let err = x_example_with(set("/request_id/offset", json!(6))).expect_err("overlap");
    match &err {
        GenericConfigError::Overlap { path, other, .. } => {
            assert_eq!(
                (path.as_str(), other.as_str()),
                ("request_id.offset", "request.length_offset")
            );
        }
        other => panic!("expected an overlap, got {other}"),
    }
}

#[test]
fn unknown_keys_and_nulls_are_tolerated() {
    let codec = x_example_with(|v| {
        v["comment"] = json!("written by hand");
        v["request"]["x-extra"] = json!(1);
        v["oneway"] = Value::Null;
    });
    assert!(codec.is_ok(), "{codec:?}");
}

/// A protocol unlike the examples: no magic, one shared little-endian
/// layout whose 2-byte length counts the whole frame, no request id.
fn minimal() -> GenericCodec {
    let config: GenericConfig = serde_json::from_value(json!({
        "name": "tiny",
        "direction": {"offset": 0, "mask": "0x01", "response": 1},
        "layout": {"header_len": 3, "length_offset": 1, "length_width": 2,
                   "length_endian": "little", "length_adjust": 0},
    }))
    .expect("parses");
    GenericCodec::new(config).expect("valid")
}

#[test]
fn ping_pong_little_endian_whole_frame_length() {
    let codec = minimal();
    assert_eq!(codec.pool_mode(), PoolMode::PingPong);
    assert_eq!(codec.max_request_id(), 0);
    assert_eq!(codec.detect(b"\x00\x05\x00ab"), Detect::NoMatch);
    assert_eq!(codec.heartbeat_request(1), None);

    let mut buf = BytesMut::from(&b"\x00\x05\x00ab\x01\x03\x00"[..]);
    let frame = codec.decode(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(
        (frame.kind, frame.request_id, frame.body()),
        (FrameKind::Request, 0, &b"ab"[..])
    );
    let reply = codec.decode(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(reply.kind, FrameKind::Response);
    assert_eq!(reply.status, None, "no status field configured");
    assert!(buf.is_empty());

    let mut built = Frame::new(FrameKind::Request, 0);
    built.set_body(bytes::Bytes::from_static(b"xyz"));
    let mut dst = BytesMut::new();
    codec.encode(&built, &mut dst).unwrap();
    assert_eq!(&dst[..], b"\x00\x06\x00xyz");
    // No marker for oneway frames: they cannot be written.
    let oneway = Frame::new(FrameKind::Oneway, 0);
    assert!(matches!(
        codec.encode(&oneway, &mut dst),
        Err(CodecError::Unsupported { .. })
    ));
}

#[test]
fn lengths_shorter_than_the_header_or_negative_are_malformed() {
    let codec = minimal();
    let mut buf = BytesMut::from(&b"\x00\x02\x00"[..]);
    let err = codec
        .decode(&mut buf, &Limits::default())
        .expect_err("short");
    assert!(matches!(err, CodecError::Malformed { .. }), "{err}");
    assert_eq!(buf.len(), 3);

    let mut config = codec.config().clone();
    config.layout.as_mut().unwrap().length_adjust = -10;
    let negative = GenericCodec::new(config).expect("valid");
    let mut buf = BytesMut::from(&b"\x00\x04\x00"[..]);
    let err = negative
        .decode(&mut buf, &Limits::default())
        .expect_err("negative");
    assert!(err.to_string().contains("negative"), "{err}");

    // The decode limit applies on top of the config.
    let mut buf = BytesMut::from(&b"\x00\xff\x00"[..]);
    let err = codec
        .decode(&mut buf, &Limits::new(100))
        .expect_err("limit");
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                len: 255,
                max: 100,
                ..
            }
        ),
        "{err}"
    );
}
