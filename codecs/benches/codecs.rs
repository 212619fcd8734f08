//! Codec benches: decode + header access, and the forward path (decode →
//! patch the request id → hand the wire bytes to the writer), each next to
//! a `memcpy` of the same bytes measured in the same run as the floor.
//!
//! Before the timed runs, an allocation-counting global allocator reports
//! heap allocations per forwarded frame (the first split of a read buffer
//! promotes it to a shared buffer once; nothing else should allocate).
//!
//! Run: `cargo bench -p meshgate-codecs --bench codecs`

#![allow(clippy::print_stdout)] // The allocation report goes to stdout next to criterion's.

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{Frame, FrameCodec, Limits};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "common/frames.rs"]
mod frames;
use frames::{BATCH, batch_of, bolt_request, dubbo_request};

/// Decodes every frame of `input`, gives each a new id and writes it to
/// `out`: what a proxy does per frame on the framed fast path when nothing
/// reads the frame's headers (every response; a request on a route that
/// matches on nothing but the listener). The header section stays unread.
fn forward(codec: &dyn FrameCodec, input: &mut BytesMut, out: &mut BytesMut) -> usize {
    let limits = Limits::default();
    let mut n = 0;
    while let Ok(Some(mut frame)) = codec.decode(input, &limits) {
        codec.set_request_id(&mut frame, 1000 + n as u64);
        let _ = codec.encode(&frame, out);
        n += 1;
    }
    n
}

/// The three routing lookups (`service`, `method`, `group`) a router makes.
fn route(frame: &Frame) -> usize {
    usize::from(frame.service().is_some())
        + usize::from(frame.method().is_some())
        + usize::from(frame.headers().get("group").is_some())
}

/// What the proxy does per request routed on its headers: the server
/// side's decode (which reads a request's header section), the routing
/// lookups, the id patch and the write.
fn forward_routed(codec: &dyn FrameCodec, input: &mut BytesMut, out: &mut BytesMut) -> usize {
    let limits = Limits::default();
    let mut n = 0;
    while let Ok(Some(mut frame)) = codec.decode_checked(input, &limits) {
        n += route(&frame);
        codec.set_request_id(&mut frame, 1000 + n as u64);
        let _ = codec.encode(&frame, out);
    }
    n
}

/// Decodes every frame as the server side does and reads the routing keys
/// a router would.
fn decode_and_route(codec: &dyn FrameCodec, input: &mut BytesMut) -> usize {
    let limits = Limits::default();
    let mut hits = 0;
    while let Ok(Some(frame)) = codec.decode_checked(input, &limits) {
        hits += route(&frame);
        black_box(&frame);
    }
    hits
}

/// Forwards 100 read buffers' worth of frames through `path` and prints
/// the heap allocations per frame.
fn report_allocations(name: &str, codec: &dyn FrameCodec, frame: &[u8], path: Path) {
    const ROUNDS: usize = 100;
    let inputs: Vec<BytesMut> = (0..ROUNDS).map(|_| batch_of(frame)).collect();
    let mut out = BytesMut::with_capacity(frame.len() * BATCH * 2);
    let region = Region::new(GLOBAL);
    let mut frames = 0;
    for mut input in inputs {
        out.clear();
        let before = input.len();
        path(codec, &mut input, &mut out);
        frames += before / frame.len();
    }
    let stats = region.change();
    assert_eq!(frames, ROUNDS * BATCH, "{name}: every frame forwarded");
    let per_buffer = stats.allocations as f64 / ROUNDS as f64;
    println!(
        "allocations {name}: {} over {frames} frames = {:.3} per frame ({per_buffer:.2} per read buffer of {BATCH} frames)",
        stats.allocations,
        stats.allocations as f64 / frames as f64,
    );
}

/// A forwarding loop over one read buffer.
type Path = fn(&dyn FrameCodec, &mut BytesMut, &mut BytesMut) -> usize;

/// Times `routine` over a read buffer refilled with the same 64 frames
/// before each run, outside the timed section: the refill stands for the
/// socket read, which the forward path does not include. The buffer is
/// reused, so it stays in cache like a connection's read buffer does.
#[allow(clippy::disallowed_types)] // criterion's custom timing needs a wall clock.
fn time_over_refilled_buffer(
    iters: u64,
    source: &[u8],
    mut routine: impl FnMut(&mut BytesMut),
) -> Duration {
    let mut input = BytesMut::with_capacity(source.len());
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        input.clear();
        input.extend_from_slice(source);
        let start = std::time::Instant::now();
        routine(&mut input);
        total += start.elapsed();
    }
    total
}

fn bench_protocol(c: &mut Criterion, name: &str, codec: &dyn FrameCodec, frame: &[u8]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH as u64));
    let source = batch_of(frame);
    let mut out = BytesMut::with_capacity(source.len() * 2);

    group.bench_function("memcpy", |b| {
        b.iter_custom(|iters| {
            time_over_refilled_buffer(iters, &source, |input| {
                out.clear();
                out.extend_from_slice(black_box(&input[..]));
                black_box(out.len());
            })
        })
    });
    group.bench_function("forward", |b| {
        b.iter_custom(|iters| {
            time_over_refilled_buffer(iters, &source, |input| {
                out.clear();
                black_box(forward(codec, input, &mut out));
            })
        })
    });
    group.bench_function("forward_routed", |b| {
        b.iter_custom(|iters| {
            time_over_refilled_buffer(iters, &source, |input| {
                out.clear();
                black_box(forward_routed(codec, input, &mut out));
            })
        })
    });
    group.bench_function("decode_and_route", |b| {
        b.iter_custom(|iters| {
            time_over_refilled_buffer(iters, &source, |input| {
                black_box(decode_and_route(codec, input));
            })
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let bolt = BoltCodec::v1();
    let dubbo = DubboCodec::new();
    bench_protocol(c, "bolt_1k", &bolt, &bolt_request());
    bench_protocol(c, "dubbo_1k", &dubbo, &dubbo_request());
}

criterion_group!(codec_benches, benches);

fn main() {
    let bolt_frame = bolt_request();
    let dubbo_frame = dubbo_request();
    for (name, path) in [
        ("forward", forward as Path),
        ("forward_routed", forward_routed as Path),
    ] {
        report_allocations(
            &format!("bolt_1k/{name}"),
            &BoltCodec::v1(),
            &bolt_frame,
            path,
        );
        report_allocations(
            &format!("dubbo_1k/{name}"),
            &DubboCodec::new(),
            &dubbo_frame,
            path,
        );
    }
    codec_benches();
    Criterion::default().configure_from_args().final_summary();
}
