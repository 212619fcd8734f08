//! The golden vectors, tricky ones included, and detection.

use super::*;

#[test]
fn every_vector_decodes_reencodes_and_patches() {
    let all = vectors::of(&["bolt", "boltv2"]);
    assert_eq!(all.len(), 18, "bolt vectors in index.json");
    for v in &all {
        let name = &v.file;
        let codec = codec_for(v);
        let e = &v.expected;
        let v2 = v.bytes[0] == 2;
        let has_crc = e.get("has_crc").and_then(Value::as_bool) == Some(true);
        let len = v.bytes.len();
        let checks = Checks {
            id_bytes: if v2 { 6..10 } else { 5..9 },
            crc_bytes: has_crc.then_some(len - 4..len),
            encode_from_fields: true,
        };
        let frame = vectors::check_framed(&codec, v, &checks);

        assert_eq!(
            u64::from(frame.meta.version),
            e["proto"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            frame.class(),
            e["class_name"].as_str().unwrap().as_bytes(),
            "{name}: class"
        );
        assert_eq!(
            u64::from(frame.meta.serialization),
            e["codec"].as_u64().unwrap(),
            "{name}: codec"
        );
        match v.expected_u64("timeout") {
            Some(t) => assert_eq!(frame.timeout_ms(), Some(t as u32), "{name}: timeout"),
            None => assert_eq!(frame.timeout_ms(), None, "{name}: no timeout"),
        }
        match v.expected_u64("status") {
            Some(s) => assert_eq!(
                frame.status,
                Some(Status {
                    code: s as u32,
                    neutral: neutral(s as u16)
                }),
                "{name}: status"
            ),
            None => assert_eq!(frame.status, None, "{name}: no status"),
        }
        if v2 {
            assert_eq!(
                u64::from(frame.meta.sub_version),
                e["ver1"].as_u64().unwrap(),
                "{name}: ver1"
            );
            assert_eq!(
                u64::from(frame.meta.flags),
                e["switch"].as_u64().unwrap(),
                "{name}: switch"
            );
        }
        let tail = frame.wire().unwrap().tail().len();
        assert_eq!(tail, if has_crc { 4 } else { 0 }, "{name}: crc tail");
        if let Some(service) = v.expected_str("service") {
            assert_eq!(frame.service(), Some(service), "{name}: service");
        }
        // The method is only routable when the header map carries it.
        let method_in_map = e["header_map"].get("sofa_head_method_name").is_some();
        if method_in_map {
            assert_eq!(frame.method(), v.expected_str("method"), "{name}: method");
        } else {
            assert_eq!(frame.method(), None, "{name}: method only in the body");
        }
    }
}

#[test]
fn every_tricky_vector_has_its_outcome() {
    let tricky = vectors::tricky(&["bolt", "boltv2"]);
    assert_eq!(tricky.len(), 7);
    for v in &tricky {
        vectors::check_tricky(&codec_for(v), v);
    }
}

#[test]
fn absurd_content_len_is_rejected_before_buffering_and_answered_with_status_9() {
    let v = vectors::get("tricky/bolt_absurd_content_len.bin");
    let codec = BoltCodec::v1();
    let mut src = BytesMut::from(&v.bytes[..]);
    let capacity = src.capacity();
    let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                len: 4_294_967_407,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(src.capacity(), capacity, "nothing reserved");
    assert_eq!(&src[..], &v.bytes[..], "nothing consumed");

    let reply = codec.decode_error_reply(&src, &err).expect("a reply");
    assert_eq!(reply.kind, FrameKind::Response);
    assert_eq!(reply.request_id, 1);
    assert_eq!(reply.status.map(|s| s.code), Some(9));
    assert_eq!(
        wire_bytes(&reply),
        [1, 0, 0, 2, 1, 0, 0, 0, 1, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(decode_one(&codec, &wire_bytes(&reply)), reply);
}

#[test]
fn unknown_type_is_an_error_with_a_clear_message_and_not_detected() {
    let v = vectors::get("tricky/bolt_unknown_cmd_type.bin");
    let codec = BoltCodec::v1();
    assert_eq!(codec.detect(&v.bytes), Detect::NoMatch);
    // Rejected as soon as the type byte arrives.
    for len in [2, v.bytes.len()] {
        let mut src = BytesMut::from(&v.bytes[..len]);
        let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown cmd type 7 (valid: 0 response, 1 request, 2 oneway)"),
            "{err}"
        );
        assert_eq!(src.len(), len);
    }
    assert_eq!(
        codec.decode_error_reply(&v.bytes, &CodecError::malformed("bolt", "x")),
        None
    );
}

#[test]
fn crc_mismatch_is_a_checksum_error_and_answered_in_v2() {
    let v = vectors::get("tricky/boltv2_crc_mismatch.bin");
    let codec = BoltCodec::v2();
    let mut src = BytesMut::from(&v.bytes[..]);
    let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
    assert!(matches!(err, CodecError::ChecksumMismatch { .. }), "{err}");
    let reply = codec.decode_error_reply(&src, &err).expect("a reply");
    assert_eq!(
        wire_bytes(&reply),
        [
            2, 1, 0, 0, 2, 1, 0, 0, 0, 7, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn either_codec_decodes_both_versions_on_one_stream() {
    let v1 = vectors::read("bolt/v1_request_hessian2.bin");
    let v2 = vectors::read("bolt/v2_request_hessian2_crc.bin");
    let stream = [&v2[..], &v1[..], &v2[..]].concat();
    for codec in [BoltCodec::v1(), BoltCodec::v2()] {
        let mut src = BytesMut::from(&stream[..]);
        let mut versions = Vec::new();
        while let Some(frame) = codec.decode(&mut src, &Limits::default()).unwrap() {
            assert_eq!(frame.service(), Some("com.alipay.test.EchoService:1.0"));
            versions.push(frame.meta.version);
        }
        assert_eq!(versions, [2, 1, 2], "{}", codec.name());
        assert!(src.is_empty());
    }
}

// -------------------------------------------------------------- detection

#[test]
fn detection_decides_on_byte_zero_and_rejects_impossible_fields() {
    let (v1, v2) = (BoltCodec::v1(), BoltCodec::v2());
    assert_eq!(v1.name(), "bolt");
    assert_eq!(v2.name(), "boltv2");
    assert_eq!(v1.detect(b""), Detect::NeedMore);
    assert_eq!(v2.detect(b""), Detect::NeedMore);
    assert_eq!(v1.detect(&[1]), Detect::Match);
    assert_eq!(v2.detect(&[1]), Detect::NoMatch);
    assert_eq!(v2.detect(&[2]), Detect::Match);
    assert_eq!(v1.detect(&[2]), Detect::NoMatch);
    assert_eq!(v1.detect(b"GET / HTTP/1.1"), Detect::NoMatch);
    assert_eq!(v1.detect(&[0xDA, 0xBB]), Detect::NoMatch);
    // v1: type at byte 1, cmd_code at 2..4.
    assert_eq!(v1.detect(&[1, 3]), Detect::NoMatch);
    assert_eq!(v1.detect(&[1, 0, 0]), Detect::Match);
    assert_eq!(v1.detect(&[1, 1, 0, 5]), Detect::NoMatch);
    assert_eq!(v1.detect(&[1, 1, 1, 0]), Detect::NoMatch);
    assert_eq!(v1.detect(&[1, 1, 0, 100]), Detect::Match);
    assert_eq!(v1.detect(&[1, 2, 0, 1, 1]), Detect::Match);
    // v2: ver1 at byte 1 (not checked), type at 2, cmd_code at 3..5.
    assert_eq!(v2.detect(&[2, 9]), Detect::Match);
    assert_eq!(v2.detect(&[2, 1, 3]), Detect::NoMatch);
    assert_eq!(v2.detect(&[2, 2, 0, 0, 2]), Detect::Match);
    assert_eq!(v2.detect(&[2, 2, 0, 0, 3]), Detect::NoMatch);
}
