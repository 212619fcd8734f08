//! Properties: frames built in memory survive encode → decode; hostile bytes
//! never panic, never consume on error and never make decode allocate past
//! the frame limit; hostile configs never panic, and neither does any codec
//! a random config validates into.

use super::{dubbo, x_example};
use bytes::{Bytes, BytesMut};
use meshgate_codecs::generic::{
    ByteValue, CopyConfig, DirectionConfig, Endian, GenericCodec, GenericConfig, LayoutConfig,
    MarkerConfig, RequestIdConfig,
};
use meshgate_codecs::{Frame, FrameCodec, FrameKind, Limits, ReplyStatus, Status};
use proptest::collection::vec;
use proptest::option::of as opt;
use proptest::prelude::*;
use std::sync::LazyLock;

static X_EXAMPLE: LazyLock<GenericCodec> = LazyLock::new(x_example);
static DUBBO: LazyLock<GenericCodec> = LazyLock::new(dubbo);

const PING: FrameKind = FrameKind::Heartbeat { reply: false };
const PONG: FrameKind = FrameKind::Heartbeat { reply: true };
const X_KINDS: &[FrameKind] = &[
    FrameKind::Request,
    FrameKind::Response,
    PING,
    PONG,
    FrameKind::GoAway,
];
const DUBBO_KINDS: &[FrameKind] = &[
    FrameKind::Request,
    FrameKind::Oneway,
    FrameKind::Response,
    PING,
    PONG,
    FrameKind::GoAway,
];

fn encode(codec: &GenericCodec, frame: &Frame) -> Result<BytesMut, TestCaseError> {
    let mut dst = BytesMut::new();
    codec
        .encode(frame, &mut dst)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    Ok(dst)
}

/// Decodes `bytes` to the end under a `limit`-byte frame limit, checking the
/// decode contract at each step; exercises the reply builders on the way.
fn decode_bounded(codec: &GenericCodec, bytes: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let limits = Limits::new(limit);
    let _ = codec.detect(bytes);
    let mut src = BytesMut::from(bytes);
    // Against the buffer's initial capacity, not the capacity before each
    // call: once earlier frames are split off and dropped, decode may
    // reclaim that same allocation in place, which allocates nothing.
    let initial = src.capacity();
    loop {
        let before = src.clone();
        let result = codec.decode(&mut src, &limits);
        prop_assert!(
            src.capacity() <= initial.max(limit).max(meshgate_codecs::MIN_READ_BUFFER),
            "capacity {} > max({initial}, {limit}, the minimum read buffer)",
            src.capacity()
        );
        match result {
            Ok(Some(frame)) => {
                let consumed = before.len() - src.len();
                prop_assert!(consumed <= limit);
                prop_assert_eq!(&encode(codec, &frame)?[..], &before[..consumed]);
                let _ = codec.heartbeat_reply(&frame);
                if let Some(reply) = codec.error_reply(&frame, ReplyStatus::Internal, "") {
                    let mut dst = BytesMut::new();
                    prop_assert!(codec.encode(&reply, &mut dst).is_ok());
                }
            }
            Ok(None) => {
                prop_assert_eq!(&src, &before, "Ok(None) consumed bytes");
                return Ok(());
            }
            Err(err) => {
                prop_assert_eq!(&src, &before, "an error consumed bytes");
                let _ = codec.decode_error_reply(&src, &err);
                return Ok(());
            }
        }
    }
}

/// Random bytes, often behind one of the examples' magics, or real frames
/// of the examples cut anywhere and followed by garbage (random bytes
/// rarely declare a length small enough to be buffered).
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(vec![]),
        Just(vec![0x78]),
        Just(vec![0xDA, 0xBB]),
        // plausible_config()'s magic at offsets 0 and 1.
        Just(vec![0xA5]),
        Just(vec![0x00, 0xA5]),
    ];
    let random = (prefix, vec(any::<u8>(), 0..300)).prop_map(|(mut p, rest)| {
        p.extend(rest);
        p
    });
    let framed = (
        any::<bool>(),
        any::<prop::sample::Index>(),
        any::<u64>(),
        0usize..300,
        any::<prop::sample::Index>(),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(dubbo, kind, id, body_len, cut, garbage)| {
            let (codec, kinds) = if dubbo {
                (&*DUBBO, DUBBO_KINDS)
            } else {
                (&*X_EXAMPLE, X_KINDS)
            };
            let mut frame = Frame::new(*kind.get(kinds), id);
            frame.set_body(Bytes::from(vec![0x5A; body_len]));
            let mut bytes = BytesMut::new();
            codec
                .encode(&frame, &mut bytes)
                .expect("the examples encode every kind they name");
            bytes.extend_from_slice(&garbage);
            let cut = cut.index(bytes.len() + 1);
            bytes[..cut].to_vec()
        });
    prop_oneof![random, framed]
}

