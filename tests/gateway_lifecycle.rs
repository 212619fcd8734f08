//! The gateway's lifecycle in process: a graceful stop drains in-flight
//! requests, a short grace ends the stop on time, reloads swap routes and
//! listeners under load without failing a request, and an invalid reload
//! changes nothing.

mod common;

use bytes::{Bytes, BytesMut};
use common::{bolt, cluster, document, route, start, wire_status};
use meshgate::config;
use meshgate::control::{ControlError, Gateway, State};
use meshgate_codecs::{Frame, FrameKind};
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::{MockUpstream, echo_response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

const BOLT_OK: u32 = 0;

/// An echo mock whose answers start with `tag` and a colon, so a client
/// can tell which upstream answered; answers after `delay`.
fn tagged(tag: &'static str, delay: Duration) -> MockUpstream {
    MockUpstream::builder(bolt())
        .delay(delay, delay)
        .responder(move |req: &Frame| {
            let mut resp = echo_response(req);
            let mut body = BytesMut::from(format!("{tag}:").as_bytes());
            body.extend_from_slice(req.body());
            resp.set_body(body.freeze());
            Some(resp)
        })
        .start()
}

/// The tag of the upstream that answered `reply` to a request with body
/// `sent`.
fn answered_by(reply: &Frame, sent: &[u8]) -> String {
    assert_eq!(wire_status(reply), Some(BOLT_OK), "id {}", reply.request_id);
    let body = std::str::from_utf8(reply.body()).expect("tagged echoes are text");
    let (tag, echoed) = body.split_once(':').expect("a tagged echo");
    assert_eq!(
        echoed.as_bytes(),
        sent,
        "id {}: its own body",
        reply.request_id
    );
    tag.to_owned()
}

/// A document routing every service to `cluster_name`, defining `clusters`.
fn routed_to(cluster_name: &str, clusters: Value) -> Value {
    document(
        "bolt",
        json!([route(".*", cluster_name)]),
        clusters,
        json!([]),
    )
}

/// Reloads `doc` into `gateway`, keeping the running clusters' hosts.
async fn reload(gateway: &Gateway, doc: &Value) -> Result<(), ControlError> {
    let config = config::load_str(&doc.to_string(), Some(&gateway.config().clusters))
        .unwrap_or_else(|e| panic!("test config invalid: {e}"));
    gateway.reload(config).await
}

/// Every state `gateway` goes through from now until `Stopped`.
fn record_states(gateway: &Gateway) -> tokio::task::JoinHandle<Vec<State>> {
    let mut rx: watch::Receiver<State> = gateway.watch_state();
    tokio::spawn(async move {
        let mut seen = vec![*rx.borrow_and_update()];
        while *seen.last().expect("one state") != State::Stopped {
            if rx.changed().await.is_err() {
                break;
            }
            seen.push(*rx.borrow_and_update());
        }
        seen
    })
}

async fn connect_refused(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_err()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn stop_drains_in_flight_requests() {
    let slow = Duration::from_millis(500);
    let upstream = tagged("a", slow);
    let doc = routed_to(
        "a",
        json!([cluster("a", "LB_ROUNDROBIN", &[upstream.addr()])]),
    );
    let (gateway, addr) = start(&doc).await;
    let gateway = Arc::new(gateway);
    let states = record_states(&gateway);

    // Four connections with five requests each in flight.
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for conn in 0..4u64 {
        let (mut writer, reader) = FramedClient::connect(addr, bolt()).await.unwrap().split();
        for i in 0..5 {
            let id = conn * 100 + i;
            writer
                .send(&bolt_request(id, format!("r{id}")))
                .await
                .unwrap();
        }
        readers.push(reader);
        writers.push(writer);
    }
    wait_for("20 requests upstream", || upstream.requests() == 20).await;

    let began = Instant::now();
    let stop = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.stop(Duration::from_secs(5)).await }
    });
    wait_for("Draining", || gateway.state() == State::Draining).await;
    assert!(
        connect_refused(addr).await,
        "no new connection while draining"
    );

    // Every in-flight request is answered, then its connection closes.
    for (conn, reader) in readers.iter_mut().enumerate() {
        let mut ids = Vec::new();
        for _ in 0..5 {
            let reply = reader
                .recv()
                .await
                .unwrap()
                .expect("answered before the close");
            let id = reply.request_id;
            assert_eq!(answered_by(&reply, format!("r{id}").as_bytes()), "a");
            ids.push(id);
        }
        ids.sort_unstable();
        let base = conn as u64 * 100;
        assert_eq!(ids, (base..base + 5).collect::<Vec<_>>());
        assert!(reader.recv().await.unwrap().is_none(), "then closed");
    }
    stop.await.unwrap();
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "stop ended with the last request: {took:?}"
    );
    assert_eq!(gateway.state(), State::Stopped);
    assert_eq!(gateway.connections(), 0);
    assert_eq!(
        states.await.unwrap(),
        [State::Running, State::Draining, State::Stopped]
    );
    assert!(
        connect_refused(addr).await,
        "no new connection once stopped"
    );
    drop(writers);
}

