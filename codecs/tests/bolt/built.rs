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
        assert_eq!(ping.timeout_ms(), None);
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
        // A protobuf request: no hessian exception, whatever the message.
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
        // v2 (even for a CRC request): 22 bytes, ver1 1, switch 0, no CRC;
        // no message, no content.
        let reply = codec.error_reply(&v2, status, "").expect("a reply");
        assert_eq!(
            wire_bytes(&reply),
            [
                2, 1, 0, 0, 2, 1, 0, 0, 0, 7, 1, 0, hi, lo, 0, 0, 0, 0, 0, 0, 0, 0
            ],
            "{status:?}"
        );
    }
}

/// With a message, the reply carries it as sofa-bolt-node does: the two
/// gateway-style vectors are the reply's bytes, except the class field,
/// where meshgate writes the exception's class as Java sofa-bolt does and
/// sofa-bolt-node writes `SofaResponse` (which it ignores when reading an
/// error).
#[test]
fn error_replies_with_a_message_carry_an_rpc_server_exception() {
    const EXCEPTION: &[u8] = b"com.alipay.remoting.rpc.exception.RpcServerException";
    const RESPONSE: &[u8] = b"com.alipay.sofa.rpc.core.response.SofaResponse";
    let codec = BoltCodec::v1();
    for (file, id, status, msg) in [
        (
            "bolt/v1_response_status_6_no_processor.bin",
            5,
            ReplyStatus::NoRoute,
            "RpcServerException: no provider for com.alipay.test.EchoService:1.0",
        ),
        (
            "bolt/v1_response_status_4_server_threadpool_busy.bin",
            6,
            ReplyStatus::Overloaded,
            "RpcServerException: server thread pool busy",
        ),
    ] {
        let vector = vectors::read(file);
        let fixed = 20;
        assert_eq!(&vector[fixed..fixed + RESPONSE.len()], RESPONSE, "{file}");
        let content = &vector[fixed + RESPONSE.len()..];
        let mut want = vector[..fixed].to_vec();
        want[12..14].copy_from_slice(&(EXCEPTION.len() as u16).to_be_bytes());
        want.extend_from_slice(EXCEPTION);
        want.extend_from_slice(content);

        let mut req = decode_one(&codec, &vectors::read("bolt/v1_request_hessian2.bin"));
        codec.set_request_id(&mut req, id);
        let reply = codec.error_reply(&req, status, msg).expect("a reply");
        assert_eq!(wire_bytes(&reply), want, "{file}");
        assert_eq!(encode(&codec, &reply), want, "{file}");
        assert_eq!(decode_one(&codec, &want), reply, "{file}");
        assert_eq!(reply.class(), EXCEPTION);
        assert_eq!(reply.body(), content);
    }
}

/// The message as the gateway sends it, in a v2 reply to a v2 request
/// with CRC (the reply has none), and a long one cut at 64 KiB.
#[test]
fn error_reply_messages_in_v2_and_long_ones() {
    let codec = BoltCodec::v2();
    let v2 = decode_one(&codec, &vectors::read("bolt/v2_request_hessian2_crc.bin"));
    let reply = codec
        .error_reply(&v2, ReplyStatus::NoRoute, "404|router unavailable")
        .expect("a reply");
    let bytes = wire_bytes(&reply);
    assert_eq!(&bytes[..14], [2, 1, 0, 0, 2, 1, 0, 0, 0, 7, 1, 0, 0, 6]);
    assert_eq!(decode_one(&codec, &bytes), reply);
    assert!(
        reply
            .body()
            .windows(23)
            .any(|w| w == b"\x16404|router unavailable")
    );
    let content_len = u32::from_be_bytes([bytes[18], bytes[19], bytes[20], bytes[21]]);
    assert_eq!(content_len as usize, reply.body().len());
    assert_eq!(bytes.len(), 22 + reply.class().len() + reply.body().len());

    let long = "é".repeat(40_000);
    let reply = codec
        .error_reply(&v2, ReplyStatus::Internal, &long)
        .expect("a reply");
    // 32,768 characters of 2 bytes: `S` + 0x8000, then the rest.
    let at = reply
        .body()
        .windows(3)
        .position(|w| w == [b'S', 0x80, 0x00])
        .expect("the message's head");
    assert_eq!(&reply.body()[at + 3..at + 5], "é".as_bytes());
    assert!(reply.body().len() < 64 * 1024 + 300);
    assert_eq!(decode_one(&codec, &wire_bytes(&reply)), reply);
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
