//! What can be wrong with a router configuration, and where.
//!
//! Every error and warning carries a JSON path relative to the router
//! configuration object (`virtual_hosts[0].routers[2].match.headers[0].value`);
//! the gateway prefixes it with the router's own place in the document.
//! Errors also carry a hint saying how to fix them. Warnings are things MOSN
//! accepts that meshgate reads differently or ignores.

use std::borrow::Cow;
use std::fmt;

/// One problem that stops a router configuration from being built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterConfigError {
    /// A regex that does not compile.
    #[error("{path}: invalid regex {pattern:?}: {reason}")]
    BadRegex {
        /// Where.
        path: String,
        /// The pattern as written.
        pattern: String,
        /// The regex engine's complaint.
        reason: String,
    },
    /// `weighted_clusters` whose weights add up to zero.
    #[error("{path}: the weights of weighted_clusters add up to zero")]
    ZeroTotalWeight {
        /// Where.
        path: String,
    },
    /// The same cluster twice in `weighted_clusters`.
    #[error("{path}: cluster {name:?} is listed twice in weighted_clusters")]
    DuplicateWeightedCluster {
        /// Where (the second entry).
        path: String,
        /// The cluster.
        name: String,
    },
    /// A route that neither forwards nor answers.
    #[error("{path}: the route has no action")]
    NoAction {
        /// Where.
        path: String,
    },
    /// A router configuration without virtual hosts.
    #[error("{path}: no virtual hosts")]
    NoVirtualHosts {
        /// Where.
        path: String,
    },
    /// Two virtual hosts claiming the same domain (and port).
    #[error("{path}: domain {domain:?} is already used at {first}")]
    DuplicateDomain {
        /// Where (the second use).
        path: String,
        /// The domain as written.
        domain: String,
        /// The first use.
        first: String,
    },
    /// A domain MOSN cannot read.
    #[error("{path}: invalid domain {domain:?}: {reason}")]
    BadDomain {
        /// Where.
        path: String,
        /// The domain as written.
        domain: String,
        /// Why.
        reason: &'static str,
    },
    /// A redirect status that is not a redirect.
    #[error("{path}: {code} is not a redirect status")]
    BadRedirectCode {
        /// Where.
        path: String,
        /// As written.
        code: i64,
    },
    /// A direct response status outside 100–599.
    #[error("{path}: {status} is not an HTTP status")]
    BadStatus {
        /// Where.
        path: String,
        /// As written.
        status: i64,
    },
    /// A redirect scheme that RFC 3986 does not allow.
    #[error("{path}: invalid scheme {scheme:?}")]
    BadScheme {
        /// Where.
        path: String,
        /// As written.
        scheme: String,
    },
    /// A field that must not be empty.
    #[error("{path}: must not be empty")]
    Empty {
        /// Where.
        path: String,
        /// What the field is for, for the hint.
        what: &'static str,
    },
    /// Fields that cannot be used together.
    #[error("{path}: {fields} cannot be used together")]
    Conflict {
        /// Where.
        path: String,
        /// The fields, as written in JSON.
        fields: &'static str,
    },
    /// A `retry_on` condition meshgate does not know.
    #[error("{path}: unknown retry condition {condition:?}")]
    UnknownRetryCondition {
        /// Where.
        path: String,
        /// As written.
        condition: String,
    },
    /// An invalid value with its own explanation.
    #[error("{path}: {message}")]
    Invalid {
        /// Where.
        path: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: &'static str,
    },
}

impl RouterConfigError {
    /// The JSON path, relative to the router configuration.
    pub fn path(&self) -> &str {
        use RouterConfigError::*;
        match self {
            BadRegex { path, .. }
            | ZeroTotalWeight { path }
            | DuplicateWeightedCluster { path, .. }
            | NoAction { path }
            | NoVirtualHosts { path }
            | DuplicateDomain { path, .. }
            | BadDomain { path, .. }
            | BadRedirectCode { path, .. }
            | BadStatus { path, .. }
            | BadScheme { path, .. }
            | Empty { path, .. }
            | Conflict { path, .. }
            | UnknownRetryCondition { path, .. }
            | Invalid { path, .. } => path,
        }
    }

    /// What is wrong, without the path: for callers that print the path
    /// themselves (a full one, in a larger document).
    pub fn message(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(self.path())
            .and_then(|rest| rest.strip_prefix(": "))
            .map_or_else(|| text.clone(), str::to_owned)
    }

