//! `meshgate decode` end to end: the real binary over the golden captures.

use serde_json::Value;
use std::process::{Command, Output};

fn vector(file: &str) -> String {
    format!(
        "{}/codecs/testdata/vectors/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn meshgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .output()
        .expect("meshgate runs")
}

fn decode_json(args: &[&str]) -> (Value, Option<i32>) {
    let mut all = vec!["decode", "--json"];
    all.extend_from_slice(args);
    let out = meshgate(&all);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out.status.code())
}

#[test]
fn detects_and_decodes_every_frame_of_a_capture() {
    let (json, code) = decode_json(&[&vector("tricky/bolt_two_frames.bin")]);
    assert_eq!(code, Some(0));
    assert_eq!(json["protocol"], "bolt");
    assert_eq!(json["detected"], true);
    let frames = json["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        (frames[0]["kind"].as_str(), frames[0]["request_id"].as_u64()),
        (Some("request"), Some(1))
    );
    assert_eq!(
        frames[0]["headers"][0],
        serde_json::json!(["service", "com.alipay.test.EchoService:1.0"])
    );
    assert_eq!(
        (frames[1]["kind"].as_str(), frames[1]["offset"].as_u64()),
        (Some("heartbeat"), Some(384))
    );
    assert_eq!(json["end"]["outcome"], "complete");
}

#[test]
fn text_output_shows_routing_keys() {
    let out = meshgate(&["decode", &vector("dubbo/request_dubbo_remoting.bin")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("259 bytes, protocol dubbo (detected)"),
        "{text}"
    );
    assert!(text.contains("method: sayHello"), "{text}");
    assert!(text.contains("group: g1"), "{text}");
}

#[test]
fn corrupt_truncated_and_unknown_captures_exit_1() {
    let (json, code) = decode_json(&[&vector("tricky/bolt_absurd_content_len.bin")]);
    assert_eq!(code, Some(1));
    assert_eq!(json["end"]["outcome"], "corrupt");
    assert!(
        json["end"]["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit")
    );

    let (json, code) = decode_json(&[&vector("tricky/dubbo_truncated.bin")]);
    assert_eq!(code, Some(1));
    assert_eq!(json["end"]["outcome"], "incomplete");

    let (json, code) = decode_json(&[&vector("xprotocol/x_example_request.bin")]);
    assert_eq!(code, Some(1));
    assert_eq!(json["protocol"], Value::Null);
}

#[test]
fn generic_codecs_from_json_and_forced_protocols() {
    let config = format!(
        "{}/examples/generic/x_example.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (json, code) = decode_json(&[
        "--generic",
        &config,
        &vector("xprotocol/x_example_response_ok.bin"),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(json["protocol"], "x_example");
    assert_eq!(json["frames"][0]["status"]["code"], 0);

    let (json, code) = decode_json(&[
        "--protocol",
        "boltv2",
        &vector("bolt/v1_request_hessian2.bin"),
    ]);
    assert_eq!(code, Some(0), "a boltv2 codec decodes v1 frames too");
    assert_eq!(json["detected"], false);

    let (json, _) = decode_json(&["--detect", "dubbo", &vector("bolt/v1_request_hessian2.bin")]);
    assert_eq!(json["end"]["outcome"], "no_match");
}

#[test]
fn http_is_detected_but_left_to_the_http_stack() {
    let (json, code) = decode_json(&[&vector("http/h2_client_get_node.bin")]);
    assert_eq!(code, Some(0));
    assert_eq!(json["protocol"], "Http2");
    assert_eq!(json["end"]["outcome"], "not_framed");
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = meshgate(&[
        "decode",
        "--protocol",
        "thrift",
        &vector("bolt/v1_request_hessian2.bin"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown protocol \"thrift\""), "{err}");
    let out = meshgate(&["decode", "/nonexistent/capture.bin"]);
    assert_eq!(out.status.code(), Some(2));
}
