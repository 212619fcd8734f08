//! Header matchers, with MOSN's semantics (`pkg/router/matcher.go`
//! `StringMatch`, `pkg/router/rpc_rule.go`):
//!
//! - The value is compared exactly (case-sensitive) unless `regex` is true.
//! - A regex is *searched*, not anchored: Go's `Regexp.MatchString` reports a
//!   match anywhere in the value, so `"foo"` matches `"xfooy"`. Write
//!   `^foo$` for a full match. (Envoy anchors; MOSN configs rely on Go.)
//! - A header that is absent never matches, whatever the pattern.
//! - `".*"` without `regex` means "any value" in exactly the case MOSN's RPC
//!   rule gives it that meaning: the route's only header matcher is the
//!   `service` key. Like MOSN, the service must then be present and
//!   non-empty. Anywhere else `".*"` is the literal two characters.
//! - `:method`, `:path` and `:authority` read the request's method, path and
//!   authority. `method` does so too on routes with a path matcher, as
//!   MOSN's HTTP rules map it to the method variable; on header-only (RPC)
//!   routes it is the RPC `method` header.

use crate::config::HeaderMatcherConfig;
use crate::error::{BuildCx, RouterConfigError, RouterConfigErrors, RouterConfigWarning};
use crate::request::RouteRequest;
use regex::Regex;

/// The RPC routing key MOSN's fast path looks at (`types.RPCRouteMatchKey`).
pub(crate) const SERVICE_KEY: &str = "service";

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// Byte-for-byte equal.
    Exact(String),
    /// The regex matches somewhere in the value.
    Regex(Regex),
    /// Present and non-empty (MOSN's `".*"` on the `service` key).
    AnyNonEmpty,
}

impl ValueMatch {
    /// True if `value` satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(want) => value == want,
            ValueMatch::Regex(re) => re.is_match(value),
            ValueMatch::AnyNonEmpty => !value.is_empty(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    Method,
    Path,
    Authority,
}

/// One `match.headers[]` entry, built.
#[derive(Debug, Clone)]
pub struct HeaderMatcher {
    name: String,
    source: Source,
    value: ValueMatch,
}

impl HeaderMatcher {
    /// The header name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the value is compared.
    pub fn value(&self) -> &ValueMatch {
        &self.value
    }

    /// True if the request has this header with a matching value.
    pub fn matches(&self, req: &dyn RouteRequest) -> bool {
        let value = match self.source {
            Source::Header => req.header(&self.name),
            Source::Method => req.method().or_else(|| req.header(&self.name)),
            Source::Path => req.path().or_else(|| req.header(&self.name)),
            Source::Authority => req.authority().or_else(|| req.header(&self.name)),
        };
        value.is_some_and(|v| self.value.matches(v))
    }

    /// Builds a `headers` matcher list outside a route, for stream filters
    /// that match requests the way routes do (MOSN's fault filter). Paths
    /// in errors and warnings are relative to the list (`[0].value`).
    pub fn build_list(
        cfgs: &[HeaderMatcherConfig],
    ) -> Result<(Vec<HeaderMatcher>, Vec<RouterConfigWarning>), RouterConfigErrors> {
        let mut cx = BuildCx::default();
        let matchers = HeaderMatcher::build_all(cfgs, false, &mut cx);
        cx.finish(matchers)
    }

