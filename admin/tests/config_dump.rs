//! `/api/v1/config_dump`: MOSN's query forms, and no secret in any answer.

mod common;

use common::fake::{PASSWORD, PRIVATE_KEY};
use common::{FakeSource, get, start};
use serde_json::json;
use std::sync::Arc;

/// A tell-tale slice of the private key's base64 and of the password.
fn assert_no_secret(body: &str) {
    for secret in ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "PRIVATE KEY", PASSWORD] {
        assert!(!body.contains(secret), "{secret:?} leaked in:\n{body}");
    }
    assert!(!body.contains(PRIVATE_KEY));
}

#[tokio::test]
async fn the_whole_config_with_secrets_redacted() {
    let server = start(Arc::new(FakeSource::default())).await;
    let reply = get(server.local_addr(), "/api/v1/config_dump").await;
    assert_eq!(
        (reply.status, reply.content_type()),
        (200, "application/json")
    );
    assert_no_secret(&reply.body);
    let v = reply.json();
    let chain = &v["servers"][0]["listeners"][0]["filter_chains"][0];
    assert_eq!(chain["tls_context"]["private_key"], "[redacted]");
    assert_eq!(chain["tls_context"]["cert_chain"], "CERTIFICATE");
    assert_eq!(
        chain["transport_socket"]["typed_config"]["tls_certificate"],
        json!({"certificate_chain": "CHAIN", "private_key": "[redacted]"})
    );
    let cluster = &v["cluster_manager"]["clusters"][0];
    assert_eq!(cluster["tls_context"]["private_key"], "[redacted]");
    assert_eq!(cluster["tls_context"]["ca_cert"], "CA");
    assert_eq!(cluster["health_check"]["auth"]["password"], "[redacted]");
    assert_eq!(v["admin"]["address"]["socket_address"]["port_value"], 34901);
    server.shutdown().await;
}

#[tokio::test]
async fn mosn_query_forms_select_parts() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();

    let routers = get(addr, "/api/v1/config_dump?allrouters").await;
    assert_eq!(routers.status, 200);
    let routers = routers.json();
    assert_eq!(
        routers
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["bolt_router".to_owned()])
    );
    assert_eq!(routers["bolt_router"]["virtual_hosts"][0]["name"], "vh");

    let clusters = get(addr, "/api/v1/config_dump?allclusters").await;
    assert_no_secret(&clusters.body);
    assert_eq!(clusters.json()["bolt_cluster"]["lb_type"], "LB_ROUNDROBIN");

    let listeners = get(addr, "/api/v1/config_dump?alllisteners").await;
    assert_no_secret(&listeners.body);
    let listeners = listeners.json();
    assert_eq!(
        listeners["dubbo_listener"],
        json!({"name": "dubbo_listener", "address": "127.0.0.1:20880"})
    );
    assert_eq!(listeners.as_object().map(|o| o.len()), Some(2));

    let one = get(addr, "/api/v1/config_dump?listener=bolt_listener").await;
    assert_no_secret(&one.body);
    assert_eq!(one.json()["address"], "127.0.0.1:2045");
    assert_eq!(
        get(addr, "/api/v1/config_dump?cluster=bolt_cluster")
            .await
            .json()["type"],
        "SIMPLE"
    );
    assert_eq!(
        get(addr, "/api/v1/config_dump?router=bolt_router")
            .await
            .json()["router_config_name"],
        "bolt_router"
    );

    let mosn = get(addr, "/api/v1/config_dump?mosnconfig").await.json();
    assert_eq!(mosn["servers"][0], json!({"default_log_level": "INFO"}));
    assert_eq!(
        mosn["cluster_manager"],
        json!({"tls_context": {"status": false}})
    );
    assert!(mosn["admin"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn bad_queries_are_json_errors() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    let missing = get(addr, "/api/v1/config_dump?cluster=nope")
        .await
        .assert_json_error(404);
    assert_eq!(missing["known"], json!(["bolt_cluster"]));
    get(addr, "/api/v1/config_dump?cluster=")
        .await
        .assert_json_error(400);
    get(addr, "/api/v1/config_dump?allrouters&allclusters")
        .await
        .assert_json_error(400);
    let unknown = get(addr, "/api/v1/config_dump?everything")
        .await
        .assert_json_error(400);
    assert_eq!(unknown["parameter"], "everything");
    server.shutdown().await;
}
