//! Go-compatible reading of a MOSN-shaped config: case-insensitive field
//! names, map keys untouched, unknown keys as warnings with their paths,
//! duplicate keys, nulls, and errors with exact paths.

use meshgate_gocompat::{
    GoDuration, Parsed, ReadError, from_str, from_str_at, from_value, from_value_at,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Config {
    servers: Vec<Server>,
    cluster_manager: ClusterManager,
    admin: Admin,
    pid: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Admin {
    address: AdminAddress,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct AdminAddress {
    socket_address: SocketAddress,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct SocketAddress {
    address: String,
    port_value: u16,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct Server {
    default_log_path: String,
    listeners: Vec<Listener>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Listener {
    name: String,
    #[serde(default)]
    address: String,
    /// In MOSN a flag (bind to the port of `address`), not a port number.
    #[serde(default)]
    bind_port: bool,
    #[serde(default)]
    filter_chains: Vec<FilterChain>,
    #[serde(default = "default_idle")]
    idle_timeout: GoDuration,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

fn default_idle() -> GoDuration {
    GoDuration(Duration::from_secs(90))
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct FilterChain {
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Filter {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: Value,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct ClusterManager {
    clusters: Vec<Cluster>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Cluster {
    name: String,
    #[serde(default)]
    lb_type: LbType,
    #[serde(default)]
    connect_timeout: Option<GoDuration>,
    #[serde(default)]
    max_request_per_conn: u16,
    #[serde(default)]
    hosts: Vec<Host>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
enum LbType {
    #[default]
    #[serde(rename = "LB_ROUNDROBIN")]
    RoundRobin,
    #[serde(rename = "LB_RANDOM")]
    Random,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Host {
    address: String,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

fn read(text: &str) -> Parsed<Config> {
    match from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{e}"),
    }
}

fn read_err(text: &str) -> ReadError {
    match from_str::<Config>(text) {
        Ok(parsed) => panic!("expected an error, read {parsed:?}"),
        Err(e) => e,
    }
}

fn warning_paths<T>(parsed: &Parsed<T>) -> Vec<&str> {
    parsed.warnings.iter().map(|w| w.path.as_str()).collect()
}

const MOSN: &str = r#"{
  "servers": [{
    "default_log_path": "stdout",
    "listeners": [{
      "name": "egress",
      "address": "127.0.0.1:2045",
      "bind_port": true,
      "filter_chains": [{
        "filters": [{
          "type": "proxy",
          "config": {"downstream_protocol": "X", "Extend_Config": {"sub_protocol": "bolt"}}
        }]
      }]
    }]
  }],
  "cluster_manager": {
    "clusters": [{
      "name": "server",
      "lb_type": "LB_RANDOM",
      "connect_timeout": "1.5s",
      "max_request_per_conn": 1024,
      "hosts": [{"address": "127.0.0.1:8080", "weight": 3, "metadata": {"zone": "a"}}]
    }]
  },
  "admin": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 34901}}}
}"#;

#[test]
fn reads_a_plain_mosn_config_without_warnings() {
    let parsed = read(MOSN);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let listener = &parsed.value.servers[0].listeners[0];
    assert_eq!(listener.name, "egress");
    assert!(listener.bind_port);
    assert_eq!(listener.idle_timeout, default_idle());
    let filter = &listener.filter_chains[0].filters[0];
    assert_eq!(filter.kind, "proxy");
    // The polymorphic blob is kept as written, keys and all.
    assert_eq!(filter.config["Extend_Config"]["sub_protocol"], "bolt");
    let cluster = &parsed.value.cluster_manager.clusters[0];
    assert_eq!(cluster.lb_type, LbType::Random);
    assert_eq!(
        cluster.connect_timeout,
        Some(GoDuration(Duration::from_millis(1500)))
    );
    assert_eq!(cluster.hosts[0].weight, 3);
    assert_eq!(cluster.hosts[0].metadata["zone"], "a");
    assert_eq!(parsed.value.admin.address.socket_address.port_value, 34901);
}

#[test]
fn field_names_match_case_insensitively_at_every_depth() {
    let parsed = read(
        r#"{
          "Servers": [{
            "LISTENERS": [{
              "Name": "egress",
              "BIND_PORT": true,
              "Idle_Timeout": "5s",
              "Filter_Chains": [{"FILTERS": [{"Type": "proxy", "CONFIG": {"A": 1}}]}]
            }]
          }],
          "cluster_MANAGER": {"Clusters": [{"NAME": "c", "Lb_Type": "LB_RANDOM",
            "Hosts": [{"Address": "h:1", "WEIGHT": 7}]}]},
          "PID": "/tmp/mosn.pid"
        }"#,
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let listener = &parsed.value.servers[0].listeners[0];
    assert_eq!(listener.name, "egress");
    assert!(listener.bind_port);
    assert_eq!(listener.idle_timeout, GoDuration(Duration::from_secs(5)));
    let filter = &listener.filter_chains[0].filters[0];
    assert_eq!(filter.kind, "proxy");
    assert_eq!(filter.config, json!({"A": 1}));
    let cluster = &parsed.value.cluster_manager.clusters[0];
    assert_eq!(
        (cluster.name.as_str(), &cluster.lb_type),
        ("c", &LbType::Random)
    );
    assert_eq!(cluster.hosts[0].weight, 7);
    assert_eq!(parsed.value.pid.as_deref(), Some("/tmp/mosn.pid"));
}

#[test]
fn enum_values_are_not_folded() {
    // Go compares string values exactly; only field names fold.
    let e =
        read_err(r#"{"cluster_manager": {"clusters": [{"name": "c", "lb_type": "lb_random"}]}}"#);
    assert_eq!(e.path, "cluster_manager.clusters[0].lb_type");
    assert!(e.message.contains("unknown variant `lb_random`"), "{e}");
}

#[test]
fn map_keys_keep_their_case() {
    let parsed = read(
        r#"{"servers": [{"listeners": [{"name": "l", "bind_port": true,
            "metadata": {"Zone": "A", "zone": "b", "NAME": "n"}}]}],
          "cluster_manager": {"clusters": [{"name": "c", "hosts": [
            {"address": "h", "Metadata": {"Version": "1.0", "ADDRESS": "x"}}]}]}}"#,
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let md = &parsed.value.servers[0].listeners[0].metadata;
    assert_eq!(md.len(), 3);
    assert_eq!((md["Zone"].as_str(), md["zone"].as_str()), ("A", "b"));
    assert_eq!(md["NAME"], "n");
    let host = &parsed.value.cluster_manager.clusters[0].hosts[0];
    assert_eq!(host.address, "h");
    let keys: Vec<&str> = host.metadata.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ADDRESS", "Version"]);
}

#[test]
fn unknown_keys_are_warnings_with_full_paths() {
    let parsed = read(
        r#"{
          "servers": [{"listeners": [
            {"name": "a", "bind_port": true},
            {"name": "b", "bind_port": true, "Reuse_Port": true,
             "filter_chains": [{"foo": {"deep": [1, 2]}, "filters": [{"type": "proxy", "bar": 1}]}]}
          ]}],
          "tracing": {"enable": true},
          "cluster_manager": {"clusters": [{"name": "c", "hosts": [{"address": "h", "x.y": 1}]}]}
        }"#,
    );
    // In file order.
    assert_eq!(
        warning_paths(&parsed),
        [
            "servers[0].listeners[1].Reuse_Port",
            "servers[0].listeners[1].filter_chains[0].foo",
            "servers[0].listeners[1].filter_chains[0].filters[0].bar",
            "tracing",
            r#"cluster_manager.clusters[0].hosts[0]["x.y"]"#,
        ]
    );
    assert!(
        parsed
            .warnings
            .iter()
            .all(|w| w.message == "unknown key, ignored")
    );
    assert_eq!(
        parsed.warnings[0].to_string(),
        "servers[0].listeners[1].Reuse_Port: unknown key, ignored"
    );
    // The rest of the document was read.
    assert_eq!(parsed.value.servers[0].listeners[1].name, "b");
}

#[test]
fn duplicate_keys_take_the_last_value() {
    let parsed = read(
        r#"{"servers": [{"listeners": [{"name": "first", "bind_port": true, "name": "second",
            "metadata": {"k": "1", "k": "2"},
            "filter_chains": [{"filters": [{"type": "proxy", "config": {"x": 1, "x": 2}}]}]}]}]}"#,
    );
    let listener = &parsed.value.servers[0].listeners[0];
    assert_eq!(listener.name, "second");
    assert_eq!(listener.metadata["k"], "2");
    assert_eq!(listener.filter_chains[0].filters[0].config, json!({"x": 2}));
    // Keys differing in case that name one field: the last written wins,
    // instead of serde's "duplicate field" error.
    for (text, name) in [
        (r#"{"name": "a", "NAME": "b", "bind_port": true}"#, "b"),
        (r#"{"NAME": "b", "bind_port": true, "Name": "a"}"#, "a"),
    ] {
        let listener: Parsed<Listener> = from_str(text).unwrap();
        assert!(listener.warnings.is_empty());
        assert_eq!(listener.value.name, name);
    }
    // Through a Value the order written is gone: the key sorting last wins.
    let listener: Parsed<Listener> =
        from_value(json!({"name": "a", "NAME": "b", "bind_port": true})).unwrap();
    assert_eq!(listener.value.name, "a");
}

#[test]
fn null_leaves_the_default() {
    let parsed = read(
        r#"{"servers": null, "pid": null, "cluster_manager": {"clusters": [{
            "name": "c", "lb_type": null, "connect_timeout": null, "hosts": [
              {"address": "h", "weight": null, "metadata": null}]}]}}"#,
    );
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert!(parsed.value.servers.is_empty());
    assert_eq!(parsed.value.pid, None);
    let cluster = &parsed.value.cluster_manager.clusters[0];
    assert_eq!(cluster.lb_type, LbType::RoundRobin);
    assert_eq!(cluster.connect_timeout, None);
    assert_eq!(cluster.hosts[0].weight, 1);
    assert!(cluster.hosts[0].metadata.is_empty());

    // A null after a value leaves the value, as in Go.
    let parsed = read(r#"{"pid": "p", "PID": null}"#);
    assert_eq!(parsed.value.pid.as_deref(), Some("p"));

    // A required field given as null is missing, not mistyped.
    let e = read_err(r#"{"servers": [{"listeners": [{"name": null, "bind_port": true}]}]}"#);
    assert_eq!(
        e.to_string(),
        "servers[0].listeners[0]: missing field `name`"
    );

    // Nulls inside a polymorphic blob stay for its own reader to judge.
    let parsed = read(
        r#"{"servers": [{"listeners": [{"name": "l", "bind_port": true,
            "filter_chains": [{"filters": [{"type": "t", "config": {"a": null}}]}]}]}]}"#,
    );
    let filter = &parsed.value.servers[0].listeners[0].filter_chains[0].filters[0];
    assert_eq!(filter.config, json!({"a": null}));
}

