//! The fault soak: bolt and Dubbo load through the gateway while upstream
//! hosts die, come back and freeze, and nothing is lost, crossed or closed.
//!
//! Each protocol has a cluster of two `mg-stub` processes (separate
//! processes, so they can really be killed and frozen), started with
//! `--tag A` / `--tag B`: a stub echoes each request's body followed by its
//! tag, so every reply says whose request it answers (the unique token in
//! the body) and which host answered it. Eight client connections per
//! protocol keep sixteen requests each in flight for [`LOAD`]; meanwhile
//! host A of both clusters is killed (SIGKILL, by pid) and restarted on
//! the same port four times, and host B frozen (SIGSTOP) for 2 s then
//! resumed (SIGCONT) three times, never while A is down: one host is
//! always alive.
//!
//! The route retries (`retry_on: true`, MOSN's form) with a per-try
//! timeout, so a request whose host died is sent to the other one (reset
//! or refused connect), and one stuck on the frozen host moves after the
//! per-try timeout. Asserted: no request lost (each answered before the
//! client's deadline), none crossed (each reply carries its own request's
//! token), no error reply (a host is always up), no client connection
//! closed by the gateway, the gateway alive at the end, and each restarted
//! or resumed host serving again. The counts are printed.
//!
//! Needs `mg-stub` built next to the test binary: `cargo build --workspace --bins`
//! (the workspace build does it) before `cargo nextest run --test
//! fault_soak`.

#![allow(clippy::print_stdout)] // The soak prints its counts, as asked of it.

mod common;

use bytes::Bytes;
use common::{DUBBO_SERVICE, cluster, document, route_with, start};
use meshgate::control::State;
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::{bolt_request, dubbo_request};
use meshgate_test_support::process::External;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long each protocol's load runs (both at once).
const LOAD: Duration = Duration::from_secs(32);
/// Client connections per protocol.
const CONNECTIONS: usize = 8;
/// Requests in flight per connection.
const IN_FLIGHT: usize = 16;
/// A request not answered this long after it was sent is lost.
const DEADLINE: Duration = Duration::from_secs(8);
/// Requests per connection at most (the time bound ends the run first).
const MAX_PER_CONNECTION: u64 = 2_000_000;
/// Width of the time buckets replies are counted in, per host.
const BUCKET: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Proto {
    Bolt,
    Dubbo,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Bolt => "bolt",
            Proto::Dubbo => "dubbo",
        }
    }

    fn codec(self) -> Arc<dyn FrameCodec> {
        match self {
            Proto::Bolt => common::bolt(),
            Proto::Dubbo => common::dubbo(),
        }
    }

    /// A request carrying `token`; the body an echo must start with is the
    /// request's body.
    fn request(self, id: u64, token: &str) -> Frame {
        match self {
            Proto::Bolt => bolt_request(id, Bytes::copy_from_slice(token.as_bytes())),
            Proto::Dubbo => dubbo_request(id, DUBBO_SERVICE, "sayHello", None, token),
        }
    }

    fn ok_status(self) -> u32 {
        match self {
            Proto::Bolt => 0,
            Proto::Dubbo => 20,
        }
    }
}

