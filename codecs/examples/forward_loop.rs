//! The codec bench's forward path as a plain loop, for instruction counts
//! that do not move with the machine's load:
//!
//! ```sh
//! cargo build --release -p meshgate-codecs --example forward_loop
//! valgrind --tool=callgrind --toggle-collect='*forward_batch*' \
//!     target/release/examples/forward_loop bolt forward 200
//! ```
//!
//! Instructions per frame = the collected total ÷ (rounds × 64). Modes:
//! `forward` (decode → set_request_id → encode), `route` (`decode_checked`
//! and the three routing lookups), `routed` (`decode_checked` → lookups →
//! set_request_id → encode: a request routed on its headers).

#![allow(clippy::print_stdout)] // The frame count is the example's output.

#[path = "../benches/common/frames.rs"]
mod frames;

use bytes::BytesMut;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{FrameCodec, Limits};
use std::hint::black_box;

/// One read buffer through the chosen path; out of line so callgrind can
/// collect exactly this.
#[inline(never)]
fn forward_batch(
    codec: &dyn FrameCodec,
    mode: &str,
    input: &mut BytesMut,
    out: &mut BytesMut,
) -> usize {
    let limits = Limits::default();
    let mut n = 0;
    let decoded = |input: &mut BytesMut| match mode {
        // What the server side decodes requests with: the header section
        // is read at once.
        "route" | "routed" => codec.decode_checked(input, &limits),
        _ => codec.decode(input, &limits),
    };
    while let Ok(Some(mut frame)) = decoded(input) {
        if mode != "forward" {
            n += usize::from(frame.service().is_some());
            n += usize::from(frame.method().is_some());
            n += usize::from(frame.headers().get("group").is_some());
        }
        if mode != "route" {
            codec.set_request_id(&mut frame, 1000 + n as u64);
            let _ = codec.encode(&frame, out);
        }
        black_box(&frame);
        n += 1;
    }
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let protocol = args.next().unwrap_or_else(|| "bolt".into());
    let mode = args.next().unwrap_or_else(|| "forward".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let (codec, frame): (Box<dyn FrameCodec>, Vec<u8>) = match protocol.as_str() {
        "dubbo" => (Box::new(DubboCodec::new()), frames::dubbo_request()),
        _ => (Box::new(BoltCodec::v1()), frames::bolt_request()),
    };
    let source = frames::batch_of(&frame);
    let mut input = BytesMut::with_capacity(source.len());
    let mut out = BytesMut::with_capacity(source.len() * 2);
    let mut total = 0;
    for _ in 0..rounds {
        input.clear();
        input.extend_from_slice(&source);
        out.clear();
        total += forward_batch(codec.as_ref(), &mode, &mut input, &mut out);
    }
    println!(
        "{protocol} {mode}: {rounds} rounds of {} frames ({total})",
        frames::BATCH
    );
}
