use super::*;
use http::{HeaderName, HeaderValue, StatusCode};

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request").into_parts().0
}

fn encoded(head: &http::request::Parts, framing: SendFraming) -> String {
    let mut dst = BytesMut::new();
    encode_head(&LentHead::of(head), framing, &mut dst);
    String::from_utf8(dst.to_vec()).expect("ascii")
}

#[test]
fn request_heads_carry_the_origin_form_and_the_body_framing() {
    let get = request(Method::GET, "/a?b=c", &[("host", "svc"), ("x-id", "1")]);
    assert_eq!(
        encoded(&get, SendFraming::Empty),
        "GET /a?b=c HTTP/1.1\r\nhost: svc\r\nx-id: 1\r\n\r\n"
    );
    let absolute = request(
        Method::POST,
        "http://svc:8080/p",
        &[("content-length", "9")],
    );
    assert_eq!(
        encoded(&absolute, SendFraming::Length(3)),
        "POST /p HTTP/1.1\r\nhost: svc:8080\r\ncontent-length: 3\r\n\r\n"
    );
    let post = request(Method::POST, "/", &[("transfer-encoding", "chunked")]);
    assert_eq!(
        encoded(&post, SendFraming::Empty),
        "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
    );
    assert_eq!(
        encoded(&post, SendFraming::Chunked),
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let backend = HeaderValue::from_static("backend:80");
    let mut replaced = BytesMut::new();
    let client = request(Method::GET, "/", &[("host", "client"), ("host", "again")]);
    let lent = LentHead {
        host: Some(&backend),
        ..LentHead::of(&client)
    };
    encode_head(&lent, SendFraming::Empty, &mut replaced);
    assert_eq!(&replaced[..], b"GET / HTTP/1.1\r\nhost: backend:80\r\n\r\n");
    let appended = [(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_static("10.0.0.1"),
    )];
    let mut with_more = BytesMut::new();
    let lent = LentHead {
        appended: &appended,
        ..LentHead::of(&client)
    };
    encode_head(&lent, SendFraming::Length(2), &mut with_more);
    assert_eq!(
        &with_more[..],
        b"GET / HTTP/1.1\r\nhost: client\r\nhost: again\r\nx-forwarded-for: 10.0.0.1\r\ncontent-length: 2\r\n\r\n"
    );
    let mut chunks = BytesMut::new();
    encode_chunk(b"hello world, this is", &mut chunks);
    encode_chunk(b"", &mut chunks);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    encode_last_chunk(Some(&trailers), &mut chunks);
    assert_eq!(
        &chunks[..],
        b"14\r\nhello world, this is\r\n0\r\ngrpc-status: 0\r\n\r\n"
    );
}

fn parse(bytes: &[u8], method: &Method) -> Result<Option<ResponseHead>, WireError> {
    parse_response(&mut BytesMut::from(bytes), method)
}

/// The framing of `bytes`, a whole and valid response head.
fn framing(bytes: &[u8], method: &Method) -> BodyFraming {
    parse(bytes, method)
        .expect("valid")
        .expect("complete")
        .framing
}

#[test]
fn response_heads_give_status_headers_framing_and_keep_alive() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"[..],
    );
    let head = parse_response(&mut buf, &Method::GET)
        .expect("valid")
        .expect("complete");
    assert_eq!(head.response.status(), StatusCode::OK);
    let values: Vec<_> = head.response.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(head.framing, BodyFraming::Length(5));
    assert!(head.keep_alive);
    assert_eq!(&buf[..], b"hello");

    assert_eq!(
        framing(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            &Method::GET
        ),
        BodyFraming::Chunked
    );
    let close = parse(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
        &Method::GET,
    )
    .expect("valid")
    .expect("complete");
    assert!(!close.keep_alive);
    let old = parse(b"HTTP/1.0 200 OK\r\n\r\n", &Method::GET)
        .expect("valid")
        .expect("complete");
    assert_eq!(
        (old.framing, old.keep_alive),
        (BodyFraming::UntilClose, false)
    );
    assert_eq!(
        framing(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
            &Method::HEAD
        ),
        BodyFraming::Empty
    );
    assert_eq!(
        framing(b"HTTP/1.1 204 No Content\r\n\r\n", &Method::GET),
        BodyFraming::Empty
    );
    assert!(
        parse(b"HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .expect("valid")
            .is_none()
    );
    let smuggled = parse(
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        &Method::GET,
    )
    .expect("valid")
    .expect("complete");
    assert_eq!(
        (smuggled.framing, smuggled.keep_alive),
        (BodyFraming::Chunked, false)
    );
    // More fields than are parsed in one pass: the second pass.
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..40 {
        many.extend_from_slice(format!("x-field-{i}: value {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"content-length: 2\r\n\r\nok");
    let mut buf = BytesMut::from(&many[..]);
    let head = parse_response(&mut buf, &Method::GET)
        .expect("valid")
        .expect("complete");
    assert_eq!(head.response.headers().len(), 41);
    assert_eq!(head.response.headers()["x-field-39"], "value 39");
    assert_eq!(
        (head.framing, &buf[..]),
        (BodyFraming::Length(2), &b"ok"[..])
    );
}

#[test]
fn malformed_response_heads_are_errors() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    ] {
        assert!(
            parse(bad, &Method::GET).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>), WireError> {
    let mut buf = BytesMut::from(wire);
    let mut state = Chunked::Size;
    let (mut body, mut trailers) = (Vec::new(), None);
    loop {
        match state.step(&mut buf, 1024)? {
            ChunkStep::Data(data) => body.extend_from_slice(&data),
            ChunkStep::Trailers(fields) => trailers = Some(fields),
            ChunkStep::End => return Ok((body, trailers)),
            ChunkStep::NeedMore => return Err(WireError::Closed("mid-body")),
        }
    }
}

#[test]
fn chunked_bodies_decode_with_extensions_and_trailers() {
    let (body, trailers) =
        decode_all(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").expect("valid");
    assert_eq!(
        (body.as_slice(), trailers.is_none()),
        (&b"hello world"[..], true)
    );
    let (body, trailers) = decode_all(b"2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n").expect("valid");
    assert_eq!(body, b"ok");
    assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
    for bad in [
        &b"zz\r\n"[..],
        b"5\r\nhelloXX",
        b"5\n",
        b"11111111111111111\r\n",
    ] {
        assert!(decode_all(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn chunked_decoding_resumes_across_reads() {
    let wire = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\nx-t: 1\r\n\r\n";
    let mut state = Chunked::Size;
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut ended = false;
    for &byte in wire {
        buf.put_u8(byte);
        loop {
            match state.step(&mut buf, 1024).expect("valid") {
                ChunkStep::Data(data) => body.extend_from_slice(&data),
                ChunkStep::Trailers(fields) => assert_eq!(fields["x-t"], "1"),
                ChunkStep::End => {
                    ended = true;
                    break;
                }
                ChunkStep::NeedMore => break,
            }
        }
    }
    assert!(ended);
    assert_eq!(body, b"abcdefg");
}

proptest::proptest! {
    /// Whatever an upstream sends, the parser and the chunked decoder
    /// answer (a head, an error, or a request for more) without
    /// panicking, and the decoder always makes progress or stops.
    #[test]
    fn any_bytes_parse_or_fail_cleanly(
        head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        wire.extend_from_slice(&head);
        let _ = parse_response(&mut BytesMut::from(&head[..]), &Method::GET);
        let _ = parse_response(&mut BytesMut::from(&wire[..]), &Method::GET);
        let mut buf = BytesMut::from(&body[..]);
        let mut state = Chunked::Size;
        for _ in 0..=body.len() + 2 {
            let before = (buf.len(), state);
            match state.step(&mut buf, 256) {
                Ok(ChunkStep::Data(_) | ChunkStep::Trailers(_)) => {
                    proptest::prop_assert!(before != (buf.len(), state));
                }
                Ok(ChunkStep::End | ChunkStep::NeedMore) | Err(_) => break,
            }
        }
    }
}
