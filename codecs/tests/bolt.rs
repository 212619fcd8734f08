//! The bolt v1/v2 codec against the golden vectors, the frames it builds
//! itself (pongs, pings, error replies), header rewriting, and properties
//! over arbitrary frames and arbitrary bytes.

use bytes::{BufMut, Bytes, BytesMut};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::{
    CodecError, Detect, Frame, FrameCodec, FrameKind, Headers, Limits, ReplyStatus, Status,
    WireMeta,
};
use meshgate_test_support::vectors::{self, Checks, Vector};
use proptest::prelude::*;
use serde_json::Value;

fn codec_for(v: &Vector) -> BoltCodec {
    match v.protocol.as_str() {
        "bolt" => BoltCodec::v1(),
        "boltv2" => BoltCodec::v2(),
        other => panic!("{}: not a bolt vector ({other})", v.file),
    }
}

fn decode_one(codec: &BoltCodec, bytes: &[u8]) -> Frame {
    let mut src = BytesMut::from(bytes);
    let frame = codec
        .decode(&mut src, &Limits::default())
        .expect("decodes")
        .expect("one whole frame");
    assert!(src.is_empty(), "exactly one frame");
    frame
}

fn encode(codec: &BoltCodec, frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    codec.encode(frame, &mut dst).expect("encodes");
    dst.to_vec()
}

fn wire_bytes(frame: &Frame) -> Vec<u8> {
    frame
        .wire
        .as_ref()
        .expect("built frames carry wire")
        .to_vec()
}

fn wire_fields(headers: &Headers) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .wire_fields()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn neutral(status: u16) -> u16 {
    match status {
        0 => 200,
        4 => 503,
        7 => 504,
        0x10 => 502,
        _ => 500,
    }
}

/// A raw frame, any field value allowed (for malformed inputs).
#[derive(Clone, Debug)]
struct Raw {
    proto: u8,
    ver1: u8,
    cmd_type: u8,
    cmd: u16,
    id: u32,
    codec: u8,
    switch: u8,
    timeout_or_status: i32,
    class: Vec<u8>,
    map: Vec<u8>,
    content: Vec<u8>,
    /// Overrides the declared lengths (class, header, content).
    lens: Option<(u16, u16, u32)>,
}

impl Raw {
    fn request(proto: u8) -> Raw {
        Raw {
            proto,
            ver1: 1,
            cmd_type: 1,
            cmd: 1,
            id: 42,
            codec: 1,
            switch: 0,
            timeout_or_status: 3000,
            class: b"C".to_vec(),
            map: Vec::new(),
            content: b"body".to_vec(),
            lens: None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        let v2 = self.proto == 2;
        b.put_u8(self.proto);
        if v2 {
            b.put_u8(self.ver1);
        }
        b.put_u8(self.cmd_type);
        b.put_u16(self.cmd);
        b.put_u8(1);
        b.put_u32(self.id);
        b.put_u8(self.codec);
        if v2 {
            b.put_u8(self.switch);
        }
        if self.cmd_type == 0 {
            b.put_u16(self.timeout_or_status as u16);
        } else {
            b.put_i32(self.timeout_or_status);
        }
        let (c, h, n) = self.lens.unwrap_or((
            self.class.len() as u16,
            self.map.len() as u16,
            self.content.len() as u32,
        ));
        b.put_u16(c);
        b.put_u16(h);
        b.put_u32(n);
        b.put_slice(&self.class);
        b.put_slice(&self.map);
        b.put_slice(&self.content);
        if v2 && self.ver1 == 2 && self.switch & 1 == 1 {
            let crc = crc32fast::hash(&b);
            b.put_u32(crc);
        }
        b.to_vec()
    }
}

/// One header-map string: i32 length + bytes (`None` = null, -1).
fn map_string(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as i32).to_be_bytes());
            out.extend_from_slice(s);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A non-null header-map string.
fn s(text: &str) -> Option<&[u8]> {
    Some(text.as_bytes())
}

/// A header-map pair; `None` strings are nulls.
type MapPair<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

fn map_of(pairs: &[MapPair<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        map_string(&mut out, *k);
        map_string(&mut out, *v);
    }
    out
}

