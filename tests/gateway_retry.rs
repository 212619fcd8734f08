//! Retries through the whole gateway: a refusing host is skipped for the
//! next, a hanging host costs one per-try timeout, exhausted retries end in
//! the protocol's own error reply, and an upstream dying mid-flight never
//! takes the downstream connection with it.

mod common;

use bytes::Bytes;
use common::{
    bolt, cluster, document, dubbo, dubbo_call, dubbo_message, pipeline, route_with, start,
    wire_status,
};
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{Frame, FrameKind};
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::{bolt_oneway, bolt_request, decoded};
use meshgate_test_support::net::closed_port;
use meshgate_test_support::{MockUpstream, Mode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// bolt statuses (bolt.md §5).
const BOLT_OK: u32 = 0;
const BOLT_NO_PROCESSOR: u32 = 6;
const BOLT_TIMEOUT: u32 = 7;
const BOLT_CONNECTION_CLOSED: u32 = 0x10;
/// Dubbo statuses (dubbo.md §5).
const DUBBO_CLIENT_TIMEOUT: u32 = 30;
const DUBBO_SERVICE_NOT_FOUND: u32 = 60;

const GRACE: Duration = Duration::from_secs(1);

/// One `Auto` listener routing every service to cluster `c` over `hosts`
/// (round robin), the route's action extended with `action`.
fn one_cluster(hosts: &[SocketAddr], action: Value) -> Value {
    document(
        "Auto",
        json!([route_with(".*", "c", action)]),
        json!([cluster("c", "LB_ROUNDROBIN", hosts)]),
        json!([]),
    )
}

/// MOSN's `retry_on: true` with a per-try timeout.
fn retry_on(per_try: &str, num_retries: u32) -> Value {
    json!({ "retry_policy": { "retry_on": true, "retry_timeout": per_try, "num_retries": num_retries } })
}

fn payload(i: u64) -> Bytes {
    Bytes::from(format!("payload-{i}"))
}

/// Asserts `reply` is the upstream's echo of request `id`.
fn assert_echo(reply: &Frame, id: u64, what: &str) {
    assert_eq!(reply.kind, FrameKind::Response, "{what}: request {id}");
    assert_eq!(reply.request_id, id, "{what}");
    assert_eq!(wire_status(reply), Some(BOLT_OK), "{what}: request {id}");
    assert_eq!(
        reply.body(),
        payload(id),
        "{what}: request {id} got another's body"
    );
}

#[tokio::test]
async fn a_refusing_host_is_skipped_for_the_next_without_a_policy() {
    let good = MockUpstream::start(bolt());
    let refusing = closed_port();
    for (order, hosts) in [
        ("refusing host first", [refusing, good.addr()]),
        ("refusing host second", [good.addr(), refusing]),
    ] {
        // No retry policy: MOSN's implicit one retries connect failures.
        let (gateway, addr) = start(&one_cluster(&hosts, json!({}))).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        for id in 0..100 {
            let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
            assert_echo(&reply, id, order);
        }
        let replies = pipeline(
            addr,
            bolt(),
            (1000..1200)
                .map(|id| bolt_request(id, payload(id)))
                .collect(),
        )
        .await;
        for (id, reply) in &replies {
            assert_echo(reply, *id, order);
        }
        gateway.stop(GRACE).await;
    }
    assert_eq!(
        good.requests(),
        2 * 300,
        "every request reached the good host"
    );
}

#[tokio::test]
async fn a_hanging_host_costs_one_per_try_timeout_then_the_next_answers() {
    let hanging = MockUpstream::builder(bolt()).mode(Mode::Hang).start();
    let good = MockUpstream::start(bolt());
    let doc = one_cluster(&[hanging.addr(), good.addr()], retry_on("100ms", 1));
    let (gateway, addr) = start(&doc).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let began = Instant::now();
    for id in 0..10 {
        let sent = Instant::now();
        let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
        assert_echo(&reply, id, "hang then retry");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "one per-try timeout at most"
        );
    }
    let elapsed = began.elapsed();
    let hung = hanging.requests();
    assert!(
        hung >= 1,
        "round robin sent some first tries to the hanging host"
    );
    assert_eq!(
        good.requests(),
        10,
        "every request was answered by the good host"
    );
    assert!(
        elapsed >= Duration::from_millis(100) * hung as u32,
        "each of the {hung} hung tries waited its per-try timeout ({elapsed:?} in all)"
    );
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn exhausted_retries_after_timeouts_answer_timeout() {
    // bolt: TIMEOUT (7).
    let hung = [
        MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
        MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
    ];
    let hosts = [hung[0].addr(), hung[1].addr()];
    let (gateway, addr) = start(&one_cluster(&hosts, retry_on("100ms", 2))).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let began = Instant::now();
    let reply = client.call(&bolt_request(5, payload(5))).await.unwrap();
    let elapsed = began.elapsed();
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 5));
    assert_eq!(wire_status(&reply), Some(BOLT_TIMEOUT));
    assert!(
        reply.class() == b"com.alipay.remoting.rpc.exception.RpcServerException"
            && reply.body().windows(11).any(|w| w == b"504|timeout"),
        "a bolt error reply carries an RpcServerException with MOSN's message"
    );
    assert_eq!(
        hung[0].requests() + hung[1].requests(),
        3,
        "one try and two retries"
    );
    assert!(
        elapsed >= Duration::from_millis(300),
        "three per-try timeouts: {elapsed:?}"
    );
    // The connection carries on.
    hung[0].set_mode(Mode::Echo);
    hung[1].set_mode(Mode::Echo);
    let reply = client.call(&bolt_request(6, payload(6))).await.unwrap();
    assert_echo(&reply, 6, "after exhausted retries");
    gateway.stop(GRACE).await;

    // Dubbo: CLIENT_TIMEOUT (30) with MOSN's message.
    let hung = [
        MockUpstream::builder(dubbo()).mode(Mode::Hang).start(),
        MockUpstream::builder(dubbo()).mode(Mode::Hang).start(),
    ];
    let hosts = [hung[0].addr(), hung[1].addr()];
    let (gateway, addr) = start(&one_cluster(&hosts, retry_on("100ms", 2))).await;
    let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
    let reply = client.call(&dubbo_call(77, "slow")).await.unwrap();
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 77));
    assert_eq!(wire_status(&reply), Some(DUBBO_CLIENT_TIMEOUT));
    assert_eq!(dubbo_message(&reply), "504|timeout");
    assert_eq!(hung[0].requests() + hung[1].requests(), 3);
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn exhausted_retries_after_refusals_answer_no_healthy_upstream() {
    let hosts = [closed_port(), closed_port()];
    for action in [json!({}), retry_on("100ms", 3)] {
        let (gateway, addr) = start(&one_cluster(&hosts, action.clone())).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        for id in 0..3 {
            let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
            assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, id));
            assert_eq!(wire_status(&reply), Some(BOLT_NO_PROCESSOR), "{action}");
        }
        let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
        for id in 0..3 {
            let reply = client.call(&dubbo_call(id, "nobody")).await.unwrap();
            assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, id));
            assert_eq!(
                wire_status(&reply),
                Some(DUBBO_SERVICE_NOT_FOUND),
                "{action}"
            );
            assert_eq!(dubbo_message(&reply), "502|no health upstream", "{action}");
        }
        gateway.stop(GRACE).await;
    }
}