#[tokio::test]
async fn a_grace_shorter_than_the_work_ends_the_stop_at_the_grace() {
    let upstream = tagged("a", Duration::from_secs(3));
    let doc = routed_to(
        "a",
        json!([cluster("a", "LB_ROUNDROBIN", &[upstream.addr()])]),
    );
    let (gateway, addr) = start(&doc).await;
    let states = record_states(&gateway);
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    client.send(&bolt_request(1, "slow")).await.unwrap();
    wait_for("the request upstream", || upstream.requests() == 1).await;

    let grace = Duration::from_millis(300);
    let began = Instant::now();
    gateway.stop(grace).await;
    let took = began.elapsed();
    assert!(
        took >= grace && took < grace + Duration::from_millis(500),
        "stopped at the grace: {took:?}"
    );
    assert_eq!(gateway.state(), State::Stopped);
    assert_eq!(
        states.await.unwrap(),
        [State::Running, State::Draining, State::Stopped]
    );
    // What was left is closed, not served on by a stopped gateway.
    let left = tokio::time::timeout(Duration::from_secs(1), client.recv()).await;
    assert!(
        matches!(left, Ok(Ok(None)) | Ok(Err(_))),
        "the connection left at the grace is closed: {left:?}"
    );
    assert_eq!(gateway.connections(), 0);
    // Stopping again is a no-op.
    gateway.stop(grace).await;
    assert_eq!(gateway.state(), State::Stopped);
}

