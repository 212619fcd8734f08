use super::*;

fn headers(pairs: &[(&str, &[u8])]) -> Headers {
    let mut h = Headers::new();
    for (k, v) in pairs {
        h.insert(k, v);
    }
    h
}

/// A request with every field set, at 2024-02-29 13:45:06.789 UTC.
fn record<'a>(request: &'a Headers, response: Option<&'a Headers>) -> Record<'a> {
    Record {
        start: UNIX_EPOCH + Duration::from_millis(1_709_214_306_789),
        duration: Duration::from_micros(1_500),
        request_received: Some(Duration::from_nanos(850)),
        response_received: Some(Duration::from_micros(1_234)),
        protocol: "bolt",
        listener: "ingress",
        request_id: Some(42),
        request_headers: LoggedHeaders::Frame(request),
        response_headers: response.map(LoggedHeaders::Frame),
        response_code: Some(200),
        response_flag: None,
        bytes_received: 17,
        bytes_sent: 23,
        downstream_local: Some("127.0.0.1:2045".parse().unwrap()),
        downstream_remote: "127.0.0.1:50123".parse().unwrap(),
        upstream_host: Some("127.0.0.1:8080"),
        upstream_cluster: Some("backend"),
    }
}

fn render(format: &str, record: &Record<'_>) -> String {
    let (format, unknown) = Format::parse(format);
    assert!(unknown.is_empty(), "{unknown:?}");
    let mut out = Vec::new();
    format.render(record, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn every_variable_renders_its_value() {
    let req = headers(&[("service", b"com.example.Echo:1.0"), ("x-caller", b"web")]);
    let resp = headers(&[("x-served-by", b"b1")]);
    let r = record(&req, Some(&resp));
    let cases = [
        ("%start_time%", "2024/02/29 13:45:06.789"),
        ("%request_received_duration%", "850ns"),
        ("%response_received_duration%", "1.234ms"),
        ("%request_finished_duration%", "1.5ms"),
        ("%duration%", "1.5ms"),
        ("%bytes_sent%", "23"),
        ("%bytes_received%", "17"),
        ("%protocol%", "bolt"),
        ("%response_code%", "200"),
        ("%response_flag%", "-"),
        ("%response_flags%", "-"),
        ("%upstream_local_address%", "-"),
        ("%downstream_local_address%", "127.0.0.1:2045"),
        ("%downstream_remote_address%", "127.0.0.1:50123"),
        ("%upstream_host%", "127.0.0.1:8080"),
        ("%upstream_cluster%", "backend"),
        ("%listener_name%", "ingress"),
        ("%request_id%", "42"),
        ("%request_header_service%", "com.example.Echo:1.0"),
        ("%request_header_x-caller%", "web"),
        ("%request_header_absent%", "-"),
        ("%response_header_x-served-by%", "b1"),
        ("%response_header_absent%", "-"),
    ];
    for (format, expected) in cases {
        assert_eq!(render(format, &r), format!("{expected}\n"), "{format}");
    }
}

#[test]
fn a_local_reply_without_upstream_renders_dashes_and_its_flag() {
    let req = Headers::new();
    let mut r = record(&req, None);
    r.response_received = None;
    r.upstream_host = None;
    r.upstream_cluster = None;
    r.response_code = Some(404);
    r.response_flag = Some("NoRouteFound");
    r.downstream_local = None;
    assert_eq!(
        render(
            "%response_code% %response_flag% %upstream_host% %upstream_cluster% %response_received_duration% %downstream_local_address% %response_header_x%",
            &r
        ),
        "404 NoRouteFound - - - - -\n"
    );
    r.response_code = None;
    assert_eq!(render("%response_code%", &r), "-\n");
}

#[test]
fn http_requests_render_their_head_and_response_fields() {
    let empty = Headers::new();
    let mut response = http::HeaderMap::new();
    response.insert("x-served-by", http::HeaderValue::from_static("b1"));
    let request = meshgate_router::MapRequest::new().header("x-caller", "web");
    let mut r = record(&empty, None);
    r.protocol = "Http1";
    r.request_id = None;
    r.request_headers = LoggedHeaders::HttpRequest(&request);
    r.response_headers = Some(LoggedHeaders::Http(&response));
    assert_eq!(
        render(
            "%protocol% %request_id% %request_header_x-caller% %response_header_X-Served-By% %response_header_none%",
            &r
        ),
        "Http1 - web b1 -\n"
    );
}

#[test]
fn literal_text_around_variables_is_kept() {
    let req = Headers::new();
    let r = record(&req, None);
    assert_eq!(
        render("[%protocol%] id=%request_id%, 100%% done; 50% off", &r),
        "[bolt] id=42, 100% done; 50% off\n"
    );
    assert_eq!(render("no variables", &r), "no variables\n");
    assert_eq!(render("%protocol%%request_id%", &r), "bolt42\n");
    assert_eq!(render("trailing %", &r), "trailing %\n");
    assert_eq!(render("% protocol %protocol%", &r), "% protocol bolt\n");
}

#[test]
fn unknown_variables_are_reported_and_render_as_a_dash() {
    let (format, unknown) = Format::parse("%protocol% %nope% %request_header_% %StartTime%");
    assert_eq!(unknown, ["nope", "request_header_", "StartTime"]);
    let req = Headers::new();
    let mut out = Vec::new();
    format.render(&record(&req, None), &mut out);
    assert_eq!(out, b"bolt - - -\n");
}

#[test]
fn the_empty_format_is_mosns_default() {
    let (empty, unknown) = Format::parse("");
    assert!(unknown.is_empty());
    assert_eq!(empty, Format::parse(DEFAULT_FORMAT).0);
    let req = Headers::new();
    let mut r = record(&req, None);
    r.response_flag = Some("UpstreamRequestTimeout");
    r.response_code = Some(504);
    let line = render("", &r);
    assert_eq!(
        line,
        "2024/02/29 13:45:06.789 850ns 1.234ms 23 17 bolt 504 1.5ms UpstreamRequestTimeout 504 - 127.0.0.1:2045 127.0.0.1:50123 127.0.0.1:8080\n"
    );
}

#[test]
fn header_values_cannot_break_the_line() {
    let req = headers(&[("evil", b"a\nb\r\x7f\tc d")]);
    let r = record(&req, None);
    assert_eq!(
        render("%request_header_evil%", &r),
        "a\\x0ab\\x0d\\x7f\\x09c d\n"
    );
}

#[test]
fn response_header_use_is_known_after_parsing() {
    assert!(
        Format::parse("%response_header_x%")
            .0
            .reads_response_headers()
    );
    assert!(
        !Format::parse("%request_header_x%")
            .0
            .reads_response_headers()
    );
    assert!(!Format::parse("").0.reads_response_headers());
}

#[test]
fn durations_print_as_go_prints_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_nanos(1_000), "1µs"),
        (Duration::from_nanos(1_500), "1.5µs"),
        (Duration::from_nanos(1_234_567), "1.234567ms"),
        (Duration::from_millis(999), "999ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_millis(2_500), "2.5s"),
        (Duration::new(1, 1), "1.000000001s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(3_600), "1h0m0s"),
        (Duration::from_millis(3_723_500), "1h2m3.5s"),
    ];
    for (d, expected) in cases {
        let mut out = Vec::new();
        write_go_duration(&mut out, d);
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{d:?}");
        // And meshgate reads them back as Go durations.
        assert_eq!(
            meshgate_gocompat::parse_go_duration(expected),
            Ok(d),
            "{expected}"
        );
    }
}

#[test]
fn utc_times_cover_leap_days_and_year_ends() {
    let cases = [
        (0, "1970/01/01 00:00:00.000"),
        (951_782_400_000, "2000/02/29 00:00:00.000"),
        (1_704_067_199_999, "2023/12/31 23:59:59.999"),
        (1_709_164_800_000, "2024/02/29 00:00:00.000"),
        (4_107_542_400_000, "2100/03/01 00:00:00.000"),
    ];
    for (millis, expected) in cases {
        let mut out = Vec::new();
        write_utc(&mut out, UNIX_EPOCH + Duration::from_millis(millis));
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
