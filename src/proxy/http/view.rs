//! An HTTP request as the router sees it ([`RouteRequest`]): headers
//! looked up case-insensitively, the authority from `:authority` (the
//! URI) or `Host`, the path without its query, the method. MOSN's
//! pseudo-header names (`x-mosn-method`, `x-mosn-path`, `x-mosn-host`)
//! answer too, so MOSN configs that match on them keep working.

use http::request::Parts;
use meshgate_router::RouteRequest;

/// A borrowed routing view of a request head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpRouteView<'a> {
    head: &'a Parts,
}

impl<'a> HttpRouteView<'a> {
    /// The view of `head`.
    pub(crate) fn new(head: &'a Parts) -> HttpRouteView<'a> {
        HttpRouteView { head }
    }
}

/// The request's authority: the URI's (HTTP/2 `:authority`, or an
/// absolute-form HTTP/1 target), else the `Host` header.
pub(crate) fn authority(head: &Parts) -> Option<&str> {
    head.uri.authority().map(|a| a.as_str()).or_else(|| {
        head.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

/// The authority a request carries upstream, shared with the request's
/// head rather than copied (a proxied request used to copy it into a
/// `String`, an allocation per request).
#[derive(Clone, Debug)]
pub(crate) enum UpstreamAuthority {
    /// The request target's (an absolute URI, or HTTP/2's `:authority`).
    Target(http::uri::Authority),
    /// The request's `Host`, checked to be text when taken.
    Host(http::HeaderValue),
    /// What the route's host rewrite made of it.
    Rewritten(String),
}

impl UpstreamAuthority {
    /// The request's own authority, as [`authority`] reads it.
    pub(crate) fn of_request(head: &Parts) -> Option<UpstreamAuthority> {
        if let Some(target) = head.uri.authority() {
            return Some(UpstreamAuthority::Target(target.clone()));
        }
        head.headers
            .get(http::header::HOST)
            .filter(|host| host.to_str().is_ok())
            .map(|host| UpstreamAuthority::Host(host.clone()))
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            UpstreamAuthority::Target(target) => target.as_str(),
            UpstreamAuthority::Host(host) => host.to_str().unwrap_or_default(),
            UpstreamAuthority::Rewritten(text) => text,
        }
    }
}

/// A header of `head` as routes read it: the pseudo-header names (and
/// MOSN's `x-mosn-*` ones) answer the authority, path and method; other
/// names are looked up case-insensitively.
pub(crate) fn header<'h>(head: &'h Parts, name: &str) -> Option<&'h str> {
    match name {
        ":authority" | "x-mosn-host" => return authority(head),
        ":path" | "x-mosn-path" => return Some(head.uri.path()),
        ":method" | "x-mosn-method" => return Some(head.method.as_str()),
        _ => {}
    }
    // HeaderMap lookups by &str are case-insensitive.
    head.headers.get(name).and_then(|v| v.to_str().ok())
}

impl RouteRequest for HttpRouteView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        header(self.head, name)
    }

    fn authority(&self) -> Option<&str> {
        authority(self.head)
    }

    fn path(&self) -> Option<&str> {
        Some(self.head.uri.path())
    }

    fn method(&self) -> Option<&str> {
        Some(self.head.method.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(req: http::Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn view_answers_from_the_request_head() {
        let h = head(
            http::Request::post("/api/v1/users?id=3")
                .header("Host", "Example.com:8080")
                .header("X-User", "alice")
                .body(())
                .unwrap(),
        );
        let view = HttpRouteView::new(&h);
        assert_eq!(view.header("x-user"), Some("alice"));
        assert_eq!(view.header("X-USER"), Some("alice"));
        assert_eq!(view.authority(), Some("Example.com:8080"));
        assert_eq!(view.path(), Some("/api/v1/users"));
        assert_eq!(view.method(), Some("POST"));
        assert_eq!(view.header("x-mosn-method"), Some("POST"));
        assert_eq!(view.header(":path"), Some("/api/v1/users"));
        assert_eq!(view.header("missing"), None);
    }

    #[test]
    fn uri_authority_wins_over_host() {
        let h = head(
            http::Request::get("http://h2.example/x")
                .header("host", "other")
                .body(())
                .unwrap(),
        );
        assert_eq!(HttpRouteView::new(&h).authority(), Some("h2.example"));
        let none = head(http::Request::get("/x").body(()).unwrap());
        assert_eq!(HttpRouteView::new(&none).authority(), None);
    }
}
