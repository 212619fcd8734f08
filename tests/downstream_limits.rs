//! A listener's bounds on its downstream connections: a thousand idle
//! connections cost bounded memory and disturb nobody; slowloris frames
//! are cut off at the frame read timeout (with the codec's error reply
//! when the request can be named); frames over the listener's
//! `max_frame_len` are refused; connections over `max_connections` are
//! closed as they arrive; the idle timeout has MOSN's default; and a
//! graceful close says GoAway where the protocol has one.
//!
//! (Garbage after a valid frame, absurd lengths at the default limit and
//! the configured idle timeout are covered in `gateway_malformed.rs`.)

mod common;

use bytes::Bytes;
use common::{
    bolt, bounded, cluster, document, dubbo, dubbo_call, extend_config, route, rpc_listener, start,
    wire_status,
};
use meshgate::config::ListenerLimits;
use meshgate::control::Gateway;
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::mem::{nofile_limit, rss_kib};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BOLT_OK: u32 = 0;
const BOLT_CODEC_EXCEPTION: u32 = 9;
const DUBBO_OK: u32 = 20;
const DUBBO_SERVICE: &str = common::DUBBO_SERVICE;

const GRACE: Duration = Duration::from_secs(1);

/// A `protocol` listener routing bolt to a bolt mock and Dubbo to a Dubbo
/// mock; `tweak` changes the document before the gateway starts.
async fn setup(
    protocol: &str,
    tweak: impl FnOnce(&mut Value),
) -> (Gateway, SocketAddr, MockUpstream, MockUpstream) {
    let bolt_mock = MockUpstream::start(bolt());
    let dubbo_mock = MockUpstream::start(dubbo());
    let mut doc = document(
        protocol,
        json!([
            route("com.example.Echo:1.0", "bolt_c"),
            route(DUBBO_SERVICE, "dubbo_c"),
        ]),
        json!([
            cluster("bolt_c", "LB_ROUNDROBIN", &[bolt_mock.addr()]),
            cluster("dubbo_c", "LB_ROUNDROBIN", &[dubbo_mock.addr()]),
        ]),
        json!([]),
    );
    tweak(&mut doc);
    let (gateway, addr) = start(&doc).await;
    (gateway, addr, bolt_mock, dubbo_mock)
}

fn encoded(codec: &dyn FrameCodec, frame: &Frame) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    codec.encode(frame, &mut buf).expect("encodes");
    buf.to_vec()
}

/// `n` bolt calls on one connection, each checked.
async fn served(addr: SocketAddr, first_id: u64, n: u64) {
    let mut client = FramedClient::connect(addr, bolt()).await.expect("connect");
    for id in first_id..first_id + n {
        let body = Bytes::from(format!("payload-{id}"));
        let reply = client
            .call(&bolt_request(id, body.clone()))
            .await
            .expect("a reply");
        assert_eq!(wire_status(&reply), Some(BOLT_OK), "request {id}");
        assert_eq!((reply.request_id, reply.body()), (id, &body[..]));
    }
}

/// Reads until the peer closes (or `limit` passes: then panics); returns
/// the bytes read and when the close came.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Instant) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (bytes, Instant::now()),
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("not closed within {limit:?}; read {} bytes", bytes.len()),
        }
    }
}

fn decode_all(codec: &dyn FrameCodec, bytes: &[u8]) -> Vec<Frame> {
    let mut buf = bytes::BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = codec
        .decode(&mut buf, &meshgate_codecs::Limits::default())
        .expect("the gateway writes valid frames")
    {
        frames.push(frame);
    }
    frames
}