    /// How to fix it, in one sentence.
    pub fn hint(&self) -> Cow<'static, str> {
        use RouterConfigError::*;
        match self {
            BadRegex { .. } => "use RE2 syntax (as Go's regexp does); escape literal dots and brackets".into(),
            ZeroTotalWeight { .. } => "give at least one cluster a weight above zero".into(),
            DuplicateWeightedCluster { .. } => "list each cluster once and add the weights together".into(),
            NoAction { .. } => "set route.cluster_name (or route.weighted_clusters, route.cluster_header), or add direct_response or redirect".into(),
            NoVirtualHosts { .. } => "add a virtual host with \"domains\": [\"*\"] (RPC configs use one such host); a router_configs directory must be loaded by the gateway first".into(),
            DuplicateDomain { .. } => "each domain (with its port) may appear in one virtual host only; merge the two hosts' routes or remove one".into(),
            BadDomain { .. } => "write www.foo.com, *.foo.com, *-bar.foo.com or *, optionally followed by :port or :*".into(),
            BadRedirectCode { .. } => "use 301 (the default when omitted), 302, 303, 307 or 308".into(),
            BadStatus { .. } => "use an HTTP status from 100 to 599, e.g. 200 or 503".into(),
            BadScheme { .. } => "a scheme is a letter followed by letters, digits, '+', '-' or '.', e.g. https".into(),
            Empty { what, .. } => format!("set the {what}").into(),
            Conflict { .. } => "keep only one of them".into(),
            UnknownRetryCondition { .. } => "use true/false, or a comma list of 5xx, gateway-error, connect-failure, reset, refused-stream, per-try-timeout, retriable-4xx, retriable-status-codes".into(),
            Invalid { hint, .. } => (*hint).into(),
        }
    }
}

/// Something MOSN accepts that meshgate ignores or reads differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfigWarning {
    /// JSON path, relative to the router configuration.
    pub path: String,
    /// What happens instead.
    pub message: String,
}

impl fmt::Display for RouterConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every error found in one router configuration (never empty), with the
/// warnings found along the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfigErrors {
    /// The errors, in document order.
    pub errors: Vec<RouterConfigError>,
    /// The warnings, in document order.
    pub warnings: Vec<RouterConfigWarning>,
}

impl fmt::Display for RouterConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the router config",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}\n    hint: {}", e.hint())?;
        }
        Ok(())
    }
}

impl std::error::Error for RouterConfigErrors {}

/// Collects errors and warnings while the build walks the document, and
/// keeps the JSON path of the node being built.
#[derive(Debug, Default)]
pub(crate) struct BuildCx {
    path: String,
    pub(crate) errors: Vec<RouterConfigError>,
    pub(crate) warnings: Vec<RouterConfigWarning>,
}

impl BuildCx {
    /// Runs `f` one object field deeper.
    pub(crate) fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut BuildCx) -> R) -> R {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// Runs `f` one array element deeper.
    pub(crate) fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut BuildCx) -> R) -> R {
        use fmt::Write;
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// The path of the current node.
    pub(crate) fn here(&self) -> String {
        self.path.clone()
    }

    /// The path of a field of the current node.
    pub(crate) fn at(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    pub(crate) fn error(&mut self, e: RouterConfigError) {
        self.errors.push(e);
    }

    /// Warns about a field of the current node (`""` for the node itself).
    pub(crate) fn warn(&mut self, field: &str, message: impl Into<String>) {
        let path = if field.is_empty() {
            self.here()
        } else {
            self.at(field)
        };
        self.warnings.push(RouterConfigWarning {
            path,
            message: message.into(),
        });
    }

    /// Compiles a regex at a field of the current node, reporting failure.
    pub(crate) fn regex(&mut self, field: &str, pattern: &str) -> Option<regex::Regex> {
        match regex::Regex::new(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                self.error(RouterConfigError::BadRegex {
                    path: self.at(field),
                    pattern: pattern.to_owned(),
                    reason: e.to_string().lines().last().unwrap_or_default().to_owned(),
                });
                None
            }
        }
    }
}

impl BuildCx {
    /// Ends a stand-alone build: the value with its warnings, or every
    /// error found.
    pub(crate) fn finish<T>(
        self,
        value: T,
    ) -> Result<(T, Vec<RouterConfigWarning>), RouterConfigErrors> {
        if self.errors.is_empty() {
            Ok((value, self.warnings))
        } else {
            Err(RouterConfigErrors {
                errors: self.errors,
                warnings: self.warnings,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_leaves_the_path_out() {
        let e = RouterConfigError::NoAction {
            path: "virtual_hosts[0].routers[1]".into(),
        };
        assert_eq!(e.message(), "the route has no action");
        assert_eq!(
            e.to_string(),
            "virtual_hosts[0].routers[1]: the route has no action"
        );
        let e = RouterConfigError::NoAction {
            path: String::new(),
        };
        assert_eq!(e.message(), "the route has no action");
    }

    #[test]
    fn paths_nest_and_unwind() {
        let mut cx = BuildCx::default();
        cx.field("virtual_hosts", |cx| {
            cx.index(0, |cx| {
                cx.field("routers", |cx| {
                    cx.index(2, |cx| {
                        assert_eq!(cx.at("match"), "virtual_hosts[0].routers[2].match");
                    })
                })
            });
            assert_eq!(cx.here(), "virtual_hosts");
        });
        assert_eq!(cx.at("x"), "x");
        assert!(cx.regex("r", "(").is_none());
        assert_eq!(cx.errors[0].path(), "r");
        assert!(cx.errors[0].hint().contains("RE2"));
    }

    #[test]
    fn display_lists_every_error_with_its_hint() {
        let errs = RouterConfigErrors {
            errors: vec![
                RouterConfigError::NoAction { path: "a".into() },
                RouterConfigError::ZeroTotalWeight { path: "b".into() },
            ],
            warnings: vec![],
        };
        let text = errs.to_string();
        assert!(text.starts_with("2 errors"));
        assert!(text.contains("a: the route has no action\n    hint: set route.cluster_name"));
        assert!(text.contains("b: the weights"));
    }
}
