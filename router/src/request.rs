//! The request as the router sees it: a read-only view the gateway
//! implements per protocol. RPC requests are routed on their header map
//! ([`Headers`] implements the view directly); HTTP requests add the
//! authority, path and method.

use meshgate_codecs::Headers;

/// What the router may ask of a request. Every answer borrows from the
/// request, so matching allocates nothing.
pub trait RouteRequest {
    /// A header value. RPC header keys are case-sensitive, as their
    /// protocols are; an HTTP implementation should look names up
    /// case-insensitively.
    fn header(&self, name: &str) -> Option<&str>;

    /// `Host` / `:authority`, possibly with a port. `None` (RPC, or HTTP/1.0
    /// without `Host`) routes to the default (`*`) virtual host.
    fn authority(&self) -> Option<&str> {
        None
    }

    /// The request path without the query string (HTTP).
    fn path(&self) -> Option<&str> {
        None
    }

    /// The HTTP method (`GET`, …). Not an RPC's method name, which is the
    /// `method` header.
    fn method(&self) -> Option<&str> {
        None
    }

    /// A named variable the gateway keeps for the request (MOSN's variable
    /// mechanism; used by `match.variables` and `cluster_variable`).
    fn variable(&self, _name: &str) -> Option<&str> {
        None
    }

    /// A cookie from the `cookie` header, for cookie hash policies.
    fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
    }
}

impl RouteRequest for Headers {
    fn header(&self, name: &str) -> Option<&str> {
        self.get_str(name)
    }
}

/// An owned request view built by hand: for tests, tools and dry runs
/// (for example an admin "which route would this take" query).
#[derive(Debug, Clone, Default)]
pub struct MapRequest {
    headers: Vec<(String, String)>,
    variables: Vec<(String, String)>,
    authority: Option<String>,
    path: Option<String>,
    method: Option<String>,
}

impl MapRequest {
    /// An empty request.
    pub fn new() -> MapRequest {
        MapRequest::default()
    }

    /// Adds a header (a later value for the same name wins).
    pub fn header(mut self, name: &str, value: &str) -> MapRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a variable.
    pub fn variable(mut self, name: &str, value: &str) -> MapRequest {
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the authority.
    pub fn authority(mut self, authority: &str) -> MapRequest {
        self.authority = Some(authority.to_owned());
        self
    }

    /// Sets the path.
    pub fn path(mut self, path: &str) -> MapRequest {
        self.path = Some(path.to_owned());
        self
    }

    /// Sets the HTTP method.
    pub fn method(mut self, method: &str) -> MapRequest {
        self.method = Some(method.to_owned());
        self
    }
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl RouteRequest for MapRequest {
    fn header(&self, name: &str) -> Option<&str> {
        last(&self.headers, name)
    }
    fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    fn variable(&self, name: &str) -> Option<&str> {
        last(&self.variables, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_headers_are_a_route_request() {
        let mut h = Headers::new();
        h.insert("service", b"com.foo.Bar");
        let req: &dyn RouteRequest = &h;
        assert_eq!(req.header("service"), Some("com.foo.Bar"));
        assert_eq!(req.header("Service"), None);
        assert_eq!(req.authority(), None);
        assert_eq!(req.method(), None);
    }

    #[test]
    fn cookies_are_parsed_from_the_cookie_header() {
        let req = MapRequest::new().header("cookie", "a=1; session = xyz ;b=2");
        assert_eq!(req.cookie("session"), Some("xyz"));
        assert_eq!(req.cookie("b"), Some("2"));
        assert_eq!(req.cookie("c"), None);
        assert_eq!(MapRequest::new().cookie("a"), None);
    }
}
