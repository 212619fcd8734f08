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

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group};
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{FrameCodec, Limits};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Frames per batch: a read buffer holding this many frames back to back.
const BATCH: usize = 64;
const BODY_LEN: usize = 1024;

/// A bolt v1 request with the header map Java sofa-rpc sends and a 1 KiB
/// body, built from the golden vector.
fn bolt_request() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/vectors/bolt/v1_request_hessian2_java_style_header.bin"
    );
    let bytes = std::fs::read(path).expect("vector present");
    let codec = BoltCodec::v1();
    let mut frame = codec
        .decode(&mut BytesMut::from(&bytes[..]), &Limits::default())
        .expect("vector decodes")
        .expect("whole frame");
    frame.body = Bytes::from(vec![b'x'; BODY_LEN]);
    frame.wire = None;
    let mut out = BytesMut::new();
    codec.encode(&frame, &mut out).expect("encodes");
    out.to_vec()
}

fn hessian_str(out: &mut BytesMut, s: &str) {
    let n = s.chars().count();
    match n {
        0..=31 => out.put_u8(n as u8),
        32..=1023 => out.put_slice(&[0x30 + (n >> 8) as u8, n as u8]),
        _ => {
            out.put_u8(b'S');
            out.put_u16(n as u16);
        }
    }
    out.put_slice(s.as_bytes());
}

/// A Dubbo request `DemoService:1.0.0#sayHello(String)` whose argument is a
/// 1 KiB string, with the attachments dubbo-remoting sends.
fn dubbo_request() -> Vec<u8> {
    let mut body = BytesMut::new();
    for s in [
        "2.0.2",
        "org.apache.dubbo.samples.DemoService",
        "1.0.0",
        "sayHello",
        "Ljava/lang/String;",
    ] {
        hessian_str(&mut body, s);
    }
    hessian_str(&mut body, &"x".repeat(BODY_LEN));
    body.put_u8(b'H');
    for (k, v) in [
        ("dubbo", "2.0.2"),
        ("group", "g1"),
        ("interface", "org.apache.dubbo.samples.DemoService"),
        ("path", "org.apache.dubbo.samples.DemoService"),
        ("timeout", "3000"),
        ("version", "1.0.0"),
    ] {
        hessian_str(&mut body, k);
        hessian_str(&mut body, v);
    }
    body.put_u8(b'Z');
    let mut frame = BytesMut::new();
    frame.put_slice(&[0xda, 0xbb, 0xc2, 0x00]);
    frame.put_u64(1);
    frame.put_u32(body.len() as u32);
    frame.put_slice(&body);
    frame.to_vec()
}

fn batch_of(frame: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(frame.len() * BATCH);
    for _ in 0..BATCH {
        buf.extend_from_slice(frame);
    }
    buf
}

/// Decodes every frame of `input`, gives each a new id and writes it to
/// `out`: what a proxy does per request on the framed fast path.
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

/// Decodes every frame and reads the routing keys a router would.
fn decode_and_route(codec: &dyn FrameCodec, input: &mut BytesMut) -> usize {
    let limits = Limits::default();
    let mut hits = 0;
    while let Ok(Some(frame)) = codec.decode(input, &limits) {
        hits += usize::from(frame.service().is_some());
        hits += usize::from(frame.method().is_some());
        hits += usize::from(frame.headers.get("group").is_some());
        black_box(&frame);
    }
    hits
}

fn report_allocations(name: &str, codec: &dyn FrameCodec, frame: &[u8]) {
    const ROUNDS: usize = 100;
    let inputs: Vec<BytesMut> = (0..ROUNDS).map(|_| batch_of(frame)).collect();
    let mut out = BytesMut::with_capacity(frame.len() * BATCH * 2);
    let region = Region::new(GLOBAL);
    let mut frames = 0;
    for mut input in inputs {
        out.clear();
        frames += forward(codec, &mut input, &mut out);
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
    report_allocations("bolt_1k", &BoltCodec::v1(), &bolt_frame);
    report_allocations("dubbo_1k", &DubboCodec::new(), &dubbo_frame);
    codec_benches();
    Criterion::default().configure_from_args().final_summary();
}