/// One client connection sending requests back to back (up to `window` in
/// flight) until `stop` turns true. Returns `(sent at, reply)` pairs.
async fn keep_calling(
    addr: SocketAddr,
    conn: u64,
    window: usize,
    stop: watch::Receiver<bool>,
) -> Vec<(Instant, Bytes, Frame)> {
    let (mut writer, mut reader) = FramedClient::connect(addr, bolt())
        .await
        .expect("connect")
        .split();
    let mut in_flight = std::collections::HashMap::new();
    let mut done = Vec::new();
    let mut next = 0u64;
    loop {
        while in_flight.len() < window && !*stop.borrow() {
            let id = conn * 1_000_000 + next;
            next += 1;
            let body = Bytes::from(format!("c{conn}-{id}"));
            in_flight.insert(id, (Instant::now(), body.clone()));
            writer
                .send(&bolt_request(id, body))
                .await
                .expect("send a request");
        }
        if in_flight.is_empty() {
            return done;
        }
        let reply = tokio::time::timeout(Duration::from_secs(5), reader.recv())
            .await
            .expect("a reply in time")
            .expect("read a reply")
            .expect("the connection stays open");
        let (sent, body) = in_flight
            .remove(&reply.request_id)
            .expect("a reply to a request in flight");
        done.push((sent, body, reply));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_swaps_the_route_and_fails_nothing() {
    let delay = Duration::from_millis(5);
    let (old_a, old_b) = (tagged("old", delay), tagged("old", delay));
    let new = tagged("new", delay);
    let doc = routed_to(
        "old_c",
        json!([cluster(
            "old_c",
            "LB_ROUNDROBIN",
            &[old_a.addr(), old_b.addr()]
        )]),
    );
    let (gateway, addr) = start(&doc).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let load: Vec<_> = (0..4)
        .map(|conn| tokio::spawn(keep_calling(addr, conn, 8, stop_rx.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The new configuration routes to another cluster, and the old cluster
    // is gone (its pools close once their requests are answered).
    let reloading = Instant::now();
    let doc = routed_to(
        "new_c",
        json!([cluster("new_c", "LB_ROUNDROBIN", &[new.addr()])]),
    );
    reload(&gateway, &doc)
        .await
        .expect("the reload is accepted");
    let reloaded = Instant::now();
    assert_eq!(gateway.state(), State::Running);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send_replace(true);

    let (mut before, mut after, mut during) = (0, 0, 0);
    let (mut by_old, mut by_new) = (0, 0);
    for run in load {
        for (sent, body, reply) in run.await.unwrap() {
            let tag = answered_by(&reply, &body);
            match tag.as_str() {
                "old" => by_old += 1,
                _ => by_new += 1,
            }
            if sent >= reloaded {
                assert_eq!(tag, "new", "sent after the reload");
                after += 1;
            } else if sent < reloading {
                before += 1;
            } else {
                // Sent while the reload ran: either cluster may answer.
                during += 1;
            }
        }
    }
    eprintln!(
        "reload under load: {before} sent before, {during} during, {after} after; \
         answered by old {by_old}, by new {by_new}"
    );
    assert!(
        before > 50 && after > 50,
        "load on both sides: {before} / {after}"
    );
    assert_eq!(
        old_a.requests() + old_b.requests(),
        by_old,
        "each request reached one upstream"
    );
    assert_eq!(new.requests(), by_new);
    assert!(old_a.requests() > 0 && old_b.requests() > 0);
    gateway.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_reload_adds_and_removes_listeners() {
    let upstream = tagged("a", Duration::from_millis(300));
    let clusters = json!([cluster("a", "LB_ROUNDROBIN", &[upstream.addr()])]);
    let doc = routed_to("a", clusters.clone());
    let (gateway, rpc_addr) = start(&doc).await;

    // Add a listener `extra` next to `rpc`.
    let mut both = doc.clone();
    let mut extra = both["servers"][0]["listeners"][0].clone();
    extra["name"] = json!("extra");
    both["servers"][0]["listeners"]
        .as_array_mut()
        .expect("listeners")
        .push(extra);
    reload(&gateway, &both).await.expect("adding a listener");
    let extra_addr = gateway
        .listener_addr("extra")
        .await
        .expect("extra is bound");
    assert_eq!(
        gateway.listener_addr("rpc").await,
        Some(rpc_addr),
        "rpc kept its socket"
    );
    for addr in [rpc_addr, extra_addr] {
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        let reply = client.call(&bolt_request(1, "hi")).await.unwrap();
        assert_eq!(answered_by(&reply, b"hi"), "a");
    }

    // Remove `rpc` with a request in flight on it.
    let seen = upstream.requests();
    let mut on_rpc = FramedClient::connect(rpc_addr, bolt()).await.unwrap();
    on_rpc.send(&bolt_request(7, "in flight")).await.unwrap();
    wait_for("the request upstream", || upstream.requests() == seen + 1).await;
    let mut only_extra = both.clone();
    only_extra["servers"][0]["listeners"]
        .as_array_mut()
        .expect("listeners")
        .remove(0);
    reload(&gateway, &only_extra)
        .await
        .expect("removing a listener");
    assert_eq!(gateway.listener_addr("rpc").await, None);
    assert!(connect_refused(rpc_addr).await, "rpc no longer accepts");
    let reply = on_rpc
        .recv()
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 7));
    assert_eq!(answered_by(&reply, b"in flight"), "a");
    let mut client = FramedClient::connect(extra_addr, bolt()).await.unwrap();
    let reply = client.call(&bolt_request(2, "still")).await.unwrap();
    assert_eq!(answered_by(&reply, b"still"), "a");
    gateway.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_invalid_reload_is_refused_and_changes_nothing() {
    let upstream = tagged("a", Duration::ZERO);
    let doc = routed_to(
        "a",
        json!([cluster("a", "LB_ROUNDROBIN", &[upstream.addr()])]),
    );
    let (gateway, addr) = start(&doc).await;
    let before = gateway.config();
    let dir = std::env::temp_dir().join(format!("meshgate-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let served = |gateway: &Gateway| {
        assert_eq!(gateway.state(), State::Running);
        assert!(
            Arc::ptr_eq(&gateway.config(), &before),
            "the configuration is unchanged"
        );
    };
    let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
    let mut call = async |id| {
        let reply = client.call(&bolt_request(id, "x")).await.unwrap();
        assert_eq!(answered_by(&reply, b"x"), "a");
    };

    // Not JSON; an unknown load balancer; a listener naming a router that
    // does not exist; a missing file.
    let bad_lb = routed_to("a", json!([cluster("a", "LB_NOPE", &[upstream.addr()])]));
    let mut bad_router = doc.clone();
    common::rpc_listener(&mut bad_router)["filter_chains"][0]["filters"][0]["config"]["router_config_name"] =
        json!("nowhere");
    for (name, text) in [
        ("syntax.json", "{ \"servers\": [".to_owned()),
        ("lb.json", bad_lb.to_string()),
        ("router.json", bad_router.to_string()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let refused = gateway.reload_file(&path).await;
        assert!(
            matches!(refused, Err(ControlError::Config(_))),
            "{name}: {refused:?}"
        );
        served(&gateway);
        call(1).await;
    }
    let refused = gateway.reload_file(&dir.join("missing.json")).await;
    assert!(
        matches!(refused, Err(ControlError::Config(_))),
        "{refused:?}"
    );
    served(&gateway);

    // A new listener on a port that is taken: nothing is bound, nothing
    // swapped.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut clash = doc.clone();
    let mut extra = clash["servers"][0]["listeners"][0].clone();
    extra["name"] = json!("extra");
    extra["address"] = json!(taken.local_addr().unwrap().to_string());
    clash["servers"][0]["listeners"]
        .as_array_mut()
        .expect("listeners")
        .push(extra);
    let refused = reload(&gateway, &clash).await;
    assert!(
        matches!(refused, Err(ControlError::Bind { .. })),
        "{refused:?}"
    );
    served(&gateway);
    assert_eq!(gateway.listener_addr("extra").await, None);
    assert_eq!(gateway.listener_addr("rpc").await, Some(addr));
    call(2).await;

    // Once stopped, no reload.
    gateway.stop(Duration::from_secs(1)).await;
    let refused = reload(&gateway, &doc).await;
    assert!(
        matches!(refused, Err(ControlError::NotRunning(State::Stopped))),
        "{refused:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
