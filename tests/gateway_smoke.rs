//! The shortest path through the gateway: a bolt and a Dubbo request on
//! one `Auto` port, each forwarded to a mock upstream and answered.

mod common;

use bytes::Bytes;
use meshgate_codecs::bolt::BoltCodec;
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::{FrameCodec, FrameKind};
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::{bolt_request, dubbo_request};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn bolt_and_dubbo_on_one_auto_port() {
    let bolt: Arc<dyn FrameCodec> = Arc::new(BoltCodec::v1());
    let dubbo: Arc<dyn FrameCodec> = Arc::new(DubboCodec::new());
    let bolt_upstream = MockUpstream::start(Arc::clone(&bolt));
    let dubbo_upstream = MockUpstream::start(Arc::clone(&dubbo));
    let doc = common::document(
        "Auto",
        json!([
            common::route("com.example.Echo:1.0", "bolt_cluster"),
            common::route("org.apache.dubbo.samples.DemoService", "dubbo_cluster"),
        ]),
        json!([
            common::cluster("bolt_cluster", "LB_ROUNDROBIN", &[bolt_upstream.addr()]),
            common::cluster("dubbo_cluster", "LB_ROUNDROBIN", &[dubbo_upstream.addr()]),
        ]),
        json!([]),
    );
    let (_gateway, addr) = common::start(&doc).await;

    let mut client = FramedClient::connect(addr, Arc::clone(&bolt))
        .await
        .unwrap();
    let reply = client
        .call(&bolt_request(7, Bytes::from_static(b"hello")))
        .await
        .unwrap();
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 7));
    assert_eq!(reply.body(), b"hello");

    let mut client = FramedClient::connect(addr, Arc::clone(&dubbo))
        .await
        .unwrap();
    let request = dubbo_request(
        42,
        "org.apache.dubbo.samples.DemoService",
        "sayHello",
        None,
        "world",
    );
    let reply = client.call(&request).await.unwrap();
    assert_eq!((reply.kind, reply.request_id), (FrameKind::Response, 42));
    assert_eq!(reply.body(), request.body(), "the mock echoes the body");
    assert_eq!(
        (bolt_upstream.requests(), dubbo_upstream.requests()),
        (1, 1)
    );
}
