//! `meshgate validate -c FILE` through the real binary: the shipped example
//! configs are valid; a config with many problems gets every error listed
//! with its full JSON path and a hint, warnings with their paths, and exit
//! code 1; MOSN's own forms (Go-cased keys, the legacy `X` protocol, a
//! `connection_manager` router) are accepted. Configs: tests/data/configs/.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
}

impl Run {
    /// Lines starting with `prefix` (`"error: "`, `"warning: "`), each with
    /// the hint line that follows it, if any.
    fn issues(&self, prefix: &str) -> Vec<(String, Option<String>)> {
        let lines: Vec<&str> = self.stdout.lines().collect();
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| {
                let issue = line.strip_prefix(prefix)?;
                let hint = lines
                    .get(i + 1)
                    .and_then(|next| next.strip_prefix("    hint: "));
                Some((issue.to_owned(), hint.map(str::to_owned)))
            })
            .collect()
    }
}

fn validate(file: &Path) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(["validate", "-c"])
        .arg(file)
        .output()
        .expect("meshgate runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn config(name: &str) -> PathBuf {
    repo(&format!("tests/data/configs/{name}"))
}

#[test]
fn the_example_configs_are_valid() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(repo("examples")).expect("examples/") {
        let dir = entry.expect("a directory entry").path();
        // `config.json`, or MOSN's pair for two gateways in series.
        for name in ["config.json", "client_config.json", "server_config.json"] {
            let file = dir.join(name);
            if !file.exists() {
                continue;
            }
            let run = validate(&file);
            assert_eq!(run.code, Some(0), "{}:\n{}", file.display(), run.stdout);
            assert!(run.stdout.contains(": valid ("), "{}", run.stdout);
            assert_eq!(run.issues("error: "), [], "{}", file.display());
            assert_eq!(run.issues("warning: "), [], "{}", file.display());
            let relative = file
                .strip_prefix(repo("examples"))
                .expect("under examples/");
            checked.push(relative.display().to_string());
        }
    }
    for expected in [
        "auto/config.json",
        "bolt/config.json",
        "dubbo/config.json",
        "http/client_config.json",
        "http/server_config.json",
        "grpc/config.json",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} was not checked; found {checked:?}"
        );
    }
}