#[tokio::test]
async fn a_thousand_idle_connections_cost_bounded_memory_and_disturb_nobody() {
    bounded(async {
        // Both ends of every connection live in this process: stay well
        // inside the descriptor limit.
        let fds = nofile_limit().unwrap_or(1024);
        let idle_count = 1000usize.min((fds.saturating_sub(256) / 2) as usize);
        assert!(idle_count >= 200, "ulimit -n {fds} is too small for this test");
        let (gateway, addr, _bolt_mock, _dubbo_mock) = setup("bolt", |_| {}).await;
        served(addr, 0, 50).await;
        let before = rss_kib().expect("VmRSS");

        let mut idle = Vec::with_capacity(idle_count);
        for _ in 0..idle_count {
            idle.push(TcpStream::connect(addr).await.expect("connect an idle client"));
        }
        // Every idle connection reached its driver.
        let deadline = Instant::now() + Duration::from_secs(10);
        while gateway.connections() < idle_count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gateway.connections() >= idle_count, "{} connections", gateway.connections());
        let holding = rss_kib().expect("VmRSS");

        // Valid traffic on other connections, while the idle ones sit.
        let began = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..8u64 {
            tasks.push(tokio::spawn(served(addr, 10_000 + c * 1000, 250)));
        }
        for task in tasks {
            task.await.expect("traffic succeeds beside idle connections");
        }
        let traffic = began.elapsed();
        let after = rss_kib().expect("VmRSS");
        let per_conn = (holding.saturating_sub(before)) * 1024 / idle_count as u64;
        println!(
            "{idle_count} idle connections: VmRSS {before} → {holding} KiB ({per_conn} B per connection, both ends), \
             after 2000 requests {after} KiB; traffic took {traffic:?}"
        );
        assert!(
            per_conn < 64 * 1024,
            "{per_conn} bytes per idle connection (both ends in this process)"
        );
        assert!(
            after <= holding + 8 * 1024,
            "RSS grew from {holding} to {after} KiB while idle connections were held"
        );
        // Still open: nothing closed them (the idle timeout is 90 s).
        let mut probe = [0u8; 1];
        for stream in idle.iter_mut().step_by(97) {
            let read = tokio::time::timeout(Duration::from_millis(5), stream.read(&mut probe)).await;
            assert!(read.is_err(), "idle connection still open: {read:?}");
        }
        drop(idle);
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn slowloris_frames_are_cut_off_at_the_frame_read_timeout() {
    bounded(async {
        let limit = Duration::from_millis(800);
        let (gateway, addr, _bolt_mock, _dubbo_mock) = setup("bolt", |doc| {
            extend_config(doc, json!({ "frame_read_timeout": "800ms" }));
        })
        .await;
        let request = encoded(
            bolt().as_ref(),
            &bolt_request(77, Bytes::from(vec![b'x'; 200])),
        );

        // Header at once, then the body one byte every 100 ms (the frame
        // would need 20 s): the codec's error reply names request 77.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let header = 40;
        stream.write_all(&request[..header]).await.unwrap();
        let first_byte = Instant::now();
        let trickle = tokio::spawn(async move {
            for byte in &request[header..] {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
            stream
        });
        // Meanwhile other connections are served.
        served(addr, 0, 20).await;
        let mut stream = trickle.await.unwrap();
        let (bytes, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        let frames = decode_all(bolt().as_ref(), &bytes);
        assert_eq!(frames.len(), 1, "one error reply: {frames:?}");
        assert_eq!(
            (frames[0].kind, frames[0].request_id),
            (FrameKind::Response, 77)
        );
        assert_eq!(wire_status(&frames[0]), Some(BOLT_CODEC_EXCEPTION));
        let took = closed - first_byte;
        assert!(
            took >= limit - Duration::from_millis(50) && took < limit * 4,
            "closed {took:?} after the frame's first byte (limit {limit:?})"
        );

        // Trickled from its very first byte: nothing names a request, the
        // connection is just closed within the bound.
        let request = encoded(bolt().as_ref(), &bolt_request(78, "slow"));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let began = Instant::now();
        let mut sent = 0;
        let closed = loop {
            if sent < request.len() && stream.write_all(&request[sent..=sent]).await.is_ok() {
                sent += 1;
            }
            let mut probe = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(150), stream.read(&mut probe)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break began.elapsed(),
                Ok(Ok(n)) => panic!("no reply expected, got {n} bytes"),
                Err(_) => assert!(began.elapsed() < Duration::from_secs(5), "never closed"),
            }
        };
        assert!(sent < request.len(), "closed before the frame was complete");
        assert!(closed < limit * 4, "closed after {closed:?}");

        // A frame sent whole is not affected, nor one in two halves well
        // inside the bound.
        served(addr, 100, 5).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        let request = encoded(bolt().as_ref(), &bolt_request(5, "halves"));
        let (first, second) = request.split_at(request.len() / 2);
        client.send_raw(first).await.unwrap();
        tokio::time::sleep(limit / 4).await;
        client.send_raw(second).await.unwrap();
        let reply = client.recv().await.unwrap().expect("answered");
        assert_eq!((reply.request_id, wire_status(&reply)), (5, Some(BOLT_OK)));
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn a_frame_over_the_listeners_max_frame_len_is_refused_and_closed() {
    bounded(async {
        let (gateway, addr, _bolt_mock, _dubbo_mock) = setup("bolt", |doc| {
            extend_config(doc, json!({ "max_frame_len": 4096 }));
        })
        .await;
        // Under the limit: served.
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        let small = bolt_request(1, Bytes::from(vec![b's'; 1024]));
        let reply = client.call(&small).await.unwrap();
        assert_eq!(wire_status(&reply), Some(BOLT_OK));
        // Over it: the error reply for that request, then a close, before
        // the body's bytes are even needed.
        let big = encoded(
            bolt().as_ref(),
            &bolt_request(2, Bytes::from(vec![b'b'; 10_000])),
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&big[..64]).await.unwrap();
        let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        let frames = decode_all(bolt().as_ref(), &bytes);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].request_id, 2);
        assert_eq!(wire_status(&frames[0]), Some(BOLT_CODEC_EXCEPTION));
        // The other connection is unaffected.
        let reply = client.call(&bolt_request(3, "still")).await.unwrap();
        assert_eq!(wire_status(&reply), Some(BOLT_OK));
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn connections_over_the_listeners_max_are_closed_at_once() {
    bounded(async {
        const MAX: usize = 3;
        let (gateway, addr, _bolt_mock, _dubbo_mock) = setup("Auto", |doc| {
            extend_config(doc, json!({ "max_connections": MAX }));
        })
        .await;
        let mut held = Vec::new();
        for i in 0..MAX as u64 {
            let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
            let reply = client.call(&bolt_request(i, "held")).await.unwrap();
            assert_eq!(wire_status(&reply), Some(BOLT_OK));
            held.push(client);
        }
        // Extra connections: accepted, then closed at once, unanswered.
        for _ in 0..5 {
            let mut extra = TcpStream::connect(addr).await.unwrap();
            let _ = extra
                .write_all(&encoded(bolt().as_ref(), &bolt_request(99, "extra")))
                .await;
            let began = Instant::now();
            let (bytes, _) = read_until_closed(&mut extra, Duration::from_secs(2)).await;
            assert!(bytes.is_empty(), "no reply over the limit");
            assert!(began.elapsed() < Duration::from_secs(1), "closed at once");
        }
        let counts = gateway.listener_stats("rpc").await.expect("stats");
        assert_eq!(counts.refused_over_limit, 5);
        // The held connections still serve.
        for (i, client) in held.iter_mut().enumerate() {
            let id = 100 + i as u64;
            let reply = client.call(&bolt_request(id, "again")).await.unwrap();
            assert_eq!((reply.request_id, wire_status(&reply)), (id, Some(BOLT_OK)));
        }
        // One closes: its slot is free again (once the gateway has seen
        // the close).
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
            match client.call(&bolt_request(200, "free slot")).await {
                Ok(reply) => {
                    assert_eq!(wire_status(&reply), Some(BOLT_OK));
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the freed slot was never reused: {e}"),
            }
        }
        gateway.stop(GRACE).await;
    })
    .await;
}

#[tokio::test]
async fn the_idle_and_frame_timeouts_have_mosns_defaults() {
    let doc = |tweak: &dyn Fn(&mut Value)| {
        let mut doc = document("bolt", json!([]), json!([]), json!([]));
        tweak(&mut doc);
        let config = meshgate::config::load_str(&doc.to_string(), None).expect("valid");
        config.listener("rpc").expect("rpc").limits
    };
    let limits = doc(&|_| {});
    assert_eq!(limits.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(limits.frame_read_timeout, Some(Duration::from_secs(15)));
    assert_eq!(limits.max_connections, None);
    assert!(!limits.bolt_goaway);
    let limits = doc(&|d| {
        rpc_listener(d)["connection_idle_timeout"] = json!(0);
        extend_config(
            d,
            json!({ "frame_read_timeout": "0s", "max_connections": 10, "bolt": { "enable_bolt_goaway": true } }),
        );
    });
    assert_eq!(limits.idle_timeout, None, "0 turns the idle timeout off");
    assert_eq!(limits.frame_read_timeout, None);
    assert_eq!(limits.max_connections, Some(10));
    assert!(limits.bolt_goaway, "MOSN's per-protocol form");
    let limits = doc(&|d| extend_config(d, json!({ "enable_bolt_goaway": true })));
    assert!(limits.bolt_goaway, "MOSN's flat form");
    assert_eq!(
        ListenerLimits::default().idle_timeout,
        Some(ListenerLimits::DEFAULT_IDLE_TIMEOUT)
    );
}

/// Stops the gateway while `client` is connected and returns the frames
/// the client got before the close.
async fn frames_at_stop(gateway: Gateway, mut client: FramedClient) -> Vec<Frame> {
    let stop = tokio::spawn(async move { gateway.stop(Duration::from_secs(2)).await });
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), client.recv()).await {
            Ok(Ok(Some(frame))) => frames.push(frame),
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("not closed at stop; got {frames:?}"),
        }
    }
    stop.await.expect("the stop finishes");
    frames
}

#[tokio::test]
async fn a_graceful_close_says_goaway_where_the_protocol_has_one() {
    bounded(async {
        // Dubbo: the read-only event, at stop.
        let (gateway, addr, _b, _d) = setup("Auto", |_| {}).await;
        let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
        let reply = client.call(&dubbo_call(1, "hi")).await.unwrap();
        assert_eq!(wire_status(&reply), Some(DUBBO_OK));
        let frames = frames_at_stop(gateway, client).await;
        let kinds: Vec<_> = frames.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FrameKind::GoAway], "Dubbo gets its read-only event");

        // bolt: nothing unless enable_bolt_goaway (SOFA clients do not know
        // MOSN's command 100).
        let (gateway, addr, _b, _d) = setup("Auto", |_| {}).await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        client.call(&bolt_request(1, "hi")).await.unwrap();
        assert!(frames_at_stop(gateway, client).await.is_empty());
        let (gateway, addr, _b, _d) = setup("Auto", |doc| {
            extend_config(doc, json!({ "enable_bolt_goaway": true }));
        })
        .await;
        let mut client = FramedClient::connect(addr, bolt()).await.unwrap();
        client.call(&bolt_request(1, "hi")).await.unwrap();
        let kinds: Vec<_> = frames_at_stop(gateway, client)
            .await
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(kinds, [FrameKind::GoAway]);

        // At the idle timeout too.
        let (gateway, addr, _b, _d) = setup("Auto", |doc| {
            rpc_listener(doc)["connection_idle_timeout"] = json!("300ms");
        })
        .await;
        let mut client = FramedClient::connect(addr, dubbo()).await.unwrap();
        client.call(&dubbo_call(2, "hi")).await.unwrap();
        let goaway = tokio::time::timeout(Duration::from_secs(3), client.recv())
            .await
            .expect("idle close in time")
            .unwrap()
            .expect("a GoAway before the close");
        assert_eq!(goaway.kind, FrameKind::GoAway);
        let end = tokio::time::timeout(Duration::from_secs(3), client.recv()).await;
        assert!(matches!(end, Ok(Ok(None))), "then closed: {end:?}");
        gateway.stop(GRACE).await;
    })
    .await;
}
