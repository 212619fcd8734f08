//! The HTTP path's side of the upstream pools: the request body handed to
//! the cluster crate's [`HttpPool`], and its errors in the proxy's terms.

use super::super::error::ProxyError;
use super::replay::ReplayBody;
use crate::config::http::HttpVersion;
use crate::upstream::Upstreams;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response};
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
    mut headers: HeaderMap,
    authority: &str,
    version: HttpVersion,
    body: B,
) -> Result<Request<B>, http::Error> {
    let builder = Request::builder().method(method);
    let builder = match version {
        HttpVersion::Http1 => {
            if let Ok(value) = HeaderValue::from_str(authority) {
                headers.insert(header::HOST, value);
            }
            builder.uri(target).version(http::Version::HTTP_11)
        }
        HttpVersion::Http2 => {
            headers.remove(header::HOST);
            builder
                .uri(format!("http://{authority}{target}"))
                .version(http::Version::HTTP_2)
        }
    };
    let mut request = builder.body(body)?;
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