proptest! {
    #[test]
    fn built_frames_round_trip(
        dubbo in any::<bool>(),
        kind in any::<prop::sample::Index>(),
        id in any::<u64>(),
        new_id in any::<u64>(),
        status in any::<u32>(),
        body in vec(any::<u8>(), 0..64),
    ) {
        let (codec, kinds, status_max) = if dubbo {
            (&*DUBBO, DUBBO_KINDS, 0xFF)
        } else {
            (&*X_EXAMPLE, X_KINDS, 0xFFFF)
        };
        let kind = *kind.get(kinds);
        let mut frame = Frame::new(kind, id);
        frame.set_body(Bytes::from(body));
        let code = status % (status_max + 1);
        let response_side = matches!(kind, FrameKind::Response | PONG);
        if response_side {
            frame.status = Some(Status { code, neutral: 0 });
        }
        let bytes = encode(codec, &frame)?;
        let mut src = bytes.clone();
        let mut decoded = codec.decode(&mut src, &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .ok_or_else(|| TestCaseError::fail("incomplete"))?;
        prop_assert!(src.is_empty());
        prop_assert_eq!(decoded.kind, kind);
        prop_assert_eq!(decoded.request_id, id & codec.max_request_id());
        prop_assert_eq!(&decoded.body(), &frame.body());
        prop_assert_eq!(decoded.status.map(|s| s.code), response_side.then_some(code));
        prop_assert_eq!(&encode(codec, &decoded)?, &bytes);

        codec.set_request_id(&mut decoded, new_id);
        let mut src = encode(codec, &decoded)?;
        let again = codec.decode(&mut src, &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .ok_or_else(|| TestCaseError::fail("incomplete"))?;
        prop_assert_eq!(again.request_id, new_id & codec.max_request_id());
        prop_assert_eq!(again.kind, kind);
    }

    #[test]
    fn hostile_bytes_never_panic_or_overallocate(
        bytes in hostile_bytes(),
        limit in 11usize..200,
    ) {
        decode_bounded(&X_EXAMPLE, &bytes, limit)?;
        decode_bounded(&DUBBO, &bytes, limit)?;
    }

}

proptest! {
    // About one plausible config in eight validates; run enough cases that
    // dozens of valid codecs meet hostile bytes.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn hostile_configs_never_panic(config in prop_oneof![config(), plausible_config()], bytes in hostile_bytes(), id in any::<u64>()) {
        let Ok(codec) = GenericCodec::new(config) else { return Ok(()) };
        decode_bounded(&codec, &bytes, 64)?;
        decode_bounded(&codec, &bytes, Limits::DEFAULT_MAX_FRAME_LEN)?;
        let _ = codec.heartbeat_request(id);
        for kind in DUBBO_KINDS {
            let mut frame = Frame::new(*kind, id);
            frame.set_body(Bytes::from(bytes.clone()));
            let mut dst = BytesMut::new();
            if codec.encode(&frame, &mut dst).is_ok() {
                let decoded = codec.decode(&mut dst, &Limits::new(Limits::CEILING))
                    .map_err(|e| TestCaseError::fail(format!("{kind:?}: {e}")))?
                    .ok_or_else(|| TestCaseError::fail("incomplete"))?;
                prop_assert_eq!(decoded.kind, *kind);
                prop_assert!(dst.is_empty());
            }
        }
    }
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0u64..20, 1 => any::<u64>()]
}

fn width() -> impl Strategy<Value = u64> {
    prop_oneof![4 => prop::sample::select(vec![1u64, 2, 4, 8]), 1 => any::<u64>()]
}

fn byte_value() -> impl Strategy<Value = ByteValue> {
    prop_oneof![
        4 => (0u64..300).prop_map(ByteValue::Int),
        1 => "(0x)?[0-9a-fA-Fg]{0,3}".prop_map(ByteValue::Hex),
    ]
}

fn endian() -> impl Strategy<Value = Endian> {
    prop_oneof![Just(Endian::Big), Just(Endian::Little)]
}

fn layout() -> BoxedStrategy<LayoutConfig> {
    let adjust = prop_oneof![4 => -20i64..40, 1 => any::<i64>()];
    (
        (opt(number()), opt(number()), opt(width()), endian(), adjust),
        (opt(number()), opt(width()), endian(), opt(number())),
    )
        .prop_map(
            |(
                (header_len, length_offset, length_width, length_endian, length_adjust),
                (status_offset, status_width, status_endian, success_value),
            )| {
                LayoutConfig {
                    header_len: header_len.map(|h| h + 4),
                    length_offset,
                    length_width,
                    length_endian,
                    length_adjust,
                    status_offset,
                    status_width,
                    status_endian,
                    success_value,
                }
            },
        )
        .boxed()
}

