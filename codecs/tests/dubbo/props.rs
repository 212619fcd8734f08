//! Properties: frames built from arbitrary fields round-trip, header
//! changes survive encode, and no input panics, overflows the stack or
//! makes decode buffer past the limit.

use super::{Body, decode_one, encode, frame_bytes, wire_fields};
use bytes::BytesMut;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::dubbo::hessian::{Reader, read_request_head, write_string};
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits, Status};
use proptest::collection::vec;
use proptest::prelude::*;

const KINDS: [(FrameKind, u8); 6] = [
    (FrameKind::Request, 0xC0),
    (FrameKind::Oneway, 0x80),
    (FrameKind::Heartbeat { reply: false }, 0xE0),
    (FrameKind::GoAway, 0xA0),
    (FrameKind::Heartbeat { reply: true }, 0x20),
    (FrameKind::Response, 0x00),
];

fn neutral(code: u8) -> u16 {
    match code {
        20 => 200,
        30 | 31 => 504,
        35 => 502,
        40 | 90 => 400,
        60 => 404,
        100 => 503,
        _ => 500,
    }
}

/// Any frame with an opaque body: responses, events, and calls in a
/// serialization the codec does not read.
fn opaque_frame() -> impl Strategy<Value = Frame> {
    (
        0..KINDS.len(),
        any::<u64>(),
        1u8..32,
        any::<u8>(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, id, serialization, status, body)| {
            let (kind, bits) = KINDS[kind];
            let calls = bits & 0xA0 == 0x80;
            let serialization = if calls && serialization == 2 {
                3
            } else {
                serialization
            };
            let mut frame = Frame::new(kind, id);
            frame.meta.flags = bits | serialization;
            frame.meta.serialization = serialization;
            frame.set_body(bytes::Bytes::from(body));
            if bits & 0x80 == 0 {
                frame.status = Some(Status {
                    code: u32::from(status),
                    neutral: neutral(status),
                });
            }
            frame
        })
}

#[derive(Debug, Clone)]
struct Call {
    oneway: bool,
    id: u64,
    head: [String; 4],
    args: Vec<Result<String, i32>>,
    attachments: Vec<(String, String)>,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("timeout".to_string()),
        Just("interface".to_string()),
        Just("group".to_string()),
        // Head keys repeated as attachments (dubbo-remoting sends `service`).
        Just("service".to_string()),
        Just("method".to_string()),
        "[a-z.-]{1,8}",
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let text = "\\PC{0,24}";
    let arg = prop_oneof![text.prop_map(Ok), any::<i32>().prop_map(Err)];
    let value = prop_oneof!["[0-9]{1,6}", text];
    (
        any::<bool>(),
        any::<u64>(),
        [text, text, text, text],
        vec(arg, 0..4),
        vec((key(), value), 0..8),
    )
        .prop_map(|(oneway, id, head, args, attachments)| Call {
            oneway,
            id,
            head,
            args,
            attachments,
        })
}

impl Call {
    fn body(&self) -> Body {
        let desc: String = self
            .args
            .iter()
            .map(|a| if a.is_ok() { "Ljava/lang/String;" } else { "I" })
            .collect();
        let [dubbo, service, version, method] = &self.head;
        let mut body = Body::new()
            .s(dubbo)
            .s(service)
            .s(version)
            .s(method)
            .s(&desc);
        for arg in &self.args {
            body = match arg {
                Ok(s) => body.s(s),
                Err(n) => body.raw(b"I").raw(&n.to_be_bytes()),
            };
        }
        let pairs: Vec<(&str, &str)> = self
            .attachments
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        body.attachments(&pairs)
    }

    fn last(&self, key: &str) -> Option<&str> {
        let mut found = self.attachments.iter().filter(|(k, _)| k == key);
        found.next_back().map(|(_, v)| v.as_str())
    }
}