    /// Builds every entry of `match.headers` (the caller has entered the
    /// `headers` field). `http_rule` says the route also has a path matcher.
    pub(crate) fn build_all(
        cfgs: &[HeaderMatcherConfig],
        http_rule: bool,
        cx: &mut BuildCx,
    ) -> Vec<HeaderMatcher> {
        // rpc_rule.go: a lone `service` matcher is MOSN's "fastmatch", the
        // only place where ".*" means any service.
        let lone_service = cfgs.len() == 1 && cfgs[0].name == SERVICE_KEY;
        let mut out = Vec::with_capacity(cfgs.len());
        for (i, cfg) in cfgs.iter().enumerate() {
            cx.index(i, |cx| {
                if cfg.name.is_empty() {
                    cx.error(RouterConfigError::Empty {
                        path: cx.at("name"),
                        what: "header name to match on",
                    });
                    return;
                }
                let value = if cfg.regex {
                    match cx.regex("value", &cfg.value) {
                        Some(re) => ValueMatch::Regex(re),
                        None => return,
                    }
                } else if lone_service && cfg.value == ".*" {
                    ValueMatch::AnyNonEmpty
                } else {
                    if cfg.value == ".*" {
                        cx.warn(
                            "value",
                            "\".*\" is compared literally here (MOSN gives it the meaning \"any value\" only \
                             for a route whose single header matcher is `service`); set \"regex\": true to match any value",
                        );
                    }
                    ValueMatch::Exact(cfg.value.clone())
                };
                let source = match cfg.name.as_str() {
                    ":method" => Source::Method,
                    "method" if http_rule => Source::Method,
                    ":path" => Source::Path,
                    ":authority" => Source::Authority,
                    _ => Source::Header,
                };
                out.push(HeaderMatcher {
                    name: cfg.name.clone(),
                    source,
                    value,
                });
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MapRequest;

    fn cfg(name: &str, value: &str, regex: bool) -> HeaderMatcherConfig {
        HeaderMatcherConfig {
            name: name.into(),
            value: value.into(),
            regex,
        }
    }

    fn build(cfgs: &[HeaderMatcherConfig], http: bool) -> (Vec<HeaderMatcher>, BuildCx) {
        let mut cx = BuildCx::default();
        let m = HeaderMatcher::build_all(cfgs, http, &mut cx);
        (m, cx)
    }

    #[test]
    fn lone_service_dot_star_means_any_non_empty_service() {
        let (m, cx) = build(&[cfg("service", ".*", false)], false);
        assert!(cx.warnings.is_empty());
        let any = MapRequest::new().header("service", "com.foo.Bar:1.0");
        assert!(m[0].matches(&any));
        assert!(!m[0].matches(&MapRequest::new().header("service", "")));
        assert!(!m[0].matches(&MapRequest::new()));
    }

    #[test]
    fn dot_star_elsewhere_is_literal_and_warned() {
        let (m, cx) = build(
            &[cfg("service", ".*", false), cfg("version", "1.0", false)],
            false,
        );
        assert_eq!(cx.warnings.len(), 1);
        assert_eq!(cx.warnings[0].path, "[0].value");
        let req = MapRequest::new()
            .header("service", "x")
            .header("version", "1.0");
        assert!(!m[0].matches(&req));
        assert!(m[0].matches(&MapRequest::new().header("service", ".*")));
    }

    #[test]
    fn regex_is_unanchored_like_go() {
        let (m, _) = build(&[cfg("service", "foo", true)], false);
        assert!(m[0].matches(&MapRequest::new().header("service", "xfooy")));
        let (m, _) = build(&[cfg("service", "^foo$", true)], false);
        assert!(!m[0].matches(&MapRequest::new().header("service", "xfooy")));
        assert!(m[0].matches(&MapRequest::new().header("service", "foo")));
        assert!(!m[0].matches(&MapRequest::new()));
    }

    #[test]
    fn method_is_the_http_method_on_http_rules_only() {
        let (m, _) = build(&[cfg("method", "GET", false)], true);
        let req = MapRequest::new().method("GET").header("method", "sayHello");
        assert!(m[0].matches(&req));
        let (m, _) = build(&[cfg("method", "sayHello", false)], false);
        assert!(m[0].matches(&req));
        let (m, _) = build(&[cfg(":method", "POST", false)], false);
        assert!(m[0].matches(&MapRequest::new().method("POST")));
        assert!(m[0].matches(&MapRequest::new().header(":method", "POST")));
    }

    #[test]
    fn bad_entries_are_reported_with_paths() {
        let (m, cx) = build(&[cfg("", "x", false), cfg("a", "(", true)], false);
        assert!(m.is_empty());
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(paths, ["[0].name", "[1].value"]);
    }
}
