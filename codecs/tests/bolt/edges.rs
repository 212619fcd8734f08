//! Header rewriting, decode edge cases and encode errors.

use super::*;

use super::raw::*;

#[test]
fn inserted_headers_survive_encode_and_decode() {
    let codec = BoltCodec::v1();
    for file in [
        "bolt/v1_request_hessian2.bin",
        "bolt/v1_request_hessian2_java_style_header.bin",
        "bolt/v2_request_hessian2.bin",
        "bolt/v2_request_hessian2_crc.bin",
        "bolt/v2_response_hessian2_success_crc.bin",
        "bolt/v1_response_protobuf_success.bin",
    ] {
        let original = vectors::read(file);
        let decoded = decode_one(&codec, &original);
        let mut frame = decoded.clone();
        frame.headers_mut().insert("x-mesh-hop", b"gw-1");
        codec.set_request_id(&mut frame, 77);
        let out = encode(&codec, &frame);
        // Decoding verifies the CRC of CRC frames.
        let again = decode_one(&codec, &out);
        assert_eq!(
            again.headers().get_str("x-mesh-hop"),
            Some("gw-1"),
            "{file}"
        );
        let mut want = wire_fields(decoded.headers());
        want.push((b"x-mesh-hop".to_vec(), b"gw-1".to_vec()));
        assert_eq!(wire_fields(again.headers()), want, "{file}");
        assert_eq!(again.body(), decoded.body(), "{file}: body");
        assert_eq!(again.request_id, 77, "{file}");
        assert_eq!(again.meta, decoded.meta, "{file}: meta");
        assert_eq!(
            (again.kind, again.status, again.timeout_ms()),
            (decoded.kind, decoded.status, decoded.timeout_ms()),
            "{file}"
        );
        assert_eq!(
            again.wire().unwrap().tail().len(),
            decoded.wire().unwrap().tail().len(),
            "{file}: CRC kept"
        );
        assert_eq!(out.len(), original.len() + 8 + 10 + 4, "{file}");
    }
}

#[test]
fn replacing_and_removing_headers() {
    let codec = BoltCodec::v1();
    let original = vectors::read("bolt/v1_request_hessian2_java_style_header.bin");
    let mut frame = decode_one(&codec, &original);
    frame.headers_mut().insert("service", b"other.Service:2.0");
    assert!(frame.headers_mut().remove("rpc_trace_context.sofaRpcId"));
    let again = decode_one(&codec, &encode(&codec, &frame));
    assert_eq!(again.service(), Some("other.Service:2.0"));
    assert_eq!(again.headers().get("rpc_trace_context.sofaRpcId"), None);
    assert_eq!(again.method(), Some("echo"));
    // Without `service`, the target-service header is the routing key.
    let mut frame = again;
    frame.headers_mut().remove("service");
    let again = decode_one(&codec, &encode(&codec, &frame));
    assert_eq!(again.service(), Some("com.alipay.test.EchoService:1.0"));
}

// ---------------------------------------------------- decode edge cases

