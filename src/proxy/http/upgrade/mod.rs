//! HTTP/1.1 upgrades (`Connection: upgrade` with `Upgrade: websocket` or
//! any other token, RFC 9110 §7.8) passed through as a byte tunnel.
//!
//! ```text
//!  upgrade request ─► routed like any request (matchers, header lists,
//!    │                host rewrite, cluster, LB, breakers, stats), with
//!    │                Upgrade + Connection: upgrade kept, always HTTP/1.1
//!    │                upstream, retried only when nothing reached a host
//!    ├─ upstream answers anything but 101 ─► a normal response
//!    └─ upstream answers 101 ─► 101 to the client, then both connections
//!         are handed over (hyper::upgrade::on on each side) and bytes
//!         are copied both ways through two fixed buffers until both
//!         directions end (a close is passed on; the other direction then
//!         has CLOSE_LINGER to finish), a side fails, nothing moves for
//!         the listener's idle timeout, or the gateway's grace period ends
//! ```
//!
//! The proxy side ([`requested`], [`restore_request_headers`],
//! [`switched`], [`restore_response_headers`]) keeps the upgrade's headers
//! through the hop-by-hop strip. The downstream driver holds a
//! [`TunnelSlot`] per connection: the service arms it when it returns a
//! 101, and once hyper has written that 101 and given the connection up,
//! the driver runs the tunnel ([`run`], `tunnel.rs`) while the connection stays counted
//! and its bytes go on being counted by the listener's counters.
//!
//! HTTP/2 extended CONNECT (RFC 8441) is not supported: an h2 request
//! carries no `Upgrade`, so it is proxied as an ordinary request.

mod tunnel;

pub(crate) use tunnel::run;

use super::super::error::ProxyError;
use super::super::filter::LocalReply;
use super::{ResponseBody, reply};
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use meshgate_codecs::ReplyStatus;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// The `Upgrade` value of an HTTP/1.1 request that asks to switch
/// protocols: `Upgrade` present and `upgrade` among `Connection`'s tokens
/// (an `Upgrade` not named by `Connection` is an ordinary hop-by-hop
/// field, and HTTP/1.0 upgrades are ignored, RFC 9110 §7.8).
pub(crate) fn requested(head: &Parts) -> Option<HeaderValue> {
    if head.version != Version::HTTP_11 || !connection_names_upgrade(&head.headers) {
        return None;
    }
    joined(&head.headers, &header::UPGRADE)
}

/// Puts back what the upstream needs to see the upgrade, after the
/// hop-by-hop fields were stripped: `Upgrade` as the client sent it and
/// `Connection: upgrade` (and nothing else the client's `Connection`
/// named).
pub(crate) fn restore_request_headers(headers: &mut HeaderMap, protocol: &HeaderValue) {
    headers.insert(header::UPGRADE, protocol.clone());
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// For a response about to lose its hop-by-hop fields: the protocol a 101
/// switches to (the upstream's `Upgrade`, else the one requested), `None`
/// for any other status. A 101 to a request that asked for no upgrade is
/// the upstream's error: the client could not follow it.
pub(crate) fn switched<B>(
    response: &Response<B>,
    requested: Option<&HeaderValue>,
) -> Result<Option<HeaderValue>, ProxyError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(None);
    }
    let Some(requested) = requested else {
        return Err(unasked_switch());
    };
    Ok(Some(
        joined(response.headers(), &header::UPGRADE).unwrap_or_else(|| requested.clone()),
    ))
}

/// Puts a 101's `Upgrade` and `Connection: upgrade` back after the
/// hop-by-hop strip.
pub(crate) fn restore_response_headers(headers: &mut HeaderMap, switched: Option<HeaderValue>) {
    if let Some(protocol) = switched {
        restore_request_headers(headers, &protocol);
    }
}

fn unasked_switch() -> ProxyError {
    ProxyError::Local(LocalReply {
        status: ReplyStatus::UpstreamReset,
        message: Cow::Borrowed("502|upstream switched protocols without an upgrade request"),
    })
}

