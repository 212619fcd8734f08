//! The crossed-wire test: many client connections, many pipelined requests
//! each with a random payload, random answer delays at three upstreams
//! reached over a multiplexed pool of two connections per host. Every
//! reply must carry its own request's payload: 0 lost, 0 crossed, 0
//! duplicated.

mod common;

use bytes::Bytes;
use common::{bolt, cluster_with, document, dubbo, dubbo_call, route, start, wire_status};
use meshgate_codecs::{Frame, FrameCodec};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How one run is shaped.
struct Load {
    codec: Arc<dyn FrameCodec>,
    /// The success status of the protocol.
    ok: u32,
    connections: usize,
    requests_per_connection: usize,
    /// Requests in flight per connection at most.
    window: usize,
    /// Builds request `id` around a random payload of 1–512 bytes.
    request: fn(u64, &mut SmallRng) -> Frame,
    /// The cluster's `max_request_per_conn`: `None` keeps MOSN's default
    /// (1024), so upstream connections rotate under the load; a large
    /// value keeps exactly the pool's two connections per host.
    max_request_per_conn: Option<u32>,
}

/// What the clients saw, summed over connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    sent: u64,
    ok: u64,
    /// Replies carrying another request's payload or id.
    crossed: u64,
    /// Second replies to one request.
    duplicated: u64,
    /// Error replies (the gateway answered for the upstream).
    errors: u64,
    /// Requests never answered.
    lost: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.crossed += other.crossed;
        self.duplicated += other.duplicated;
        self.errors += other.errors;
        self.lost += other.lost;
    }
}

/// 1–512 random bytes. (A fast generator filling whole buffers: the
/// thread RNG drawing byte by byte is most of a debug build's run time.)
fn random_payload(rng: &mut SmallRng) -> Vec<u8> {
    let mut payload = vec![0; rng.random_range(1..=512)];
    rng.fill_bytes(&mut payload);
    payload
}

fn bolt_random(id: u64, rng: &mut SmallRng) -> Frame {
    bolt_request(id, Bytes::from(random_payload(rng)))
}

fn dubbo_random(id: u64, rng: &mut SmallRng) -> Frame {
    let arg: String = random_payload(rng)
        .into_iter()
        .map(|b| char::from(b' ' + b % 95))
        .collect();
    dubbo_call(id, &arg)
}

/// One connection's run: a writer sending every request as the window
/// allows, a reader checking each reply against its own request.
async fn one_connection(addr: SocketAddr, load: Arc<Load>) -> Counts {
    let n = load.requests_per_connection;
    let requests: Vec<Frame> = {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        (0..n as u64)
            .map(|id| (load.request)(id, &mut rng))
            .collect()
    };
    let bodies: Vec<Bytes> = requests.iter().map(|r| r.body_bytes()).collect();
    let client = FramedClient::connect(addr, Arc::clone(&load.codec))
        .await
        .expect("connect to the gateway");
    let (mut writer, mut reader) = client.split();
    let window = Arc::new(Semaphore::new(load.window));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (window, sent) = (Arc::clone(&window), Arc::clone(&sent));
        tokio::spawn(async move {
            for request in &requests {
                window.acquire().await.expect("never closed").forget();
                // Counted before the write: a reply may beat the count.
                sent.fetch_add(1, Ordering::AcqRel);
                writer.send(request).await.expect("send a request");
            }
            writer
        })
    };
    let mut counts = Counts::default();
    let mut answered = vec![false; n];
    let mut replies = 0;
    while replies < n {
        let frame = match tokio::time::timeout(Duration::from_secs(10), reader.recv()).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("reading replies: {e}"),
            Err(_) => break,
        };
        replies += 1;
        window.add_permits(1);
        let id = frame.request_id as usize;
        if id >= n || id as u64 >= sent.load(Ordering::Acquire) {
            counts.crossed += 1;
            continue;
        }
        if std::mem::replace(&mut answered[id], true) {
            counts.duplicated += 1;
        } else if wire_status(&frame) != Some(load.ok) {
            counts.errors += 1;
        } else if frame.body() == bodies[id] {
            counts.ok += 1;
        } else {
            counts.crossed += 1;
        }
    }
    drop(sender.await.expect("the sender finishes"));
    counts.sent = sent.load(Ordering::Acquire);
    counts.lost = answered.iter().filter(|a| !**a).count() as u64;
    counts
}

