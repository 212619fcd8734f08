//! Which requests a route takes: its path, header and variable matchers,
//! all of which must hold.
//!
//! MOSN builds one *kind* of rule per route (`pkg/router/virtualhost.go`
//! `NewRouteBase`): the first non-empty of `prefix`, `path`, `regex`, then
//! `variables`, then `dsl_expressions`, else a header (RPC) rule. A path rule
//! also checks the headers; a variable rule checks nothing else. meshgate
//! keeps MOSN's precedence among the three path fields, but checks headers
//! and variables on every route that sets them, and warns where MOSN would
//! have ignored one. `dsl_expressions` are not supported: a route that MOSN
//! would match by DSL alone is disabled (never matches) with a warning.

mod header;
mod path;
mod variable;

pub use header::{HeaderMatcher, ValueMatch};
pub use path::PathMatcher;
pub use variable::VariableMatcher;

use crate::config::RouteMatchConfig;
use crate::error::BuildCx;
use crate::request::RouteRequest;

/// A route's built `match` section.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    path: Option<PathMatcher>,
    headers: Vec<HeaderMatcher>,
    variables: Option<VariableMatcher>,
    disabled: bool,
}

impl RouteMatch {
    /// True if every configured matcher holds for the request.
    pub fn matches(&self, req: &dyn RouteRequest) -> bool {
        if self.disabled {
            return false;
        }
        if let Some(pm) = &self.path
            && !req.path().is_some_and(|p| pm.matches(p))
        {
            return false;
        }
        self.headers.iter().all(|h| h.matches(req))
            && self.variables.as_ref().is_none_or(|v| v.matches(req))
    }

    /// The path matcher, if any.
    pub fn path(&self) -> Option<&PathMatcher> {
        self.path.as_ref()
    }

    /// The header matchers.
    pub fn headers(&self) -> &[HeaderMatcher] {
        &self.headers
    }

    /// True if the route can never match (DSL-only routes).
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Builds `match` (the caller has entered the field); `None` when an
    /// error was reported.
    pub(crate) fn build(cfg: &RouteMatchConfig, cx: &mut BuildCx) -> Option<RouteMatch> {
        let errors_before = cx.errors.len();
        let set: Vec<&str> = [
            ("prefix", &cfg.prefix),
            ("path", &cfg.path),
            ("regex", &cfg.regex),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect();
        for ignored in set.iter().skip(1) {
            cx.warn(
                ignored,
                format!(
                    "ignored: `{}` is set and takes precedence, as in MOSN",
                    set[0]
                ),
            );
        }
        let path = match set.first() {
            Some(&"prefix") => Some(PathMatcher::Prefix(cfg.prefix.clone())),
            Some(&"path") => Some(PathMatcher::Exact(cfg.path.clone())),
            Some(_) => cx.regex("regex", &cfg.regex).map(PathMatcher::Regex),
            None => None,
        };
        let http_rule = !set.is_empty();
        let headers = cx.field("headers", |cx| {
            HeaderMatcher::build_all(&cfg.headers, http_rule, cx)
        });
        let variables = cx.field("variables", |cx| VariableMatcher::build(&cfg.variables, cx));
        if http_rule && !cfg.variables.is_empty() {
            cx.warn(
                "variables",
                "MOSN ignores variables on a route with a path matcher; meshgate checks both",
            );
        }
        if !http_rule && !cfg.variables.is_empty() && !cfg.headers.is_empty() {
            cx.warn(
                "headers",
                "MOSN ignores headers on a route with variables; meshgate checks both",
            );
        }
        let mut disabled = false;
        if !cfg.dsl_expressions.is_empty() {
            if http_rule || !cfg.variables.is_empty() {
                cx.warn(
                    "dsl_expressions",
                    "ignored: MOSN ignores them too when a path matcher or variables are set",
                );
            } else {
                disabled = true;
                cx.warn(
                    "dsl_expressions",
                    "DSL matching is not supported: this route is disabled (it never matches); \
                     use headers or variables instead",
                );
            }
        }
        (cx.errors.len() == errors_before).then_some(RouteMatch {
            path,
            headers,
            variables,
            disabled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HeaderMatcherConfig, VariableMatcherConfig};
    use crate::request::MapRequest;

    fn build(cfg: &RouteMatchConfig) -> (Option<RouteMatch>, BuildCx) {
        let mut cx = BuildCx::default();
        let m = RouteMatch::build(cfg, &mut cx);
        (m, cx)
    }

    #[test]
    fn empty_match_takes_everything() {
        let (m, cx) = build(&RouteMatchConfig::default());
        assert!(cx.warnings.is_empty());
        assert!(m.unwrap().matches(&MapRequest::new()));
    }

    #[test]
    fn prefix_wins_over_path_and_regex_with_warnings() {
        let cfg = RouteMatchConfig {
            prefix: "/a".into(),
            path: "/b".into(),
            regex: "(".into(),
            ..Default::default()
        };
        let (m, cx) = build(&cfg);
        let m = m.unwrap();
        assert!(cx.errors.is_empty(), "an ignored regex is not compiled");
        assert_eq!(cx.warnings.len(), 2);
        assert!(m.matches(&MapRequest::new().path("/abc")));
        assert!(!m.matches(&MapRequest::new().path("/b")));
        assert!(!m.matches(&MapRequest::new()), "no path, no match");
    }

    #[test]
    fn path_and_headers_and_variables_all_hold() {
        let cfg = RouteMatchConfig {
            prefix: "/".into(),
            headers: vec![HeaderMatcherConfig {
                name: "x-env".into(),
                value: "gray".into(),
                regex: false,
            }],
            variables: vec![VariableMatcherConfig {
                name: "tenant".into(),
                value: "t1".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (m, cx) = build(&cfg);
        let m = m.unwrap();
        assert_eq!(cx.warnings[0].path, "variables");
        let req = MapRequest::new().path("/x").header("x-env", "gray");
        assert!(!m.matches(&req));
        assert!(m.matches(&req.variable("tenant", "t1")));
    }

    #[test]
    fn dsl_only_route_is_disabled() {
        let cfg = RouteMatchConfig {
            dsl_expressions: vec![serde_json::json!({"expression": "a == b"})],
            ..Default::default()
        };
        let (m, cx) = build(&cfg);
        let m = m.unwrap();
        assert!(m.is_disabled());
        assert!(!m.matches(&MapRequest::new()));
        assert_eq!(cx.warnings[0].path, "dsl_expressions");
    }
}