/// Starts `mg-stub` for `proto` on `port` (0: any) with `tag`. A restart
/// on a fixed port is tried a few times, should the port still be held.
async fn start_stub(proto: Proto, port: u16, tag: &str) -> External {
    let mut last = None;
    for _ in 0..20 {
        let mut cmd = tokio::process::Command::new(common::process::workspace_binary("mg-stub"));
        cmd.args(["--protocol", proto.name(), "--tag", tag])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        match External::start(
            format!("{}-{tag}", proto.name()),
            cmd,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(stub) => return stub,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mg-stub {} {tag} does not start: {last:?}", proto.name());
}

/// What one client connection saw.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    ok: u64,
    errors: u64,
    /// Error replies' wire statuses, with how many of each.
    error_statuses: HashMap<u32, u64>,
    lost: u64,
    crossed: u64,
    closed_by_gateway: u64,
    /// Replies per host tag, per [`BUCKET`] since the start.
    per_host: HashMap<Vec<u8>, Vec<u64>>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.errors += other.errors;
        for (status, n) in other.error_statuses {
            *self.error_statuses.entry(status).or_default() += n;
        }
        self.lost += other.lost;
        self.crossed += other.crossed;
        self.closed_by_gateway += other.closed_by_gateway;
        for (tag, buckets) in other.per_host {
            let mine = self.per_host.entry(tag).or_default();
            if mine.len() < buckets.len() {
                mine.resize(buckets.len(), 0);
            }
            for (i, n) in buckets.into_iter().enumerate() {
                mine[i] += n;
            }
        }
    }

    fn host_total(&self, tag: &str) -> u64 {
        self.per_host
            .get(tag.as_bytes())
            .map_or(0, |b| b.iter().sum())
    }

    /// Replies `tag` sent in `[from, to)` (times since the start).
    fn host_between(&self, tag: &str, from: Duration, to: Duration) -> u64 {
        let first = (from.as_millis() / BUCKET.as_millis()) as usize;
        let last = (to.as_millis() / BUCKET.as_millis()) as usize;
        self.per_host.get(tag.as_bytes()).map_or(0, |b| {
            b.iter()
                .enumerate()
                .filter(|(i, _)| (first..last).contains(i))
                .map(|(_, n)| n)
                .sum()
        })
    }
}

/// One client connection: keeps [`IN_FLIGHT`] requests outstanding until
/// `stop_at`, then waits for the last replies (each up to its deadline).
async fn drive_connection(
    addr: SocketAddr,
    proto: Proto,
    conn: usize,
    run: u64,
    started: Instant,
    stop_at: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let client = FramedClient::connect(addr, proto.codec())
        .await
        .expect("the client connects");
    let (mut writer, mut reader) = client.split();
    // id → (the body its echo must start with, when it was sent)
    let mut outstanding: HashMap<u64, (Bytes, Instant)> = HashMap::new();
    let mut given_up: HashSet<u64> = HashSet::new();
    let mut next_id = 1u64;
    loop {
        while outstanding.len() < IN_FLIGHT
            && Instant::now() < stop_at
            && tally.sent < MAX_PER_CONNECTION
        {
            let id = next_id;
            next_id += 1;
            let token = format!("{}-run{run:x}-c{conn}-r{id}", proto.name());
            let request = proto.request(id, &token);
            outstanding.insert(id, (request.body_bytes(), Instant::now()));
            if writer.send(&request).await.is_err() {
                tally.closed_by_gateway += 1;
                tally.lost += outstanding.len() as u64;
                return tally;
            }
            tally.sent += 1;
        }
        let Some(oldest) = outstanding.values().map(|(_, at)| *at).min() else {
            break; // the run is over and everything was answered
        };
        let frame = match tokio::time::timeout_at(oldest + DEADLINE, reader.recv()).await {
            Err(_) => {
                let now = Instant::now();
                outstanding.retain(|id, (_, at)| {
                    let late = now.duration_since(*at) >= DEADLINE;
                    if late {
                        given_up.insert(*id);
                        tally.lost += 1;
                    }
                    !late
                });
                continue;
            }
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None) | Err(_)) => {
                tally.closed_by_gateway += 1;
                tally.lost += outstanding.len() as u64;
                return tally;
            }
        };
        let Some((expected, _)) = outstanding.remove(&frame.request_id) else {
            // A reply to an id given up on is late, already counted lost;
            // any other id was never sent on this connection.
            if !given_up.remove(&frame.request_id) {
                tally.crossed += 1;
            }
            continue;
        };
        let status = frame.status.map_or(0, |s| s.code);
        if frame.kind != FrameKind::Response || status != proto.ok_status() {
            tally.errors += 1;
            *tally.error_statuses.entry(status).or_default() += 1;
            continue;
        }
        if !frame.body().starts_with(&expected) {
            tally.crossed += 1;
            continue;
        }
        tally.ok += 1;
        let bucket = (started.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        let buckets = tally
            .per_host
            .entry(frame.body()[expected.len()..].to_vec())
            .or_default();
        if buckets.len() <= bucket {
            buckets.resize(bucket + 1, 0);
        }
        buckets[bucket] += 1;
    }
    // Keep the connection open to the end: a half-close would read as the
    // client leaving.
    drop(writer);
    tally
}