fn marker() -> BoxedStrategy<Option<MarkerConfig>> {
    opt((
        opt(number()),
        opt(byte_value()),
        opt(byte_value()),
        opt("[0-9a-f]{0,5}"),
    )
        .prop_map(|(offset, mask, value, payload)| MarkerConfig {
            offset,
            mask,
            value,
            payload,
        }))
    .boxed()
}

/// Random configs: mostly small numbers, so a fair share validate.
fn config() -> BoxedStrategy<GenericConfig> {
    let name = prop_oneof![4 => Just("p".to_owned()), 1 => "[a-zA-Z, ]{0,5}"];
    let direction = (opt(number()), opt(byte_value()), opt(byte_value())).prop_map(
        |(offset, mask, response)| DirectionConfig {
            offset,
            mask,
            response,
        },
    );
    let request_id = (opt(number()), opt(width()), endian()).prop_map(|(offset, width, endian)| {
        RequestIdConfig {
            offset,
            width,
            endian,
        }
    });
    let copy = (opt(number()), opt(0u64..4), opt(byte_value()))
        .prop_map(|(offset, len, mask)| CopyConfig { offset, len, mask });
    let limit = prop_oneof![0u64..100, any::<u64>()];
    (
        (name, opt("[0-9a-f]{0,4}"), opt(number()), opt(direction)).boxed(),
        (opt(layout()), opt(layout()), opt(layout()), opt(request_id)).boxed(),
        (
            marker(),
            marker(),
            marker(),
            opt(limit),
            opt(0u64..300),
            vec(copy, 0..3),
        )
            .boxed(),
    )
        .prop_map(|(a, b, c)| GenericConfig {
            name: a.0,
            magic: a.1,
            magic_offset: a.2,
            direction: a.3,
            layout: b.0,
            request: b.1,
            response: b.2,
            request_id: b.3,
            heartbeat: c.0,
            goaway: c.1,
            oneway: c.2,
            max_frame_len: c.3,
            error_status: c.4,
            reply_copy: c.5,
        })
        .boxed()
}

/// Structurally complete configs with small, mask-consistent values: many
/// validate, so the codecs they make get exercised too.
fn plausible_config() -> BoxedStrategy<GenericConfig> {
    let small_width = || prop::sample::select(vec![1u64, 2, 4, 8]);
    let bits = || {
        (1u8..=255, any::<u8>(), 0u64..6).prop_map(|(mask, value, offset)| {
            (offset, ByteValue::from(mask), ByteValue::from(value & mask))
        })
    };
    let layout = (
        4u64..24,
        0u64..16,
        small_width(),
        endian(),
        -4i64..30,
        opt((0u64..16, 1u64..3)),
    )
        .prop_map(
            |(header_len, length_offset, width, length_endian, adjust, status)| LayoutConfig {
                header_len: Some(header_len),
                // Mostly inside the header: the point is to reach valid configs.
                length_offset: Some(length_offset.min(header_len.saturating_sub(width))),
                length_width: Some(width),
                length_endian,
                length_adjust: adjust,
                status_offset: status.map(|s| s.0),
                status_width: status.map(|s| s.1),
                status_endian: Endian::Big,
                success_value: status.map(|_| 0),
            },
        )
        .boxed();
    let marker = opt(bits().prop_map(|(offset, mask, value)| MarkerConfig {
        offset: Some(offset),
        mask: Some(mask),
        value: Some(value),
        payload: None,
    }))
    .boxed();
    (
        (
            opt(0u64..4),
            bits(),
            layout.clone(),
            opt(layout),
            opt((0u64..16, small_width())),
        ),
        (
            marker.clone(),
            marker.clone(),
            marker,
            opt(0u64..64),
            1u64..3,
        ),
    )
        .prop_map(
            |((magic_offset, direction, request, response, id), (hb, ga, ow, max, err))| {
                let (request, response, layout) = match response {
                    Some(response) => {
                        let request = LayoutConfig {
                            status_offset: None,
                            status_width: None,
                            success_value: None,
                            ..request
                        };
                        (Some(request), Some(response), None)
                    }
                    None => (None, None, Some(request)),
                };
                let has_status = response
                    .as_ref()
                    .or(layout.as_ref())
                    .is_some_and(|l| l.status_offset.is_some());
                GenericConfig {
                    name: "p".into(),
                    magic: magic_offset.map(|_| "a5".into()),
                    magic_offset,
                    direction: Some(DirectionConfig {
                        offset: Some(direction.0),
                        mask: Some(direction.1),
                        response: Some(direction.2),
                    }),
                    layout,
                    request,
                    response,
                    request_id: id.map(|(offset, width)| RequestIdConfig {
                        offset: Some(offset),
                        width: Some(width),
                        endian: Endian::Big,
                    }),
                    heartbeat: hb,
                    goaway: ga,
                    oneway: ow,
                    max_frame_len: max.map(|m| m + 24),
                    error_status: has_status.then_some(err),
                    reply_copy: Vec::new(),
                }
            },
        )
        .boxed()
}
