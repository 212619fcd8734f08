//! Hand-written requests: arguments that exercise the skipper, header
//! changes written back into the attachments, other serializations, and
//! bodies that must fail the decode.

use super::{Body, decode_one, encode, frame_bytes, wire_fields};
use bytes::BytesMut;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::dubbo::hessian::{AttachmentsForm, read_request_head};
use meshgate_codecs::{CodecError, FrameCodec, FrameKind, Limits};
use meshgate_test_support::vectors;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A request whose arguments hold a chunked string, objects with class
/// definitions, typed and untyped lists and maps, type references, a
/// back-reference, binaries, longs, doubles and dates; and whose
/// attachments are a typed map with a chunked value and an int.
fn nested_request() -> Vec<u8> {
    let body = Body::new()
        .s("2.0.2")
        .s("com.example.Svc")
        .raw(b"N") // null version
        .s("call")
        .s("Ljava/lang/String;Lcom/example/Obj;Ljava/util/Map;[I")
        // arg 1: "a€b" in a non-final chunk, then "😀" (two UTF-16 units)
        .raw(b"R\x00\x03a\xE2\x82\xACbS\x00\x02\xF0\x9F\x98\x80")
        // arg 2: class Obj {name, items, meta} and an instance of it
        .raw(b"C\x0Fcom.example.Obj\x93\x04name\x05items\x04meta")
        .raw(b"\x60\x01x")
        .raw(b"V\x07[string\x92\x01p\x01q") // typed fixed list, defines type 0
        .raw(b"H\x01k") // meta: a map whose value is another Obj
        .raw(b"O\x90N\x78M\x90Z") // name null, items [], meta: typed map of type 0
        .raw(b"\x02bi\x23\x01\x02\x03") // binary
        .raw(b"\x02bcA\x00\x01\xFFB\x00\x02\x00\x01") // chunked binary
        .raw(b"\x01dD\x40\x09\x21\xFB\x54\x44\x2D\x18") // double
        .raw(b"\x01tJ\x00\x00\x01\x8B\xCF\xE5\x68\x00") // date
        .raw(b"\x01rQ\x90Z") // back-reference; end of the map and the object
        // arg 3: typed map, defines type 1
        .raw(b"M\x11java.util.HashMap\x01aW\x91\x5BZ\x01bL\x00\x00\x00\x00\x00\x00\x00\x07Z")
        // arg 4: untyped fixed list of three ints
        .raw(b"X\x93\x91\xC8\x01I\x00\x01\x00\x00")
        // attachments: typed map referring to type 1
        .raw(b"M\x91")
        .s("group")
        .s("g9")
        .s("path")
        .raw(b"R\x00\x02coS\x00\x03m.x")
        .s("timeout")
        .s("250")
        .s("interface")
        .s("com.example.Svc2")
        .s("weird")
        .raw(b"\xA0")
        .raw(b"Z");
    frame_bytes(0xC2, 0, 77, body.bytes())
}

#[test]
fn attachments_after_nested_and_chunked_arguments() {
    let bytes = nested_request();
    let frame = decode_one(&bytes);
    assert_eq!(frame.kind, FrameKind::Request);
    assert_eq!(frame.request_id, 77);
    assert_eq!(frame.service(), Some("com.example.Svc2"), "interface wins");
    assert_eq!(frame.method(), Some("call"));
    assert_eq!(frame.headers().get_str("version"), Some(""), "null version");
    assert_eq!(frame.headers().get_str("dubbo"), Some("2.0.2"));
    assert_eq!(frame.timeout_ms(), Some(250));
    let want = [
        ("group", "g9"),
        ("path", "com.x"),
        ("timeout", "250"),
        ("interface", "com.example.Svc2"),
    ];
    assert_eq!(wire_fields(&frame), pairs(&want));

    let head = read_request_head(frame.body()).expect("valid body");
    assert_eq!(head.head.arg_count, 4);
    assert_eq!(head.attachments.form, AttachmentsForm::Map);
    assert_eq!(head.attachments.range.end, frame.body().len());
    assert_eq!(encode(&frame), bytes);

    // A changed header keeps the typed map's opening (a type reference into
    // the arguments) and the int pair, byte for byte.
    let mut changed = frame.clone();
    changed.headers_mut().insert("group", b"g10");
    let out = encode(&changed);
    let again = decode_one(&out);
    assert_eq!(again.headers().get_str("group"), Some("g10"));
    assert_eq!(again.headers().get_str("path"), Some("com.x"));
    assert_eq!(again.service(), Some("com.example.Svc2"));
    assert!(out.windows(7).any(|w| w == b"\x05weird\xA0"));
}

