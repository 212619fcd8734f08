//! Building responses: JSON, text, HTML and the JSON error body every
//! failure uses (`{"error": "...", ...}`).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Every admin response: a complete body (admin replies are small and
/// built in memory from a snapshot).
pub(crate) type Reply = Response<Full<Bytes>>;

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const HTML: &str = "text/html; charset=utf-8";
pub(crate) const CSS: &str = "text/css; charset=utf-8";
pub(crate) const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// The Prometheus text exposition format, version 0.0.4.
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response with `body` as `content_type`; never cached (every admin
/// answer is a snapshot of now).
pub(crate) fn body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `value` as indented JSON (MOSN indents its dumps) with a final newline.
pub(crate) fn json_pretty(status: StatusCode, value: &impl Serialize) -> Reply {
    match serde_json::to_vec_pretty(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            body(status, JSON, bytes)
        }
        Err(e) => internal(&e.to_string()),
    }
}

/// `value` as compact JSON (what the dashboard polls every second).
pub(crate) fn json_compact(status: StatusCode, value: &impl Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(bytes) => body(status, JSON, bytes),
        Err(e) => internal(&e.to_string()),
    }
}

/// Plain text.
pub(crate) fn text(status: StatusCode, text: impl Into<String>) -> Reply {
    body(status, TEXT, text.into())
}

/// The JSON error body: `{"error": message}` plus the `extra` fields.
pub(crate) fn error(status: StatusCode, message: &str, extra: Map<String, Value>) -> Reply {
    let mut object = Map::new();
    object.insert("error".to_owned(), Value::String(message.to_owned()));
    object.insert("status".to_owned(), json!(status.as_u16()));
    object.extend(extra);
    json_pretty(status, &Value::Object(object))
}

/// A 400 with just a message.
pub(crate) fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message, Map::new())
}

/// A 500: serializing a snapshot failed, which is a bug, not bad input.
fn internal(message: &str) -> Reply {
    let body_text = json!({ "error": format!("internal error: {message}"), "status": 500 });
    body(
        StatusCode::INTERNAL_SERVER_ERROR,
        JSON,
        body_text.to_string(),
    )
}
