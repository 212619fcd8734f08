//! Access logs end to end: real requests (bolt and Dubbo through one
//! `Auto` listener, one with no route) produce one line each whose fields,
//! parsed back, equal what was sent and where it went; SIGUSR1 to the real
//! binary reopens the file after a logrotate-style rename; a reload opens
//! new logs and closes removed ones; `disable_log` / `enable_log` by path;
//! `validate` warns about unknown variables with their JSON path.

mod common;

use common::process::{BIN, GatewayProcess, TempDir};
use common::{
    bolt, bolt_call, bounded, cluster, document, dubbo, echo_with_headers, route, status,
    success_code, wait_for_lines,
};
use meshgate::config;
use meshgate::control::Gateway;
use meshgate_codecs::{Frame, FrameCodec};
use meshgate_gocompat::parse_go_duration;
use meshgate_test_support::MockUpstream;
use meshgate_test_support::client::FramedClient;
use meshgate_test_support::frames::dubbo_request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const BOLT_SERVICE: &str = "com.example.Echo:1.0";
const DUBBO_SERVICE: &str = "org.apache.dubbo.samples.DemoService";

/// Every field the test reads, tab-separated (header values may hold
/// spaces).
const FIELDS: [&str; 19] = [
    "request_id",
    "start_time",
    "duration",
    "request_received_duration",
    "response_received_duration",
    "protocol",
    "response_code",
    "response_flag",
    "upstream_host",
    "upstream_cluster",
    "downstream_remote_address",
    "downstream_local_address",
    "listener_name",
    "bytes_received",
    "bytes_sent",
    "request_header_service",
    "request_header_method",
    "request_header_x-caller",
    "response_header_x-caller",
];

fn log_format() -> String {
    FIELDS
        .iter()
        .map(|f| format!("%{f}%"))
        .collect::<Vec<_>>()
        .join("\t")
}

/// An `Auto` listener with an access log at `log`: bolt `BOLT_SERVICE` to
/// cluster `bolt_backend`, Dubbo `DUBBO_SERVICE` to `dubbo_backend`,
/// nothing else routed.
fn config_with_log(log: &Path, bolt_mock: &MockUpstream, dubbo_mock: &MockUpstream) -> Value {
    let mut doc = document(
        "Auto",
        json!([
            route(BOLT_SERVICE, "bolt_backend"),
            route(DUBBO_SERVICE, "dubbo_backend")
        ]),
        json!([
            cluster("bolt_backend", "LB_ROUNDROBIN", &[bolt_mock.addr()]),
            cluster("dubbo_backend", "LB_ROUNDROBIN", &[dubbo_mock.addr()]),
        ]),
        json!([]),
    );
    doc["servers"][0]["listeners"][0]["access_logs"] = json!([{
        "log_path": log.to_str().expect("a UTF-8 temp path"),
        "log_format": log_format(),
    }]);
    doc
}

fn bolt_mock() -> MockUpstream {
    MockUpstream::builder(bolt())
        .responder(echo_with_headers)
        .start()
}

/// The log's lines as field maps, keyed by request id.
fn parse(text: &str) -> BTreeMap<u64, BTreeMap<&'static str, String>> {
    text.lines()
        .map(|line| {
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), FIELDS.len(), "line {line:?}");
            let fields: BTreeMap<&'static str, String> = FIELDS
                .iter()
                .zip(values)
                .map(|(k, v)| (*k, v.to_owned()))
                .collect();
            (fields["request_id"].parse().expect("a request id"), fields)
        })
        .collect()
}

/// Calls `request` on a new connection; returns the reply and the client's
/// address.
async fn call_from(
    addr: SocketAddr,
    codec: &Arc<dyn FrameCodec>,
    request: &Frame,
) -> (Frame, SocketAddr) {
    let mut client = FramedClient::connect(addr, Arc::clone(codec))
        .await
        .expect("connect");
    let local = client.local_addr().expect("the client's address");
    let reply = client.call(request).await.expect("a reply");
    (reply, local)
}

