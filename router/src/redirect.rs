//! Routes that answer locally: `direct_response` and `redirect`.
//!
//! MOSN (`pkg/router/base_rule.go`) defaults a redirect to 301, accepts
//! 301, 302, 303, 307 and 308, lowercases `scheme_redirect` and checks it
//! against RFC 3986. `prefix_rewrite`, `https_redirect` and `strip_query`
//! are Envoy's, accepted for the HTTP work.

use crate::config::{DirectResponseConfig, RedirectConfig};
use crate::error::{BuildCx, RouterConfigError};

/// A built `direct_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    /// HTTP status; RPC codecs map it to their own.
    pub status: u16,
    /// Body; `None` when empty.
    pub body: Option<String>,
}

impl DirectResponse {
    /// Builds `direct_response` (the caller has entered it).
    pub(crate) fn build(cfg: &DirectResponseConfig, cx: &mut BuildCx) -> Option<DirectResponse> {
        match u16::try_from(cfg.status)
            .ok()
            .filter(|s| (100..600).contains(s))
        {
            Some(status) => Some(DirectResponse {
                status,
                body: (!cfg.body.is_empty()).then(|| cfg.body.clone()),
            }),
            None => {
                cx.error(RouterConfigError::BadStatus {
                    path: cx.at("status"),
                    status: cfg.status,
                });
                None
            }
        }
    }
}

/// What happens to the path in a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectPath {
    /// `path_redirect`: the whole path (and, if it has one, the query).
    Replace(String),
    /// `prefix_rewrite`: replace the route's matched prefix.
    Prefix(String),
}

/// A built `redirect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub response_code: u16,
    /// New scheme, lowercased.
    pub scheme: Option<String>,
    /// New host (and port, if written).
    pub host: Option<String>,
    /// New path.
    pub path: Option<RedirectPath>,
    /// Drop the query string.
    pub strip_query: bool,
}

impl Redirect {
    /// The `Location` for a request. `matched_prefix` is the route's
    /// matched literal (see [`crate::Route::redirect_location`]).
    pub fn location(
        &self,
        scheme: &str,
        authority: &str,
        path: &str,
        query: Option<&str>,
        matched_prefix: Option<&str>,
    ) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(scheme);
        let host = self.host.as_deref().unwrap_or(authority);
        let mut query = query.filter(|q| !self.strip_query && !q.is_empty());
        let path = match &self.path {
            Some(RedirectPath::Replace(p)) => {
                if p.contains('?') {
                    query = None;
                }
                p.clone()
            }
            Some(RedirectPath::Prefix(new)) => match matched_prefix {
                Some(old) if path.starts_with(old) => format!("{new}{}", &path[old.len()..]),
                _ => path.to_owned(),
            },
            None => path.to_owned(),
        };
        match query {
            Some(q) => format!("{scheme}://{host}{path}?{q}"),
            None => format!("{scheme}://{host}{path}"),
        }
    }

    /// Builds `redirect` (the caller has entered it).
    pub(crate) fn build(cfg: &RedirectConfig, cx: &mut BuildCx) -> Option<Redirect> {
        let mut ok = true;
        let response_code = match cfg.response_code {
            0 => 301,
            c @ (301 | 302 | 303 | 307 | 308) => c as u16,
            c => {
                cx.error(RouterConfigError::BadRedirectCode {
                    path: cx.at("response_code"),
                    code: c,
                });
                ok = false;
                0
            }
        };
        let scheme = match (cfg.https_redirect, cfg.scheme_redirect.as_str()) {
            (true, "") => Some("https".to_owned()),
            (false, "") => None,
            (https, s) => {
                let s = s.to_ascii_lowercase();
                if https {
                    cx.error(RouterConfigError::Conflict {
                        path: cx.here(),
                        fields: "scheme_redirect and https_redirect",
                    });
                    ok = false;
                } else if !valid_scheme(&s) {
                    cx.error(RouterConfigError::BadScheme {
                        path: cx.at("scheme_redirect"),
                        scheme: cfg.scheme_redirect.clone(),
                    });
                    ok = false;
                }
                Some(s)
            }
        };
        let path = match (cfg.path_redirect.as_str(), cfg.prefix_rewrite.as_str()) {
            ("", "") => None,
            (p, "") => Some(RedirectPath::Replace(p.to_owned())),
            ("", p) => Some(RedirectPath::Prefix(p.to_owned())),
            _ => {
                cx.error(RouterConfigError::Conflict {
                    path: cx.here(),
                    fields: "path_redirect and prefix_rewrite",
                });
                ok = false;
                None
            }
        };
        let host = (!cfg.host_redirect.is_empty()).then(|| cfg.host_redirect.clone());
        if ok && scheme.is_none() && host.is_none() && path.is_none() && !cfg.strip_query {
            cx.warn(
                "",
                "redirects to the same URL: set host_redirect, path_redirect or scheme_redirect",
            );
        }
        ok.then_some(Redirect {
            response_code,
            scheme,
            host,
            path,
            strip_query: cfg.strip_query,
        })
    }
}

/// RFC 3986 §3.1, as MOSN checks it: `^[a-z][a-z0-9.+-]*$`.
fn valid_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: &str) -> (Option<Redirect>, BuildCx) {
        let cfg: RedirectConfig = serde_json::from_str(json).unwrap();
        let mut cx = BuildCx::default();
        let r = Redirect::build(&cfg, &mut cx);
        (r, cx)
    }

    #[test]
    fn locations() {
        let (r, _) = build(r#"{"host_redirect": "new.example.com", "scheme_redirect": "HTTPS"}"#);
        let r = r.unwrap();
        assert_eq!(r.response_code, 301);
        assert_eq!(
            r.location("http", "old.example.com", "/a", Some("x=1"), None),
            "https://new.example.com/a?x=1"
        );
        let (r, _) =
            build(r#"{"prefix_rewrite": "/v2/", "response_code": 308, "strip_query": true}"#);
        let r = r.unwrap();
        assert_eq!(
            r.location("http", "h", "/v1/users", Some("x=1"), Some("/v1/")),
            "http://h/v2/users"
        );
        let (r, _) = build(r#"{"path_redirect": "/login?next=home", "response_code": 302}"#);
        assert_eq!(
            r.unwrap().location("http", "h", "/a", Some("x=1"), None),
            "http://h/login?next=home"
        );
    }

    #[test]
    fn invalid_redirects() {
        let (r, cx) = build(r#"{"response_code": 200, "scheme_redirect": "1http"}"#);
        assert!(r.is_none());
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(paths, ["response_code", "scheme_redirect"]);
        let (r, cx) = build(r#"{"path_redirect": "/a", "prefix_rewrite": "/b"}"#);
        assert!(r.is_none());
        assert!(cx.errors[0].to_string().contains("cannot be used together"));
        let (r, cx) = build(r#"{}"#);
        assert!(r.is_some());
        assert_eq!(cx.warnings.len(), 1);
    }

    #[test]
    fn direct_response_status_range() {
        let mut cx = BuildCx::default();
        let ok = DirectResponse::build(
            &DirectResponseConfig {
                status: 503,
                body: "busy".into(),
            },
            &mut cx,
        );
        assert_eq!(
            ok,
            Some(DirectResponse {
                status: 503,
                body: Some("busy".into())
            })
        );
        assert!(DirectResponse::build(&DirectResponseConfig::default(), &mut cx).is_none());
        assert_eq!(cx.errors[0].path(), "status");
    }
}
