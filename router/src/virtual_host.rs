//! A virtual host: a set of domains and the routes tried, in order, for
//! requests addressed to them (MOSN's `VirtualHostImpl`,
//! `pkg/router/virtualhost.go`). The first route whose matchers all hold
//! wins; MOSN's `fastIndex` lookup by a single header is not needed, as the
//! ordered scan stays allocation-free.

use crate::config::VirtualHostConfig;
use crate::error::BuildCx;
use crate::header_mutation::HeaderMutations;
use crate::request::RouteRequest;
use crate::route::Route;
use serde_json::Value;
use std::collections::BTreeMap;

/// A built virtual host.
#[derive(Debug, Clone)]
pub struct VirtualHost {
    name: String,
    domains: Vec<String>,
    routes: Vec<Route>,
    headers: HeaderMutations,
    per_filter_config: BTreeMap<String, Value>,
}

impl VirtualHost {
    /// The configured name (may be empty, as MOSN allows).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The domains as configured.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route whose matchers hold for the request.
    pub fn route(&self, req: &dyn RouteRequest) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(req))
    }

    /// Host-level header mutations (applied after the route's).
    pub fn headers(&self) -> &HeaderMutations {
        &self.headers
    }

    /// Stream filter type → config overriding it for this host.
    pub fn per_filter_config(&self) -> &BTreeMap<String, Value> {
        &self.per_filter_config
    }

    /// Builds one virtual host (the caller has entered `virtual_hosts[i]`;
    /// domains are indexed by the table). Invalid routes are reported and
    /// left out.
    pub(crate) fn build(cfg: &VirtualHostConfig, index: usize, cx: &mut BuildCx) -> VirtualHost {
        if cfg.domains.is_empty() {
            cx.warn(
                "domains",
                "no domains: no request can reach this virtual host",
            );
        }
        let label = if cfg.name.is_empty() {
            format!("virtual_hosts[{index}]")
        } else {
            cfg.name.clone()
        };
        let routes = cx.field("routers", |cx| {
            cfg.routers
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    cx.index(i, |cx| Route::build(r, format!("{label}/routers[{i}]"), cx))
                })
                .collect()
        });
        let headers = HeaderMutations::build(
            &cfg.request_headers_to_add,
            &cfg.request_headers_to_remove,
            &cfg.response_headers_to_add,
            &cfg.response_headers_to_remove,
            cx,
        );
        VirtualHost {
            name: cfg.name.clone(),
            domains: cfg.domains.clone(),
            routes,
            headers,
            per_filter_config: cfg.per_filter_config.clone(),
        }
    }
}