/// When host A came back and when it went down next; when host B resumed.
#[derive(Debug, Default)]
struct Schedule {
    /// (restart, next kill or end of the load), since the start.
    a_up: Vec<(Duration, Duration)>,
    /// (resume, next freeze or end of the load), since the start.
    b_up: Vec<(Duration, Duration)>,
    kills: usize,
    freezes: usize,
}

/// Kills and restarts every host A, freezes and resumes every host B, on a
/// fixed timeline within [`LOAD`]; A is never down while B is frozen.
async fn inflict_faults(
    a: &mut [(Proto, External)],
    b: &[(Proto, External)],
    started: Instant,
) -> Schedule {
    let at = |secs: f64| started + Duration::from_secs_f64(secs);
    let mut schedule = Schedule::default();
    let ports: Vec<u16> = a.iter().map(|(_, stub)| stub.port()).collect();
    for round in 0..4 {
        let base = 2.0 + 8.0 * f64::from(round);
        // Kill A (both protocols) at base, restart on the same port 1 s later.
        tokio::time::sleep_until(at(base)).await;
        let killed = started.elapsed();
        for (_, stub) in a.iter_mut() {
            stub.kill_hard().await.expect("SIGKILL host A");
        }
        schedule.kills += 1;
        if let Some(last) = schedule.a_up.last_mut() {
            last.1 = killed;
        }
        tokio::time::sleep_until(at(base + 1.0)).await;
        for ((proto, stub), port) in a.iter_mut().zip(&ports) {
            *stub = start_stub(*proto, *port, "A").await;
        }
        schedule.a_up.push((started.elapsed(), LOAD));
        // Freeze B for 2 s, well after A is back (three rounds).
        if round < 3 {
            tokio::time::sleep_until(at(base + 4.0)).await;
            let frozen = started.elapsed();
            for (_, stub) in b {
                stub.freeze();
            }
            schedule.freezes += 1;
            if let Some(last) = schedule.b_up.last_mut() {
                last.1 = frozen;
            }
            tokio::time::sleep_until(at(base + 6.0)).await;
            for (_, stub) in b {
                stub.resume();
            }
            schedule.b_up.push((started.elapsed(), LOAD));
        }
    }
    schedule
}

