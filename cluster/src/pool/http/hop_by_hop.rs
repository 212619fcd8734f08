//! The fields a hop must not forward (RFC 9110 §7.6.1): the proxy strips
//! them from every message it passes on, and the h2 pool from every
//! request it sends (h2 refuses connection-specific fields, RFC 9113
//! §8.2.2), whoever built it.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `keep-alive` (no constant in `http`).
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `proxy-connection` (no constant in `http`).
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes the connection-specific fields a proxy must not forward: the
/// ones `Connection` names, `Connection` itself, `Keep-Alive`,
/// `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`, and `TE` unless it
/// is exactly `trailers` (which gRPC needs end to end).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them (gRPC's `TE: trailers` stays): one
    // pass over the fields instead of a hashed removal per name.
    if !headers.iter().any(|(name, value)| is_stripped(name, value)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        // `Connection: te` must not remove a `TE: trailers` the request
        // needs; the TE rule below decides about TE.
        if name != header::TE {
            headers.remove(&name);
        }
    }
    for name in [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ] {
        headers.remove(name);
    }
    let te_is_trailers = headers.get(header::TE).is_some_and(is_te_trailers);
    if !te_is_trailers {
        headers.remove(header::TE);
    }
}

/// True when [`strip_hop_by_hop`] has work because of this field: a
/// message with no such field passes it untouched (and, having no
/// `Connection`, asks for no upgrade).
pub fn is_stripped(name: &HeaderName, value: &HeaderValue) -> bool {
    is_hop_by_hop(name) && !(name == header::TE && is_te_trailers(value))
}

fn is_te_trailers(value: &HeaderValue) -> bool {
    value.as_bytes().eq_ignore_ascii_case(b"trailers")
}

/// True for the fields [`strip_hop_by_hop`] may remove without being named
/// by `Connection` (a field `Connection` names needs `Connection` itself).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_fields_go_and_te_trailers_stays() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("x-end-to-end", "kept"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["te", "x-end-to-end"]);
        let mut h = map(&[("te", "gzip, trailers")]);
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn messages_without_hop_by_hop_fields_are_left_alone() {
        let mut h = map(&[
            ("host", "x"),
            ("te", "trailers"),
            ("x-a", "1"),
            ("x-a", "2"),
        ]);
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
        let mut h = map(&[("x-a", "1"), ("keep-alive", "timeout=5")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-a"]);
    }
}
