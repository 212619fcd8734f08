//! Golden wire vectors (`codecs/testdata/vectors`, copied from
//! `shared/protocols/vectors`) and the checks every vector goes through.
//!
//! [`check_framed`] is the one helper all codec tests use: it decodes a
//! vector whole, byte by byte and at every split point, decodes two copies
//! back to back, re-encodes it both from its wire bytes and from its fields,
//! and patches its request id, asserting the documented outcome each time.

use bytes::BytesMut;
use meshgate_codecs::{Detect, Frame, FrameCodec, FrameKind, Limits};
use serde::Deserialize;
use serde_json::Value;
use std::ops::Range;
use std::path::PathBuf;

/// One entry of `index.json` plus its bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// Path relative to the vectors directory.
    pub file: String,
    /// `bolt`, `boltv2`, `dubbo`, `x_example`, `http1`, `http2`.
    pub protocol: String,
    /// `request`, `oneway`, `response`, `heartbeat_request`, ...
    pub kind: String,
    /// The id on the wire, where the protocol has one.
    pub request_id: Option<u64>,
    /// Decoded fields as the index lists them.
    pub expected: Value,
    /// The file's bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl Vector {
    /// A string field of `expected`.
    pub fn expected_str(&self, key: &str) -> Option<&str> {
        self.expected.get(key).and_then(Value::as_str)
    }

    /// A number field of `expected`.
    pub fn expected_u64(&self, key: &str) -> Option<u64> {
        self.expected.get(key).and_then(Value::as_u64)
    }

    /// The frame kind the index names, for kinds that are one frame.
    pub fn frame_kind(&self) -> Option<FrameKind> {
        Some(match self.kind.as_str() {
            "request" => FrameKind::Request,
            "oneway" => FrameKind::Oneway,
            "response" => FrameKind::Response,
            "heartbeat_request" => FrameKind::Heartbeat { reply: false },
            "heartbeat_response" => FrameKind::Heartbeat { reply: true },
            "goaway" | "event" => FrameKind::GoAway,
            _ => return None,
        })
    }
}

#[derive(Deserialize)]
struct Index {
    vectors: Vec<Vector>,
}

/// The vectors directory inside the repository.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../codecs/testdata/vectors")
}

