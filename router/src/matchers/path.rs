//! Path matchers for HTTP routes, as MOSN's `pkg/router/http_rule.go` does
//! them: `prefix` is case-sensitive, `path` ignores ASCII case
//! (`strings.EqualFold`), `regex` is searched unanchored (Go's
//! `MatchString`). A request without a path (any RPC request) never
//! matches a path matcher.

use regex::Regex;

/// `match.prefix`, `match.path` or `match.regex`, built.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    /// The path starts with this.
    Prefix(String),
    /// The path equals this, ignoring ASCII case.
    Exact(String),
    /// The regex matches somewhere in the path.
    Regex(Regex),
}

impl PathMatcher {
    /// True if `path` satisfies this matcher.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Prefix(p) => path.starts_with(p.as_str()),
            PathMatcher::Exact(p) => path.eq_ignore_ascii_case(p),
            PathMatcher::Regex(re) => re.is_match(path),
        }
    }

    /// The literal MOSN rewrites against (`prefix_rewrite` replaces it when
    /// the path starts with it): the prefix, the exact path, or the
    /// pattern's source text.
    pub fn literal(&self) -> &str {
        match self {
            PathMatcher::Prefix(p) | PathMatcher::Exact(p) => p,
            PathMatcher::Regex(re) => re.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind() {
        let prefix = PathMatcher::Prefix("/api/".into());
        assert!(prefix.matches("/api/users"));
        assert!(!prefix.matches("/API/users"));
        assert!(!prefix.matches("/ap"));

        let exact = PathMatcher::Exact("/health".into());
        assert!(exact.matches("/health"));
        assert!(exact.matches("/HEALTH"));
        assert!(!exact.matches("/health/"));

        let re = PathMatcher::Regex(Regex::new("/v[0-9]+/").unwrap());
        assert!(re.matches("/api/v2/x"));
        assert!(!re.matches("/api/vx/"));
        assert_eq!(re.literal(), "/v[0-9]+/");
    }
}