/// sofa-rpc-node's Dubbo client (dubbo-remoting 2.1.4) sends no
/// `interface` attachment but a `service` one holding `Interface:version`,
/// and `dubbo`/`version` again (attachments as captured from it through
/// the gateway). The routing keys stay the head's, so a route on the
/// interface name matches it as it matches every other client; the
/// attachments stay wire fields, forwarded as they came.
#[test]
fn attachments_named_like_head_keys_do_not_shadow_them() {
    let service = "org.apache.dubbo.samples.DemoService";
    let attachments = [
        ("dubbo", "5.3.0"),
        ("group", ""),
        ("path", service),
        ("service", "org.apache.dubbo.samples.DemoService:1.0.0"),
        ("version", "9.9.9"),
        ("method", "other"),
    ];
    let body = Body::new()
        .head(service, "1.0.0", "sayHello", "Ljava/lang/String;")
        .s("world")
        .attachments(&attachments);
    let bytes = frame_bytes(0xC2, 0, 1, body.bytes());
    let frame = decode_one(&bytes);
    assert_eq!(frame.service(), Some(service));
    assert_eq!(frame.method(), Some("sayHello"));
    assert_eq!(frame.headers().get_str("version"), Some("1.0.0"));
    assert_eq!(frame.headers().get_str("dubbo"), Some("2.0.2"));
    assert_eq!(frame.headers().get_str("group"), Some(""));
    assert_eq!(wire_fields(&frame), pairs(&attachments));
    assert_eq!(encode(&frame), bytes);

    // An `interface` attachment still names the service, wherever it is.
    let mut with_interface = attachments.to_vec();
    with_interface.insert(0, ("interface", "com.example.Iface"));
    let body = Body::new()
        .head(service, "1.0.0", "sayHello", "Ljava/lang/String;")
        .s("world")
        .attachments(&with_interface);
    let frame = decode_one(&frame_bytes(0xC2, 0, 2, body.bytes()));
    assert_eq!(frame.service(), Some("com.example.Iface"));
    assert_eq!(frame.method(), Some("sayHello"));

    // A changed header view writes the attachments back unchanged.
    let mut changed = decode_one(&bytes);
    changed.headers_mut().insert("x-new", b"1");
    let again = decode_one(&encode(&changed));
    assert_eq!(again.service(), Some(service));
    let mut want = pairs(&attachments);
    want.push(("x-new".into(), "1".into()));
    assert_eq!(wire_fields(&again), want);
}

#[test]
fn an_inserted_attachment_survives_encode_and_keeps_the_others() {
    let v = vectors::get("dubbo/request_dubbo2js.bin");
    let frame = decode_one(&v.bytes);
    let mut changed = frame.clone();
    changed.headers_mut().insert("x-new", b"fresh");
    assert!(changed.unchanged_wire().is_none());
    let out = encode(&changed);
    assert_ne!(out, v.bytes);
    let again = decode_one(&out);

    assert_eq!(again.headers().get_str("x-new"), Some("fresh"));
    let mut want = wire_fields(&frame);
    want.push(("x-new".into(), "fresh".into()));
    assert_eq!(wire_fields(&again), want);
    assert_eq!(again.timeout_ms(), Some(3000), "the int timeout survives");
    assert!(out.windows(11).any(|w| w == b"\x07timeout\xD4\x0B\xB8"));
    for key in ["service", "method", "version", "group", "dubbo"] {
        assert_eq!(again.headers().get(key), frame.headers().get(key), "{key}");
    }
    // Everything up to the attachments is the original body.
    let at = v.expected_u64("attachments_offset").expect("offset") as usize;
    assert_eq!(out[16..at], v.bytes[16..at]);
    assert_eq!(out[12..16], ((out.len() - 16) as u32).to_be_bytes());
    assert_eq!(again.request_id, frame.request_id);
}

#[test]
fn removing_and_replacing_string_attachments() {
    let v = vectors::get("dubbo/request_dubbo_remoting.bin");
    let mut frame = decode_one(&v.bytes);
    assert!(frame.headers_mut().remove("x-user-tag"));
    frame.headers_mut().insert("timeout", b"500");
    let again = decode_one(&encode(&frame));
    assert_eq!(again.headers().get("x-user-tag"), None);
    assert_eq!(again.timeout_ms(), Some(500));
    assert_eq!(again.headers().get_str("group"), Some("g1"));
}

#[test]
fn null_or_missing_attachments_become_a_map_when_headers_change() {
    for tail in [&b"N"[..], b""] {
        let body = Body::new().head("a.B", "", "m", "I").raw(b"\x91").raw(tail);
        let mut frame = decode_one(&frame_bytes(0x82, 0, 5, body.bytes()));
        assert_eq!(frame.kind, FrameKind::Oneway);
        assert!(wire_fields(&frame).is_empty());
        frame.headers_mut().insert("group", b"g");
        let again = decode_one(&encode(&frame));
        assert_eq!(wire_fields(&again), pairs(&[("group", "g")]));
        assert_eq!(again.service(), Some("a.B"));
    }
}

