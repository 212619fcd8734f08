//! [`LentHead`]: a request head the pool borrows instead of owning, so an
//! HTTP/1 try is written straight from the caller's request with no copy
//! of its headers.

use http::header::HOST;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

/// A request head lent to [`HttpPool::send_lent`](super::HttpPool::send_lent):
/// the request's own method and headers, and what a try changes (its URI,
/// its `Host`). HTTP/1 writes it out as it is; h2 and upgrades, which
/// need an owned head, copy it ([`LentHead::to_parts`]).
#[derive(Clone, Copy, Debug)]
pub struct LentHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI: origin form (with `Host`) or absolute.
    pub uri: &'a Uri,
    /// The version a copy carries (HTTP/1 always writes HTTP/1.1).
    pub version: Version,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// Replaces every `Host` of `headers`.
    pub host: Option<&'a HeaderValue>,
    /// Leaves out every `Host` of `headers` (h2: the authority travels as
    /// `:authority`). `host`, if set, still goes.
    pub strip_host: bool,
    /// Fields sent after the request's own, as if appended to `headers`
    /// (the proxy's `x-forwarded-*` when nothing else reads the head).
    pub appended: &'a [(HeaderName, HeaderValue)],
}

impl<'a> LentHead<'a> {
    /// `parts` as they are.
    pub fn of(parts: &'a Parts) -> LentHead<'a> {
        LentHead {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            host: None,
            strip_host: false,
            appended: &[],
        }
    }

    /// True when the request's own `Host` headers are not sent.
    pub(crate) fn replaces_host(&self) -> bool {
        self.strip_host || self.host.is_some()
    }

    /// An owned copy, with the try's changes applied.
    pub fn to_parts(&self) -> Parts {
        let mut headers = self.headers.clone();
        if self.replaces_host() {
            headers.remove(HOST);
        }
        if let Some(host) = self.host {
            headers.insert(HOST, host.clone());
        }
        for (name, value) in self.appended {
            headers.append(name, value.clone());
        }
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = self.version;
        parts.headers = headers;
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_apply_the_host_change() {
        let (parts, ()) = Request::get("/p")
            .header(HOST, "client")
            .header("x-a", "1")
            .body(())
            .expect("request")
            .into_parts();
        let kept = LentHead::of(&parts).to_parts();
        assert_eq!(kept.uri.path(), "/p");
        assert_eq!(kept.headers[HOST], "client");
        let backend = HeaderValue::from_static("backend");
        let replaced = LentHead {
            host: Some(&backend),
            ..LentHead::of(&parts)
        }
        .to_parts();
        assert_eq!(replaced.headers.get_all(HOST).iter().count(), 1);
        assert_eq!(replaced.headers[HOST], "backend");
        let stripped = LentHead {
            strip_host: true,
            ..LentHead::of(&parts)
        }
        .to_parts();
        assert!(!stripped.headers.contains_key(HOST));
        assert_eq!(stripped.headers["x-a"], "1");
        let appended = [(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("2"),
        )];
        let with_more = LentHead {
            appended: &appended,
            ..LentHead::of(&parts)
        }
        .to_parts();
        let values: Vec<_> = with_more.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }
}
