//! Response attachments: read on demand (`fill_headers`, or the first
//! `headers()`), written back by
//! `encode` when the view changed, and left alone where a response has no
//! place for them.

use super::{Body, decode_one, encode, frame_bytes, wire_fields};
use meshgate_codecs::dubbo::DubboCodec;
use meshgate_codecs::dubbo::hessian::read_response;
use meshgate_codecs::{Frame, FrameCodec};
use meshgate_test_support::vectors;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn filled(bytes: &[u8]) -> Frame {
    let mut frame = decode_one(bytes);
    assert!(!frame.headers_read(), "decode leaves responses unread");
    DubboCodec::new()
        .fill_headers(&mut frame)
        .unwrap_or_else(|e| panic!("fill_headers: {e}"));
    frame
}

#[test]
fn the_vectors_read_as_their_types() {
    for (file, kind, attachments) in [
        ("dubbo/response_value_dubbo_remoting.bin", 1, false),
        ("dubbo/response_exception_dubbo_remoting.bin", 0, false),
        ("dubbo/response_null_value.bin", 2, false),
        ("dubbo/response_value_with_attachments.bin", 4, true),
        ("dubbo/response_null_value_with_attachments.bin", 5, true),
    ] {
        let frame = decode_one(&vectors::read(file));
        let mut seen = 0;
        let body = read_response(frame.body(), |_| seen += 1).unwrap();
        assert_eq!(body.kind, kind, "{file}");
        assert_eq!(body.attachments.is_some(), attachments, "{file}");
        assert_eq!(seen, usize::from(attachments), "{file}");
        assert_eq!(body.kind_with_attachments(), kind % 3 + 3, "{file}");
    }
}

#[test]
fn fill_headers_reads_a_responses_string_attachments() {
    let frame = filled(&vectors::read("dubbo/response_value_with_attachments.bin"));
    assert_eq!(wire_fields(&frame), pairs(&[("dubbo", "2.0.2")]));
    assert!(!frame.headers().is_modified());
    // Unchanged, it is forwarded as its own bytes.
    assert_eq!(
        encode(&frame),
        vectors::read("dubbo/response_value_with_attachments.bin")
    );
}

#[test]
fn a_changed_view_is_written_back_as_the_attachments() {
    let mut frame = filled(&vectors::read("dubbo/response_value_with_attachments.bin"));
    frame.headers_mut().insert("x-served-by", b"meshgate");
    let again = filled(&encode(&frame));
    assert_eq!(
        wire_fields(&again),
        pairs(&[("dubbo", "2.0.2"), ("x-served-by", "meshgate")])
    );
    let body = read_response(again.body(), |_| {}).unwrap();
    assert_eq!(
        (body.kind, &again.body()[body.result]),
        (4, &b"\x0bhello world"[..])
    );

    frame.headers_mut().remove("dubbo");
    frame.headers_mut().remove("x-served-by");
    let again = filled(&encode(&frame));
    assert_eq!(wire_fields(&again), []);
    assert_eq!(read_response(again.body(), |_| {}).unwrap().kind, 4);
}

#[test]
fn a_response_without_attachments_gains_the_type_with_them() {
    for (file, kind) in [
        ("dubbo/response_value_dubbo_remoting.bin", 4),
        ("dubbo/response_exception_dubbo_remoting.bin", 3),
        ("dubbo/response_null_value.bin", 5),
    ] {
        let original = decode_one(&vectors::read(file));
        let mut frame = filled(&vectors::read(file));
        frame.headers_mut().insert("k", b"v");
        let again = filled(&encode(&frame));
        let body = read_response(again.body(), |_| {}).unwrap();
        assert_eq!(body.kind, kind, "{file}");
        let old = read_response(original.body(), |_| {}).unwrap();
        assert_eq!(
            again.body()[body.result],
            original.body()[old.result],
            "{file}: the result is copied"
        );
        assert_eq!(wire_fields(&again), pairs(&[("k", "v")]), "{file}");
    }
}

#[test]
fn an_unread_view_keeps_the_original_attachments() {
    let mut frame = decode_one(&vectors::read("dubbo/response_value_with_attachments.bin"));
    frame.headers_mut().insert("k", b"v");
    assert_eq!(
        wire_fields(&filled(&encode(&frame))),
        pairs(&[("dubbo", "2.0.2"), ("k", "v")])
    );
}

#[test]
fn responses_without_room_for_attachments_are_written_unchanged() {
    let quirk = vectors::read("dubbo/response_null_dubbo_remoting_quirk.bin");
    let error = vectors::read("dubbo/response_status_70_service_error_dubbo_remoting.bin");
    // Another serialization (fastjson, 6): the body is not hessian.
    let fastjson = frame_bytes(0x06, 20, 3, b"1\n\"hi\"\n");
    // (bytes, whether fill_headers finds the body malformed)
    for (bytes, malformed) in [(quirk, true), (error, false), (fastjson, false)] {
        let mut frame = decode_one(&bytes);
        let read = DubboCodec::new().fill_headers(&mut frame);
        assert_eq!(read.is_err(), malformed);
        assert!(frame.headers().is_empty());
        frame.headers_mut().insert("k", b"v");
        assert_eq!(encode(&frame), bytes);
    }
}

#[test]
fn fill_headers_reports_a_malformed_response_body() {
    // Type 4 with its map cut short.
    let body = Body::new()
        .raw(&[0x94])
        .s("v")
        .raw(b"H")
        .s("k")
        .bytes()
        .to_vec();
    let mut frame = decode_one(&frame_bytes(0x02, 20, 9, &body));
    assert!(DubboCodec::new().fill_headers(&mut frame).is_err());
    assert!(frame.headers().is_empty());
}
