//! Properties over arbitrary frames and arbitrary bytes.

use super::*;

use super::raw::*;

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
        let mut frame = Frame::new(kind, u64::from(id));
        frame.set_headers(headers.into_iter().collect());
        frame.set_body(bytes::Bytes::from(body));
        frame.status = neutral_status(kind, status);
        frame.set_timeout_ms(if response_side { None } else { timeout });
        frame.meta = WireMeta {
            version,
            serialization: codec,
            flags: if v2 { switch } else { 0 },
            sub_version: if v2 { ver1 } else { 0 },
        };
        frame.set_class(bytes::Bytes::from(class));
        frame
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
        prop_assert_eq!(wire_fields(decoded.headers()), wire_fields(frame.headers()));
        prop_assert_eq!(&decoded.body(), &frame.body());
        prop_assert_eq!(&decoded.meta, &frame.meta);
        prop_assert_eq!(decoded.status, frame.status);
        prop_assert_eq!(decoded.timeout_ms(), frame.timeout_ms());
        let crc = frame.meta.version == 2 && frame.meta.sub_version == 2 && frame.meta.flags & 1 == 1;
        prop_assert_eq!(decoded.wire().unwrap().tail().len(), if crc { 4 } else { 0 });
        // From fields again, and with the id patched in place.
        let mut again = decoded.clone();
        again.set_wire(None);
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
        // One frame at most, or the minimum read buffer.
        let bound = src.capacity().max(limits.max_frame_len + 24).max(MIN_READ_BUFFER);
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