// ---------------------------------------------------------------- vectors

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
            frame.meta.class,
            e["class_name"].as_str().unwrap().as_bytes(),
            "{name}: class"
        );
        assert_eq!(
            u64::from(frame.meta.serialization),
            e["codec"].as_u64().unwrap(),
            "{name}: codec"
        );
        match v.expected_u64("timeout") {
            Some(t) => assert_eq!(frame.timeout_ms, Some(t as u32), "{name}: timeout"),
            None => assert_eq!(frame.timeout_ms, None, "{name}: no timeout"),
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
        let tail = frame.wire.as_ref().unwrap().tail().len();
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

// -------------------------------------------------------- built frames

#[test]
fn heartbeat_replies_match_the_library_pongs() {
    for (ping, pong, codec) in [
        (
            "bolt/v1_heartbeat_request.bin",
            "bolt/v1_heartbeat_response.bin",
            BoltCodec::v1(),
        ),
        (
            "bolt/v2_heartbeat_request.bin",
            "bolt/v2_heartbeat_response.bin",
            BoltCodec::v2(),
        ),
    ] {
        let ping = decode_one(&codec, &vectors::read(ping));
        // Either codec answers in the ping's version.
        for answering in [BoltCodec::v1(), BoltCodec::v2()] {
            let reply = answering.heartbeat_reply(&ping).expect("a pong");
            assert_eq!(wire_bytes(&reply), vectors::read(pong));
            assert_eq!(reply.kind, FrameKind::Heartbeat { reply: true });
            assert_eq!(decode_one(&codec, &wire_bytes(&reply)), reply);
            assert_eq!(encode(&codec, &reply), vectors::read(pong));
        }
        assert_eq!(
            codec.heartbeat_reply(&codec.heartbeat_reply(&ping).unwrap()),
            None
        );
    }
    let request = decode_one(
        &BoltCodec::v1(),
        &vectors::read("bolt/v1_request_hessian2.bin"),
    );
    assert_eq!(BoltCodec::v1().heartbeat_reply(&request), None);
}

#[test]
fn heartbeat_requests_are_java_style_pings() {
    // Same bytes as sofa-bolt-node's pings except the timeout, which Java
    // sofa-bolt and MOSN send as -1 (bolt.md §6) and sofa-bolt-node as 3000.
    for (codec, file, id, timeout_at) in [
        (BoltCodec::v1(), "bolt/v1_heartbeat_request.bin", 100, 10),
        (BoltCodec::v2(), "bolt/v2_heartbeat_request.bin", 101, 12),
    ] {
        let ping = codec.heartbeat_request(id).expect("a ping");
        let mut want = vectors::read(file);
        want[timeout_at..timeout_at + 4].copy_from_slice(&[0xFF; 4]);
        assert_eq!(wire_bytes(&ping), want, "{}", codec.name());
        assert_eq!(ping.kind, FrameKind::Heartbeat { reply: false });
        assert_eq!(ping.timeout_ms, None);
        assert_eq!(ping.meta.serialization, 1);
        assert_eq!(decode_one(&codec, &want), ping);
    }
}

#[test]
fn error_replies_map_every_status_and_echo_id_and_codec() {
    let table = [
        (ReplyStatus::NoRoute, 6),
        (ReplyStatus::NoHealthyUpstream, 6),
        (ReplyStatus::ConnectFailed, 6),
        (ReplyStatus::Overloaded, 4),
        (ReplyStatus::RateLimited, 3),
        (ReplyStatus::Timeout, 7),
        (ReplyStatus::PermissionDenied, 2),
        (ReplyStatus::UpstreamReset, 0x10),
        (ReplyStatus::CodecError, 9),
        (ReplyStatus::DeserializeError, 0x12),
        (ReplyStatus::Internal, 3),
    ];
    let codec = BoltCodec::v1();
    let v1 = decode_one(&codec, &vectors::read("bolt/v1_request_protobuf.bin"));
    let v2 = decode_one(&codec, &vectors::read("bolt/v2_request_hessian2_crc.bin"));
    for (status, code) in table {
        let reply = codec.error_reply(&v1, status, "ignored").expect("a reply");
        let [hi, lo] = (code as u16).to_be_bytes();
        // v1: 20 bytes, id 3, codec 11 (protobuf) echoed.
        assert_eq!(
            wire_bytes(&reply),
            [
                1, 0, 0, 2, 1, 0, 0, 0, 3, 11, hi, lo, 0, 0, 0, 0, 0, 0, 0, 0
            ],
            "{status:?}"
        );
        assert_eq!(
            reply.status,
            Some(Status {
                code,
                neutral: neutral(code as u16)
            })
        );
        assert_eq!(decode_one(&codec, &wire_bytes(&reply)), reply);
        // v2 (even for a CRC request): 22 bytes, ver1 1, switch 0, no CRC.
        let reply = codec.error_reply(&v2, status, "ignored").expect("a reply");
        assert_eq!(
            wire_bytes(&reply),
            [
                2, 1, 0, 0, 2, 1, 0, 0, 0, 7, 1, 0, hi, lo, 0, 0, 0, 0, 0, 0, 0, 0
            ],
            "{status:?}"
        );
    }
}

#[test]
fn error_replies_only_answer_two_way_requests() {
    let codec = BoltCodec::v2();
    for file in [
        "bolt/v1_request_oneway_hessian2.bin",
        "bolt/v1_response_hessian2_success.bin",
        "bolt/v1_heartbeat_request.bin",
        "bolt/v2_heartbeat_response.bin",
    ] {
        let frame = decode_one(&codec, &vectors::read(file));
        assert_eq!(
            codec.error_reply(&frame, ReplyStatus::Timeout, ""),
            None,
            "{file}"
        );
        assert_eq!(
            codec.decode_error_reply(&vectors::read(file), &CodecError::malformed("bolt", "x")),
            None,
            "{file}"
        );
    }
    let goaway = Raw {
        cmd: 100,
        id: 0,
        class: Vec::new(),
        content: Vec::new(),
        ..Raw::request(1)
    };
    let frame = decode_one(&codec, &goaway.bytes());
    assert_eq!(frame.kind, FrameKind::GoAway);
    assert_eq!(codec.error_reply(&frame, ReplyStatus::Timeout, ""), None);
    // An incomplete fixed header addresses nobody.
    let request = vectors::read("bolt/v1_request_hessian2.bin");
    let err = CodecError::malformed("bolt", "x");
    assert_eq!(codec.decode_error_reply(&request[..21], &err), None);
    assert!(codec.decode_error_reply(&request[..22], &err).is_some());
}

// -------------------------------------------------------- header rewrite

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
        frame.headers.insert("x-mesh-hop", b"gw-1");
        codec.set_request_id(&mut frame, 77);
        let out = encode(&codec, &frame);
        // Decoding verifies the CRC of CRC frames.
        let again = decode_one(&codec, &out);
        assert_eq!(again.headers.get_str("x-mesh-hop"), Some("gw-1"), "{file}");
        let mut want = wire_fields(&decoded.headers);
        want.push((b"x-mesh-hop".to_vec(), b"gw-1".to_vec()));
        assert_eq!(wire_fields(&again.headers), want, "{file}");
        assert_eq!(again.body, decoded.body, "{file}: body");
        assert_eq!(again.request_id, 77, "{file}");
        assert_eq!(again.meta, decoded.meta, "{file}: meta");
        assert_eq!(
            (again.kind, again.status, again.timeout_ms),
            (decoded.kind, decoded.status, decoded.timeout_ms),
            "{file}"
        );
        assert_eq!(
            again.wire.as_ref().unwrap().tail().len(),
            decoded.wire.as_ref().unwrap().tail().len(),
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
    frame.headers.insert("service", b"other.Service:2.0");
    assert!(frame.headers.remove("rpc_trace_context.sofaRpcId"));
    let again = decode_one(&codec, &encode(&codec, &frame));
    assert_eq!(again.service(), Some("other.Service:2.0"));
    assert_eq!(again.headers.get("rpc_trace_context.sofaRpcId"), None);
    assert_eq!(again.method(), Some("echo"));
    // Without `service`, the target-service header is the routing key.
    let mut frame = again;
    frame.headers.remove("service");
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
    let pairs: Vec<_> = frame.headers.iter().collect();
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
    assert_eq!(&frame.body[..], b"body");

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
        let mut src = BytesMut::from(&bytes[..]);
        let err = codec.decode(&mut src, &Limits::default()).unwrap_err();
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
    assert_eq!(decode_one(&codec, &raw.bytes()).timeout_ms, None);
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
    // BytesMut::reserve would double 3000 to 6000, past the 4096 limit.
    let codec = BoltCodec::v1();
    let raw = Raw {
        content: vec![7; 4000 - 23],
        ..Raw::request(1)
    };
    let bytes = raw.bytes();
    assert_eq!(bytes.len(), 4000);
    let mut src = BytesMut::with_capacity(3000);
    src.extend_from_slice(&bytes[..3000]);
    assert!(
        codec
            .decode(&mut src, &Limits::new(4096))
            .unwrap()
            .is_none()
    );
    assert_eq!(src.capacity(), 4000);
    assert_eq!(&src[..], &bytes[..3000]);
    src.extend_from_slice(&bytes[3000..]);
    let frame = codec.decode(&mut src, &Limits::new(4096)).unwrap().unwrap();
    assert_eq!(frame.body.len(), 4000 - 23);
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
    assert_eq!(frame.body.len(), 1024);
    assert!(
        range.contains(&(frame.body.as_ptr() as usize)),
        "body copied"
    );
    assert!(range.contains(&(frame.meta.class.as_ptr() as usize)));
    assert_eq!(frame.headers.len(), 12, "11 wire fields + derived method");
    assert!(!frame.headers.spilled(), "12 entries stay inline");
    for (key, value) in frame.headers.iter() {
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
    class.meta.class = Bytes::from(vec![b'c'; 70_000]);
    let mut headers = Frame::new(FrameKind::Request, 1);
    headers.headers.insert("big", &vec![b'v'; 70_000]);
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
    frame.headers = [("service", "a.B:1.0")].into_iter().collect();
    frame.body = Bytes::from_static(b"payload");
    frame.timeout_ms = Some(u32::MAX);
    for (codec, version) in [(BoltCodec::v1(), 1), (BoltCodec::v2(), 2)] {
        let bytes = encode(&codec, &frame);
        assert_eq!(bytes[0], version);
        let decoded = decode_one(&codec, &bytes);
        assert_eq!(decoded.service(), Some("a.B:1.0"));
        assert_eq!(decoded.timeout_ms, Some(i32::MAX as u32), "clamped");
        assert_eq!(&decoded.body[..], b"payload");
        if version == 2 {
            assert_eq!(decoded.meta.sub_version, 1, "ver1 defaults to 1");
        }
    }
}

// ------------------------------------------------------------ properties

fn neutral_status(kind: FrameKind, status: u16) -> Option<Status> {
    matches!(
        kind,
        FrameKind::Response | FrameKind::Heartbeat { reply: true }
    )
    .then_some(Status {
        code: u32::from(status),
        neutral: neutral(status),
    })
}

fn arb_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        Just(FrameKind::Request),
        Just(FrameKind::Oneway),
        Just(FrameKind::Response),
        Just(FrameKind::Heartbeat { reply: false }),
        Just(FrameKind::Heartbeat { reply: true }),
        Just(FrameKind::GoAway),
    ]
}

