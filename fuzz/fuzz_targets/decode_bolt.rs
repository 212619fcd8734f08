#![no_main]
//! bolt v1/v2 decoding of arbitrary byte streams.

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use meshgate_codecs::bolt::BoltCodec;

fuzz_target!(|data: &[u8]| {
    common::decode_stream(&BoltCodec::v1(), data);
});