#[test]
fn every_problem_is_listed_with_its_path_and_a_hint() {
    let run = validate(&config("many_problems.json"));
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let errors = run.issues("error: ");
    // (full JSON path, part of the message, part of the hint)
    let expected = [
        (
            "servers[0].listeners[0].address",
            "\"127.0.0.1:port\" is not an ip:port address",
            "127.0.0.1:2045",
        ),
        (
            "servers[0].listeners[1].filter_chains[0].filters[0].config.router_config_name",
            "no router named \"no_such_router\"",
            "defined routers: inline_router, rpc_router (invalid)",
        ),
        (
            "cluster_manager.clusters[0].lb_type",
            "unknown lb_type \"LB_FASTEST\"",
            "LB_ROUNDROBIN",
        ),
        (
            "servers[0].routers[0].virtual_hosts[0].routers[0].match.headers[0].value",
            "invalid regex",
            "RE2",
        ),
        (
            "servers[0].listeners[2].filter_chains[0].filters[0].config.downstream_protocol",
            "unknown protocol \"thrift\"",
            "Auto",
        ),
        (
            "servers[0].routers[0].virtual_hosts[0].routers[0].route.timeout",
            "invalid duration \"3parsecs\"",
            "Go duration",
        ),
        (
            "cluster_manager.clusters[0].connect_timeout",
            "invalid duration \"fast\"",
            "Go duration",
        ),
        (
            "cluster_manager.clusters[0].hosts[0].weight",
            "invalid type: string \"heavy\"",
            "wrong type",
        ),
    ];
    for (path, message, hint) in expected {
        let found = errors
            .iter()
            .find(|(issue, _)| issue.starts_with(&format!("{path}: ")))
            .unwrap_or_else(|| panic!("no error at {path}:\n{}", run.stdout));
        assert!(found.0.contains(message), "{found:?}");
        let given = found
            .1
            .as_deref()
            .unwrap_or_else(|| panic!("no hint: {found:?}"));
        assert!(given.contains(hint), "{found:?}");
        // The path is said once, not repeated inside the message.
        assert_eq!(found.0.matches(path).count(), 1, "{found:?}");
    }
    assert_eq!(
        errors.len(),
        expected.len(),
        "nothing else:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with(&format!("many_problems.json: {} errors\n", expected.len()))
    );

    // What MOSN accepts is no error: "Name", the legacy "X" with
    // sub_protocol, and the connection_manager filter's inline router
    // (listener 3 uses all three).
    assert!(
        !errors.iter().any(|(e, _)| e.contains("listeners[3]")),
        "{}",
        run.stdout
    );

    let warnings = run.issues("warning: ");
    for path in [
        "cluster_manager.clusters[0].colour: unknown key, ignored",
        "servers[0].listeners[0].reuse_port: unknown key, ignored",
        "servers[0].routers[0].virtual_hosts[0].routers[1].route.cluster_name: routes to cluster \"ghost\", which is not defined",
    ] {
        assert!(
            warnings.iter().any(|(w, _)| w == path),
            "no warning {path:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn mosn_forms_are_accepted_with_warnings_for_what_is_ignored() {
    let run = validate(&config("mosn_forms.json"));
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.issues("error: "), []);
    let warnings = run.issues("warning: ");
    assert_eq!(
        warnings,
        [
            (
                "servers[0].listeners[0].reuse_port: unknown key, ignored".to_owned(),
                None
            ),
            (
                "servers[0].listeners[0].stream_filters[0].type: unknown stream filter \"mosn_tracing\"; skipped".to_owned(),
                Some("meshgate's stream filters: fault, header_mutation".to_owned())
            ),
        ]
    );
    assert!(
        run.stdout
            .ends_with("mosn_forms.json: valid (1 listener, 1 router, 1 cluster, 2 warnings)\n"),
        "{}",
        run.stdout
    );

    // What the forms mean: the legacy listener speaks the sub_protocol and
    // routes with the connection_manager's router; "Name" names the cluster.
    let config = meshgate::config::load_file(&config("mosn_forms.json"), None).unwrap();
    let listener = &config.listeners[0];
    assert_eq!(listener.protocol_spec, "dubbo");
    assert_eq!(listener.router, "inline_router");
    assert!(config.routers.contains_key("inline_router"));
    assert!(config.clusters.get("provider").is_some());
    assert_eq!(
        listener.filters.len(),
        1,
        "fault kept, the unknown one skipped"
    );
}

#[test]
fn a_syntax_error_is_one_error_with_its_position() {
    let run = validate(&config("not_json.json"));
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let errors = run.issues("error: ");
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert!(errors[0].0.contains("line 2 column"), "{errors:?}");
    assert!(errors[0].1.as_deref().is_some_and(|h| h.contains("JSON")));
}

#[test]
fn a_missing_file_is_an_error() {
    let run = validate(&config("no_such_file.json"));
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stdout.contains("cannot read"), "{}", run.stdout);
}

#[test]
fn mirror_policy_problems_are_listed_with_their_paths() {
    let run = validate(&config("mirror_problems.json"));
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let at = |i: usize, field: &str| {
        format!(
            "servers[0].routers[0].virtual_hosts[0].routers[{i}].request_mirror_policies.{field}"
        )
    };
    let errors = run.issues("error: ");
    assert_eq!(errors.len(), 2, "{}", run.stdout);
    assert!(
        errors
            .iter()
            .any(|(e, hint)| e.starts_with(&at(0, "cluster"))
                && e.contains("must not be empty")
                && hint
                    .as_deref()
                    .is_some_and(|h| h.contains("cluster to mirror to"))),
        "{}",
        run.stdout
    );
    assert!(
        errors
            .iter()
            .any(|(e, _)| e.starts_with(&at(2, "percent")) && e.contains("expected u32")),
        "{}",
        run.stdout
    );
    let warnings = run.issues("warning: ");
    assert!(
        warnings
            .iter()
            .any(|(w, _)| w.starts_with(&at(1, "percent")) && w.contains("above 100")),
        "{}",
        run.stdout
    );
    assert!(
        warnings
            .iter()
            .any(|(w, hint)| w.starts_with(&at(1, "cluster"))
                && w.contains("\"zz\", which is not defined")
                && hint.as_deref().is_some_and(|h| h.contains("not mirrored"))),
        "{}",
        run.stdout
    );
}
