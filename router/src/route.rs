//! One built route: its matcher, its action, and what rides along (header
//! mutations, metadata, per-filter config, mirroring).
//!
//! When a route sets more than one action, MOSN's proxy (`pkg/proxy/
//! downstream.go`) answers `direct_response` first, then `redirect`, then
//! forwards; meshgate does the same and warns.

use crate::action::{Forward, RouteAction};
use crate::config::{MirrorPolicyConfig, RouteConfig};
use crate::error::{BuildCx, RouterConfigError};
use crate::header_mutation::HeaderMutations;
use crate::matchers::RouteMatch;
use crate::metadata::MetadataMatch;
use crate::redirect::{DirectResponse, Redirect};
use crate::request::RouteRequest;
use serde_json::Value;
use std::collections::BTreeMap;

/// `request_mirror_policies`: copy a share of requests to another cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPolicy {
    /// Cluster receiving the copies.
    pub cluster: String,
    /// Share copied, 0–100.
    pub percent: u32,
}

impl MirrorPolicy {
    /// Should this request be copied? `random` is any uniform number.
    pub fn should_mirror(&self, random: u64) -> bool {
        random % 100 < u64::from(self.percent)
    }

    fn build(cfg: &MirrorPolicyConfig, cx: &mut BuildCx) -> Option<MirrorPolicy> {
        if cfg.cluster.is_empty() {
            if cfg.percent > 0 {
                cx.error(RouterConfigError::Empty {
                    path: cx.at("cluster"),
                    what: "cluster to mirror to",
                });
            }
            return None;
        }
        if cfg.percent > 100 {
            cx.warn(
                "percent",
                format!("{} is above 100: every request is mirrored", cfg.percent),
            );
        }
        Some(MirrorPolicy {
            cluster: cfg.cluster.clone(),
            percent: cfg.percent.min(100),
        })
    }
}

/// A built route.
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    matcher: RouteMatch,
    action: RouteAction,
    headers: HeaderMutations,
    metadata: MetadataMatch,
    per_filter_config: BTreeMap<String, Value>,
    mirror: Option<MirrorPolicy>,
}

impl Route {
    /// The configured `name`, or `<virtual host>/routers[i]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if the request satisfies this route's `match`.
    pub fn matches(&self, req: &dyn RouteRequest) -> bool {
        self.matcher.matches(req)
    }

    /// The built `match` section.
    pub fn matcher(&self) -> &RouteMatch {
        &self.matcher
    }

    /// What to do with a matching request.
    pub fn action(&self) -> &RouteAction {
        &self.action
    }

    /// The forwarding action, if that is this route's action.
    pub fn forward(&self) -> Option<&Forward> {
        match &self.action {
            RouteAction::Forward(f) => Some(f),
            _ => None,
        }
    }

    /// Route-level header mutations (applied before the virtual host's).
    pub fn headers(&self) -> &HeaderMutations {
        &self.headers
    }

    /// The route's own `metadata`.
    pub fn metadata(&self) -> &MetadataMatch {
        &self.metadata
    }

    /// Stream filter type → config overriding it on this route.
    pub fn per_filter_config(&self) -> &BTreeMap<String, Value> {
        &self.per_filter_config
    }

    /// `request_mirror_policies`.
    pub fn mirror(&self) -> Option<&MirrorPolicy> {
        self.mirror.as_ref()
    }

    /// The forwarded request's new path, if this route rewrites it.
    pub fn rewrite_path(&self, path: &str) -> Option<String> {
        let rw = self.forward()?.path_rewrite()?;
        rw.apply(path, self.matcher.path().map(|m| m.literal()))
    }

    /// The `Location` of this route's redirect, if it is one.
    pub fn redirect_location(
        &self,
        scheme: &str,
        authority: &str,
        path: &str,
        query: Option<&str>,
    ) -> Option<String> {
        let RouteAction::Redirect(r) = &self.action else {
            return None;
        };
        let matched = self.matcher.path().map(|m| m.literal());
        Some(r.location(scheme, authority, path, query, matched))
    }

