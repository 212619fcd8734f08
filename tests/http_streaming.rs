//! 200 MiB bodies streamed through the gateway binary, over HTTP/1.1, over
//! h2c, and across versions (HTTP/1.1 downstream with h2c upstream and the
//! reverse), with the gateway process's resident memory (`VmRSS` sampled
//! every 20 ms, and `VmHWM`) growing by less than 32 MiB: a download and
//! an upload at full speed, then a client that stops reading for 2 s in
//! the middle of a download and an upstream that waits 2 s before reading
//! an upload; and 32 downloads at once on one h2c connection that the
//! client leaves unread for 2 s (with an h2c and an HTTP/1.1 upstream).
//! Every body is checked end to end by length and checksum.
//!
//! Needs the binary: `cargo build --workspace --bins` first.

mod common;
#[path = "common/stream.rs"]
mod stream;

use common::bounded;
use common::process::TempDir;
use std::time::Duration;
use stream::{
    BIG, Client, MIB, MemorySampler, Pattern, RSS_BOUND_KIB, StreamUpstream, Version,
    document_between, memory, read_body, start_gateway, upload_receipt,
};
use tokio::time::Instant;

/// What one phase of a run measured.
#[derive(Debug)]
struct Measured {
    phase: &'static str,
    baseline_kib: u64,
    peak_rss_kib: u64,
    hwm_kib: u64,
    elapsed: Duration,
}

impl Measured {
    /// The growth over the baseline: by the peak sampled or the kernel's
    /// high-water mark, whichever is larger.
    fn growth_kib(&self) -> u64 {
        self.peak_rss_kib
            .max(self.hwm_kib)
            .saturating_sub(self.baseline_kib)
    }
}

/// How a phase treats its peers.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Both ends read as fast as they can.
    Full,
    /// The client pauses for 2 s after 8 MiB of the download; the upstream
    /// waits 2 s before it reads the upload, which comes without a
    /// `content-length` (chunked on HTTP/1.1).
    Stalled,
}

const STALL: Duration = Duration::from_secs(2);

/// The config name of `version`.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::Http1 => "Http1",
        Version::H2c => "Http2",
    }
}

/// Starts a gateway speaking `version` downstream and `upstream_version`
/// to the upstream, warms it up with small bodies, then downloads and
/// uploads [`BIG`] bytes at `pace`, checking each body and the gateway's
/// memory.
async fn run(version: Version, upstream_version: Version, pace: Pace) -> Vec<Measured> {
    let (down, up) = (protocol(version), protocol(upstream_version));
    let upstream = StreamUpstream::start().await;
    let dir = TempDir::new(&format!("streaming-{down}-{up}-{pace:?}"));
    let gateway = start_gateway(&dir, &document_between(down, up, upstream.addr()));
    let pattern = Pattern::new();
    let expected = pattern.checksum_of(BIG);
    let mut client = Client::connect(gateway.addr, version).await;

    // Warm up: connections, pools and buffers exist before the baseline.
    let warm = client.get(&format!("/download/{}", MIB)).await;
    assert_eq!(warm.status(), 200);
    let got = read_body(warm.into_body(), None)
        .await
        .expect("warm-up body");
    assert_eq!(got, pattern.checksum_of(MIB));
    let warm = client.upload("/upload", &pattern, MIB, true).await;
    assert_eq!(upload_receipt(warm).await, pattern.checksum_of(MIB));

    let mut measured = Vec::new();
    // The download.
    let baseline = memory(&gateway).rss_kib;
    let sampler = MemorySampler::start(gateway.pid());
    let started = Instant::now();
    let response = client.get(&format!("/download/{BIG}")).await;
    assert_eq!(response.status(), 200);
    let pause = matches!(pace, Pace::Stalled).then_some((8 * MIB, STALL));
    let got = read_body(response.into_body(), pause)
        .await
        .expect("the download");
    assert_eq!(got, expected, "the download arrives whole and unchanged");
    let (peak, end) = sampler.finish().await;
    measured.push(Measured {
        phase: "download",
        baseline_kib: baseline,
        peak_rss_kib: peak,
        hwm_kib: end.hwm_kib,
        elapsed: started.elapsed(),
    });

    // The upload.
    let baseline = memory(&gateway).rss_kib;
    let sampler = MemorySampler::start(gateway.pid());
    let started = Instant::now();
    let path = match pace {
        Pace::Full => "/upload".to_owned(),
        Pace::Stalled => format!("/upload?stall_ms={}", STALL.as_millis()),
    };
    // The stalled upload's length is not declared: chunked on HTTP/1.1.
    let declared = matches!(pace, Pace::Full);
    let response = client.upload(&path, &pattern, BIG, declared).await;
    assert_eq!(
        upload_receipt(response).await,
        expected,
        "the upload arrives whole and unchanged"
    );
    let (peak, end) = sampler.finish().await;
    measured.push(Measured {
        phase: "upload",
        baseline_kib: baseline,
        peak_rss_kib: peak,
        hwm_kib: end.hwm_kib,
        elapsed: started.elapsed(),
    });
    drop(client);
    drop(gateway);
    measured
}