/// Every vector of the index, bytes loaded and size-checked.
pub fn all() -> Vec<Vector> {
    let index_path = dir().join("index.json");
    let text = std::fs::read_to_string(&index_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", index_path.display()));
    let index: Index = serde_json::from_str(&text).expect("index.json parses");
    index
        .vectors
        .into_iter()
        .map(|mut v| {
            v.bytes = read(&v.file);
            v
        })
        .collect()
}

/// The vector for one file (path relative to the vectors directory).
pub fn get(file: &str) -> Vector {
    all()
        .into_iter()
        .find(|v| v.file == file)
        .unwrap_or_else(|| panic!("no vector {file} in index.json"))
}

/// Every vector of `protocols` outside `tricky/`.
pub fn of(protocols: &[&str]) -> Vec<Vector> {
    all()
        .into_iter()
        .filter(|v| protocols.contains(&v.protocol.as_str()) && !v.file.starts_with("tricky/"))
        .collect()
}

/// Every `tricky/` vector of `protocols`.
pub fn tricky(protocols: &[&str]) -> Vec<Vector> {
    all()
        .into_iter()
        .filter(|v| protocols.contains(&v.protocol.as_str()) && v.file.starts_with("tricky/"))
        .collect()
}

/// The raw bytes of a vector file.
pub fn read(file: &str) -> Vec<u8> {
    let path = dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn decode_all(codec: &dyn FrameCodec, bytes: &[u8]) -> (Vec<Frame>, usize) {
    let mut buf = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = codec
        .decode(&mut buf, &Limits::default())
        .unwrap_or_else(|e| panic!("{}: decode failed: {e}", codec.name()))
    {
        frames.push(frame);
    }
    (frames, buf.len())
}

fn encode(codec: &dyn FrameCodec, frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    codec
        .encode(frame, &mut dst)
        .unwrap_or_else(|e| panic!("{}: encode failed: {e}", codec.name()));
    dst.to_vec()
}

/// Where a vector's request id (and checksum) sit, and which checks apply.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Bytes `set_request_id` may change.
    pub id_bytes: Range<usize>,
    /// Checksum bytes `set_request_id` may change (bolt v2 CRC).
    pub crc_bytes: Option<Range<usize>>,
    /// Whether a decoded frame with its wire bytes dropped must re-encode to
    /// the same bytes (true for codecs whose fields cover every header byte).
    pub encode_from_fields: bool,
}

impl Checks {
    /// Id at `id_bytes`, no checksum, every check on.
    pub fn id_at(id_bytes: Range<usize>) -> Checks {
        Checks {
            id_bytes,
            crc_bytes: None,
            encode_from_fields: true,
        }
    }
}

/// Runs every generic check on a single-frame vector and returns the frame
/// for protocol-specific assertions:
///
/// - detection on the vector's bytes is `Match`;
/// - decode whole → one frame, nothing left over; kind and request id as the
///   index says; `body_offset`/`body_len` (when listed) locate `frame.body`;
///   every `header_map` entry is visible through `frame.headers`;
/// - decode fed one byte at a time, and split at every point → `Ok(None)`
///   until the last byte, then the same frame;
/// - two copies back to back → two equal frames;
/// - re-encode from the wire bytes, and (when `checks.encode_from_fields`)
///   from the fields alone → identical bytes;
/// - `set_request_id` → the encoded bytes differ from the original only
///   inside `id_bytes` (and `crc_bytes`, when the frame has a checksum), and
///   decode back to the new id with the same headers and body.
pub fn check_framed(codec: &dyn FrameCodec, v: &Vector, checks: &Checks) -> Frame {
    let Checks {
        id_bytes,
        crc_bytes,
        encode_from_fields,
    } = checks.clone();
    let name = &v.file;
    let bytes = &v.bytes[..];
    assert_eq!(codec.detect(bytes), Detect::Match, "{name}: detect");

    let (frames, left) = decode_all(codec, bytes);
    assert_eq!((frames.len(), left), (1, 0), "{name}: decode whole");
    let frame = frames.into_iter().next().expect("one frame");
    if let Some(kind) = v.frame_kind() {
        assert_eq!(frame.kind, kind, "{name}: kind");
    }
    if let Some(id) = v.request_id {
        assert_eq!(frame.request_id, id, "{name}: request id");
    }
    if let (Some(offset), Some(len)) = (v.expected_u64("body_offset"), v.expected_u64("body_len")) {
        let (offset, len) = (offset as usize, len as usize);
        assert_eq!(frame.body(), &bytes[offset..offset + len], "{name}: body");
    }
    if let Some(map) = v.expected.get("header_map").and_then(Value::as_object) {
        for (key, value) in map {
            assert_eq!(
                frame.headers().get_str(key),
                value.as_str(),
                "{name}: header {key}"
            );
        }
    }
    let wire = frame.wire().expect("decoded frames keep their wire bytes");
    assert_eq!(wire.to_vec(), bytes, "{name}: wire bytes");

    // Byte by byte: incomplete until the very last byte.
    let mut buf = BytesMut::new();
    for (i, byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let got = codec
            .decode(&mut buf, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: byte {i}: {e}"));
        if i + 1 < bytes.len() {
            assert!(
                got.is_none(),
                "{name}: frame complete after only {} bytes",
                i + 1
            );
            assert_eq!(buf.len(), i + 1, "{name}: Ok(None) must not consume");
        } else {
            assert_eq!(got.as_ref(), Some(&frame), "{name}: byte-by-byte frame");
            assert!(buf.is_empty());
        }
    }

    // Every split point.
    for at in 1..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..at]);
        let first = codec
            .decode(&mut buf, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: split {at}: {e}"));
        assert!(first.is_none(), "{name}: split {at}: early frame");
        buf.extend_from_slice(&bytes[at..]);
        let second = codec
            .decode(&mut buf, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: split {at}: {e}"));
        assert_eq!(second.as_ref(), Some(&frame), "{name}: split {at}");
    }

    // Two frames back to back.
    let doubled = [bytes, bytes].concat();
    let (frames, left) = decode_all(codec, &doubled);
    assert_eq!((frames.len(), left), (2, 0), "{name}: two frames");
    assert!(
        frames.iter().all(|f| *f == frame),
        "{name}: both frames equal"
    );

    // Re-encode: from the wire, then from the fields alone.
    assert_eq!(encode(codec, &frame), bytes, "{name}: re-encode from wire");
    if encode_from_fields {
        let mut from_fields = frame.clone();
        from_fields.set_wire(None);
        assert_eq!(
            encode(codec, &from_fields),
            bytes,
            "{name}: re-encode from fields"
        );
    }

    // Patch the id.
    let new_id = (frame.request_id ^ 0x5A5A_5A5A_5A5A_5A5A) & codec.max_request_id();
    let new_id = if new_id == frame.request_id {
        frame.request_id.wrapping_add(1) & codec.max_request_id()
    } else {
        new_id
    };
    let mut patched = frame.clone();
    codec.set_request_id(&mut patched, new_id);
    assert_eq!(patched.request_id, new_id);
    let out = encode(codec, &patched);
    assert_eq!(out.len(), bytes.len(), "{name}: patched length");
    let in_range =
        |i: usize| id_bytes.contains(&i) || crc_bytes.as_ref().is_some_and(|r| r.contains(&i));
    for (i, (a, b)) in bytes.iter().zip(&out).enumerate() {
        assert!(
            a == b || in_range(i),
            "{name}: byte {i} changed by set_request_id"
        );
    }
    assert!(
        id_bytes.clone().any(|i| bytes[i] != out[i]),
        "{name}: id bytes unchanged"
    );
    let (again, _) = decode_all(codec, &out);
    assert_eq!(again.len(), 1, "{name}: patched frame decodes");
    assert_eq!(again[0].request_id, new_id, "{name}: patched id decodes");
    assert_eq!(
        again[0].headers(),
        frame.headers(),
        "{name}: patched headers"
    );
    assert_eq!(again[0].body(), frame.body(), "{name}: patched body");
    frame
}

/// Checks a `tricky/` vector's listed outcome (`frames`, `need_more`,
/// `error`, `no_match`; `completes` is checked with its `need_more` half).
pub fn check_tricky(codec: &dyn FrameCodec, v: &Vector) {
    let name = &v.file;
    let outcome = v.expected["outcome"]
        .as_str()
        .expect("tricky vectors list an outcome");
    match outcome {
        "frames" => {
            let (frames, left) = decode_all(codec, &v.bytes);
            assert_eq!(left, 0, "{name}: leftover bytes");
            let listed = v.expected["frames"].as_array().expect("frames listed");
            assert_eq!(frames.len(), listed.len(), "{name}: frame count");
            for (frame, want) in frames.iter().zip(listed) {
                assert_eq!(
                    Some(frame.request_id),
                    want["request_id"].as_u64(),
                    "{name}: id"
                );
                let kind = Vector {
                    kind: want["kind"].as_str().unwrap_or_default().to_owned(),
                    ..v.clone()
                };
                assert_eq!(Some(frame.kind), kind.frame_kind(), "{name}: kind");
                assert_eq!(
                    frame.wire().map(|w| w.len()),
                    want["length"].as_u64().map(|l| l as usize)
                );
            }
        }
        "need_more" => {
            let mut buf = BytesMut::from(&v.bytes[..]);
            let got = codec
                .decode(&mut buf, &Limits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(got.is_none(), "{name}: expected need_more");
            assert_eq!(buf.len(), v.bytes.len(), "{name}: need_more consumed bytes");
            if let Some(rest) = v.expected.get("after_appending").and_then(Value::as_str) {
                buf.extend_from_slice(&read(rest));
                let frame = codec
                    .decode(&mut buf, &Limits::default())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let want = &v.expected["then"]["frames"][0];
                let frame = frame.unwrap_or_else(|| panic!("{name}: completes with {rest}"));
                assert_eq!(Some(frame.request_id), want["request_id"].as_u64());
                assert!(buf.is_empty());
            }
        }
        "error" => {
            let mut buf = BytesMut::from(&v.bytes[..]);
            let got = codec.decode(&mut buf, &Limits::default());
            assert!(got.is_err(), "{name}: expected an error, got {got:?}");
            assert_eq!(
                buf.len(),
                v.bytes.len(),
                "{name}: an error must not consume"
            );
        }
        "no_match" => assert_eq!(codec.detect(&v.bytes), Detect::NoMatch, "{name}: detect"),
        "completes" => {}
        other => panic!("{name}: unknown outcome {other}"),
    }
}