/// Runs `load` through a gateway to three mocks answering after 0–2 ms,
/// prints the counts, and asserts that nothing was lost, crossed or
/// duplicated.
async fn crossed_wire(load: Load) {
    let mocks: Vec<MockUpstream> = (0..3)
        .map(|_| {
            MockUpstream::builder(Arc::clone(&load.codec))
                .delay(Duration::ZERO, Duration::from_millis(2))
                .start()
        })
        .collect();
    let hosts: Vec<SocketAddr> = mocks.iter().map(MockUpstream::addr).collect();
    let mut settings = json!({ "connections_per_host": 2 });
    if let Some(n) = load.max_request_per_conn {
        settings["max_request_per_conn"] = json!(n);
    }
    let doc = document(
        "Auto",
        json!([route(".*", "c")]),
        json!([cluster_with("c", "LB_ROUNDROBIN", &hosts, settings)]),
        json!([]),
    );
    let (gateway, addr) = start(&doc).await;
    let load = Arc::new(load);
    let began = Instant::now();
    let runs: Vec<_> = (0..load.connections)
        .map(|_| tokio::spawn(one_connection(addr, Arc::clone(&load))))
        .collect();
    let mut counts = Counts::default();
    for run in runs {
        counts.add(run.await.expect("a connection's run"));
    }
    let elapsed = began.elapsed();
    let per_host: Vec<u64> = mocks.iter().map(MockUpstream::requests).collect();
    let conns: Vec<u64> = mocks
        .iter()
        .map(|m| m.counters().accepted.load(Ordering::Relaxed))
        .collect();
    let id_reuse: u64 = mocks
        .iter()
        .map(|m| m.counters().id_reuse.load(Ordering::Relaxed))
        .sum();
    eprintln!(
        "crossed-wire {}: {} connections x {} requests (window {}): sent {}, ok {}, \
         lost {}, crossed {}, duplicated {}, errors {}; per host {:?} over {:?} \
         upstream connections; {:.2?} ({:.0} req/s)",
        load.codec.name(),
        load.connections,
        load.requests_per_connection,
        load.window,
        counts.sent,
        counts.ok,
        counts.lost,
        counts.crossed,
        counts.duplicated,
        counts.errors,
        per_host,
        conns,
        elapsed,
        counts.ok as f64 / elapsed.as_secs_f64(),
    );
    let total = (load.connections * load.requests_per_connection) as u64;
    assert_eq!(
        (
            counts.lost,
            counts.crossed,
            counts.duplicated,
            counts.errors
        ),
        (0, 0, 0, 0),
        "lost, crossed, duplicated, errors"
    );
    assert_eq!((counts.sent, counts.ok), (total, total));
    assert_eq!(
        per_host.iter().sum::<u64>(),
        total,
        "each request reached one upstream once"
    );
    for (i, n) in per_host.iter().enumerate() {
        assert!(
            *n > total / 6,
            "round robin spreads the load: host {i} got {n}"
        );
    }
    match load.max_request_per_conn {
        Some(_) => assert_eq!(conns, [2, 2, 2], "a pool of two connections per host"),
        None => {
            for mock in &mocks {
                let per_conn = mock.requests_per_connection();
                assert!(per_conn.len() >= 2, "{per_conn:?}");
                assert!(
                    per_conn.iter().all(|n| *n <= 1024),
                    "each connection rotated after 1024 requests: {per_conn:?}"
                );
            }
        }
    }
    assert_eq!(id_reuse, 0, "no upstream id reused while in flight");
    gateway.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolt_64_connections_x_5000_requests() {
    crossed_wire(Load {
        codec: bolt(),
        ok: 0,
        connections: 64,
        requests_per_connection: 5000,
        window: 32,
        request: bolt_random,
        max_request_per_conn: Some(1_000_000_000),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo_16_connections_x_2000_requests() {
    crossed_wire(Load {
        codec: dubbo(),
        ok: 20,
        connections: 16,
        requests_per_connection: 2000,
        window: 32,
        request: dubbo_random,
        max_request_per_conn: None,
    })
    .await;
}
