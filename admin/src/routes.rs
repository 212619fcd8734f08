//! The one table of admin routes, and the dispatch every request goes
//! through: path → route (404), method → allowed (405 with `Allow`),
//! mutating → loopback peer (403), body → at most [`MAX_BODY_BYTES`] (413),
//! then the handler.
//!
//! MOSN's paths come first, with MOSN's request and response shapes;
//! meshgate's own (`/api/v1/clusters`, `/metrics`, the dashboard) follow.

use crate::handlers::{config_dump, dashboard, mosn, prometheus, stats, views};
use crate::reply::{self, Reply};
use crate::server::{App, MAX_BODY_BYTES};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// Which methods a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `GET` (and `HEAD`): reads only.
    Get,
    /// `POST` only: changes something in the process.
    Post,
}

impl Verb {
    fn allows(self, method: &Method) -> bool {
        match self {
            Verb::Get => method == Method::GET || method == Method::HEAD,
            Verb::Post => method == Method::POST,
        }
    }

    fn allow_header(self) -> &'static str {
        match self {
            Verb::Get => "GET, HEAD",
            Verb::Post => "POST",
        }
    }
}

/// One request as a handler sees it.
pub(crate) struct Call<'a> {
    pub(crate) app: &'a App,
    pub(crate) parts: &'a Parts,
    pub(crate) body: Bytes,
}

impl Call<'_> {
    /// The query's `key=value` pairs, percent-decoded, in order.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        self.parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default()
    }

    /// Whether the client asked for HTML (a browser) before JSON or text.
    pub(crate) fn wants_html(&self) -> bool {
        self.parts
            .headers
            .get(hyper::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
    }
}

type Handler = fn(&Call<'_>) -> Reply;

/// One entry of the table.
pub(crate) struct Route {
    /// The exact path (no prefix matching, no trailing-slash forgiveness).
    pub(crate) path: &'static str,
    /// The method it answers.
    pub(crate) verb: Verb,
    /// What it is for, shown by `/` in the API list.
    pub(crate) summary: &'static str,
    handler: Handler,
}

const fn route(path: &'static str, verb: Verb, summary: &'static str, handler: Handler) -> Route {
    Route {
        path,
        verb,
        summary,
        handler,
    }
}

/// Every admin endpoint.
pub(crate) static ROUTES: &[Route] = &[
    route(
        "/",
        Verb::Get,
        "this list (a browser is shown the dashboard)",
        mosn::help,
    ),
    route(
        "/api/v1/version",
        Verb::Get,
        "the build's version",
        mosn::version,
    ),
    route(
        "/api/v1/states",
        Verb::Get,
        "pid and lifecycle state: pid=N&state=N",
        mosn::states,
    ),
    route(
        "/api/v1/config_dump",
        Verb::Get,
        "the running config, secrets redacted; ?mosnconfig ?allrouters ?allclusters ?alllisteners ?router=N ?cluster=N ?listener=N",
        config_dump::config_dump,
    ),
    route(
        "/api/v1/stats",
        Verb::Get,
        "metrics by type and namespace (MOSN's JSON); ?key=TYPE|NAMESPACE",
        stats::stats,
    ),
    route(
        "/api/v1/stats_glob",
        Verb::Get,
        "totals per type and metric, `key:value` lines",
        stats::stats_glob,
    ),
    route(
        "/api/v1/update_loglevel",
        Verb::Post,
        "POST {\"log_path\": \"...\", \"log_level\": \"DEBUG\"}",
        mosn::update_log_level,
    ),
    route(
        "/api/v1/get_loglevel",
        Verb::Get,
        "the log level of each logger",
        mosn::get_log_level,
    ),
    route(
        "/api/v1/enable_log",
        Verb::Post,
        "POST the logger name as the body",
        mosn::enable_log,
    ),
    route(
        "/api/v1/disable_log",
        Verb::Post,
        "POST the logger name as the body",
        mosn::disable_log,
    ),
    // MOSN registers its handler under this misspelling; MOSN tooling calls it.
    route(
        "/api/v1/disbale_log",
        Verb::Post,
        "MOSN's spelling of /api/v1/disable_log",
        mosn::disable_log,
    ),
    route(
        "/api/v1/clusters",
        Verb::Get,
        "clusters with their hosts: health, weight, in-flight, connections",
        views::clusters,
    ),
    route(
        "/api/v1/listeners",
        Verb::Get,
        "listeners with their connections",
        views::listeners,
    ),
    route(
        "/api/v1/dashboard",
        Verb::Get,
        "what the dashboard polls: state, metrics, clusters, listeners",
        dashboard::data,
    ),
    route(
        "/metrics",
        Verb::Get,
        "Prometheus text exposition 0.0.4",
        prometheus::metrics,
    ),
    route(
        "/dashboard",
        Verb::Get,
        "the live dashboard (HTML)",
        dashboard::page,
    ),
    route(
        "/dashboard/app.js",
        Verb::Get,
        "the dashboard's script",
        dashboard::script,
    ),
    route(
        "/dashboard/app.css",
        Verb::Get,
        "the dashboard's style sheet",
        dashboard::style,
    ),
];

/// Finds the route for `path`.
pub(crate) fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

/// Serves one request.
pub(crate) async fn dispatch(app: &App, request: Request<Incoming>, peer: SocketAddr) -> Reply {
    let (parts, body) = request.into_parts();
    let reply = match admit(&parts, peer) {
        Err(reply) => *reply,
        Ok(route) => match read_body(&parts, body).await {
            Err(reply) => reply,
            Ok(body) => (route.handler)(&Call {
                app,
                parts: &parts,
                body,
            }),
        },
    };
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = reply.status().as_u16(), %peer, "admin request");
    reply
}