/// A retry budget that lets every request in flight move once: when host B
/// freezes, all its in-flight requests hit the per-try timeout together,
/// and Envoy's default budget (20 % of requests in flight) would answer
/// most of them with an error while host A is up. The soak asks for the
/// route's retries to be honoured, so the cluster says so.
fn with_retry_room(mut cluster: serde_json::Value) -> serde_json::Value {
    cluster["circuit_breakers"] = json!([{
        "retry_budget": { "budget_percent": 100, "min_retry_concurrency": 256 }
    }]);
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_die_restart_and_freeze_under_load_and_nothing_is_lost() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for proto in [Proto::Bolt, Proto::Dubbo] {
        a.push((proto, start_stub(proto, 0, "A").await));
        b.push((proto, start_stub(proto, 0, "B").await));
    }
    let hosts = |proto: Proto| -> Vec<SocketAddr> {
        [&a, &b]
            .iter()
            .flat_map(|list| list.iter().filter(|(p, _)| *p == proto))
            .map(|(_, stub)| stub.addr())
            .collect()
    };
    // MOSN's retry_on (resets, refused connects, per-try timeouts), a
    // per-try timeout well under the freeze, a route timeout well under
    // the client's deadline.
    let retry = json!({
        "timeout": "4s",
        "retry_policy": { "retry_on": true, "retry_timeout": "500ms", "num_retries": 4 }
    });
    let doc = document(
        "Auto",
        json!([
            route_with(DUBBO_SERVICE, "dubbo", retry.clone()),
            route_with(".*", "bolt", retry)
        ]),
        json!([
            with_retry_room(cluster("bolt", "LB_ROUNDROBIN", &hosts(Proto::Bolt))),
            with_retry_room(cluster("dubbo", "LB_ROUNDROBIN", &hosts(Proto::Dubbo)))
        ]),
        json!([]),
    );
    let (gateway, addr) = start(&doc).await;

    let run: u64 = rand::random();
    let started = Instant::now();
    let stop_at = started + LOAD;
    let mut clients = Vec::new();
    for proto in [Proto::Bolt, Proto::Dubbo] {
        for conn in 0..CONNECTIONS {
            clients.push((
                proto,
                tokio::spawn(drive_connection(addr, proto, conn, run, started, stop_at)),
            ));
        }
    }
    let schedule = inflict_faults(&mut a, &b, started).await;
    let mut tallies: HashMap<Proto, Tally> = HashMap::new();
    for (proto, client) in clients {
        let tally = tokio::time::timeout(LOAD + DEADLINE * 2, client)
            .await
            .expect("the client finishes by itself")
            .expect("the client task");
        tallies.entry(proto).or_default().merge(tally);
    }
    let elapsed = started.elapsed();

    // The gateway is alive and serves both protocols on fresh connections.
    assert_eq!(gateway.state(), State::Running);
    for proto in [Proto::Bolt, Proto::Dubbo] {
        let mut client = FramedClient::connect(addr, proto.codec())
            .await
            .expect("the gateway accepts");
        let request = proto.request(7, "after-the-soak");
        let reply = client.call(&request).await.expect("a reply");
        assert_eq!(reply.status.map_or(0, |s| s.code), proto.ok_status());
    }

    println!(
        "fault soak: {:.1} s, {} host kills + restarts, {} freezes of 2 s",
        elapsed.as_secs_f64(),
        schedule.kills,
        schedule.freezes
    );
    for proto in [Proto::Bolt, Proto::Dubbo] {
        let t = &tallies[&proto];
        println!(
            "{:>5}: sent {} ok {} errors {} {:?} lost {} crossed {} closed-by-gateway {} | host A {} host B {}",
            proto.name(),
            t.sent,
            t.ok,
            t.errors,
            t.error_statuses,
            t.lost,
            t.crossed,
            t.closed_by_gateway,
            t.host_total("A"),
            t.host_total("B"),
        );
    }
    for proto in [Proto::Bolt, Proto::Dubbo] {
        let t = &tallies[&proto];
        let name = proto.name();
        assert!(
            t.sent >= (CONNECTIONS * IN_FLIGHT) as u64,
            "{name}: the load ran"
        );
        assert_eq!(t.lost, 0, "{name}: no request lost");
        assert_eq!(t.crossed, 0, "{name}: no reply crossed");
        assert_eq!(
            t.closed_by_gateway, 0,
            "{name}: no client connection closed"
        );
        assert_eq!(
            t.errors, 0,
            "{name}: no error reply while a host is up: {:?}",
            t.error_statuses
        );
        assert_eq!(t.ok, t.sent, "{name}: every request answered");
        for (i, (from, to)) in schedule.a_up.iter().enumerate() {
            let served = t.host_between("A", *from, *to);
            assert!(
                served > 0,
                "{name}: host A serves again after restart {} ({from:?}..{to:?})",
                i + 1
            );
        }
        for (i, (from, to)) in schedule.b_up.iter().enumerate() {
            let served = t.host_between("B", *from, *to);
            assert!(
                served > 0,
                "{name}: host B serves again after resume {} ({from:?}..{to:?})",
                i + 1
            );
        }
    }

    gateway.stop(Duration::from_secs(2)).await;
    for (_, mut stub) in a.into_iter().chain(b) {
        let _ = stub.kill().await;
    }
}
