//! Request rewrites of forwarded HTTP requests: path and `Host`.
//!
//! MOSN (`pkg/router/base_rule.go` `finalizePathHeader`,
//! `finalizeRequestHeaders`): `prefix_rewrite` replaces the route's matched
//! literal when the path starts with it, and wins over `regex_rewrite`;
//! `regex_rewrite` replaces every match (Go's `ReplaceAllString`; `$1` and
//! `${name}` work the same way here). For `Host`: `host_rewrite`, else
//! `auto_host_rewrite_header`, else `auto_host_rewrite`.
//!
//! Differences: MOSN ignores a one-character `prefix_rewrite` (so `"/"`
//! does nothing) and a one-character regex; meshgate honours both.

use crate::config::RouteActionConfig;
use crate::error::BuildCx;
use regex::Regex;

/// A built path rewrite.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// `prefix_rewrite`.
    Prefix(String),
    /// `regex_rewrite`.
    Regex {
        /// `pattern.regex`.
        regex: Regex,
        /// `substitution`.
        substitution: String,
    },
}

impl PathRewrite {
    /// The new path, or `None` when this rewrite leaves `path` alone.
    /// `matched` is the route's path-matcher literal; a prefix rewrite
    /// needs one (header-only routes have none, as in MOSN).
    pub fn apply(&self, path: &str, matched: Option<&str>) -> Option<String> {
        match self {
            PathRewrite::Prefix(new) => {
                let old = matched?;
                let rest = path.strip_prefix(old)?;
                Some(format!("{new}{rest}"))
            }
            PathRewrite::Regex {
                regex,
                substitution,
            } => {
                let out = regex.replace_all(path, substitution.as_str());
                (out != path).then(|| out.into_owned())
            }
        }
    }

    /// Builds from `route` (the caller has entered it).
    pub(crate) fn build(cfg: &RouteActionConfig, cx: &mut BuildCx) -> Option<PathRewrite> {
        let regex_pattern = cfg
            .regex_rewrite
            .as_ref()
            .map(|r| r.pattern.regex.as_str())
            .unwrap_or_default();
        if cfg.regex_rewrite.is_some() && regex_pattern.is_empty() {
            cx.warn("regex_rewrite", "ignored: pattern.regex is empty");
        }
        if !cfg.prefix_rewrite.is_empty() {
            if !regex_pattern.is_empty() {
                cx.warn(
                    "regex_rewrite",
                    "ignored: prefix_rewrite takes precedence, as in MOSN",
                );
            }
            return Some(PathRewrite::Prefix(cfg.prefix_rewrite.clone()));
        }
        let rr = cfg
            .regex_rewrite
            .as_ref()
            .filter(|_| !regex_pattern.is_empty())?;
        let regex = cx.field("regex_rewrite", |cx| {
            cx.field("pattern", |cx| cx.regex("regex", regex_pattern))
        })?;
        Some(PathRewrite::Regex {
            regex,
            substitution: rr.substitution.clone(),
        })
    }
}

/// A built `Host` rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRewrite {
    /// `host_rewrite`: this value.
    Literal(String),
    /// `auto_host_rewrite_header`: the value of this request header.
    FromHeader(String),
    /// `auto_host_rewrite`: the chosen upstream host's name (MOSN does it
    /// for `STRICT_DNS` clusters only; the proxy decides).
    Auto,
}

impl HostRewrite {
    /// Builds from `route` (the caller has entered it).
    pub(crate) fn build(cfg: &RouteActionConfig, cx: &mut BuildCx) -> Option<HostRewrite> {
        let chosen = if !cfg.host_rewrite.is_empty() {
            HostRewrite::Literal(cfg.host_rewrite.clone())
        } else if !cfg.auto_host_rewrite_header.is_empty() {
            HostRewrite::FromHeader(cfg.auto_host_rewrite_header.clone())
        } else if cfg.auto_host_rewrite {
            HostRewrite::Auto
        } else {
            return None;
        };
        let set = usize::from(!cfg.host_rewrite.is_empty())
            + usize::from(!cfg.auto_host_rewrite_header.is_empty())
            + usize::from(cfg.auto_host_rewrite);
        if set > 1 {
            cx.warn(
                "",
                "more than one host rewrite: host_rewrite wins over auto_host_rewrite_header over auto_host_rewrite, as in MOSN",
            );
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(json: &str) -> RouteActionConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn prefix_rewrite_replaces_the_matched_literal() {
        let mut cx = BuildCx::default();
        let rw = PathRewrite::build(&action(r#"{"prefix_rewrite": "/"}"#), &mut cx).unwrap();
        assert_eq!(rw.apply("/api/users", Some("/api/")), Some("/users".into()));
        assert_eq!(rw.apply("/other", Some("/api/")), None);
        assert_eq!(rw.apply("/api/users", None), None);
    }

    #[test]
    fn regex_rewrite_replaces_every_match() {
        let mut cx = BuildCx::default();
        let cfg = action(
            r#"{"regex_rewrite": {"pattern": {"regex": "^/v(\\d+)/"}, "substitution": "/version-$1/"}}"#,
        );
        let rw = PathRewrite::build(&cfg, &mut cx).unwrap();
        assert_eq!(rw.apply("/v3/items", None), Some("/version-3/items".into()));
        assert_eq!(rw.apply("/items", None), None);
        let bad = action(r#"{"regex_rewrite": {"pattern": {"regex": "("}}}"#);
        assert!(PathRewrite::build(&bad, &mut cx).is_none());
        assert_eq!(cx.errors[0].path(), "regex_rewrite.pattern.regex");
    }

    #[test]
    fn host_rewrite_precedence() {
        let mut cx = BuildCx::default();
        let cfg = action(r#"{"host_rewrite": "a", "auto_host_rewrite": true}"#);
        assert_eq!(
            HostRewrite::build(&cfg, &mut cx),
            Some(HostRewrite::Literal("a".into()))
        );
        assert_eq!(cx.warnings.len(), 1);
        let cfg = action(r#"{"auto_host_rewrite_header": "x-host"}"#);
        assert_eq!(
            HostRewrite::build(&cfg, &mut cx),
            Some(HostRewrite::FromHeader("x-host".into()))
        );
        assert_eq!(HostRewrite::build(&action("{}"), &mut cx), None);
    }
}