fn start_time(text: &str) -> SystemTime {
    // 2006/01/02 15:04:05.000, UTC.
    let (date, time) = text.split_once(' ').expect("date and time");
    let d: Vec<i64> = date
        .split('/')
        .map(|p| p.parse().expect("a date"))
        .collect();
    let (hms, millis) = time.split_once('.').expect("milliseconds");
    let t: Vec<u64> = hms.split(':').map(|p| p.parse().expect("a time")).collect();
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).expect("after 1970");
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
        + Duration::from_millis(millis.parse().expect("milliseconds"))
}

#[tokio::test]
async fn every_request_is_one_line_whose_fields_are_what_was_sent() {
    bounded(async {
        let dir = TempDir::new("access-log-fields");
        let log = dir.path("logs/access.log");
        let (bolt_mock, dubbo_mock) = (bolt_mock(), MockUpstream::start(dubbo()));
        let doc = config_with_log(&log, &bolt_mock, &dubbo_mock);
        let (gateway, addr) = common::start(&doc).await;
        let before = SystemTime::now() - Duration::from_secs(1);

        let bolt_request = bolt_call(11, BOLT_SERVICE, &[("x-caller", "web shop")]);
        let (bolt_reply, bolt_client) = call_from(addr, &bolt(), &bolt_request).await;
        assert_eq!(status(&bolt_reply), success_code(&bolt()));
        let dubbo_call = dubbo_request(12, DUBBO_SERVICE, "sayHello", None, "hi");
        let (dubbo_reply, dubbo_client) = call_from(addr, &dubbo(), &dubbo_call).await;
        assert_eq!(status(&dubbo_reply), success_code(&dubbo()));
        let lost = bolt_call(13, "com.example.Nowhere:1.0", &[("x-caller", "cli")]);
        let (lost_reply, lost_client) = call_from(addr, &bolt(), &lost).await;
        assert_ne!(status(&lost_reply), success_code(&bolt()), "no route");

        let text = wait_for_lines(&log, 3).await;
        let after = SystemTime::now() + Duration::from_secs(1);
        let lines = parse(&text);
        assert_eq!(
            lines.keys().copied().collect::<Vec<_>>(),
            [11, 12, 13],
            "{text}"
        );

        for (id, line) in &lines {
            let started = start_time(&line["start_time"]);
            assert!(before <= started && started <= after, "{id}: {line:?}");
            for field in ["duration", "request_received_duration"] {
                let d = parse_go_duration(&line[field]).expect(field);
                assert!(d < Duration::from_secs(10), "{id}: {field} {d:?}");
            }
            assert_eq!(line["listener_name"], "rpc");
            assert_eq!(line["downstream_local_address"], addr.to_string());
        }

        let b = &lines[&11];
        assert_eq!(b["protocol"], "bolt");
        assert_eq!(b["response_code"], "200");
        assert_eq!(b["response_flag"], "-");
        assert_eq!(b["upstream_host"], bolt_mock.addr().to_string());
        assert_eq!(b["upstream_cluster"], "bolt_backend");
        assert_eq!(b["downstream_remote_address"], bolt_client.to_string());
        assert_eq!(b["request_header_service"], BOLT_SERVICE);
        assert_eq!(b["request_header_x-caller"], "web shop");
        // The bolt mock echoes the request's header fields in its response.
        assert_eq!(b["response_header_x-caller"], "web shop");
        assert_eq!(b["bytes_received"], bolt_request.body().len().to_string());
        assert_eq!(b["bytes_sent"], bolt_reply.body().len().to_string());
        assert!(parse_go_duration(&b["response_received_duration"]).is_ok());

        let d = &lines[&12];
        assert_eq!(d["protocol"], "dubbo");
        assert_eq!(d["response_code"], "200");
        assert_eq!(d["upstream_host"], dubbo_mock.addr().to_string());
        assert_eq!(d["upstream_cluster"], "dubbo_backend");
        assert_eq!(d["downstream_remote_address"], dubbo_client.to_string());
        assert_eq!(d["request_header_service"], DUBBO_SERVICE);
        assert_eq!(d["request_header_method"], "sayHello");
        assert_eq!(d["request_header_x-caller"], "-");
        assert_eq!(d["bytes_received"], dubbo_call.body().len().to_string());
        assert_eq!(d["bytes_sent"], dubbo_reply.body().len().to_string());

        let n = &lines[&13];
        assert_eq!(n["protocol"], "bolt");
        assert_eq!(n["response_code"], "404");
        assert_eq!(n["response_flag"], "NoRouteFound");
        assert_eq!(n["upstream_host"], "-");
        assert_eq!(n["upstream_cluster"], "-");
        assert_eq!(n["response_received_duration"], "-");
        assert_eq!(n["downstream_remote_address"], lost_client.to_string());
        assert_eq!(n["request_header_x-caller"], "cli");
        assert_eq!(
            (bolt_mock.requests(), dubbo_mock.requests()),
            (1, 1),
            "the unroutable request never went upstream"
        );

        let logs = gateway.access_logs().status();
        assert_eq!(logs.len(), 1);
        assert_eq!((logs[0].written, logs[0].dropped), (3, 0));
        assert_eq!(gateway.access_logs().dropped_total(), 0);
        gateway.stop(Duration::from_secs(5)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_file_after_logrotate_renamed_it() {
    bounded(async {
        let dir = TempDir::new("access-log-rotate");
        let log = dir.path("access.log");
        let rotated = dir.path("access.log.1");
        let (bolt_mock, dubbo_mock) = (bolt_mock(), MockUpstream::start(dubbo()));
        let config_file = dir.path("meshgate.json");
        let doc = config_with_log(&log, &bolt_mock, &dubbo_mock);
        std::fs::write(&config_file, doc.to_string()).expect("write config");
        let mut gateway = GatewayProcess::start(&config_file);

        let mut client = FramedClient::connect(gateway.addr, bolt())
            .await
            .expect("connect");
        for id in 1..=3 {
            let reply = client
                .call(&bolt_call(id, BOLT_SERVICE, &[]))
                .await
                .expect("a reply");
            assert_eq!(status(&reply), success_code(&bolt()));
        }
        wait_for_lines(&log, 3).await;

        std::fs::rename(&log, &rotated).expect("rotate");
        gateway.signal(nix::sys::signal::Signal::SIGUSR1);
        // The writer opens the path anew (creating it) once it has the signal.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !log.exists() {
            assert!(Instant::now() < deadline, "no new file:\n{}", gateway.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for id in 4..=5 {
            let reply = client
                .call(&bolt_call(id, BOLT_SERVICE, &[]))
                .await
                .expect("a reply");
            assert_eq!(status(&reply), success_code(&bolt()));
        }
        let new = wait_for_lines(&log, 2).await;
        assert_eq!(parse(&new).keys().copied().collect::<Vec<_>>(), [4, 5]);
        let old = std::fs::read_to_string(&rotated).expect("the rotated file");
        assert_eq!(parse(&old).keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            gateway.wait_logged("access logs reopened", Duration::from_secs(5)),
            "{}",
            gateway.log()
        );

        // Stop flushes: a line logged just before SIGTERM is in the file.
        let reply = client
            .call(&bolt_call(6, BOLT_SERVICE, &[]))
            .await
            .expect("a reply");
        assert_eq!(status(&reply), success_code(&bolt()));
        drop(client);
        gateway.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(gateway.wait_exit(Duration::from_secs(20)).success());
        let new = std::fs::read_to_string(&log).expect("the new file");
        assert_eq!(parse(&new).keys().copied().collect::<Vec<_>>(), [4, 5, 6]);
    })
    .await;
}

#[tokio::test]
async fn reload_opens_new_logs_and_closes_removed_ones() {
    bounded(async {
        let dir = TempDir::new("access-log-reload");
        let (first, second) = (dir.path("first.log"), dir.path("second.log"));
        let (bolt_mock, dubbo_mock) = (bolt_mock(), MockUpstream::start(dubbo()));
        let (gateway, addr) =
            common::start(&config_with_log(&first, &bolt_mock, &dubbo_mock)).await;
        let mut client = FramedClient::connect(addr, bolt()).await.expect("connect");
        client
            .call(&bolt_call(1, BOLT_SERVICE, &[]))
            .await
            .expect("a reply");

        let doc = config_with_log(&second, &bolt_mock, &dubbo_mock);
        let next = config::load_str(&doc.to_string(), None).expect("valid");
        gateway.reload(next).await.expect("reload");
        // The removed log was flushed and closed by the reload itself.
        assert_eq!(
            parse(&std::fs::read_to_string(&first).expect("first log"))
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [1]
        );
        let paths: Vec<String> = gateway
            .access_logs()
            .status()
            .into_iter()
            .map(|s| s.path)
            .collect();
        assert_eq!(paths, [second.to_str().expect("UTF-8")]);

        client
            .call(&bolt_call(2, BOLT_SERVICE, &[]))
            .await
            .expect("a reply");
        let text = wait_for_lines(&second, 1).await;
        assert_eq!(parse(&text).keys().copied().collect::<Vec<_>>(), [2]);
        gateway.stop(Duration::from_secs(5)).await;
        assert_eq!(
            std::fs::read_to_string(&first)
                .expect("first log")
                .lines()
                .count(),
            1,
            "nothing more went to the removed log"
        );
    })
    .await;
}

#[tokio::test]
async fn disable_log_silences_a_log_by_path_and_enable_log_resumes_it() {
    bounded(async {
        let dir = TempDir::new("access-log-toggle");
        let log = dir.path("access.log");
        let (bolt_mock, dubbo_mock) = (bolt_mock(), MockUpstream::start(dubbo()));
        let (gateway, addr) = common::start(&config_with_log(&log, &bolt_mock, &dubbo_mock)).await;
        let path = log.to_str().expect("UTF-8");
        let logs = gateway.access_logs();
        let mut client = FramedClient::connect(addr, bolt()).await.expect("connect");

        logs.set_enabled(path, false).expect("a known log");
        assert!(!logs.status()[0].enabled);
        client
            .call(&bolt_call(1, BOLT_SERVICE, &[]))
            .await
            .expect("a reply");
        logs.set_enabled(path, true).expect("a known log");
        client
            .call(&bolt_call(2, BOLT_SERVICE, &[]))
            .await
            .expect("a reply");
        let text = wait_for_lines(&log, 1).await;
        gateway.stop(Duration::from_secs(5)).await;
        let text = std::fs::read_to_string(&log).unwrap_or(text);
        assert_eq!(parse(&text).keys().copied().collect::<Vec<_>>(), [2]);

        let unknown = logs
            .set_enabled("/no/such.log", false)
            .expect_err("unknown");
        assert_eq!(unknown.name, "/no/such.log");
        assert!(unknown.to_string().contains("no access log"), "{unknown}");
    })
    .await;
}

#[tokio::test]
async fn an_unopenable_log_refuses_the_start() {
    bounded(async {
        let dir = TempDir::new("access-log-bad-path");
        // A regular file where the log's directory should be.
        std::fs::write(dir.path("file"), "x").expect("write");
        let (bolt_mock, dubbo_mock) = (bolt_mock(), MockUpstream::start(dubbo()));
        let doc = config_with_log(&dir.path("file/access.log"), &bolt_mock, &dubbo_mock);
        let config = config::load_str(&doc.to_string(), None).expect("valid");
        let err = Gateway::start(config).await.expect_err("cannot open");
        assert!(err.to_string().contains("file/access.log"), "{err}");
    })
    .await;
}

#[test]
fn validate_warns_about_unknown_variables_with_their_path() {
    let dir = TempDir::new("access-log-validate");
    let doc = json!({
        "servers": [{
            "routers": [{ "router_config_name": "r", "virtual_hosts": [{ "name": "v", "domains": ["*"], "routers": [] }] }],
            "listeners": [{
                "name": "l", "address": "127.0.0.1:0", "bind_port": true,
                "access_logs": [{ "log_path": dir.path("a.log").to_str().expect("UTF-8"), "log_format": "%protocol% %bogus_thing%" }],
                "filter_chains": [{ "filters": [{ "type": "proxy", "config": { "downstream_protocol": "bolt", "router_config_name": "r" } }] }]
            }]
        }],
        "cluster_manager": { "clusters": [] }
    });
    let file = dir.path("meshgate.json");
    std::fs::write(&file, doc.to_string()).expect("write config");
    let out = std::process::Command::new(BIN)
        .args(["validate", "-c"])
        .arg(&file)
        .output()
        .expect("run validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warning:")
            && l.contains("servers[0].listeners[0].access_logs[0].log_format")
            && l.contains("%bogus_thing%")),
        "{stdout}"
    );
    assert!(!dir.path("a.log").exists(), "validate opens no log file");
}