prop_compose! {
    fn arb_frame()(
        kind in arb_kind(),
        id in any::<u32>(),
        headers in prop::collection::vec(("[a-z_.]{0,12}", prop::collection::vec(any::<u8>(), 0..24)), 0..8),
        body in prop::collection::vec(any::<u8>(), 0..300),
        version in 1u8..=2,
        ver1 in 1u8..=2,
        switch in any::<u8>(),
        codec in any::<u8>(),
        timeout in prop::option::of(0..=i32::MAX as u32),
        status in any::<u16>(),
        class in prop::collection::vec(any::<u8>(), 0..60),
    ) -> Frame {
        let v2 = version == 2;
        let response_side = matches!(kind, FrameKind::Response | FrameKind::Heartbeat { reply: true });
        Frame {
            kind,
            request_id: u64::from(id),
            headers: headers.into_iter().collect(),
            body: body.into(),
            trailers: None,
            status: neutral_status(kind, status),
            timeout_ms: if response_side { None } else { timeout },
            meta: WireMeta {
                version,
                serialization: codec,
                flags: if v2 { switch } else { 0 },
                sub_version: if v2 { ver1 } else { 0 },
                class: class.into(),
            },
            wire: None,
        }
    }
}

fn raw_header() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=2,
        any::<u8>(),
        // Mostly valid (type, cmd_code) pairs, so decoding gets past them.
        prop_oneof![
            4 => prop::sample::select(vec![(1u8, 1u16), (2, 1), (0, 2), (1, 0), (0, 0), (1, 100)]),
            1 => (0u8..=2, prop_oneof![Just(0u16), Just(1), Just(2), Just(100)]),
        ],
        any::<u8>(),
        prop_oneof![4 => 0u16..64, 1 => any::<u16>()],
        prop_oneof![4 => 0u16..64, 1 => any::<u16>()],
        // Small frames, frames near the 4096 limit, and absurd ones.
        prop_oneof![0u32..512, 2000u32..4200, any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(proto, ver1, (cmd_type, cmd), switch, c, h, n, tail)| {
            let fixed = if proto == 2 { 22 } else { 20 } + if cmd_type == 0 { 0 } else { 2 };
            let mut bytes = Raw {
                proto,
                ver1,
                cmd_type,
                cmd,
                switch,
                class: Vec::new(),
                map: Vec::new(),
                content: Vec::new(),
                lens: Some((c, h, n)),
                ..Raw::request(proto)
            }
            .bytes();
            // Raw may append a CRC; keep the fixed header only.
            bytes.truncate(fixed);
            bytes.extend_from_slice(&tail);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn encoded_frames_decode_to_their_fields(frame in arb_frame()) {
        let codec = BoltCodec::v1();
        let bytes = encode(&codec, &frame);
        let decoded = decode_one(&codec, &bytes);
        prop_assert_eq!(decoded.kind, frame.kind);
        prop_assert_eq!(decoded.request_id, frame.request_id);
        prop_assert_eq!(wire_fields(&decoded.headers), wire_fields(&frame.headers));
        prop_assert_eq!(&decoded.body, &frame.body);
        prop_assert_eq!(&decoded.meta, &frame.meta);
        prop_assert_eq!(decoded.status, frame.status);
        prop_assert_eq!(decoded.timeout_ms, frame.timeout_ms);
        let crc = frame.meta.version == 2 && frame.meta.sub_version == 2 && frame.meta.flags & 1 == 1;
        prop_assert_eq!(decoded.wire.as_ref().unwrap().tail().len(), if crc { 4 } else { 0 });
        // From fields again, and with the id patched in place.
        let mut again = decoded.clone();
        again.wire = None;
        prop_assert_eq!(encode(&codec, &again), bytes.clone());
        let mut patched = decoded;
        codec.set_request_id(&mut patched, u64::from(!(frame.request_id as u32)));
        let patched_bytes = encode(&codec, &patched);
        prop_assert_eq!(decode_one(&codec, &patched_bytes), patched);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_overreserve(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..200), raw_header()],
        extra_capacity in prop_oneof![Just(0usize), 0usize..5000, 2000usize..4000],
    ) {
        let limits = Limits::new(4096);
        let codec = BoltCodec::v2();
        let _ = codec.detect(&bytes);
        let mut src = BytesMut::with_capacity(bytes.len() + extra_capacity);
        src.extend_from_slice(&bytes);
        let bound = src.capacity().max(limits.max_frame_len + 24);
        loop {
            let before = src.clone();
            match codec.decode(&mut src, &limits) {
                Ok(Some(frame)) => {
                    let len = before.len() - src.len();
                    prop_assert!(len > 0);
                    prop_assert_eq!(encode(&codec, &frame), before[..len].to_vec());
                }
                Ok(None) => {
                    prop_assert_eq!(&src[..], &before[..]);
                    prop_assert!(src.capacity() <= bound, "{} > {bound}", src.capacity());
                    break;
                }
                Err(err) => {
                    prop_assert_eq!(&src[..], &before[..]);
                    prop_assert!(src.capacity() <= bound);
                    let _ = codec.decode_error_reply(&src, &err);
                    break;
                }
            }
        }
    }
}