/// Asserts the bound on every phase; returns what was measured, a line
/// per phase, for the test to print.
fn check(label: &str, measured: &[Measured], pace: Pace) -> String {
    let mut report = String::new();
    for m in measured {
        report += &format!(
            "{label} {:?} {}: baseline VmRSS {} KiB, peak VmRSS {} KiB, VmHWM {} KiB, growth {} KiB, {:.1} s",
            pace,
            m.phase,
            m.baseline_kib,
            m.peak_rss_kib,
            m.hwm_kib,
            m.growth_kib(),
            m.elapsed.as_secs_f64()
        );
        report.push('\n');
        assert!(
            m.growth_kib() < RSS_BOUND_KIB,
            "{label} {pace:?} {}: the gateway's RSS grew by {} KiB (bound {RSS_BOUND_KIB} KiB): {m:?}",
            m.phase,
            m.growth_kib()
        );
        if matches!(pace, Pace::Stalled) {
            assert!(m.elapsed >= STALL, "the stall happened: {m:?}");
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_streams_200_mib_each_way_in_bounded_memory() {
    let measured = bounded(run(Version::Http1, Version::Http1, Pace::Full)).await;
    print!("{}", check("HTTP/1.1", &measured, Pace::Full));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_streams_200_mib_each_way_in_bounded_memory() {
    let measured = bounded(run(Version::H2c, Version::H2c, Pace::Full)).await;
    print!("{}", check("h2c", &measured, Pace::Full));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_slow_client_and_slow_upstream_do_not_grow_memory() {
    let measured = bounded(run(Version::Http1, Version::Http1, Pace::Stalled)).await;
    print!("{}", check("HTTP/1.1", &measured, Pace::Stalled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_slow_client_and_slow_upstream_do_not_grow_memory() {
    let measured = bounded(run(Version::H2c, Version::H2c, Pace::Stalled)).await;
    print!("{}", check("h2c", &measured, Pace::Stalled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_to_h2c_upstream_streams_and_stalls_in_bounded_memory() {
    let measured = bounded(run(Version::Http1, Version::H2c, Pace::Stalled)).await;
    print!("{}", check("HTTP/1.1 → h2c", &measured, Pace::Stalled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_to_http1_upstream_streams_and_stalls_in_bounded_memory() {
    let measured = bounded(run(Version::H2c, Version::Http1, Pace::Stalled)).await;
    print!("{}", check("h2c → HTTP/1.1", &measured, Pace::Stalled));
}

/// Streams opened at once on one h2c connection by
/// [`h2c_many_stalled_streams_stay_bounded`].
const STALLED_STREAMS: usize = 32;

/// Downloads [`STALLED_STREAMS`] bodies of 16 MiB at once on one h2c
/// connection, reading none of them for 2 s, then all to the end.
async fn many_stalled_streams(upstream_version: Version) -> Measured {
    let upstream = StreamUpstream::start().await;
    let up = protocol(upstream_version);
    let dir = TempDir::new(&format!("streaming-many-{up}"));
    let gateway = start_gateway(&dir, &document_between("Http2", up, upstream.addr()));
    let pattern = Pattern::new();
    let size = 16 * MIB;
    let expected = pattern.checksum_of(size);
    let mut client = Client::connect(gateway.addr, Version::H2c).await;
    let warm = client.get(&format!("/download/{MIB}")).await;
    read_body(warm.into_body(), None)
        .await
        .expect("warm-up body");
    let baseline = memory(&gateway).rss_kib;
    let sampler = MemorySampler::start(gateway.pid());
    let started = Instant::now();
    let mut bodies = Vec::new();
    for _ in 0..STALLED_STREAMS {
        let response = client.get(&format!("/download/{size}")).await;
        assert_eq!(response.status(), 200);
        bodies.push(response.into_body());
    }
    tokio::time::sleep(STALL).await;
    let readers: Vec<_> = bodies
        .into_iter()
        .map(|body| tokio::spawn(read_body(body, None)))
        .collect();
    for reader in readers {
        let got = reader.await.expect("a reader").expect("a download");
        assert_eq!(got, expected);
    }
    let (peak, end) = sampler.finish().await;
    Measured {
        phase: "32 stalled downloads",
        baseline_kib: baseline,
        peak_rss_kib: peak,
        hwm_kib: end.hwm_kib,
        elapsed: started.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_many_stalled_streams_stay_bounded() {
    for upstream in [Version::H2c, Version::Http1] {
        let measured = bounded(many_stalled_streams(upstream)).await;
        print!(
            "{}",
            check(&format!("h2c → {upstream:?}"), &[measured], Pace::Stalled)
        );
    }
}
