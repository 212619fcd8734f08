//! A closed-loop load generator for bolt and Dubbo: N connections, each
//! with M requests in flight multiplexed by request id; every reply is
//! matched to its request by id and its body compared with what was sent.
//! Runs a warm-up, then a measured window, then stops by itself.
//!
//! `mg-load --protocol bolt --target 127.0.0.1:12200 --connections 16 --in-flight 8 --duration 10s`
//!
//! With `--idle-connections N` it instead opens N connections, sends
//! nothing, prints `READY n=N`, holds them for `--duration` and reports how
//! many the peer closed meanwhile (the harness's memory scenario).

#![allow(clippy::print_stdout)] // A command-line tool reports on stdout.

use anyhow::{Result, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use meshgate_bench::{Proto, Reader};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser, Debug, Clone)]
#[command(about = "Multiplexed bolt/Dubbo load with every reply checked")]
struct Args {
    /// Protocol to speak.
    #[arg(long, value_enum)]
    protocol: Proto,
    /// Where to send (the gateway, or a backend directly).
    #[arg(long)]
    target: SocketAddr,
    /// Client connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Payload bytes per request.
    #[arg(long, default_value_t = 128)]
    payload: usize,
    /// Warm-up before measuring, e.g. "2s".
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Measured window, e.g. "10s".
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A reply slower than this counts as an error.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Runtime threads (1 keeps the generator on one core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Open this many connections, send nothing, and hold them for
    /// `--duration` instead of running load (`--protocol` is ignored).
    #[arg(long)]
    idle_connections: Option<usize>,
    /// Expect Dubbo replies as RpcResults (`mg-stub --dubbo-rpc-result`).
    #[arg(long)]
    dubbo_rpc_result: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {text:?} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// What one connection saw during the measured window.
#[derive(Debug)]
struct ConnResult {
    ok: u64,
    mismatched: u64,
    errors: u64,
    latency: Histogram<u64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    if let Some(count) = args.idle_connections {
        return runtime.block_on(hold_idle(&args, count));
    }
    let started = Instant::now();
    let results = runtime.block_on(async {
        let measure_from = Instant::now() + args.warmup;
        let stop_at = measure_from + args.duration;
        let mut tasks = Vec::new();
        for conn in 0..args.connections {
            tasks.push(tokio::spawn(run_connection(
                args.clone(),
                conn,
                measure_from,
                stop_at,
            )));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await?);
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    let mut latency = Histogram::<u64>::new(3)?;
    let (mut ok, mut mismatched, mut errors) = (0, 0, 0);
    for result in results {
        let result = result?;
        ok += result.ok;
        mismatched += result.mismatched;
        errors += result.errors;
        latency.add(&result.latency)?;
    }
    let rps = ok as f64 / args.duration.as_secs_f64();
    let us = |q: f64| latency.value_at_quantile(q) as f64;
    if args.json {
        let report = serde_json::json!({
            "protocol": format!("{:?}", args.protocol).to_lowercase(),
            "target": args.target.to_string(),
            "connections": args.connections,
            "in_flight": args.in_flight,
            "payload": args.payload,
            "seconds": args.duration.as_secs_f64(),
            "ok": ok, "mismatched": mismatched, "errors": errors,
            "rps": rps,
            "p50_us": us(0.5), "p99_us": us(0.99), "p999_us": us(0.999),
        });
        println!("{report}");
    } else {
        println!(
            "{:?} {}: {ok} ok, {mismatched} mismatched, {errors} errors in {:.1}s = {rps:.0} req/s; latency p50 {:.0}us p99 {:.0}us p999 {:.0}us (total run {:.1}s)",
            args.protocol,
            args.target,
            args.duration.as_secs_f64(),
            us(0.5),
            us(0.99),
            us(0.999),
            started.elapsed().as_secs_f64()
        );
    }
    if mismatched > 0 || ok == 0 {
        bail!("{mismatched} mismatched replies, {ok} ok");
    }
    Ok(())
}

/// Opens `count` idle connections, holds them for the measured window and
/// reports how long opening them took (a burst of connects: what a
/// proxy's accept queue and accept loop sustain) and how many the peer
/// closed.
async fn hold_idle(args: &Args, count: usize) -> Result<()> {
    let started = Instant::now();
    let streams = meshgate_bench::idle::open(args.target, count, args.timeout).await?;
    println!(
        "READY n={} open_ms={}",
        streams.len(),
        started.elapsed().as_millis()
    );
    tokio::time::sleep(args.duration).await;
    let closed = meshgate_bench::idle::closed_by_peer(&streams);
    println!("HELD n={} closed_by_peer={closed}", streams.len());
    Ok(())
}

/// Matches a reply to its request and records it if the request was sent
/// inside the measured window.
fn account(
    frame: &meshgate_codecs::Frame,
    pending: &mut HashMap<u64, (Instant, Bytes)>,
    result: &mut ConnResult,
    measure_from: Instant,
    stop_at: Instant,
) {
    let Some((sent_at, expected)) = pending.remove(&frame.request_id) else {
        result.mismatched += 1; // An id we never sent or already got.
        return;
    };
    if sent_at < measure_from || sent_at >= stop_at {
        return;
    }
    if !frame.status.is_some_and(|s| s.is_success()) {
        result.errors += 1; // The proxy's (or backend's) error reply.
    } else if frame.body() != expected {
        result.mismatched += 1;
    } else {
        result.ok += 1;
        let micros = sent_at.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        let _ = result.latency.record(micros.max(1));
    }
}

async fn run_connection(
    args: Args,
    conn: usize,
    measure_from: Instant,
    stop_at: Instant,
) -> Result<ConnResult> {
    let stream = TcpStream::connect(args.target).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let codec = args.protocol.codec();
    let mut reader = Reader::new(read, codec);
    let mut result = ConnResult {
        ok: 0,
        mismatched: 0,
        errors: 0,
        latency: Histogram::new(3)?,
    };
    let mut pending: HashMap<u64, (Instant, Bytes)> = HashMap::with_capacity(args.in_flight * 2);
    let mut next_id: u64 = 1;
    let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
    let mut send = |pending: &mut HashMap<u64, (Instant, Bytes)>, out: &mut Vec<u8>| {
        let id = next_id;
        next_id += 1;
        let payload: String = (0..args.payload)
            .map(|_| rng.random_range(b'a'..=b'z') as char)
            .collect();
        let payload = format!("{conn}:{id}:{payload}");
        let (bytes, mut expected) = args.protocol.request(id, &payload);
        if args.dubbo_rpc_result && args.protocol == Proto::Dubbo {
            expected = meshgate_bench::dubbo_rpc_result(&expected);
        }
        out.extend_from_slice(&bytes);
        pending.insert(id, (Instant::now(), expected));
    };
    let mut out = Vec::with_capacity(args.in_flight * (args.payload + 256));
    for _ in 0..args.in_flight {
        send(&mut pending, &mut out);
    }
    write.write_all(&out).await?;
    out.clear();
    loop {
        let now = Instant::now();
        if now >= stop_at && pending.is_empty() {
            break;
        }
        let frame = match tokio::time::timeout_at(now + args.timeout, reader.next()).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                result.errors += pending.len() as u64;
                break;
            }
        };
        account(&frame, &mut pending, &mut result, measure_from, stop_at);
        // Replies already read are accounted without another syscall.
        let mut answered = 1;
        while let Ok(Some(frame)) = reader.try_decode() {
            account(&frame, &mut pending, &mut result, measure_from, stop_at);
            answered += 1;
        }
        // Closed loop: one request out per reply in, until the window ends;
        // then the ones in flight drain.
        if Instant::now() < stop_at {
            for _ in 0..answered {
                send(&mut pending, &mut out);
            }
            write.write_all(&out).await?;
            out.clear();
        }
    }
    Ok(result)
}
