//! `request_mirror_policies` on HTTP routes, with curl as the client, a
//! hyper upstream for the main cluster (`common::http`) and a recording
//! hyper upstream for the mirror cluster (`common::recording`): every
//! request copied at 100 % (with its body and headers), none at 0 %, a body
//! over the replay buffer not copied (and counted), and a dead or silent
//! mirror cluster changing nothing for the client.

mod common;
#[path = "common/http.rs"]
#[allow(dead_code)] // This file uses part of it.
mod http_common;
#[path = "common/recording.rs"]
mod recording;

use common::{bounded, start};
use http_common::{CurlAnswer, HttpUpstream, curl};
use meshgate_admin::{AdminSource, MetricValue};
use recording::RecordingUpstream;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// How long a mirrored copy may take to show up at the mirror upstream.
const MIRROR_WAIT: Duration = Duration::from_secs(5);

/// An HTTP/1 + h2c (`Auto`) listener `rpc` whose `/` route forwards to
/// cluster `main` and mirrors `percent` of its requests to `shadow`;
/// `/always` mirrors every request (a control showing mirroring is live).
fn mirror_document(main: SocketAddr, shadow: SocketAddr, percent: u32) -> Value {
    let route = |prefix: &str, percent: u32| {
        json!({
            "match": {"prefix": prefix},
            "route": {"cluster_name": "main", "timeout": "5s",
                "request_headers_to_add": [{"header": {"key": "x-route", "value": prefix}}]},
            "request_mirror_policies": {"cluster": "shadow", "percent": percent}
        })
    };
    json!({
        "servers": [{
            "graceful_timeout": "2s",
            "routers": [{
                "router_config_name": "web",
                "virtual_hosts": [{"name": "any", "domains": ["*"], "routers": [
                    route("/always", 100),
                    route("/", percent)
                ]}]
            }],
            "listeners": [{
                "name": "rpc",
                "address": "127.0.0.1:0",
                "bind_port": true,
                "filter_chains": [{ "filters": [{
                    "type": "proxy",
                    "config": {"downstream_protocol": "Auto", "upstream_protocol": "Auto",
                               "router_config_name": "web"}
                }]}]
            }]
        }],
        "cluster_manager": {"clusters": [
            common::cluster("main", "LB_ROUNDROBIN", &[main]),
            common::cluster_with("shadow", "LB_ROUNDROBIN", &[shadow], json!({"connect_timeout": "300ms"}))
        ]}
    })
}

fn answered_by_main(answer: &CurlAnswer) {
    assert_eq!(answer.exit, 0, "curl failed: {answer:?}");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-upstream"), Some("main"), "{answer:?}");
}

