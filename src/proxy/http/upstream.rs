//! The HTTP path's side of the upstream pools: the request body handed to
//! the cluster crate's [`HttpPool`], and its errors in the proxy's terms.

use super::super::error::ProxyError;
use super::replay::ReplayBody;
use crate::config::http::HttpVersion;
use crate::upstream::Upstreams;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use meshgate_cluster::pool::PoolError;
use meshgate_cluster::{Cluster, Host, HttpBody, HttpPoolError, LentHead, UpstreamBody};

/// One try's body as the pool takes it.
pub(super) fn body(body: ReplayBody) -> HttpBody {
    body.boxed_unsync()
}

/// The cluster crate's name for `version`.
pub(super) fn pool_version(version: HttpVersion) -> meshgate_cluster::HttpVersion {
    match version {
        HttpVersion::Http1 => meshgate_cluster::HttpVersion::Http1,
        HttpVersion::Http2 => meshgate_cluster::HttpVersion::Http2,
    }
}

/// A request as it goes to a host in `version`: origin-form `target` and
/// `Host: authority` over HTTP/1.1, an absolute URI and no `Host` over
/// HTTP/2 (the authority travels as `:authority`).
pub(super) fn request<B>(
    method: Method,
    target: &str,
    headers: &HeaderMap,
    authority: &str,
    version: HttpVersion,
    body: B,
) -> Result<Request<B>, http::Error> {
    let target = PathAndQuery::try_from(target)?;
    let head =
        TryHead::new(target, authority, version, single_host(headers))?.head(&method, headers);
    Ok(Request::from_parts(head, body))
}

/// The request's `Host`, when it has exactly one (a duplicate is replaced
/// by the authority, as any `Host` that is not it).
pub(super) fn single_host(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => Some(host),
        _ => None,
    }
}

/// What one try sends besides the method and the headers, checked once
/// and stamped on the head of each attempt the pool makes.
pub(super) struct TryHead {
    /// `None`: the request's own (origin-form) URI.
    uri: Option<Uri>,
    version: http::Version,
    /// HTTP/1: the `Host` to set, when the request's is not the authority
    /// already.
    host: Option<HeaderValue>,
    /// HTTP/2: `Host` goes (the authority is `:authority`).
    strip_host: bool,
}

impl TryHead {
    /// The try's target (origin form; a `PathAndQuery` clone shares the
    /// downstream request's bytes) and authority, in `version`, for a
    /// request whose `Host` is `current_host`.
    pub(super) fn new(
        target: PathAndQuery,
        authority: &str,
        version: HttpVersion,
        current_host: Option<&HeaderValue>,
    ) -> Result<TryHead, http::Error> {
        let mut uri = http::uri::Parts::default();
        uri.path_and_query = Some(target);
        let (version, host, strip_host) = match version {
            HttpVersion::Http1 => {
                // Usually the client's own `Host`, kept as it is.
                let kept = current_host.is_some_and(|h| h.as_bytes() == authority.as_bytes());
                let host = (!kept).then(|| HeaderValue::from_str(authority).ok());
                (http::Version::HTTP_11, host.flatten(), false)
            }
            HttpVersion::Http2 => {
                uri.scheme = Some(Scheme::HTTP);
                uri.authority = Some(Authority::try_from(authority)?);
                (http::Version::HTTP_2, None, true)
            }
        };
        Ok(TryHead {
            uri: Some(Uri::from_parts(uri)?),
            version,
            host,
            strip_host,
        })
    }

    /// An HTTP/1.1 try of a request whose origin-form target and `Host`
    /// go upstream as they are (the usual try: nothing to build).
    pub(super) fn as_requested() -> TryHead {
        TryHead {
            uri: None,
            version: http::Version::HTTP_11,
            host: None,
            strip_host: false,
        }
    }

    /// The head of one attempt, lent: the request's `method`, `uri` and
    /// `headers` (then `appended`) with the try's URI and `Host`, copied
    /// by the pool only where it must own them (h2).
    pub(super) fn lend<'a>(
        &'a self,
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        appended: &'a [(HeaderName, HeaderValue)],
    ) -> LentHead<'a> {
        LentHead {
            method,
            uri: self.uri.as_ref().unwrap_or(uri),
            version: self.version,
            headers,
            host: self.host.as_ref(),
            strip_host: self.strip_host,
            appended,
        }
    }

    /// The head of one attempt, owned (a mirror's request): built by
    /// [`TryHead::new`], so it has its own URI.
    pub(super) fn head(&self, method: &Method, headers: &HeaderMap) -> Parts {
        let placeholder = Uri::default();
        self.lend(method, &placeholder, headers, &[]).to_parts()
    }
}