#[tokio::test]
async fn a_reset_after_write_is_retried_only_with_a_policy() {
    let dropping = MockUpstream::builder(bolt()).mode(Mode::Drop).start();
    let good = MockUpstream::start(bolt());
    let hosts = [dropping.addr(), good.addr()];

    // MOSN's implicit policy retries connect failures only: a request the
    // dropping host read (and may have acted on) is answered with an error.
    let (gateway, addr) = start(&one_cluster(&hosts, json!({}))).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let (mut ok, mut reset) = (0, 0);
    for id in 0..10 {
        let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
        assert_eq!(reply.request_id, id);
        match wire_status(&reply) {
            Some(BOLT_OK) => {
                assert_echo(&reply, id, "implicit policy");
                ok += 1;
            }
            Some(BOLT_CONNECTION_CLOSED) => reset += 1,
            other => panic!("request {id}: status {other:?}"),
        }
    }
    assert!(
        reset >= 1,
        "round robin sent some requests to the dropping host"
    );
    assert_eq!(
        dropping.requests(),
        reset,
        "a written request is never sent twice"
    );
    assert_eq!(good.requests(), ok);
    gateway.stop(GRACE).await;

    // `retry_on: true` retries resets: every request answered.
    let before = (dropping.requests(), good.requests());
    let (gateway, addr) = start(&one_cluster(&hosts, retry_on("1s", 1))).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    for id in 0..10 {
        let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
        assert_echo(&reply, id, "retry_on true");
    }
    assert!(
        dropping.requests() > before.0,
        "some first tries were dropped"
    );
    assert_eq!(good.requests() - before.1, 10);
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn the_route_timeout_bounds_the_whole_request() {
    let hung = [
        MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
        MockUpstream::builder(bolt()).mode(Mode::Hang).start(),
    ];
    let hosts = [hung[0].addr(), hung[1].addr()];
    // Ten retries of 100 ms each would take 1.1 s; the route allows 250 ms.
    let mut action = retry_on("100ms", 10);
    action["timeout"] = json!("250ms");
    let (gateway, addr) = start(&one_cluster(&hosts, action)).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let began = Instant::now();
    let reply = client.call(&bolt_request(1, payload(1))).await.unwrap();
    let elapsed = began.elapsed();
    assert_eq!(wire_status(&reply), Some(BOLT_TIMEOUT));
    assert!(
        elapsed >= Duration::from_millis(245) && elapsed < Duration::from_millis(800),
        "answered at the route timeout, not after every retry: {elapsed:?}"
    );
    let tries = hung[0].requests() + hung[1].requests();
    assert!(
        (2..=4).contains(&tries),
        "two or three tries fit in 250 ms: {tries}"
    );
    gateway.stop(GRACE).await;

    // Without a policy the route timeout is the only bound.
    let (gateway, addr) = start(&one_cluster(&hosts[..1], json!({ "timeout": "200ms" }))).await;
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let began = Instant::now();
    let reply = client.call(&bolt_request(3, payload(3))).await.unwrap();
    let elapsed = began.elapsed();
    assert_eq!(wire_status(&reply), Some(BOLT_TIMEOUT));
    assert!(
        elapsed >= Duration::from_millis(195) && elapsed < Duration::from_millis(700),
        "{elapsed:?}"
    );
    gateway.stop(GRACE).await;
}

/// A Dubbo oneway call (flag 0x82: request, no two-way bit).
fn dubbo_oneway(id: u64) -> Frame {
    let mut frame = dubbo_call(id, "fire and forget");
    frame.kind = FrameKind::Oneway;
    frame.meta.flags = 0x82;
    frame.set_wire(None);
    decoded(&DubboCodec::new(), &frame)
}

#[tokio::test]
async fn oneway_requests_never_get_a_reply_even_on_failure() {
    let hanging = MockUpstream::builder(bolt()).mode(Mode::Hang).start();
    for hosts in [vec![closed_port()], vec![hanging.addr()]] {
        let doc = one_cluster(&hosts, json!({ "timeout": "150ms" }));
        let (gateway, addr) = start(&doc).await;

        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        for id in 0..5 {
            client.send(&bolt_oneway(id, payload(id))).await.unwrap();
        }
        // The first frame back answers the two-way request, not a oneway.
        let reply = client.call(&bolt_request(99, payload(99))).await.unwrap();
        assert_eq!(reply.request_id, 99, "{hosts:?}");
        assert_ne!(wire_status(&reply), Some(BOLT_OK));
        let more = tokio::time::timeout(Duration::from_millis(400), client.recv()).await;
        assert!(more.is_err(), "nothing else arrives: {more:?}");

        let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
        for id in 0..5 {
            client.send(&dubbo_oneway(id)).await.unwrap();
        }
        let reply = client.call(&dubbo_call(99, "two-way")).await.unwrap();
        assert_eq!(reply.request_id, 99, "{hosts:?}");
        let more = tokio::time::timeout(Duration::from_millis(400), client.recv()).await;
        assert!(more.is_err(), "nothing else arrives: {more:?}");
        gateway.stop(GRACE).await;
    }
    assert_eq!(
        hanging
            .counters()
            .oneways
            .load(std::sync::atomic::Ordering::Relaxed),
        5,
        "the bolt oneways reached the hanging host"
    );
}

/// Waits until `mocks` received `n` requests in all.
async fn received(mocks: &[&MockUpstream], n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while mocks.iter().map(|m| m.requests()).sum::<u64>() < n {
        assert!(
            Instant::now() < deadline,
            "the upstreams never received {n} requests"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_upstream_killed_mid_flight_fails_or_retries_its_requests_only() {
    let slow = Duration::from_millis(400);
    // No policy: each in-flight request gets CONNECTION_CLOSED, the
    // downstream connection stays and serves the next request.
    let upstream = MockUpstream::builder(bolt()).delay(slow, slow).start();
    let (gateway, addr) = start(&one_cluster(&[upstream.addr()], json!({}))).await;
    let client = FramedClient::connect(addr, bolt()).await.unwrap();
    let (mut writer, mut reader) = client.split();
    for id in 0..8 {
        writer.send(&bolt_request(id, payload(id))).await.unwrap();
    }
    received(&[&upstream], 8).await;
    let killed = Instant::now();
    upstream.kill_connections();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let reply = reader
            .recv()
            .await
            .unwrap()
            .expect("the connection stays open");
        assert_eq!(
            wire_status(&reply),
            Some(BOLT_CONNECTION_CLOSED),
            "id {}",
            reply.request_id
        );
        ids.push(reply.request_id);
    }
    assert!(
        killed.elapsed() < slow,
        "answered at the reset, not at the delay"
    );
    ids.sort_unstable();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
    upstream.set_delay(Duration::ZERO, Duration::ZERO);
    writer.send(&bolt_request(8, payload(8))).await.unwrap();
    let reply = reader
        .recv()
        .await
        .unwrap()
        .expect("served after the reset");
    assert_echo(&reply, 8, "after the reset");
    gateway.stop(GRACE).await;

    // `retry_on: true`: the requests in flight on the killed host are
    // retried on the other one, every request answered by an echo.
    let a = MockUpstream::builder(bolt()).delay(slow, slow).start();
    let b = MockUpstream::builder(bolt()).delay(slow, slow).start();
    let doc = one_cluster(&[a.addr(), b.addr()], retry_on("2s", 1));
    let (gateway, addr) = start(&doc).await;
    let requests: Vec<Frame> = (0..8).map(|id| bolt_request(id, payload(id))).collect();
    let load = tokio::spawn(pipeline(addr, bolt(), requests));
    received(&[&a, &b], 8).await;
    let on_a = a.requests();
    assert!(on_a >= 1, "round robin sent some requests to a");
    a.kill_connections();
    let replies = load.await.unwrap();
    for (id, reply) in &replies {
        assert_echo(reply, *id, "retried after the reset");
    }
    assert_eq!(a.requests(), on_a, "nothing retried on the killed host");
    assert_eq!(b.requests(), 8, "b answered its own requests and a's");
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn requests_never_written_before_their_connection_died_are_retried_elsewhere() {
    // The stalled host reads nothing: the first big request fills the
    // socket buffers and every later request for that host waits in the
    // pool's queue, unwritten. When the connection dies, those are safe to
    // send elsewhere even under MOSN's implicit policy (connect failures
    // only); the one that was written is not, and is answered with an
    // error.
    // A small receive buffer keeps the kernel from absorbing the big frame
    // (an idle socket's buffer grows with incoming data up to tcp_rmem's
    // max), which would let later requests truly be written.
    let stalled = MockUpstream::builder(bolt()).recv_buffer(64 << 10).start();
    let good = MockUpstream::start(bolt());
    let hosts = [stalled.addr(), good.addr()];
    let (gateway, addr) = start(&one_cluster(&hosts, json!({ "timeout": "20s" }))).await;
    // Both upstream connections exist before the load: otherwise requests
    // waiting for the stalled host's first connection are queued in the
    // order they wake, and small ones may be written before the big one
    // (truly written, so rightly not retried).
    let mut warm = FramedClient::connect(addr, bolt()).await.unwrap();
    for id in 1000..1002 {
        let reply = warm.call(&bolt_request(id, payload(id))).await.unwrap();
        assert_echo(&reply, id, "warm-up");
    }
    assert_eq!((stalled.requests(), good.requests()), (1, 1), "one each");
    stalled.set_mode(Mode::Stall);
    let big = Bytes::from(vec![b'x'; 12 << 20]);
    let smalls = 40u64;
    // Two big requests first: round robin gives one to each host.
    let mut requests = vec![bolt_request(0, big.clone()), bolt_request(1, big.clone())];
    requests.extend((2..2 + smalls).map(|id| bolt_request(id, payload(id))));
    let load = tokio::spawn(pipeline(addr, bolt(), requests));
    // The good host answers its half; the other half waits for the
    // stalled one.
    received(&[&good], 1 + 1 + smalls / 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_kill = good.requests() - 1;
    assert!(
        before_kill < 1 + smalls,
        "some requests wait for the stalled host ({before_kill} answered)"
    );
    assert_eq!(stalled.requests(), 1, "the stalled host read nothing more");
    stalled.kill_connections();
    let replies = load.await.unwrap();
    let mut failed = Vec::new();
    for (id, reply) in &replies {
        match wire_status(reply) {
            Some(BOLT_OK) if *id < 2 => assert_eq!(reply.body(), big, "big request {id}"),
            Some(BOLT_OK) => assert_echo(reply, *id, "retried after the reset"),
            Some(BOLT_CONNECTION_CLOSED) => failed.push(*id),
            other => panic!("request {id}: status {other:?}"),
        }
    }
    assert_eq!(
        failed.len(),
        1,
        "only the written request failed: {failed:?}"
    );
    assert!(failed[0] < 2, "and it is the big one the stalled host held");
    assert_eq!(
        good.requests(),
        1 + 1 + smalls,
        "every small request was answered by the good host, once (after the warm-up)"
    );
    // The downstream connection survived the upstream's death (`pipeline`
    // read every reply on it); the host, reading again, serves again.
    stalled.set_mode(Mode::Echo);
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    for id in 100..104 {
        let reply = client.call(&bolt_request(id, payload(id))).await.unwrap();
        assert_echo(&reply, id, "after the host reads again");
    }
    assert!(stalled.requests() >= 2, "round robin reached it again");
    gateway.stop(GRACE).await;
}

#[tokio::test]
async fn a_dubbo_request_written_before_a_reset_is_retried_only_with_a_policy() {
    // Dubbo OK (dubbo.md §5).
    const DUBBO_OK: u32 = 20;
    let dropping = MockUpstream::builder(dubbo()).mode(Mode::Drop).start();
    let good = MockUpstream::start(dubbo());
    let hosts = [dropping.addr(), good.addr()];
    let call = |id: u64| dubbo_call(id, &format!("arg-{id}"));

    // The implicit policy: a request the dropping host read is answered
    // with an error, never sent twice.
    let (gateway, addr) = start(&one_cluster(&hosts, json!({}))).await;
    let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
    let mut failed = 0;
    for id in 0..10 {
        let request = call(id);
        let reply = client.call(&request).await.unwrap();
        assert_eq!(reply.request_id, id);
        if wire_status(&reply) == Some(DUBBO_OK) {
            assert_eq!(reply.body(), request.body(), "request {id}: its own echo");
        } else {
            failed += 1;
        }
    }
    assert!(
        failed >= 1,
        "round robin sent some requests to the dropping host"
    );
    assert_eq!(
        dropping.requests(),
        failed,
        "a written request is never sent twice"
    );
    assert_eq!(good.requests(), 10 - failed);
    gateway.stop(GRACE).await;

    // `retry_on: true` marks them retriable: every request answered.
    let before = (dropping.requests(), good.requests());
    let (gateway, addr) = start(&one_cluster(&hosts, retry_on("1s", 1))).await;
    let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
    for id in 0..10 {
        let request = call(id);
        let reply = client.call(&request).await.unwrap();
        assert_eq!(
            (reply.request_id, wire_status(&reply)),
            (id, Some(DUBBO_OK))
        );
        assert_eq!(reply.body(), request.body(), "request {id}: its own echo");
    }
    assert!(
        dropping.requests() > before.0,
        "some first tries were dropped"
    );
    assert_eq!(good.requests() - before.1, 10);
    gateway.stop(GRACE).await;
}
