//! HTTP stub upstreams for the harness (`mg-stub --protocol http1|h2`):
//! they answer every request at once, so a proxy in front of them, not
//! the backend, is what a benchmark measures.
//!
//! - HTTP/1.1 (hyper's server connection, keep-alive): `200` with the
//!   request's body, or [`HELLO`] for a request without one.
//! - HTTP/2 cleartext with prior knowledge (the `h2` server): the same for
//!   plain requests; a gRPC request (`content-type: application/grpc…`)
//!   gets its length-prefixed message back as a unary reply with
//!   `grpc-status: 0` in the trailers.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpStream;

/// The body of a reply to a request that had none.
pub const HELLO: &[u8] = b"hello from mg-stub\n";

/// Requests with a larger body are refused (a stub holds bodies whole).
pub const MAX_BODY: usize = 1 << 20;

/// Serves one HTTP/1.1 connection until the peer closes it.
pub async fn serve_http1(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(answer_http1);
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer_http1(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            let body = if body.is_empty() {
                Bytes::from_static(HELLO)
            } else {
                body
            };
            Response::new(Full::new(body))
        }
        Err(_) => {
            let mut reply = Response::new(Full::new(Bytes::from_static(b"body too large\n")));
            *reply.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            reply
        }
    };
    Ok(reply)
}

/// Serves one HTTP/2 (h2c, prior knowledge) connection until it ends.
pub async fn serve_h2(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut connection) = h2::server::Builder::new()
        .max_concurrent_streams(1024)
        .handshake::<_, Bytes>(stream)
        .await
    else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        tokio::spawn(answer_h2(request, respond));
    }
}

/// Whether `headers` say gRPC.
fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

async fn answer_h2(
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Result<(), h2::Error> {
    let grpc = is_grpc(request.headers());
    let mut body = request.into_body();
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if received.len() + chunk.len() > MAX_BODY {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            return Ok(());
        }
        received.extend_from_slice(&chunk);
    }
    let mut reply = Response::new(());
    if grpc {
        reply.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        let mut send = respond.send_response(reply, false)?;
        send.send_data(received.freeze(), false)?;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        send.send_trailers(trailers)
    } else {
        let body = if received.is_empty() {
            Bytes::from_static(HELLO)
        } else {
            received.freeze()
        };
        let mut send = respond.send_response(reply, false)?;
        send.send_data(body, true)
    }
}
