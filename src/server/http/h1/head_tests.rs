//! Unit and property tests of the request-head parser and the response
//! head encoder.

use super::*;
use http_body::Body as _;

fn parse(bytes: &[u8]) -> (Parsed, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let parsed = parse_request(&mut buf, &mut HeaderMap::new());
    (parsed, buf)
}

#[test]
fn a_plain_request_is_taken_whole_and_the_next_left_in_the_buffer() {
    let (parsed, rest) = parse(
        b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Empty:\r\nConnection: keep-alive, Close\r\n\r\nabcGET /next",
    );
    let Parsed::Request { request, close } = parsed else {
        panic!("{parsed:?}")
    };
    assert!(close);
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "/a?b=c");
    assert_eq!(request.headers()["host"], "x");
    assert_eq!(request.headers()["x-empty"], "");
    assert_eq!(request.body().size_hint().exact(), Some(3));
    assert_eq!(&rest[..], b"GET /next");
}

#[test]
fn a_request_with_no_body_has_an_ended_one() {
    let (parsed, rest) = parse(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let Parsed::Request { request, close } = parsed else {
        panic!("{parsed:?}")
    };
    assert!(!close);
    assert!(request.body().is_end_stream());
    assert!(rest.is_empty());
}

#[test]
fn a_small_body_still_arriving_is_awaited() {
    let (parsed, rest) = parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nonly some");
    assert!(matches!(parsed, Parsed::Short(49)), "{parsed:?}");
    assert_eq!(rest.len(), 48, "the buffer is as it was");
}

#[test]
fn a_head_cut_short_waits_for_more() {
    let (parsed, rest) = parse(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(matches!(parsed, Parsed::Partial), "{parsed:?}");
    assert_eq!(&rest[..], b"GET / HTTP/1.1\r\nHost: x\r\n");
}

#[test]
fn requests_with_anything_to_interpret_go_to_hyper_untouched() {
    let cases: [&[u8]; 12] = [
        b"GET / HTTP/1.0\r\n\r\n",
        b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab",
        b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
        b"POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\nonly some",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET http://[::1 HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        let (parsed, rest) = parse(case);
        assert!(
            matches!(parsed, Parsed::Elsewhere(_)),
            "{:?}: {parsed:?}",
            String::from_utf8_lossy(case)
        );
        assert_eq!(&rest[..], case, "the buffer is as it was");
    }
    let many: String = (0..INLINE_FIELDS + 1)
        .map(|i| format!("x-{i}: v\r\n"))
        .collect();
    let case = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert!(matches!(parse(case.as_bytes()).0, Parsed::Elsewhere(_)));
}

/// A request head of lines drawn from what requests carry and what
/// they must not (framing fields, odd bytes, bare LFs), maybe with a
/// body, maybe cut short, with random bytes maybe after it.
fn request_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let line = prop_oneof![
        Just(b"Host: x".to_vec()),
        Just(b"Content-Length: 3".to_vec()),
        Just(b"Content-Length: 70000".to_vec()),
        Just(b"Content-Length: 1, 1".to_vec()),
        Just(b"Transfer-Encoding: chunked".to_vec()),
        Just(b"Connection: close".to_vec()),
        Just(b"Upgrade: websocket".to_vec()),
        Just(b"Expect: 100-continue".to_vec()),
        Just(b"X-Empty:".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-zA-Z-]{1,8}: [ -~]{0,8}".prop_map(String::into_bytes),
    ];
    let start = prop_oneof![
        Just(b"GET / HTTP/1.1".to_vec()),
        Just(b"POST /a?b HTTP/1.1".to_vec()),
        Just(b"HEAD http://h/p HTTP/1.1".to_vec()),
        Just(b"GET / HTTP/1.0".to_vec()),
        Just(b"CONNECT h:1 HTTP/1.1".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..20),
    ];
    let end = prop_oneof![Just(b"\r\n".to_vec()), Just(b"\n".to_vec())];
    (
        start,
        proptest::collection::vec((line, end.clone()), 0..8),
        end,
        proptest::collection::vec(any::<u8>(), 0..16),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(start, lines, last, tail, cut)| {
            let mut bytes = start;
            bytes.extend_from_slice(b"\r\n");
            for (line, end) in lines {
                bytes.extend_from_slice(&line);
                bytes.extend_from_slice(&end);
            }
            bytes.extend_from_slice(&last);
            bytes.extend_from_slice(&tail);
            // Now and then cut short anywhere.
            if tail.len() % 4 == 0 {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    /// Whatever the bytes: no panic; a request taken is exactly the
    /// front of the buffer, as httparse reads it; anything else leaves
    /// the buffer as it was for hyper.
    #[test]
    fn a_head_is_taken_whole_or_left_untouched(bytes in request_bytes()) {
        let (parsed, rest) = parse(&bytes);
        match parsed {
            Parsed::Request { request, .. } => {
                let used = bytes.len() - rest.len();
                proptest::prop_assert_eq!(&bytes[used..], &rest[..]);
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut again = httparse::Request::new(&mut fields);
                let head = again.parse(&bytes).map_err(|e| {
                    proptest::test_runner::TestCaseError::fail(e.to_string())
                })?;
                let httparse::Status::Complete(head) = head else {
                    return Err(proptest::test_runner::TestCaseError::fail("partial"));
                };
                let body = request.body().size_hint().exact().unwrap_or(u64::MAX);
                proptest::prop_assert_eq!(head as u64 + body, used as u64);
                proptest::prop_assert_eq!(request.version(), Version::HTTP_11);
                proptest::prop_assert!(request.headers().get("transfer-encoding").is_none());
            }
            Parsed::Short(total) => {
                proptest::prop_assert!(total > bytes.len() && total <= BODY_WAIT_MAX);
                proptest::prop_assert_eq!(&rest[..], &bytes[..]);
            }
            Parsed::Partial | Parsed::Elsewhere(_) => {
                proptest::prop_assert_eq!(&rest[..], &bytes[..]);
            }
        }
    }
}

fn encode(
    response: http::Response<()>,
    size: BodySize,
    head_request: bool,
    closing: bool,
) -> (Result<Framing, HeadError>, String, bool) {
    let (parts, ()) = response.into_parts();
    let mut closing = closing;
    let mut dst = BytesMut::new();
    let framing = encode_response(&parts, size, head_request, &mut closing, &mut dst);
    (framing, String::from_utf8(dst.to_vec()).unwrap(), closing)
}

fn with(status: u16, fields: &[(&str, &str)]) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in fields {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

/// The head without its `date` line, which changes every second.
fn dateless(head: &str) -> String {
    head.split("\r\n")
        .filter(|line| !line.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn a_body_of_known_size_gets_its_length_and_every_head_a_date() {
    let (framing, head, closing) =
        encode(with(200, &[("x-a", "1")]), BodySize::Exact(5), false, false);
    assert_eq!(framing.unwrap(), Framing::Length(5));
    assert!(!closing);
    assert_eq!(
        dateless(&head),
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n"
    );
    assert_eq!(head.matches("\r\ndate: ").count(), 1, "{head}");
    let (_, head, _) = encode(
        with(404, &[("date", "Sun, 06 Nov 1994 08:49:37 GMT")]),
        BodySize::Ended,
        false,
        false,
    );
    assert_eq!(
        head,
        "HTTP/1.1 404 Not Found\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn a_body_of_unknown_size_is_chunked_or_read_to_the_close() {
    let (framing, head, closing) = encode(with(200, &[]), BodySize::Unknown, false, false);
    assert_eq!(framing.unwrap(), Framing::Chunked);
    assert!(!closing);
    assert_eq!(
        dateless(&head),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let mut old = with(200, &[]);
    *old.version_mut() = Version::HTTP_10;
    let (framing, head, closing) = encode(old, BodySize::Unknown, false, false);
    assert_eq!(framing.unwrap(), Framing::UntilClose);
    assert!(closing);
    assert_eq!(
        dateless(&head),
        "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn head_204_and_304_answers_keep_their_fields_and_send_no_body() {
    let (framing, head, _) = encode(
        with(200, &[("content-length", "11")]),
        BodySize::Ended,
        true,
        false,
    );
    assert_eq!(framing.unwrap(), Framing::Nothing);
    assert_eq!(
        dateless(&head),
        "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n"
    );
    for status in [204, 304] {
        let (framing, head, _) = encode(
            with(status, &[("content-length", "3")]),
            BodySize::Exact(3),
            false,
            false,
        );
        assert_eq!(framing.unwrap(), Framing::Nothing);
        assert!(!head.contains("content-length"), "{head}");
    }
}

#[test]
fn a_closing_connection_says_so_once() {
    let (_, head, closing) = encode(with(200, &[]), BodySize::Ended, false, true);
    assert!(closing);
    assert_eq!(head.matches("connection: close").count(), 1, "{head}");
    let (_, head, closing) = encode(
        with(200, &[("connection", "close")]),
        BodySize::Ended,
        false,
        false,
    );
    assert!(closing, "a response asking to close closes");
    assert_eq!(head.matches("connection: close").count(), 1, "{head}");
}

#[test]
fn heads_that_cannot_be_sent_are_errors() {
    let (framing, ..) = encode(with(103, &[]), BodySize::Ended, false, false);
    assert!(matches!(framing, Err(HeadError::Informational)));
    let (framing, ..) = encode(
        with(200, &[("content-length", "1"), ("content-length", "2")]),
        BodySize::Unknown,
        false,
        false,
    );
    assert!(matches!(framing, Err(HeadError::ContentLength)));
    let (framing, ..) = encode(
        with(200, &[("content-length", "x")]),
        BodySize::Unknown,
        false,
        false,
    );
    assert!(matches!(framing, Err(HeadError::ContentLength)));
}
