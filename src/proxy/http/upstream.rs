//! The HTTP path's side of the upstream pools: the request body handed to
//! the cluster crate's [`HttpPool`], and its errors in the proxy's terms.

use super::super::error::ProxyError;
use super::replay::ReplayBody;
use crate::config::http::HttpVersion;
use crate::upstream::Upstreams;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use meshgate_cluster::pool::PoolError;
use meshgate_cluster::{Cluster, Host, HttpBody, HttpPoolError, UpstreamBody};

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
    headers: HeaderMap,
    authority: &str,
    version: HttpVersion,
    body: B,
) -> Result<Request<B>, http::Error> {
    let target = PathAndQuery::try_from(target)?;
    request_to(method, target, headers, authority, version, body)
}

/// [`request`] with the target already parsed (a try reuses the
/// downstream request's: no copy, no second parse).
pub(super) fn request_to<B>(
    method: Method,
    target: PathAndQuery,
    mut headers: HeaderMap,
    authority: &str,
    version: HttpVersion,
    body: B,
) -> Result<Request<B>, http::Error> {
    let mut uri = http::uri::Parts::default();
    uri.path_and_query = Some(target);
    let version = match version {
        HttpVersion::Http1 => {
            // Usually the client's own `Host`, kept as it is.
            let same = headers
                .get(header::HOST)
                .is_some_and(|host| host.as_bytes() == authority.as_bytes());
            if !same && let Ok(value) = HeaderValue::from_str(authority) {
                headers.insert(header::HOST, value);
            }
            http::Version::HTTP_11
        }
        HttpVersion::Http2 => {
            headers.remove(header::HOST);
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = Some(Authority::try_from(authority)?);
            http::Version::HTTP_2
        }
    };
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = Uri::from_parts(uri)?;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Sends `request` to `host` over the pool for (`host`, `version`).
pub(super) async fn send(
    upstreams: &Upstreams,
    host: &Host,
    cluster: &Cluster,
    version: HttpVersion,
    request: Request<HttpBody>,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let pool = upstreams.http_pool(host, pool_version(version), cluster);
    pool.send(request).await.map_err(pool_error)
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