fn connection_names_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Every value of `name` as one comma-joined value; `None` when absent or
/// empty.
fn joined(headers: &HeaderMap, name: &header::HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return (!first.is_empty()).then(|| first.clone());
    };
    let mut all = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        all.extend_from_slice(b", ");
        all.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&all).ok()
}

/// Both sides of an upgrade the gateway agreed to, waiting for hyper to
/// hand the connections over.
pub(crate) struct PendingTunnel {
    downstream: OnUpgrade,
    upstream: OnUpgrade,
}

impl PendingTunnel {
    /// The downstream and upstream halves.
    pub(super) fn into_halves(self) -> (OnUpgrade, OnUpgrade) {
        (self.downstream, self.upstream)
    }
}

/// Where a downstream connection's service leaves the tunnel a 101 opens,
/// for the connection's driver to run once hyper has written the 101 and
/// given the connection up. Cheap to clone (clones share the slot).
#[derive(Clone, Default)]
pub(crate) struct TunnelSlot(Arc<Mutex<Option<PendingTunnel>>>);

impl TunnelSlot {
    /// The downstream half of a possible upgrade, taken from the request
    /// before it is served (hyper offers one for every HTTP/1.1 request
    /// with an `Upgrade` field; it resolves only if the response is a 101).
    pub(crate) fn downstream<B>(request: &mut Request<B>) -> Option<OnUpgrade> {
        (request.version() == Version::HTTP_11 && request.headers().contains_key(header::UPGRADE))
            .then(|| hyper::upgrade::on(request))
    }

    /// Called with the response the service is about to return: a 101
    /// with both halves of the upgrade at hand arms the slot; a 101 with
    /// either missing (a local reply, a request that asked for none) is
    /// replaced by a 502, since nothing could carry the switched protocol.
    pub(crate) fn arm(&self, response: &mut Response<ResponseBody>, downstream: Option<OnUpgrade>) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let upstream = response.extensions_mut().remove::<OnUpgrade>();
        match (downstream, upstream) {
            (Some(downstream), Some(upstream)) => {
                let pending = PendingTunnel {
                    downstream,
                    upstream,
                };
                *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pending);
            }
            _ => {
                let version = response.version();
                *response = reply::error_response(&unasked_switch(), false);
                *response.version_mut() = version;
            }
        }
    }

    /// The armed tunnel, if any.
    pub(crate) fn take(&self) -> Option<PendingTunnel> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: Version, pairs: &[(&str, &str)]) -> Parts {
        let mut builder = Request::get("/chat").version(version);
        for (k, v) in pairs {
            builder = builder.header(*k, *v);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn an_upgrade_needs_connection_upgrade_and_http_1_1() {
        let ws = head(
            Version::HTTP_11,
            &[
                ("connection", "keep-alive, Upgrade"),
                ("upgrade", "websocket"),
            ],
        );
        assert_eq!(requested(&ws).expect("an upgrade"), "websocket");
        let unnamed = head(Version::HTTP_11, &[("upgrade", "websocket")]);
        assert!(requested(&unnamed).is_none());
        let old = head(
            Version::HTTP_10,
            &[("connection", "upgrade"), ("upgrade", "websocket")],
        );
        assert!(requested(&old).is_none());
        let two = head(
            Version::HTTP_11,
            &[
                ("connection", "upgrade"),
                ("upgrade", "h2c"),
                ("upgrade", "x-raw/1"),
            ],
        );
        assert_eq!(requested(&two).expect("an upgrade"), "h2c, x-raw/1");
    }

    #[test]
    fn a_101_keeps_its_protocol_and_an_unasked_one_is_an_error() {
        let asked = HeaderValue::from_static("websocket");
        let response = Response::builder()
            .status(101)
            .header("upgrade", "WebSocket")
            .body(())
            .expect("response");
        let protocol = switched(&response, Some(&asked)).expect("asked for");
        assert_eq!(protocol.expect("a switch"), "WebSocket");
        assert!(switched(&response, None).is_err());
        let ok = Response::builder().status(200).body(()).expect("response");
        assert!(switched(&ok, Some(&asked)).expect("fine").is_none());
        let mut headers = HeaderMap::new();
        restore_response_headers(&mut headers, Some(asked));
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "upgrade");
    }
}
