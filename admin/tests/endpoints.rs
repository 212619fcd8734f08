//! Every admin endpoint over real HTTP on 127.0.0.1: status, content type,
//! shape and the fake source's values.

mod common;

use common::{FakeSource, get, request, start};
use hyper::Method;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn api_list_names_every_endpoint() {
    let server = start(Arc::new(FakeSource::default())).await;
    let reply = get(server.local_addr(), "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type(), "text/plain; charset=utf-8");
    assert!(
        reply.body.starts_with("supported APIs:\n"),
        "{}",
        reply.body
    );
    for path in [
        "/api/v1/version",
        "/api/v1/states",
        "/api/v1/config_dump",
        "/api/v1/stats",
        "/api/v1/stats_glob",
        "/api/v1/update_loglevel",
        "/api/v1/get_loglevel",
        "/api/v1/enable_log",
        "/api/v1/disable_log",
        "/api/v1/clusters",
        "/api/v1/listeners",
        "/api/v1/dashboard",
        "/metrics",
        "/dashboard",
    ] {
        assert!(
            reply
                .body
                .lines()
                .any(|l| l.starts_with(&format!("{path} "))),
            "{path} missing:\n{}",
            reply.body
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_browser_at_the_root_gets_the_dashboard() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    let root = request(
        addr,
        Method::GET,
        "/",
        &[("accept", "text/html,application/xhtml+xml")],
        "",
    )
    .await;
    let page = get(addr, "/dashboard").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.content_type(), "text/html; charset=utf-8");
    assert_eq!(root.body, page.body);
    assert!(page.body.contains("/dashboard/app.js"), "{}", page.body);
    let script = get(addr, "/dashboard/app.js").await;
    assert_eq!(
        (script.status, script.content_type()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("/api/v1/dashboard"));
    let style = get(addr, "/dashboard/app.css").await;
    assert_eq!(
        (style.status, style.content_type()),
        (200, "text/css; charset=utf-8")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn version_and_states() {
    let fake = Arc::new(FakeSource::default());
    let server = start(fake.clone()).await;
    let addr = server.local_addr();
    let version = get(addr, "/api/v1/version").await;
    assert_eq!(
        (version.status, version.content_type()),
        (200, "application/json")
    );
    assert_eq!(version.json(), json!({"version": "meshgate 0.1.0 (fake)"}));

    let states = get(addr, "/api/v1/states").await;
    assert_eq!(states.status, 200);
    assert_eq!(states.body, format!("pid={}&state=6\n", std::process::id()));
    *fake.state.lock().expect("lock") = "Draining".to_owned();
    let states = request(
        addr,
        Method::GET,
        "/api/v1/states",
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!(
        states.json(),
        json!({"pid": std::process::id(), "state": 8, "state_name": "Draining", "uptime_seconds": 3723.0})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stats_group_by_type_and_namespace() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    let stats = get(addr, "/api/v1/stats").await;
    assert_eq!(
        (stats.status, stats.content_type()),
        (200, "application/json")
    );
    let v = stats.json();
    assert_eq!(
        v["cluster"]["cluster.bolt_cluster"]["requests_total"],
        "1234"
    );
    assert_eq!(v["cluster"]["cluster.bolt_cluster"]["in_flight"], "5");
    assert_eq!(
        v["cluster"]["cluster.bolt_cluster.class.5xx"]["responses_total"],
        "34"
    );
    assert_eq!(
        v["cluster"]["cluster.bolt_cluster"]["latency.99.00%"],
        "21.75"
    );
    assert_eq!(
        v["host"]["host.127.0.0.1:12201.cluster.bolt_cluster"]["requests_total"],
        "434"
    );
    assert_eq!(
        v["listener"]["listener.bolt_listener"]["connections_active"],
        "17"
    );

    let one_type = get(addr, "/api/v1/stats?key=route").await.json();
    assert_eq!(one_type.as_object().map(|o| o.len()), Some(1));
    assert_eq!(one_type["route"]["route.echo_route"]["errors_total"], "41");
    let one_ns = get(addr, "/api/v1/stats?key=listener.bolt_listener")
        .await
        .json();
    assert_eq!(
        one_ns,
        json!({"listener": {"listener.bolt_listener": v["listener"]["listener.bolt_listener"]}})
    );
    let none = get(addr, "/api/v1/stats?key=nothing").await;
    assert_eq!(
        (none.status, none.body.as_str()),
        (200, "no metrics key: nothing")
    );
    get(addr, "/api/v1/stats?key=a&key=b")
        .await
        .assert_json_error(400);
    get(addr, "/api/v1/stats?bogus=1")
        .await
        .assert_json_error(400);

    let glob = get(addr, "/api/v1/stats_glob").await;
    assert_eq!(
        (glob.status, glob.content_type()),
        (200, "text/plain; charset=utf-8")
    );
    for line in [
        "cluster.requests_total:1234",
        "cluster.responses_total.class.2xx:1200",
        "host.requests_total.cluster.bolt_cluster:1234",
        "cluster.latency.count:1234",
        "route.requests_total:1243",
    ] {
        assert!(
            glob.body.lines().any(|l| l == line),
            "{line} missing:\n{}",
            glob.body
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn log_level_and_loggers() {
    let fake = Arc::new(FakeSource::default());
    let server = start(fake.clone()).await;
    let addr = server.local_addr();
    assert_eq!(
        get(addr, "/api/v1/get_loglevel").await.json(),
        json!({"default": "INFO"})
    );

    let body = r#"{"log_path": "/home/admin/logs/mosn/default.log", "log_level": "DEBUG"}"#;
    let update = request(addr, Method::POST, "/api/v1/update_loglevel", &[], body).await;
    assert_eq!(
        (update.status, update.body.as_str()),
        (200, "update logger success\n")
    );
    assert_eq!(*fake.level.lock().expect("lock"), "debug");
    assert_eq!(
        get(addr, "/api/v1/get_loglevel").await.json(),
        json!({"default": "DEBUG"})
    );

    let bad = request(
        addr,
        Method::POST,
        "/api/v1/update_loglevel",
        &[],
        "{not json",
    )
    .await;
    assert_eq!(bad.assert_json_error(400)["error"], "update logger failed");
    let unknown = request(
        addr,
        Method::POST,
        "/api/v1/update_loglevel",
        &[],
        r#"{"log_level": "LOUD"}"#,
    )
    .await;
    assert!(
        unknown.assert_json_error(400)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("LOUD"))
    );
    assert_eq!(
        *fake.level.lock().expect("lock"),
        "debug",
        "a refused update changes nothing"
    );

    let disable = request(addr, Method::POST, "/api/v1/disable_log", &[], "default").await;
    assert_eq!(
        (disable.status, disable.body.as_str()),
        (200, "disable logger success\n")
    );
    assert_eq!(
        fake.loggers.lock().expect("lock")[0],
        ("default".to_owned(), false)
    );
    let enable = request(addr, Method::POST, "/api/v1/enable_log", &[], "default\n").await;
    assert_eq!(
        (enable.status, enable.body.as_str()),
        (200, "enable logger success\n")
    );
    assert_eq!(
        fake.loggers.lock().expect("lock")[0],
        ("default".to_owned(), true)
    );
    let mosn_spelling = request(addr, Method::POST, "/api/v1/disbale_log", &[], "default").await;
    assert_eq!(mosn_spelling.status, 200);
    request(addr, Method::POST, "/api/v1/enable_log", &[], "nope")
        .await
        .assert_json_error(400);
    request(addr, Method::POST, "/api/v1/enable_log", &[], "")
        .await
        .assert_json_error(400);
    server.shutdown().await;
}

#[tokio::test]
async fn clusters_and_listeners() {
    let server = start(Arc::new(FakeSource::default())).await;
    let addr = server.local_addr();
    let clusters = get(addr, "/api/v1/clusters").await;
    assert_eq!(
        (clusters.status, clusters.content_type()),
        (200, "application/json")
    );
    assert_eq!(
        clusters.json()["clusters"][0],
        json!({"name": "bolt_cluster", "lb_type": "LB_ROUNDROBIN", "hosts": [
            {"address": "127.0.0.1:12200", "weight": 100, "health": "healthy", "in_flight": 3,
             "connections": 2, "requests_total": 800, "metadata": {"zone": "gz01"}},
            {"address": "127.0.0.1:12201", "weight": 50, "health": "unhealthy", "in_flight": 0,
             "connections": 0, "requests_total": 434, "metadata": {}}]})
    );
    let listeners = get(addr, "/api/v1/listeners").await.json();
    assert_eq!(
        listeners,
        json!({"listeners": [{"name": "bolt_listener", "address": "127.0.0.1:2045", "protocol": "bolt",
                              "active_connections": 17, "total_connections": 321}]})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dashboard_data_combines_everything() {
    let server = start(Arc::new(FakeSource::default())).await;
    let reply = get(server.local_addr(), "/api/v1/dashboard").await;
    assert_eq!(
        (reply.status, reply.content_type()),
        (200, "application/json")
    );
    let v = reply.json();
    assert_eq!(v["version"], "meshgate 0.1.0 (fake)");
    assert_eq!(
        v["state"],
        json!({"name": "Running", "uptime_seconds": 3723.0})
    );
    assert_eq!(v["log_level"], "info");
    assert!(v["time_ms"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
    assert_eq!(v["clusters"][0]["hosts"][1]["health"], "unhealthy");
    assert_eq!(v["listeners"][0]["active_connections"], 17);
    let metrics = v["metrics"].as_array().expect("metrics");
    assert!(metrics.contains(
        &json!({"scope": "cluster", "object": "bolt_cluster", "name": "responses_total",
        "labels": {"class": "5xx"}, "type": "counter", "value": 34})
    ));
    assert!(metrics.contains(
        &json!({"scope": "cluster", "object": "bolt_cluster", "name": "in_flight",
        "labels": {}, "type": "gauge", "value": 5})
    ));
    assert!(metrics.contains(
        &json!({"scope": "cluster", "object": "bolt_cluster", "name": "latency",
        "labels": {}, "type": "histogram", "value": {"count": 1234, "sum_seconds": 3.25,
        "p50_ms": 1.5, "p90_ms": 4.25, "p99_ms": 21.75, "p999_ms": 88.5}})
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn update_loglevel_passes_log_path_and_reports_a_refusal() {
    let fake = Arc::new(FakeSource::default());
    let server = start(fake.clone()).await;
    let addr = server.local_addr();
    // No `log_path`: the source is asked about "" (MOSN's zero value).
    let unnamed = request(
        addr,
        Method::POST,
        "/api/v1/update_loglevel",
        &[],
        r#"{"log_level": "warn"}"#,
    )
    .await;
    assert_eq!(unnamed.status, 200, "{}", unnamed.body);
    assert_eq!(*fake.level.lock().expect("lock"), "warn");

    // A path the source has no log at: 400 naming the path, level kept.
    let other = request(
        addr,
        Method::POST,
        "/api/v1/update_loglevel",
        &[],
        r#"{"log_path": "/var/log/other.log", "log_level": "DEBUG"}"#,
    )
    .await;
    let error = other.assert_json_error(400);
    assert_eq!(error["error"], "update logger failed");
    assert_eq!(error["log_path"], "/var/log/other.log");
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|d| d.contains("/var/log/other.log")),
        "{error}"
    );
    assert_eq!(*fake.level.lock().expect("lock"), "warn");
}
