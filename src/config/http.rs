//! A listener's HTTP settings: the limits of its downstream HTTP/1 and
//! HTTP/2 connections (from the proxy's `extend_config`, MOSN's keys) and
//! the protocol HTTP requests go upstream in (`upstream_protocol`).

use super::issues::{Collector, Issue};
use super::raw::ExtendConfig;

/// Which HTTP version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTP/1.1 (and 1.0).
    Http1,
    /// HTTP/2 (cleartext, prior knowledge).
    Http2,
}

impl HttpVersion {
    /// Reads MOSN's protocol name (`Http1`, `Http2`; any case); `None` for
    /// anything else.
    pub fn parse(name: &str) -> Option<HttpVersion> {
        if name.eq_ignore_ascii_case("http1") {
            Some(HttpVersion::Http1)
        } else if name.eq_ignore_ascii_case("http2") {
            Some(HttpVersion::Http2)
        } else {
            None
        }
    }

    /// MOSN's name.
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::Http1 => "Http1",
            HttpVersion::Http2 => "Http2",
        }
    }
}

/// A listener's HTTP settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request header section, bytes (`max_header_size`):
    /// HTTP/1 answers 431 past it, HTTP/2 advertises it as
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`.
    pub max_header_size: usize,
    /// Largest request body, bytes (`max_request_body_size`): a declared
    /// `Content-Length` above it gets 413; a streamed body that grows past
    /// it is cut off. `None`: no limit (bodies stream, nothing is held).
    pub max_request_body_size: Option<u64>,
    /// The version requests go upstream in; `None` ("Auto"): the one they
    /// arrived in. A route's `upstream_protocol` wins over this.
    pub upstream: Option<HttpVersion>,
}

impl HttpSettings {
    /// The default header limit: 64 KiB, near Envoy's 60 KiB (MOSN's
    /// fasthttp default of 4 KiB rejects common cookie-heavy requests).
    pub const DEFAULT_MAX_HEADER_SIZE: usize = 64 * 1024;
    /// The largest header limit accepted (hyper's HTTP/1 buffer bound).
    pub const MAX_HEADER_SIZE_CEILING: usize = 16 * 1024 * 1024;
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            max_header_size: Self::DEFAULT_MAX_HEADER_SIZE,
            max_request_body_size: None,
            upstream: None,
        }
    }
}

/// Builds the settings from the proxy filter's `upstream_protocol` and
/// `extend_config`.
pub(super) fn build(
    upstream_protocol: &str,
    extend: &ExtendConfig,
    path: &str,
    cx: &mut Collector,
) -> HttpSettings {
    let defaults = HttpSettings::default();
    let max_header_size = match extend.max_header_size {
        None | Some(0) => defaults.max_header_size,
        Some(n) if n > HttpSettings::MAX_HEADER_SIZE_CEILING => {
            cx.warn(Issue::new(
                format!("{path}.config.extend_config.max_header_size"),
                format!(
                    "{n} is above the ceiling; {} is used",
                    HttpSettings::MAX_HEADER_SIZE_CEILING
                ),
            ));
            HttpSettings::MAX_HEADER_SIZE_CEILING
        }
        Some(n) => n,
    };
    HttpSettings {
        max_header_size,
        max_request_body_size: extend.max_request_body_size.filter(|n| *n > 0),
        upstream: HttpVersion::parse(upstream_protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_any_case() {
        assert_eq!(HttpVersion::parse("Http1"), Some(HttpVersion::Http1));
        assert_eq!(HttpVersion::parse("HTTP2"), Some(HttpVersion::Http2));
        assert_eq!(HttpVersion::parse("Auto"), None);
        assert_eq!(HttpVersion::Http2.name(), "Http2");
    }

    #[test]
    fn limits_from_extend_config() {
        let mut cx = Collector::default();
        let extend = ExtendConfig {
            max_header_size: Some(1 << 30),
            max_request_body_size: Some(1024),
            ..ExtendConfig::default()
        };
        let s = build("Http2", &extend, "p", &mut cx);
        assert_eq!(s.max_header_size, HttpSettings::MAX_HEADER_SIZE_CEILING);
        assert_eq!(s.max_request_body_size, Some(1024));
        assert_eq!(s.upstream, Some(HttpVersion::Http2));
        assert_eq!(cx.warnings.len(), 1);
        let s = build("", &ExtendConfig::default(), "p", &mut cx);
        assert_eq!(s, HttpSettings::default());
    }
}
