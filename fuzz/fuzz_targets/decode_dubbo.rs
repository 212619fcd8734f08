#![no_main]
//! Dubbo decoding (header, hessian2 request head, argument skipping,
//! attachments) of arbitrary byte streams.

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use meshgate_codecs::dubbo::DubboCodec;

fuzz_target!(|data: &[u8]| {
    common::decode_stream(&DubboCodec::new(), data);
});
