//! Header work on the way through: what the proxy asks of a request's
//! fields, read in one pass ([`HeadFacts`]), hop-by-hop fields (RFC 9110
//! §7.6.1), `x-forwarded-for` / `x-forwarded-proto`, and the route's
//! add/remove lists on an `http::HeaderMap`.

use super::super::context::Downstream;
use super::super::variables::variable;
use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use meshgate_cluster::Cluster;
use meshgate_router::{HeaderMutations, HeaderToAdd, HeaderValueSource};
use std::net::IpAddr;

/// The hop-by-hop strip lives with the HTTP pools, which need it too (h2
/// refuses connection-specific fields).
pub(crate) use meshgate_cluster::pool::http::strip_hop_by_hop;

/// What the proxy asks of a request's fields, learnt in one pass over
/// them rather than a hashed lookup per question (a request usually has
/// few fields, and none of these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeadFacts {
    /// `content-type: application/grpc…`.
    pub(crate) grpc: bool,
    /// A field [`strip_hop_by_hop`] removes (`Connection`, hence an
    /// upgrade, among them).
    pub(crate) hop_by_hop: bool,
    /// `Expect`.
    pub(crate) expect: bool,
    /// How many `Host` fields (0, 1, or 2 for more).
    pub(crate) hosts: u8,
    /// The first `Host` is text (what an authority taken from it needs).
    pub(crate) host_is_text: bool,
    /// `x-forwarded-for` or `x-forwarded-proto`.
    pub(crate) forwarded: bool,
}

impl HeadFacts {
    pub(crate) fn of(headers: &HeaderMap) -> HeadFacts {
        let mut facts = HeadFacts::default();
        let mut content_type = None;
        for (name, value) in headers {
            if name == header::HOST {
                if facts.hosts == 0 {
                    facts.host_is_text = value.to_str().is_ok();
                }
                facts.hosts = (facts.hosts + 1).min(2);
            } else if name == header::CONTENT_TYPE {
                // The first one, as `HeaderMap::get` reads it.
                content_type.get_or_insert(value);
            } else if name == header::EXPECT {
                facts.expect = true;
            } else if name == X_FORWARDED_FOR || name == X_FORWARDED_PROTO {
                facts.forwarded = true;
            } else if meshgate_cluster::pool::http::is_stripped(name, value) {
                facts.hop_by_hop = true;
            }
        }
        facts.grpc = content_type.is_some_and(super::reply::is_grpc_content_type);
        facts
    }
}

/// `x-forwarded-for`.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Appends the peer's address (`peer`, the connection's
/// [`ip_value`]) to `x-forwarded-for` and sets `x-forwarded-proto: http`
/// when the client did not. One hashed lookup per field (entries, not a
/// get and then an insert).
pub(crate) fn add_forwarded(headers: &mut HeaderMap, peer: &HeaderValue) {
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Occupied(mut prior) => {
            let joined = match prior.get().to_str() {
                Ok(text) if !text.trim().is_empty() => {
                    let mut joined = Vec::with_capacity(text.len() + 2 + peer.len());
                    joined.extend_from_slice(text.as_bytes());
                    joined.extend_from_slice(b", ");
                    joined.extend_from_slice(peer.as_bytes());
                    HeaderValue::from_bytes(&joined).ok()
                }
                _ => Some(peer.clone()),
            };
            if let Some(joined) = joined {
                prior.insert(joined);
            }
        }
        Entry::Vacant(slot) => {
            slot.insert(peer.clone());
        }
    }
    if let Entry::Vacant(slot) = headers.entry(&X_FORWARDED_PROTO) {
        slot.insert(HeaderValue::from_static("http"));
    }
}

/// The fields [`add_forwarded`] would add to a request that has neither,
/// for the pool to send after the request's own (`LentHead::appended`)
/// instead of two insertions into its map, when nothing else reads the
/// forwarded head.
pub(crate) fn forwarded_fields(peer: &HeaderValue) -> [(HeaderName, HeaderValue); 2] {
    [
        (X_FORWARDED_FOR.clone(), peer.clone()),
        (X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http")),
    ]
}

/// An address as a header value, as `Display` writes it. IPv4 (every
/// request of a v4 client) is written by hand: `fmt` took about 1,500
/// instructions per request.
pub(super) fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    HeaderValue::from_bytes(&text[..len]).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Which half of a level's lists to apply.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    /// `request_headers_to_add/remove`.
    Request,
    /// `response_headers_to_add/remove`.
    Response,
}

/// Applies the route's, virtual host's and router's lists in MOSN's order
/// (removals before additions within a level). `append` adds a value
/// beside existing ones; otherwise the value replaces them.
#[inline]
pub(crate) fn apply_layers(
    headers: &mut HeaderMap,
    layers: &[&HeaderMutations; 3],
    direction: Direction,
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) {
    // Inlined, so a route with no lists (the usual one) costs no call.
    let changes = |layer: &&HeaderMutations| match direction {
        Direction::Request => layer.changes_requests(),
        Direction::Response => layer.changes_responses(),
    };
    if layers.iter().any(changes) {
        apply_lists(headers, layers, direction, downstream, cluster);
    }
}