    /// Builds one route (the caller has entered `routers[i]`).
    pub(crate) fn build(
        cfg: &RouteConfig,
        default_name: String,
        cx: &mut BuildCx,
    ) -> Option<Route> {
        let errors_before = cx.errors.len();
        let matcher = cx.field("match", |cx| RouteMatch::build(&cfg.r#match, cx));
        let forwards = Forward::configured(&cfg.route);
        let action = if let Some(dr) = &cfg.direct_response {
            if cfg.redirect.is_some() {
                cx.warn(
                    "redirect",
                    "ignored: direct_response takes precedence, as in MOSN",
                );
            }
            if forwards {
                cx.warn(
                    "route",
                    "ignored: direct_response takes precedence, as in MOSN",
                );
            }
            cx.field("direct_response", |cx| DirectResponse::build(dr, cx))
                .map(RouteAction::DirectResponse)
        } else if let Some(r) = &cfg.redirect {
            if forwards {
                cx.warn("route", "ignored: redirect takes precedence, as in MOSN");
            }
            cx.field("redirect", |cx| Redirect::build(r, cx))
                .map(RouteAction::Redirect)
        } else if forwards {
            cx.field("route", |cx| Forward::build(&cfg.route, cx))
                .map(RouteAction::Forward)
        } else {
            cx.error(RouterConfigError::NoAction { path: cx.here() });
            None
        };
        let headers = cx.field("route", |cx| {
            let r = &cfg.route;
            HeaderMutations::build(
                &r.request_headers_to_add,
                &r.request_headers_to_remove,
                &r.response_headers_to_add,
                &r.response_headers_to_remove,
                cx,
            )
        });
        let metadata = cx.field("metadata", |cx| {
            MetadataMatch::build(cfg.metadata.as_ref(), cx)
        });
        let mirror = match &cfg.request_mirror_policies {
            Some(m) => cx.field("request_mirror_policies", |cx| MirrorPolicy::build(m, cx)),
            None => None,
        };
        if cx.errors.len() != errors_before {
            return None;
        }
        Some(Route {
            name: if cfg.name.is_empty() {
                default_name
            } else {
                cfg.name.clone()
            },
            matcher: matcher?,
            action: action?,
            headers,
            metadata,
            per_filter_config: cfg.per_filter_config.clone(),
            mirror,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MapRequest;

    fn r_none_mirrors() -> bool {
        let (r, _) = build(r#"{"route": {"cluster_name": "c"}}"#);
        let r = r.expect("builds");
        r.matches(&MapRequest::new()) && r.mirror().is_some()
    }

    fn build(json: &str) -> (Option<Route>, BuildCx) {
        let cfg: RouteConfig = serde_json::from_str(json).unwrap();
        let mut cx = BuildCx::default();
        let r = Route::build(&cfg, "vh/routers[0]".into(), &mut cx);
        (r, cx)
    }

    #[test]
    fn action_precedence_follows_mosn() {
        let (r, cx) = build(
            r#"{"direct_response": {"status": 200, "body": "ok"}, "redirect": {"host_redirect": "x"},
                "route": {"cluster_name": "c"}}"#,
        );
        let r = r.unwrap();
        assert!(matches!(r.action(), RouteAction::DirectResponse(d) if d.status == 200));
        assert_eq!(cx.warnings.len(), 2);
        assert_eq!(r.name(), "vh/routers[0]");
    }

    #[test]
    fn no_action_is_an_error_at_the_route() {
        let (r, cx) = build(r#"{"match": {"prefix": "/"}}"#);
        assert!(r.is_none());
        assert_eq!(cx.errors[0].path(), "");
        assert!(cx.errors[0].hint().contains("cluster_name"));
    }

    #[test]
    fn prefix_route_rewrites_and_redirects_relative_to_its_prefix() {
        let (r, _) = build(
            r#"{"name": "api", "match": {"prefix": "/api/"}, "route": {"cluster_name": "c", "prefix_rewrite": "/"}}"#,
        );
        let r = r.unwrap();
        assert_eq!(r.name(), "api");
        assert_eq!(r.rewrite_path("/api/users"), Some("/users".into()));
        let (r, _) =
            build(r#"{"match": {"prefix": "/old/"}, "redirect": {"prefix_rewrite": "/new/"}}"#);
        let loc = r.unwrap().redirect_location("https", "h", "/old/a", None);
        assert_eq!(loc.as_deref(), Some("https://h/new/a"));
    }

    #[test]
    fn mirror_policy() {
        let (r, _) = build(
            r#"{"route": {"cluster_name": "c"}, "request_mirror_policies": {"cluster": "shadow", "percent": 30}}"#,
        );
        let m = r.unwrap().mirror().cloned().unwrap();
        let hits = (0..1000u64).filter(|i| m.should_mirror(*i)).count();
        assert_eq!(hits, 300);
        assert!(!r_none_mirrors());
    }
}
