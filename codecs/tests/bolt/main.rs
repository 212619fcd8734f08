//! The bolt v1/v2 codec against the golden vectors, the frames it builds
//! itself (pongs, pings, error replies), header rewriting, and properties
//! over arbitrary frames and arbitrary bytes.

use bytes::{Bytes, BytesMut};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::{
    CodecError, Detect, Frame, FrameCodec, FrameKind, Headers, Limits, MIN_READ_BUFFER,
    ReplyStatus, Status, WireMeta,
};
use meshgate_test_support::vectors::{self, Checks, Vector};
use proptest::prelude::*;
use serde_json::Value;

mod built;
mod edges;
mod golden;
mod props;
mod raw;

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
    frame.wire().expect("built frames carry wire").to_vec()
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