fn apply_lists(
    headers: &mut HeaderMap,
    layers: &[&HeaderMutations; 3],
    direction: Direction,
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) {
    for layer in layers {
        let (remove, add) = match direction {
            Direction::Request => (&layer.request_remove, &layer.request_add),
            Direction::Response => (&layer.response_remove, &layer.response_add),
        };
        for key in remove {
            headers.remove(key.as_str());
        }
        for entry in add {
            add_one(headers, entry, downstream, cluster);
        }
    }
}

fn add_one(
    headers: &mut HeaderMap,
    entry: &HeaderToAdd,
    downstream: &Downstream,
    cluster: Option<&Cluster>,
) {
    let Ok(name) = HeaderName::from_bytes(entry.key.as_bytes()) else {
        tracing::debug!(key = %entry.key, "header to add has an invalid name; skipped");
        return;
    };
    let value = match &entry.value {
        HeaderValueSource::Static(v) => HeaderValue::from_str(v),
        HeaderValueSource::Variable(name) => {
            HeaderValue::from_str(&variable(name, downstream, cluster).unwrap_or_default())
        }
    };
    let Ok(value) = value else {
        tracing::debug!(key = %entry.key, "header to add has an invalid value; skipped");
        return;
    };
    if entry.append {
        headers.append(name, value);
    } else {
        headers.insert(name, value);
    }
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
    fn facts_answer_what_the_lookups_would() {
        let facts = |pairs: &[(&str, &str)]| HeadFacts::of(&map(pairs));
        assert_eq!(
            facts(&[("host", "a")]),
            HeadFacts {
                hosts: 1,
                host_is_text: true,
                ..HeadFacts::default()
            }
        );
        assert_eq!(
            facts(&[("host", "a"), ("host", "b"), ("host", "c")]).hosts,
            2
        );
        // The first `Host` decides, as `HeaderMap::get` reads it.
        let mut opaque = HeaderMap::new();
        opaque.append(header::HOST, HeaderValue::from_bytes(b"h\xfft").unwrap());
        opaque.append(header::HOST, HeaderValue::from_static("a"));
        assert!(!HeadFacts::of(&opaque).host_is_text);
        let mut text_first = HeaderMap::new();
        text_first.append(header::HOST, HeaderValue::from_static("a"));
        text_first.append(header::HOST, HeaderValue::from_bytes(b"h\xfft").unwrap());
        assert!(HeadFacts::of(&text_first).host_is_text);
        let grpc = facts(&[
            ("content-type", "application/grpc+proto"),
            ("te", "trailers"),
        ]);
        assert_eq!(
            grpc,
            HeadFacts {
                grpc: true,
                ..HeadFacts::default()
            },
            "TE: trailers is kept, so it is no hop-by-hop work"
        );
        // The first content-type decides, as `HeaderMap::get` reads it.
        assert!(
            !facts(&[
                ("content-type", "text/plain"),
                ("content-type", "application/grpc")
            ])
            .grpc
        );
        assert!(facts(&[("te", "gzip")]).hop_by_hop);
        assert!(facts(&[("Connection", "upgrade"), ("upgrade", "websocket")]).hop_by_hop);
        assert!(facts(&[("keep-alive", "timeout=5")]).hop_by_hop);
        assert!(facts(&[("expect", "100-continue")]).expect);
        assert!(facts(&[("X-Forwarded-For", "10.0.0.1")]).forwarded);
        assert!(facts(&[("x-forwarded-proto", "https")]).forwarded);
        assert!(!facts(&[("x-forwarded-host", "a")]).forwarded);
        // Whatever the facts say, stripping agrees: nothing to do without
        // hop-by-hop work.
        for pairs in [
            &[("host", "a"), ("te", "trailers")][..],
            &[("x-a", "1")][..],
        ] {
            let mut headers = map(pairs);
            assert!(!HeadFacts::of(&headers).hop_by_hop);
            let before = headers.clone();
            strip_hop_by_hop(&mut headers);
            assert_eq!(headers, before);
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "9.99.199.200",
            "::1",
            "2001:db8::7",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_value(ip), ip.to_string().as_str());
        }
    }

    #[test]
    fn forwarded_for_is_appended() {
        let peer = ip_value("10.0.0.7".parse().unwrap());
        let mut h = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
        ]);
        add_forwarded(&mut h, &peer);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        // The same value serves every request of the connection.
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, &peer);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        // Several prior fields: the first is extended, the rest go.
        let mut h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ]);
        add_forwarded(&mut h, &peer);
        let all: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
        assert_eq!(all, ["1.1.1.1, 10.0.0.7"]);
        // A blank prior value is replaced.
        let mut h = map(&[("x-forwarded-for", "  ")]);
        add_forwarded(&mut h, &peer);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
    }
}
