//! First-bytes detectors for HTTP/1.x (method token + space) and HTTP/2
//! with prior knowledge (the 24-byte client preface).

use crate::codec::Detect;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The request methods MOSN's HTTP/1 matcher accepts, each followed by the
/// space the request line requires (RFC 9112 §3).
const HTTP1_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
    b"LINK ",
    b"UNLINK ",
];

/// HTTP/1 request line: `Match` once the buffer starts with a method token
/// and a space, `NeedMore` while it is a proper prefix of one, `NoMatch`
/// otherwise (so `PRI` and lower-case methods are rejected). At most 8 bytes
/// decide.
pub fn detect_http1(prefix: &[u8]) -> Detect {
    let mut need_more = false;
    for method in HTTP1_METHODS {
        if prefix.starts_with(method) {
            return Detect::Match;
        }
        if method.starts_with(prefix) {
            need_more = true;
        }
    }
    if need_more {
        Detect::NeedMore
    } else {
        Detect::NoMatch
    }
}

/// HTTP/2 prior knowledge: `Match` when the 24-byte preface is complete,
/// `NeedMore` while the bytes so far agree with it, `NoMatch` at the first
/// differing byte.
pub fn detect_http2(prefix: &[u8]) -> Detect {
    let n = prefix.len().min(H2_PREFACE.len());
    if prefix[..n] != H2_PREFACE[..n] {
        Detect::NoMatch
    } else if n == H2_PREFACE.len() {
        Detect::Match
    } else {
        Detect::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_methods() {
        assert_eq!(detect_http1(b"GET / HTTP/1.1\r\n"), Detect::Match);
        assert_eq!(detect_http1(b"CONNECT "), Detect::Match);
        assert_eq!(detect_http1(b"GE"), Detect::NeedMore);
        assert_eq!(detect_http1(b"P"), Detect::NeedMore);
        assert_eq!(detect_http1(b""), Detect::NeedMore);
        assert_eq!(detect_http1(b"PRI * HTTP/2.0"), Detect::NoMatch);
        assert_eq!(detect_http1(b"GETX /"), Detect::NoMatch);
        assert_eq!(detect_http1(b"get / HTTP/1.1"), Detect::NoMatch);
        assert_eq!(detect_http1(&[0x01, 0x01]), Detect::NoMatch);
    }

    #[test]
    fn http2_preface() {
        assert_eq!(detect_http2(H2_PREFACE), Detect::Match);
        assert_eq!(detect_http2(&H2_PREFACE[..10]), Detect::NeedMore);
        assert_eq!(detect_http2(b"PRI * HTTP/1.1\r\n\r\n"), Detect::NoMatch);
        assert_eq!(detect_http2(b"GET "), Detect::NoMatch);
        let mut with_settings = H2_PREFACE.to_vec();
        with_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(detect_http2(&with_settings), Detect::Match);
    }
}