#[test]
fn null_array_elements_stay() {
    #[derive(Debug, Deserialize)]
    struct Lists {
        ports: Vec<Option<u16>>,
        #[serde(default)]
        hosts: Vec<Host>,
    }
    let parsed: Parsed<Lists> = from_str(r#"{"ports": [1, null, 3]}"#).unwrap();
    assert_eq!(parsed.value.ports, [Some(1), None, Some(3)]);
    assert!(parsed.value.hosts.is_empty());

    let e = from_str::<Lists>(r#"{"ports": [], "hosts": [{"address": "h"}, null]}"#).unwrap_err();
    assert_eq!(e.path, "hosts[1]");
    assert!(e.message.starts_with("invalid type: null"), "{e}");
}

#[test]
fn type_errors_name_the_exact_path() {
    let e = read_err(r#"{"servers": [{"listeners": [{"name": "l", "bind_port": "x"}]}]}"#);
    assert_eq!(
        e.to_string(),
        r#"servers[0].listeners[0].bind_port: invalid type: string "x", expected a boolean"#
    );
    let e = read_err(r#"{"admin": {"address": {"socket_address": {"port_value": "x"}}}}"#);
    assert_eq!(
        e.to_string(),
        r#"admin.address.socket_address.port_value: invalid type: string "x", expected u16"#
    );
    // The path uses the field's own name even when the file folded it.
    let e = read_err(
        r#"{"Cluster_Manager": {"Clusters": [{"name": "a"},
            {"NAME": "b", "MAX_REQUEST_PER_CONN": 70000}]}}"#,
    );
    assert_eq!(e.path, "cluster_manager.clusters[1].max_request_per_conn");
    assert!(e.message.contains("70000"), "{e}");

    let e = read_err(
        r#"{"cluster_manager": {"clusters": [{"name": "c", "connect_timeout": "5 sec"}]}}"#,
    );
    assert_eq!(e.path, "cluster_manager.clusters[0].connect_timeout");
    assert!(e.message.contains("invalid duration"), "{e}");

    let e = read_err(r#"{"servers": [{"listeners": [{"bind_port": true}]}]}"#);
    assert_eq!(
        e.to_string(),
        "servers[0].listeners[0]: missing field `name`"
    );

    let e = read_err(
        r#"{"cluster_manager": {"clusters": [{"name": "c", "hosts": [{"address": "h", "metadata": {"zone": 1}}]}]}}"#,
    );
    assert_eq!(e.path, "cluster_manager.clusters[0].hosts[0].metadata.zone");

    let e = read_err("5");
    assert_eq!(
        e.to_string(),
        "invalid type: integer `5`, expected struct Config"
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    let e = read_err("{\n  \"servers\": [\n    {\"listeners\": []},\n  ]\n}");
    assert_eq!(e.path, "");
    assert!(e.message.contains("line 4 column 3"), "{e}");
    let e = read_err("{\"pid\": \"p\"");
    assert!(e.message.contains("EOF"), "{e}");
    assert!(e.message.contains("line 1"), "{e}");
}

#[test]
fn a_sub_document_reports_full_paths() {
    let doc: Value = serde_json::from_str(MOSN).unwrap();
    let mut cluster = doc["cluster_manager"]["clusters"][0].clone();
    cluster["Hosts"] = json!([{"address": "h", "bogus": 1}]);
    cluster.as_object_mut().unwrap().remove("hosts");
    let parsed: Parsed<Cluster> = from_value_at(cluster, "cluster_manager.clusters[2]").unwrap();
    assert_eq!(
        warning_paths(&parsed),
        ["cluster_manager.clusters[2].hosts[0].bogus"]
    );

    let e =
        from_value_at::<Cluster>(json!({"name": 5}), "cluster_manager.clusters[2]").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cluster_manager.clusters[2].name: invalid type: integer `5`, expected a string"
    );
    let e = from_value_at::<Cluster>(json!({}), "cluster_manager.clusters[2]").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cluster_manager.clusters[2]: missing field `name`"
    );
    // Text read at a base path, syntax errors included.
    let parsed: Parsed<Host> = from_str_at(r#"{"Address": "h", "port": 1}"#, "hosts[3]").unwrap();
    assert_eq!(warning_paths(&parsed), ["hosts[3].port"]);
    let e = from_str_at::<Host>(r#"{"address": }"#, "hosts[3]").unwrap_err();
    assert_eq!(e.path, "hosts[3]");
    assert!(e.message.contains("line 1 column 13"), "{e}");
    let e = from_str_at::<Host>(r#"{"address": "h"} x"#, "hosts[3]").unwrap_err();
    assert!(e.message.starts_with("trailing characters"), "{e}");
    // A sequence read at a base path.
    let e = from_value_at::<Vec<Host>>(json!([{"address": 1}]), "hosts").unwrap_err();
    assert_eq!(e.path, "hosts[0].address");
}

#[test]
fn from_value_reads_the_same_as_from_str() {
    let a: Parsed<Config> = from_value(serde_json::from_str(MOSN).unwrap()).unwrap();
    assert_eq!(a, read(MOSN));
}
