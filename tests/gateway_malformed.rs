//! Bad input on one downstream connection: garbage, absurd lengths,
//! truncated frames, silence, the wrong protocol. Each gets the codec's
//! error reply or a close, never disturbs a connection served at the same
//! time, and never panics. Also the driver's own limits: in-flight per
//! connection, idle timeout, heartbeats answered locally.

mod common;

use bytes::Bytes;
use common::{
    DUBBO_SERVICE, bolt, cluster, document, dubbo, dubbo_call, extend_config, pipeline, route,
    rpc_listener, start, wire_status,
};
use meshgate::control::Gateway;
use meshgate_codecs::{Frame, FrameCodec, FrameKind};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::bolt_request;
use meshgate_test_support::vectors;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BOLT_OK: u32 = 0;
const BOLT_CODEC_EXCEPTION: u32 = 9;
const DUBBO_OK: u32 = 20;
const DUBBO_BAD_REQUEST: u32 = 40;

/// Bytes no protocol starts with.
const GARBAGE: &[u8] = b"\xff\xfe\x00garbage, not a frame of any protocol \x07\x07\x07";

/// Panics anywhere in the process (gateway tasks included), counted by a
/// hook that [`watch`] installs. nextest runs each test in its own
/// process, so the count is this test's.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The gateway's log lines (INFO and up), captured by [`watch`].
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts panics and captures the gateway's logs for this test.
fn watch() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    tracing_subscriber::fmt()
        .with_env_filter("meshgate=info")
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .init();
}

fn no_panics() {
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

/// How many captured log lines contain `needle`.
fn logged(needle: &str) -> usize {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// A gateway with one listener speaking `protocol`, routing bolt's test
/// service to a bolt mock and Dubbo's to a Dubbo mock, both answering
/// after 100–200 ms so requests are in flight while the tests misbehave.
struct Setup {
    gateway: Gateway,
    addr: SocketAddr,
    bolt_mock: MockUpstream,
    dubbo_mock: MockUpstream,
}

async fn setup(protocol: &str, tweak: impl FnOnce(&mut Value)) -> Setup {
    let delay = (Duration::from_millis(100), Duration::from_millis(200));
    let bolt_mock = MockUpstream::builder(bolt())
        .delay(delay.0, delay.1)
        .start();
    let dubbo_mock = MockUpstream::builder(dubbo())
        .delay(delay.0, delay.1)
        .start();
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
    Setup {
        gateway,
        addr,
        bolt_mock,
        dubbo_mock,
    }
}

/// A well-behaved connection with a request in flight while something else
/// misbehaves: [`Bystander::finish`] checks it was answered and that the
/// connection still serves.
struct Bystander {
    client: FramedClient,
    codec: Arc<dyn FrameCodec>,
}

impl Bystander {
    async fn start(addr: SocketAddr, codec: Arc<dyn FrameCodec>) -> Bystander {
        let mut client = FramedClient::connect(addr, Arc::clone(&codec))
            .await
            .expect("connect the bystander");
        client
            .send(&request(codec.as_ref(), 1))
            .await
            .expect("the bystander sends");
        Bystander { client, codec }
    }

    async fn finish(mut self) {
        let reply = tokio::time::timeout(Duration::from_secs(5), self.client.recv())
            .await
            .expect("the bystander's reply arrives")
            .expect("the bystander's connection is intact")
            .expect("the bystander's connection is open");
        check_echo(self.codec.as_ref(), &reply, 1);
        let next = request(self.codec.as_ref(), 2);
        let reply = self
            .client
            .call(&next)
            .await
            .expect("the bystander is served");
        check_echo(self.codec.as_ref(), &reply, 2);
    }
}

/// A request of `codec`'s protocol with id `id`.
fn request(codec: &dyn FrameCodec, id: u64) -> Frame {
    match codec.name() {
        "bolt" => bolt_request(id, Bytes::from(format!("bolt-{id}"))),
        _ => dubbo_call(id, &format!("dubbo-{id}")),
    }
}

fn check_echo(codec: &dyn FrameCodec, reply: &Frame, id: u64) {
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, id));
    let ok = if codec.name() == "bolt" {
        BOLT_OK
    } else {
        DUBBO_OK
    };
    assert_eq!(wire_status(reply), Some(ok));
    assert_eq!(reply.body(), request(codec, id).body());
}