/// Sends `head` and `body` to `host` over the pool for (`host`,
/// `version`) (the pool replays a request once on a stale keep-alive or
/// refused stream).
pub(super) async fn send(
    upstreams: &Upstreams,
    host: &Host,
    cluster: &Cluster,
    version: HttpVersion,
    head: LentHead<'_>,
    body: HttpBody,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let pool = upstreams.http_pool(host, pool_version(version), cluster);
    pool.send_lent(head, body).await.map_err(pool_error)
}

/// The pool's error as the framed pools' [`PoolError`], so retry policy,
/// outlier detection, stats and replies treat both paths alike.
fn pool_error(err: HttpPoolError) -> ProxyError {
    tracing::debug!(error = %err, "HTTP upstream failed");
    ProxyError::Pool(match err {
        HttpPoolError::Connect { addr, source } => PoolError::ConnectRefused {
            addr,
            kind: source.kind(),
        },
        HttpPoolError::ConnectTimeout { addr, timeout } => {
            PoolError::ConnectTimeout { addr, timeout }
        }
        HttpPoolError::Handshake { addr, .. } => PoolError::ConnectRefused {
            addr,
            kind: std::io::ErrorKind::InvalidData,
        },
        HttpPoolError::Overflow { addr, what } => PoolError::Overflow { addr, what },
        // Never processed: as safe to send elsewhere as a failed connect.
        HttpPoolError::Refused { .. } => PoolError::UpstreamReset { written: false },
        HttpPoolError::Closed { addr } => PoolError::Closed { addr },
        // Stale, reset, protocol errors: the upstream may have acted on it.
        _ => PoolError::UpstreamReset { written: true },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(hosts: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for host in hosts {
            map.append(header::HOST, HeaderValue::from_static(host));
        }
        map.insert("x-kept", HeaderValue::from_static("1"));
        map
    }

    fn try_head(hosts: &[&'static str], authority: &str, version: HttpVersion) -> Parts {
        let headers = headers(hosts);
        TryHead::new(
            PathAndQuery::from_static("/p?q=1"),
            authority,
            version,
            single_host(&headers),
        )
        .unwrap()
        .head(&Method::GET, &headers)
    }

    fn hosts(head: &Parts) -> Vec<&[u8]> {
        head.headers
            .get_all(header::HOST)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    #[test]
    fn http1_tries_carry_the_authority_as_their_only_host() {
        let kept = try_head(&["svc:80"], "svc:80", HttpVersion::Http1);
        assert_eq!(kept.uri, "/p?q=1");
        assert_eq!(kept.version, http::Version::HTTP_11);
        assert_eq!(hosts(&kept), [b"svc:80"]);
        assert_eq!(kept.headers["x-kept"], "1");
        let rewritten = try_head(&["client"], "backend:8080", HttpVersion::Http1);
        assert_eq!(hosts(&rewritten), [b"backend:8080"]);
        let duplicated = try_head(&["svc:80", "other"], "svc:80", HttpVersion::Http1);
        assert_eq!(hosts(&duplicated), [b"svc:80"]);
        let missing = try_head(&[], "svc:80", HttpVersion::Http1);
        assert_eq!(hosts(&missing), [b"svc:80"]);
    }

    #[test]
    fn h2_tries_carry_the_authority_in_the_uri_and_no_host() {
        let head = try_head(&["client"], "backend:8080", HttpVersion::Http2);
        assert_eq!(head.uri, "http://backend:8080/p?q=1");
        assert_eq!(head.version, http::Version::HTTP_2);
        assert!(hosts(&head).is_empty());
        assert_eq!(head.headers["x-kept"], "1");
        assert!(
            TryHead::new(
                PathAndQuery::from_static("/"),
                "bad authority",
                HttpVersion::Http2,
                None
            )
            .is_err()
        );
    }
}