#[test]
fn header_map_nulls_are_skipped_and_bad_lengths_rejected() {
    let codec = BoltCodec::v1();
    let map = map_of(&[
        (s("service"), s("a.B:1")),
        (None, s("x")),
        (s("k"), None),
        (s(""), s("")),
        (s("sofa_head_method_name"), s("m1")),
        (s("sofa_head_method_name"), s("m2")),
    ]);
    let raw = Raw {
        map,
        ..Raw::request(1)
    };
    let frame = decode_one(&codec, &raw.bytes());
    let pairs: Vec<_> = frame.headers().iter().collect();
    assert_eq!(
        pairs,
        [
            (&b"service"[..], &b"a.B:1"[..]),
            (b"", b""),
            (b"sofa_head_method_name", b"m1"),
            (b"sofa_head_method_name", b"m2"),
            (b"method", b"m2"),
        ]
    );
    assert_eq!(frame.method(), Some("m2"), "last wins");
    assert_eq!(frame.body(), b"body");

    let bad_maps: [(&str, Vec<u8>); 4] = [
        ("negative length", {
            let mut m = map_of(&[(s("k"), s("v"))]);
            m[5..9].copy_from_slice(&(-2i32).to_be_bytes());
            m
        }),
        ("length past header_len", {
            let mut m = map_of(&[(s("k"), s("v"))]);
            m[5..9].copy_from_slice(&2i32.to_be_bytes());
            m
        }),
        (
            "key without value",
            map_of(&[(s("k"), s("v"))])[..5].to_vec(),
        ),
        ("truncated length", vec![0, 0, 0]),
    ];
    for (what, map) in bad_maps {
        let bytes = Raw {
            map,
            ..Raw::request(1)
        }
        .bytes();
        // `decode` only frames it: the map is read on first use.
        let framed = codec
            .decode(&mut BytesMut::from(&bytes[..]), &Limits::default())
            .expect("framing is fine")
            .expect("whole frame");
        assert!(framed.read_headers().is_err(), "{what}");
        assert!(
            framed.headers().is_empty(),
            "{what}: an unreadable map reads empty"
        );
        // `decode_checked` (the server side) reads a request's map at once.
        let mut src = BytesMut::from(&bytes[..]);
        let err = codec
            .decode_checked(&mut src, &Limits::default())
            .unwrap_err();
        assert!(matches!(err, CodecError::Malformed { .. }), "{what}: {err}");
        assert_eq!(&src[..], &bytes[..], "{what}: nothing consumed");
        let reply = codec.decode_error_reply(&src, &err).expect("answerable");
        assert_eq!(reply.status.map(|s| s.code), Some(9));
        assert_eq!(reply.request_id, 42);
    }
}

#[test]
fn impossible_type_and_command_pairs_are_malformed() {
    let codec = BoltCodec::v1();
    for (cmd_type, cmd) in [(1, 2), (0, 1), (2, 0), (2, 2), (0, 100), (2, 100), (1, 3)] {
        let bytes = Raw {
            cmd_type,
            cmd,
            ..Raw::request(2)
        }
        .bytes();
        let mut src = BytesMut::from(&bytes[..]);
        let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
        assert!(matches!(err, CodecError::Malformed { .. }), "{err}");
        assert_eq!(src.len(), bytes.len());
    }
    let mut src = BytesMut::from(&[0x03, 1, 0, 1][..]);
    let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("unknown protocol code 0x03"),
        "{err}"
    );
}

#[test]
fn negative_timeouts_mean_none_and_frames_at_the_limit_pass() {
    let codec = BoltCodec::v1();
    let raw = Raw {
        timeout_or_status: -1,
        ..Raw::request(1)
    };
    assert_eq!(decode_one(&codec, &raw.bytes()).timeout_ms(), None);
    let bytes = Raw::request(2).bytes();
    let exact = Limits::new(bytes.len());
    let mut src = BytesMut::from(&bytes[..]);
    assert!(codec.decode(&mut src, &exact).unwrap().is_some());
    let mut src = BytesMut::from(&bytes[..]);
    let err = codec.decode(&mut src, &Limits::new(bytes.len() - 1));
    assert!(matches!(err, Err(CodecError::FrameTooLarge { .. })));
}

#[test]
fn incomplete_frames_reserve_exactly_one_frame() {
    // BytesMut::reserve would double 12000 to 24000, past the 20480 limit.
    let codec = BoltCodec::v1();
    let limits = Limits::new(20_480);
    let raw = Raw {
        content: vec![7; 20_000 - 23],
        ..Raw::request(1)
    };
    let bytes = raw.bytes();
    assert_eq!(bytes.len(), 20_000);
    let mut src = BytesMut::with_capacity(12_000);
    src.extend_from_slice(&bytes[..12_000]);
    assert!(codec.decode(&mut src, &limits).unwrap().is_none());
    assert_eq!(src.capacity(), 20_000);
    assert_eq!(&src[..], &bytes[..12_000]);
    src.extend_from_slice(&bytes[12_000..]);
    let frame = codec.decode(&mut src, &limits).unwrap().unwrap();
    assert_eq!(frame.body().len(), 20_000 - 23);
}