/// Path, method and peer checks, before any body is read.
fn admit(parts: &Parts, peer: SocketAddr) -> Result<&'static Route, Box<Reply>> {
    let path = parts.uri.path();
    let Some(route) = find(path) else {
        return Err(Box::new(reply::error(
            StatusCode::NOT_FOUND,
            "no such admin endpoint",
            fields([("path", json!(path)), ("see", json!("/"))]),
        )));
    };
    if !route.verb.allows(&parts.method) {
        let mut reply = reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            fields([
                ("method", json!(parts.method.as_str())),
                ("allow", json!(route.verb.allow_header())),
            ]),
        );
        reply
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(route.verb.allow_header()));
        return Err(Box::new(reply));
    }
    if route.verb == Verb::Post && !peer_may_mutate(peer) {
        return Err(Box::new(reply::error(
            StatusCode::FORBIDDEN,
            "mutating admin endpoints answer loopback clients only",
            fields([("peer", json!(peer.ip().to_string()))]),
        )));
    }
    Ok(route)
}

/// Only a client on this machine may change the process (linkerd's rule
/// for `/shutdown`), whatever address the admin server is bound to.
fn peer_may_mutate(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The whole body, at most [`MAX_BODY_BYTES`]: a declared or actual larger
/// body is a 413, a broken one a 400.
async fn read_body(parts: &Parts, body: Incoming) -> Result<Bytes, Reply> {
    let too_large = || {
        reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            fields([("limit_bytes", json!(MAX_BODY_BYTES))]),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(reply::bad_request(&format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// A JSON object from pairs, for error bodies.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_listed_once() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[i + 1..].iter().all(|other| other.path != r.path),
                "{} twice",
                r.path
            );
        }
    }

    #[test]
    fn mutating_endpoints_are_post_only() {
        for path in [
            "/api/v1/update_loglevel",
            "/api/v1/enable_log",
            "/api/v1/disable_log",
            "/api/v1/disbale_log",
        ] {
            assert_eq!(find(path).map(|r| r.verb), Some(Verb::Post), "{path}");
        }
    }

    #[test]
    fn only_loopback_peers_may_mutate() {
        let may = |s: &str| peer_may_mutate(s.parse().expect("a socket address"));
        assert!(may("127.0.0.1:1"));
        assert!(may("127.8.9.10:1"));
        assert!(may("[::1]:1"));
        assert!(may("[::ffff:127.0.0.1]:1"));
        assert!(!may("10.0.0.1:1"));
        assert!(!may("192.168.1.2:1"));
        assert!(!may("[2001:db8::1]:1"));
        assert!(!may("[::ffff:10.0.0.1]:1"));
    }
}