fn counter(gateway: &meshgate::control::Gateway, name: &str) -> u64 {
    let metric = gateway
        .admin_source()
        .metrics()
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("metric {name} exists"));
    match metric.value {
        MetricValue::Counter(n) => n,
        other => panic!("{name} is a counter, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_copied_at_100_percent_with_its_body() {
    bounded(async {
        let main = HttpUpstream::start("main").await;
        let shadow = RecordingUpstream::start().await;
        let (gw, addr) = start(&mirror_document(main.addr(), shadow.addr(), 100)).await;

        let get = curl(addr, "/get?n=1", &["-H", "x-test: one"]).await;
        answered_by_main(&get);
        let post = curl(addr, "/post?n=2", &["--data-binary", "payload-two"]).await;
        answered_by_main(&post);
        assert_eq!(post.echo()["body"], "payload-two");
        let h2 = curl(
            addr,
            "/h2?n=3",
            &[
                "--http2-prior-knowledge",
                "-X",
                "PUT",
                "--data-binary",
                "payload-three",
            ],
        )
        .await;
        answered_by_main(&h2);
        assert_eq!(h2.protocol, "HTTP/2");

        let copy = shadow
            .wait_for(MIRROR_WAIT, |r| r.target == "/get?n=1")
            .await
            .expect("the GET was mirrored");
        assert_eq!(copy.method, "GET");
        assert_eq!(copy.header("x-test"), Some("one"), "client headers copied");
        assert_eq!(copy.header("x-route"), Some("/"), "route headers copied");
        let client_host = addr.to_string();
        assert_eq!(
            copy.header("host"),
            Some(client_host.as_str()),
            "the copy carries the client's Host, not the mirror host's address"
        );
        assert!(copy.body.is_empty());
        let copy = shadow
            .wait_for(MIRROR_WAIT, |r| r.target == "/post?n=2")
            .await
            .expect("the POST was mirrored");
        assert_eq!(copy.method, "POST");
        assert_eq!(copy.body, "payload-two", "the body is copied");
        let copy = shadow
            .wait_for(MIRROR_WAIT, |r| r.target == "/h2?n=3")
            .await
            .expect("the h2 PUT was mirrored");
        assert_eq!(copy.method, "PUT");
        assert_eq!(copy.body, "payload-three");
        assert_eq!(main.requests(), 3, "the main cluster saw each request once");
        assert_eq!(shadow.seen().len(), 3, "and the mirror each once");

        // 100 KB is over the 64 KiB replay buffer: forwarded, not copied.
        let big = "b".repeat(100_000);
        let large = curl(addr, "/large", &["--data-binary", &big]).await;
        answered_by_main(&large);
        assert_eq!(large.echo()["body_len"], 100_000);
        let after = curl(addr, "/after-large", &[]).await;
        answered_by_main(&after);
        shadow
            .wait_for(MIRROR_WAIT, |r| r.target == "/after-large")
            .await
            .expect("the next request was mirrored");
        let deadline = Instant::now() + MIRROR_WAIT;
        while counter(&gw, "http_mirror_body_too_large_total") == 0 {
            assert!(Instant::now() < deadline, "the large body was counted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            shadow.seen().iter().all(|r| r.target != "/large"),
            "a body over the replay buffer is not mirrored"
        );
        assert_eq!(counter(&gw, "http_mirror_sent_total"), 4);
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_copied_at_0_percent() {
    bounded(async {
        let main = HttpUpstream::start("main").await;
        let shadow = RecordingUpstream::start().await;
        let (gw, addr) = start(&mirror_document(main.addr(), shadow.addr(), 0)).await;
        for n in 0..10 {
            let answer = curl(addr, &format!("/never?n={n}"), &["--data-binary", "x"]).await;
            answered_by_main(&answer);
        }
        // The control route mirrors; once its copy arrived, copies of the
        // earlier requests would have too.
        answered_by_main(&curl(addr, "/always", &[]).await);
        shadow
            .wait_for(MIRROR_WAIT, |r| r.target == "/always")
            .await
            .expect("the control request was mirrored");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen: Vec<String> = shadow.seen().into_iter().map(|r| r.target).collect();
        assert_eq!(seen, ["/always"], "no request of the 0 % route was copied");
        assert_eq!(main.requests(), 11);
        gw.stop(Duration::from_secs(2)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_mirror_cluster_changes_nothing_for_the_client() {
    bounded(async {
        let main = HttpUpstream::start("main").await;
        // Dead: nothing listens on the port.
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        // Silent: accepts connections and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                connections.push(stream);
                if connections.len() > 64 {
                    break;
                }
            }
            connections.len()
        });
        for shadow in [dead, silent_addr] {
            let (gw, addr) = start(&mirror_document(main.addr(), shadow, 100)).await;
            let before = main.requests();
            let started = Instant::now();
            for n in 0..20 {
                let answer = curl(addr, &format!("/n{n}"), &["--data-binary", "body"]).await;
                answered_by_main(&answer);
                assert_eq!(answer.echo()["body"], "body");
            }
            let h2 = curl(addr, "/h2", &["--http2-prior-knowledge"]).await;
            answered_by_main(&h2);
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "the mirror never delays the client: {:?} for 21 requests to {shadow}",
                started.elapsed()
            );
            assert_eq!(main.requests() - before, 21);
            if shadow == dead {
                let deadline = Instant::now() + MIRROR_WAIT;
                let lost = || {
                    counter(&gw, "http_mirror_failed_total")
                        + counter(&gw, "http_mirror_no_host_total")
                };
                while lost() < 21 {
                    assert!(
                        Instant::now() < deadline,
                        "every copy counted as lost: {}",
                        lost()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                assert_eq!(counter(&gw, "http_mirror_answered_total"), 0);
            }
            gw.stop(Duration::from_secs(2)).await;
        }
        held.abort();
    })
    .await;
}