#[test]
fn a_small_incomplete_frame_leaves_a_full_read_buffer() {
    // Cut to one small frame's size, the buffer would carry one frame
    // per read from then on.
    let codec = BoltCodec::v1();
    let bytes = Raw::request(1).bytes();
    let mut src = BytesMut::with_capacity(8);
    src.extend_from_slice(&bytes[..bytes.len() - 1]);
    assert!(
        codec
            .decode(&mut src, &Limits::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(src.capacity(), MIN_READ_BUFFER);
    assert_eq!(&src[..], &bytes[..bytes.len() - 1]);
}

#[test]
fn decode_borrows_body_and_headers_from_the_read_buffer() {
    let codec = BoltCodec::v1();
    let mut map = Vec::new();
    for i in 0..10 {
        map_string(&mut map, Some(format!("key-{i}").as_bytes()));
        map_string(&mut map, Some(format!("value-{i}").as_bytes()));
    }
    map_string(&mut map, Some(b"sofa_head_method_name"));
    map_string(&mut map, Some(b"echo"));
    let raw = Raw {
        map,
        content: vec![0xAB; 1024],
        ..Raw::request(1)
    };
    let mut src = BytesMut::from(&raw.bytes()[..]);
    let range = src.as_ptr() as usize..src.as_ptr() as usize + src.len();
    let frame = codec.decode(&mut src, &Limits::default()).unwrap().unwrap();
    assert_eq!(frame.body().len(), 1024);
    assert!(
        range.contains(&(frame.body().as_ptr() as usize)),
        "body copied"
    );
    assert!(range.contains(&(frame.class().as_ptr() as usize)));
    assert_eq!(frame.headers().len(), 12, "11 wire fields + derived method");
    assert!(!frame.headers().spilled(), "12 entries stay inline");
    for (key, value) in frame.headers().iter() {
        assert!(range.contains(&(value.as_ptr() as usize)), "value copied");
        if key != b"method" {
            assert!(range.contains(&(key.as_ptr() as usize)), "key copied");
        }
    }
    assert_eq!(frame.method(), Some("echo"));
}

// -------------------------------------------------------- encode errors

#[test]
fn encode_rejects_unrepresentable_frames_and_writes_nothing() {
    let codec = BoltCodec::v1();
    let mut class = Frame::new(FrameKind::Request, 1);
    class.set_class(Bytes::from(vec![b'c'; 70_000]));
    let mut headers = Frame::new(FrameKind::Request, 1);
    headers.headers_mut().insert("big", &vec![b'v'; 70_000]);
    let mut version = Frame::new(FrameKind::Request, 1);
    version.meta.version = 3;
    let mut status = Frame::new(FrameKind::Response, 1);
    status.status = Some(Status {
        code: 70_000,
        neutral: 500,
    });
    for frame in [class, headers, version, status] {
        let mut dst = BytesMut::from(&b"prefix"[..]);
        assert!(codec.encode(&frame, &mut dst).is_err(), "{frame:?}");
        assert_eq!(&dst[..], b"prefix");
    }
}

#[test]
fn frames_built_in_memory_default_to_the_codecs_version() {
    let mut frame = Frame::new(FrameKind::Request, 9);
    frame.set_headers([("service", "a.B:1.0")].into_iter().collect());
    frame.set_body(Bytes::from_static(b"payload"));
    frame.set_timeout_ms(Some(u32::MAX));
    for (codec, version) in [(BoltCodec::v1(), 1), (BoltCodec::v2(), 2)] {
        let bytes = encode(&codec, &frame);
        assert_eq!(bytes[0], version);
        let decoded = decode_one(&codec, &bytes);
        assert_eq!(decoded.service(), Some("a.B:1.0"));
        assert_eq!(decoded.timeout_ms(), Some(i32::MAX as u32), "clamped");
        assert_eq!(decoded.body(), b"payload");
        if version == 2 {
            assert_eq!(decoded.meta.sub_version, 1, "ver1 defaults to 1");
        }
    }
}