/// Sends `bytes` on a new connection (then half-closes when `then_close`),
/// and reads until the gateway closes it. Returns the frames it sent back,
/// decoded with `codec`. Panics if the connection is still open after 3 s.
async fn send_and_wait_close(
    addr: SocketAddr,
    codec: &dyn FrameCodec,
    bytes: &[u8],
    then_close: bool,
) -> Vec<Frame> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send the bytes");
    if then_close {
        stream.shutdown().await.expect("half-close");
    }
    let received = read_until_closed(&mut stream).await;
    decode_all(codec, received)
}

/// Everything the peer sends until it closes (or resets) the connection.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the gateway did not close the connection");
    received
}

fn decode_all(codec: &dyn FrameCodec, bytes: Vec<u8>) -> Vec<Frame> {
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut frames = Vec::new();
    while let Some(frame) = codec
        .decode(&mut buf, &meshgate_codecs::Limits::default())
        .expect("the gateway sends valid frames")
    {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "a partial frame at the end: {buf:02x?}");
    frames
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    watch();
    for protocol in ["Auto", "bolt"] {
        let s = setup(protocol, |_| {}).await;
        let bystander = Bystander::start(s.addr, bolt()).await;
        let frames = send_and_wait_close(s.addr, bolt().as_ref(), GARBAGE, false).await;
        assert!(
            frames.is_empty(),
            "{protocol}: no reply to garbage: {frames:?}"
        );
        bystander.finish().await;
        let stats = s
            .gateway
            .listener_stats("rpc")
            .await
            .expect("listener stats");
        assert_eq!(stats.accepted, 2, "{protocol}: bystander and garbage");
        let no_match = u64::from(protocol == "Auto");
        assert_eq!(
            stats.detect_no_match, no_match,
            "{protocol}: detection failures counted"
        );
        assert_eq!(stats.detected, 2 - no_match, "{protocol}");
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    // Auto: no protocol matches; bolt: the decoder rejects the stream.
    assert_eq!(logged("protocol detection failed, closing"), 1);
    assert_eq!(logged("reason=\"no_match\""), 1);
    assert_eq!(logged("corrupt downstream stream, closing"), 1);
    no_panics();
}

#[tokio::test]
async fn an_absurd_length_gets_the_codec_error_reply_then_a_close() {
    watch();
    let bolt_absurd = vectors::read("tricky/bolt_absurd_content_len.bin");
    let dubbo_absurd = vectors::read("tricky/dubbo_absurd_length.bin");
    for protocol in ["Auto", "bolt"] {
        let s = setup(protocol, |_| {}).await;
        let bystander = Bystander::start(s.addr, bolt()).await;
        let frames = send_and_wait_close(s.addr, bolt().as_ref(), &bolt_absurd, false).await;
        assert_eq!(frames.len(), 1, "{protocol}: one reply: {frames:?}");
        assert_eq!(
            (frames[0].kind, frames[0].request_id),
            (FrameKind::Response, 1)
        );
        assert_eq!(
            wire_status(&frames[0]),
            Some(BOLT_CODEC_EXCEPTION),
            "{protocol}"
        );
        bystander.finish().await;
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    let s = setup("Auto", |_| {}).await;
    let bystander = Bystander::start(s.addr, dubbo()).await;
    let frames = send_and_wait_close(s.addr, dubbo().as_ref(), &dubbo_absurd, false).await;
    assert_eq!(frames.len(), 1, "one reply: {frames:?}");
    assert_eq!(
        (frames[0].kind, frames[0].request_id),
        (FrameKind::Response, 10)
    );
    assert_eq!(wire_status(&frames[0]), Some(DUBBO_BAD_REQUEST));
    bystander.finish().await;
    s.gateway.stop(Duration::from_secs(1)).await;
    no_panics();
}

#[tokio::test]
async fn a_truncated_frame_then_close_disturbs_nothing() {
    watch();
    let cases = [
        ("Auto", "tricky/bolt_truncated.bin"),
        ("bolt", "tricky/bolt_truncated.bin"),
        ("Auto", "tricky/dubbo_truncated.bin"),
    ];
    for (protocol, file) in cases {
        let s = setup(protocol, |_| {}).await;
        let bystander = Bystander::start(s.addr, bolt()).await;
        let dubbo_bystander = match protocol {
            "Auto" => Some(Bystander::start(s.addr, dubbo()).await),
            _ => None,
        };
        let bytes = vectors::read(file);
        // Half a header, and all but the last byte of a frame.
        for cut in [7, bytes.len() - 1] {
            let frames = send_and_wait_close(s.addr, bolt().as_ref(), &bytes[..cut], true).await;
            assert!(frames.is_empty(), "{protocol} {file}[..{cut}]: {frames:?}");
        }
        bystander.finish().await;
        if let Some(b) = dubbo_bystander {
            b.finish().await;
        }
        assert_eq!(
            s.bolt_mock.requests() + s.dubbo_mock.requests(),
            2 + 2 * u64::from(protocol == "Auto")
        );
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    no_panics();
}

#[tokio::test]
async fn a_valid_request_before_garbage_is_still_answered() {
    watch();
    for protocol in ["Auto", "bolt"] {
        let s = setup(protocol, |_| {}).await;
        let bystander = Bystander::start(s.addr, bolt()).await;
        let mut bytes = bytes::BytesMut::new();
        let codec = bolt();
        for id in [40, 41] {
            codec
                .encode(&request(codec.as_ref(), id), &mut bytes)
                .unwrap();
        }
        bytes.extend_from_slice(GARBAGE);
        let frames = send_and_wait_close(s.addr, codec.as_ref(), &bytes, false).await;
        let mut ids: Vec<u64> = frames.iter().map(|f| f.request_id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [40, 41], "{protocol}: both valid requests answered");
        for frame in &frames {
            check_echo(codec.as_ref(), frame, frame.request_id);
        }
        bystander.finish().await;
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    no_panics();
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_detection_timeout() {
    watch();
    let s = setup("Auto", |doc| {
        extend_config(doc, json!({ "detect_timeout": "200ms" }));
    })
    .await;
    let bystander = Bystander::start(s.addr, dubbo()).await;
    // Nothing at all, and one byte of Dubbo's two-byte magic: not enough
    // to decide.
    for bytes in [&b""[..], &[0xda][..]] {
        let began = Instant::now();
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let received = read_until_closed(&mut stream).await;
        let waited = began.elapsed();
        assert!(received.is_empty());
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
            "closed at the detection timeout: {waited:?}"
        );
    }
    assert_eq!(logged("reason=\"timeout\""), 2, "each close is logged");
    let stats = s
        .gateway
        .listener_stats("rpc")
        .await
        .expect("listener stats");
    assert_eq!(stats.detect_timeout, 2, "and counted");
    bystander.finish().await;
    s.gateway.stop(Duration::from_secs(1)).await;
    no_panics();
}

#[tokio::test]
async fn a_protocol_the_listener_does_not_speak_is_refused() {
    watch();
    // Dubbo on a bolt listener: bolt's decoder rejects the first byte.
    let s = setup("bolt", |_| {}).await;
    let bystander = Bystander::start(s.addr, bolt()).await;
    let mut bytes = bytes::BytesMut::new();
    dubbo()
        .encode(&dubbo_call(5, "wrong door"), &mut bytes)
        .unwrap();
    let frames = send_and_wait_close(s.addr, bolt().as_ref(), &bytes, false).await;
    assert!(frames.is_empty(), "{frames:?}");
    bystander.finish().await;
    s.gateway.stop(Duration::from_secs(1)).await;

    // bolt on a Dubbo listener, and on a comma list without bolt.
    for protocol in ["dubbo", "dubbo,Http1"] {
        let s = setup(protocol, |_| {}).await;
        let bystander = Bystander::start(s.addr, dubbo()).await;
        let mut bytes = bytes::BytesMut::new();
        bolt()
            .encode(&bolt_request(5, "wrong door"), &mut bytes)
            .unwrap();
        let frames = send_and_wait_close(s.addr, dubbo().as_ref(), &bytes, false).await;
        assert!(frames.is_empty(), "{protocol}: {frames:?}");
        bystander.finish().await;
        assert_eq!(s.bolt_mock.requests(), 0, "{protocol}");
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    no_panics();
}

#[tokio::test]
async fn the_in_flight_limit_holds_the_fifth_request_back() {
    watch();
    let slow = Duration::from_millis(300);
    let s = setup("bolt", |doc| {
        extend_config(doc, json!({ "max_in_flight_per_conn": 4 }));
    })
    .await;
    s.bolt_mock.set_delay(slow, slow);
    let requests: Vec<Frame> = (0..10).map(|id| request(bolt().as_ref(), id)).collect();
    let began = Instant::now();
    let load = tokio::spawn(pipeline(s.addr, bolt(), requests));
    let mock = &s.bolt_mock;
    let upstream = |n: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.requests() < n {
            assert!(
                Instant::now() < deadline,
                "{n} requests never reached the upstream"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Instant::now()
    };
    let first = upstream(4).await;
    // The fifth waits for a slot: nothing more arrives while the first
    // four are in flight.
    tokio::time::sleep(slow / 2).await;
    assert_eq!(s.bolt_mock.requests(), 4, "only four requests in flight");
    let second = upstream(8).await;
    assert!(
        second - first >= slow - Duration::from_millis(20),
        "the next four went once the first were answered: {:?}",
        second - first
    );
    let replies = load.await.unwrap();
    let elapsed = began.elapsed();
    assert_eq!(replies.len(), 10, "none lost");
    for (id, reply) in &replies {
        check_echo(bolt().as_ref(), reply, *id);
    }
    assert!(elapsed >= slow * 3, "three waves of four: {elapsed:?}");
    // Another connection has limits of its own.
    let other = pipeline(
        s.addr,
        bolt(),
        (0..4).map(|id| request(bolt().as_ref(), id)).collect(),
    );
    let began = Instant::now();
    assert_eq!(other.await.len(), 4);
    assert!(began.elapsed() < slow * 2);
    s.gateway.stop(Duration::from_secs(1)).await;
    no_panics();
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    watch();
    let idle = Duration::from_millis(300);
    let s = setup("Auto", |doc| {
        rpc_listener(doc)["connection_idle_timeout"] = json!("300ms");
    })
    .await;
    let codec = bolt();

    // Quick requests, then silence: closed one idle timeout after the last.
    let mut client = FramedClient::connect(s.addr, Arc::clone(&codec))
        .await
        .unwrap();
    s.bolt_mock.set_delay(Duration::ZERO, Duration::ZERO);
    for id in 0..3 {
        // Pauses shorter than the idle timeout keep the connection.
        tokio::time::sleep(idle / 2).await;
        let reply = client.call(&request(codec.as_ref(), id)).await.unwrap();
        check_echo(codec.as_ref(), &reply, id);
    }
    let last = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), client.recv()).await;
    assert!(matches!(closed, Ok(Ok(None))), "closed cleanly: {closed:?}");
    let waited = last.elapsed();
    assert!(
        waited >= idle - Duration::from_millis(10) && waited < idle * 3,
        "{waited:?}"
    );

    // A request slower than the idle timeout is answered, and the idle
    // timeout counts from its answer.
    let slow = Duration::from_millis(500);
    s.bolt_mock.set_delay(slow, slow);
    let mut client = FramedClient::connect(s.addr, Arc::clone(&codec))
        .await
        .unwrap();
    let reply = client.call(&request(codec.as_ref(), 9)).await.unwrap();
    check_echo(codec.as_ref(), &reply, 9);
    let answered = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), client.recv()).await;
    assert!(
        matches!(closed, Ok(Ok(None))),
        "closed after the slow answer: {closed:?}"
    );
    let waited = answered.elapsed();
    assert!(waited < idle * 3, "{waited:?}");
    s.gateway.stop(Duration::from_secs(1)).await;
    no_panics();
}

#[tokio::test]
async fn heartbeats_are_answered_by_the_gateway_itself() {
    watch();
    for protocol in ["Auto", "bolt", "dubbo"] {
        let s = setup(protocol, |_| {}).await;
        let codecs: Vec<Arc<dyn FrameCodec>> = match protocol {
            "Auto" => vec![bolt(), dubbo()],
            "bolt" => vec![bolt()],
            _ => vec![dubbo()],
        };
        for codec in codecs {
            let mut client = FramedClient::connect(s.addr, Arc::clone(&codec))
                .await
                .unwrap();
            // A request first, so the gateway has an upstream connection.
            let reply = client.call(&request(codec.as_ref(), 1)).await.unwrap();
            check_echo(codec.as_ref(), &reply, 1);
            for id in 100..105 {
                let ping = codec.heartbeat_request(id).expect("a ping");
                let pong = client.call(&ping).await.unwrap();
                assert_eq!(
                    (pong.kind, pong.request_id),
                    (FrameKind::Heartbeat { reply: true }, id),
                    "{protocol}/{}",
                    codec.name()
                );
            }
            // Pipelined with requests: every one answered.
            let mut frames: Vec<Frame> = (10..20).map(|id| request(codec.as_ref(), id)).collect();
            frames.extend((200..210).map(|id| codec.heartbeat_request(id).expect("a ping")));
            let replies = pipeline(s.addr, Arc::clone(&codec), frames).await;
            assert_eq!(replies.len(), 20);
            for id in 200..210 {
                assert_eq!(replies[&id].kind, FrameKind::Heartbeat { reply: true });
            }
        }
        let pings = s.bolt_mock.counters().pings.load(Ordering::Relaxed)
            + s.dubbo_mock.counters().pings.load(Ordering::Relaxed);
        assert_eq!(pings, 0, "{protocol}: the upstreams never saw a ping");
        s.gateway.stop(Duration::from_secs(1)).await;
    }
    no_panics();
}