#[test]
fn a_one_kib_string_argument_is_skipped_without_copying() {
    let arg = "x".repeat(1024);
    let body = Body::new()
        .head("org.example.Echo", "1.0.0", "echo", "Ljava/lang/String;")
        .s(&arg)
        .attachments(&[("group", "g"), ("path", "org.example.Echo")]);
    let bytes = frame_bytes(0xC2, 0, 1, body.bytes());
    let mut buf = BytesMut::from(&bytes[..]);
    let start = buf.as_ptr();
    let frame = DubboCodec::new()
        .decode(&mut buf, &Limits::default())
        .expect("valid")
        .expect("whole");
    assert_eq!(
        frame.body().as_ptr(),
        start.wrapping_add(16),
        "body not copied"
    );
    assert!(!frame.headers().spilled());
    assert_eq!(frame.headers().get_str("group"), Some("g"));
    let group = frame.headers().get("group").expect("group").as_ptr();
    assert!(frame.body().as_ptr_range().contains(&group), "borrowed");
}

#[test]
fn other_serializations_are_forwarded_without_a_header_view() {
    let codec = DubboCodec::new();
    // fastjson (6): the body is not hessian and is not read.
    let bytes = frame_bytes(0xC6, 0, 9, b"{\"not\":\"hessian\"}");
    let frame = decode_one(&bytes);
    assert_eq!(frame.kind, FrameKind::Request);
    assert_eq!(frame.meta.serialization, 6);
    assert!(frame.headers().is_empty());
    assert_eq!(encode(&frame), bytes);
    let mut changed = frame;
    changed.headers_mut().insert("group", b"g");
    let err = codec
        .encode(&changed, &mut BytesMut::new())
        .expect_err("cannot write");
    assert!(matches!(err, CodecError::Unsupported { .. }), "{err}");
}

#[test]
fn malformed_calls_fail_and_leave_the_buffer_for_the_reply() {
    let codec = DubboCodec::new();
    let good_head = Body::new().head("a.B", "", "m", "I");
    let bodies = [
        Body::new().raw(b"\x91"),                             // head is not a string
        Body::new().s("2.0.2").s("a.B").s("").s("m").s("Lx"), // unterminated class
        Body::new().s("2.0.2").s("a.B").s("").s("m").s("I?"), // bad descriptor char
        Body::new().raw(good_head.bytes()),                   // argument missing
        Body::new().raw(good_head.bytes()).raw(b"\x91\x91"),  // attachments not a map
        Body::new().raw(good_head.bytes()).raw(b"\x91H\x01a"), // unterminated map
        Body::new()
            .raw(good_head.bytes())
            .raw(b"\x91H\x01a\x01bZ\x01")
            .raw(b""), // fine
    ];
    for (i, body) in bodies.iter().enumerate() {
        // A ping follows the call: it must stay buffered behind it.
        let bytes = [
            frame_bytes(0xC2, 0, 40 + i as u64, body.bytes()),
            frame_bytes(0xE2, 0, 1, b"N"),
        ]
        .concat();
        // `decode` only frames the call; `decode_checked` reads its head.
        let framed = codec
            .decode(&mut BytesMut::from(&bytes[..]), &Limits::default())
            .expect("framing is fine")
            .expect("whole frame");
        assert_eq!(framed.read_headers().is_err(), i != bodies.len() - 1, "{i}");
        let mut buf = BytesMut::from(&bytes[..]);
        let got = codec.decode_checked(&mut buf, &Limits::default());
        if i == bodies.len() - 1 {
            assert!(got.expect("trailing bytes are tolerated").is_some());
            assert_eq!(buf.len(), 17, "the ping is left");
            continue;
        }
        let err = got.expect_err("malformed");
        assert!(matches!(err, CodecError::Malformed { .. }), "{i}: {err}");
        assert_eq!(&buf[..], &bytes[..], "{i}: untouched");
        let reply = codec.decode_error_reply(&buf, &err).expect("a reply");
        assert_eq!(reply.request_id, 40 + i as u64);
        assert_eq!(reply.status.map(|s| s.code), Some(40));
    }
}

#[test]
fn a_wrong_magic_fails_as_soon_as_it_is_seen() {
    let codec = DubboCodec::new();
    let mut buf = BytesMut::from(&[0xDA, 0x00][..]);
    assert!(codec.decode(&mut buf, &Limits::default()).is_err());
    let mut buf = BytesMut::from(&[0xDA][..]);
    assert!(matches!(
        codec.decode(&mut buf, &Limits::default()),
        Ok(None)
    ));
}

#[test]
fn set_request_id_patches_only_the_id() {
    let codec = DubboCodec::new();
    let bytes = nested_request();
    let mut frame = decode_one(&bytes);
    codec.set_request_id(&mut frame, u64::MAX - 1);
    let out = encode(&frame);
    assert_eq!(out[4..12], (u64::MAX - 1).to_be_bytes());
    assert_eq!(out[..4], bytes[..4]);
    assert_eq!(out[12..], bytes[12..]);
}
