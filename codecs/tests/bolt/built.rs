//! Frames the codec builds itself: pongs, pings, error replies.

use super::*;

use super::raw::*;

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
