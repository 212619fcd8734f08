#![no_main]
//! The config-driven generic codec over arbitrary byte streams, with both
//! example layouts (x_example: two header lengths chosen by a direction
//! byte; Dubbo's header: one layout, an 8-byte id).

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use meshgate_codecs::generic::{GenericCodec, GenericConfig};
use std::sync::LazyLock;

fn codec(json: &str) -> GenericCodec {
    let config: GenericConfig = serde_json::from_str(json).expect("example config parses");
    GenericCodec::new(config).expect("example config is valid")
}

static X_EXAMPLE: LazyLock<GenericCodec> =
    LazyLock::new(|| codec(include_str!("../../examples/generic/x_example.json")));
static DUBBO_LAYOUT: LazyLock<GenericCodec> =
    LazyLock::new(|| codec(include_str!("../../examples/generic/dubbo.json")));

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let codec: &GenericCodec = if which & 1 == 0 { &X_EXAMPLE } else { &DUBBO_LAYOUT };
    common::decode_stream(codec, rest);
});