fn feed(bytes: &[u8]) {
    let codec = DubboCodec::new();
    let limits = Limits::new(4096);
    let mut buf = BytesMut::from(bytes);
    let initial = buf.capacity();
    loop {
        let before = buf.len();
        match codec.decode(&mut buf, &limits) {
            Ok(Some(frame)) => {
                let len = frame.wire().map_or(0, |w| w.len());
                assert_eq!(before - buf.len(), len, "consumed exactly one frame");
                let mut from_fields = frame.clone();
                from_fields.set_wire(None);
                let _ = codec.encode(&from_fields, &mut BytesMut::new());
                let _ = codec.heartbeat_reply(&frame);
                let _ = codec.error_reply(&frame, meshgate_codecs::ReplyStatus::Timeout, "");
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumes nothing");
                break;
            }
            Err(err) => {
                assert_eq!(buf.len(), before, "an error consumes nothing");
                let _ = codec.decode_error_reply(&buf, &err);
                break;
            }
        }
    }
    // A partial frame grows the buffer to that frame (at most the limit),
    // or to the smallest read buffer.
    assert!(
        buf.capacity()
            <= initial
                .max(limits.max_frame_len)
                .max(meshgate_codecs::MIN_READ_BUFFER)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn opaque_frames_round_trip(frame in opaque_frame()) {
        let bytes = encode(&frame);
        let back = decode_one(&bytes);
        prop_assert_eq!(back.kind, frame.kind);
        prop_assert_eq!(back.request_id, frame.request_id);
        prop_assert_eq!(&back.body(), &frame.body());
        prop_assert_eq!(&back.meta, &frame.meta);
        prop_assert_eq!(back.status, frame.status);
        prop_assert!(back.headers().is_empty());
        let mut again = back.clone();
        again.set_wire(None);
        prop_assert_eq!(encode(&again), bytes);
    }

    #[test]
    fn hessian_calls_round_trip_and_take_header_changes(
        call in call(),
        new_key in key(),
        new_value in "\\PC{0,12}",
    ) {
        let flag = if call.oneway { 0x82 } else { 0xC2 };
        let bytes = frame_bytes(flag, 0, call.id, call.body().bytes());
        let frame = decode_one(&bytes);
        let kind = if call.oneway { FrameKind::Oneway } else { FrameKind::Request };
        prop_assert_eq!(frame.kind, kind);
        prop_assert_eq!(frame.request_id, call.id);
        let service = call.last("interface").unwrap_or(call.head[1].as_str());
        prop_assert_eq!(frame.service(), Some(service));
        prop_assert_eq!(frame.method(), Some(call.head[3].as_str()));
        prop_assert_eq!(wire_fields(&frame), call.attachments.clone());
        let timeout = call
            .attachments
            .iter()
            .filter(|(k, _)| k == "timeout")
            .filter_map(|(_, v)| v.parse::<u32>().ok().filter(|ms| *ms > 0))
            .next_back();
        prop_assert_eq!(frame.timeout_ms(), timeout);
        let mut from_fields = frame.clone();
        from_fields.set_wire(None);
        prop_assert_eq!(encode(&from_fields), bytes);

        let mut changed = frame.clone();
        changed.headers_mut().insert(&new_key, new_value.as_bytes());
        let back = decode_one(&encode(&changed));
        if new_key == "service" || new_key == "method" {
            // Written as an attachment, which does not shadow the head's
            // routing key.
            prop_assert_eq!(back.headers().get_str(&new_key), frame.headers().get_str(&new_key));
        } else {
            prop_assert_eq!(back.headers().get_str(&new_key), Some(new_value.as_str()));
        }
        let mut want: Vec<_> =
            call.attachments.iter().filter(|(k, _)| *k != new_key).cloned().collect();
        want.push((new_key.clone(), new_value.clone()));
        prop_assert_eq!(wire_fields(&back), want);
        prop_assert_eq!(back.method(), frame.method());
    }

    #[test]
    fn strings_round_trip(s in any::<String>()) {
        let mut out = BytesMut::new();
        write_string(&mut out, &s);
        let mut reader = Reader::new(&out);
        let span = reader.read_string().expect("a string");
        prop_assert_eq!(reader.pos(), out.len());
        let mut bytes = Vec::new();
        span.collect_into(&out, &mut bytes);
        prop_assert_eq!(bytes, s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024)) {
        feed(&bytes);
        let _ = read_request_head(&bytes);
        feed(&[&[0xDA, 0xBB][..], &bytes].concat());
    }

    #[test]
    fn arbitrary_bodies_behind_a_header_never_panic(
        flag in any::<u8>(),
        status in any::<u8>(),
        len in prop_oneof![0u32..5000, any::<u32>()],
        body in vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = frame_bytes(flag, status, 7, &body);
        bytes[12..16].copy_from_slice(&len.to_be_bytes());
        feed(&bytes);
        feed(&frame_bytes(flag, status, 7, &body));
    }

    #[test]
    fn arbitrary_arguments_never_panic(
        args in 0usize..4,
        tail in vec(any::<u8>(), 0..400),
    ) {
        let desc = "Ljava/lang/Object;".repeat(args);
        let body = Body::new().head("a.B", "", "m", &desc).raw(&tail);
        let _ = read_request_head(body.bytes());
        feed(&frame_bytes(0xC2, 0, 1, body.bytes()));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let codec = DubboCodec::new();
    for tag in [0x79, b'W', b'H', 0x60] {
        let body = Body::new()
            .head("a.B", "", "m", "Ljava/lang/Object;")
            .raw(b"C\x01P\x91\x01f") // class P with one field, for 0x60
            .raw(&vec![tag; 100_000]);
        assert!(read_request_head(body.bytes()).is_err(), "{tag:#x}");
        let bytes = frame_bytes(0xC2, 0, 1, body.bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(
            codec
                .decode_checked(&mut buf, &Limits::new(1 << 20))
                .is_err()
        );
    }
}

#[test]
fn frames_built_in_memory_get_the_usual_flags() {
    for (kind, bits) in KINDS {
        let mut frame = Frame::new(kind, 5);
        frame.set_body(bytes::Bytes::from_static(b"N"));
        let bytes = encode(&frame);
        assert_eq!(bytes[2], bits | 2, "{kind:?}");
        let status = if bits & 0x80 == 0 { 20 } else { 0 };
        assert_eq!(bytes[3], status, "{kind:?}");
    }
}
