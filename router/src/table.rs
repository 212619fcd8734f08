//! The built route table of one router configuration and the lookup the
//! proxy's MatchRoute phase calls: authority → virtual host → first
//! matching route.

use crate::domain::DomainIndex;
use crate::error::RouterConfigWarning;
use crate::header_mutation::HeaderMutations;
use crate::request::RouteRequest;
use crate::route::Route;
use crate::virtual_host::VirtualHost;
use std::collections::BTreeSet;

/// A built router configuration. Immutable and cheap to share: the
/// gateway keeps it behind an `Arc` and swaps whole tables on reload.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub(crate) name: String,
    pub(crate) virtual_hosts: Vec<VirtualHost>,
    pub(crate) domains: DomainIndex,
    pub(crate) headers: HeaderMutations,
    pub(crate) warnings: Vec<RouterConfigWarning>,
}

/// A successful lookup: the route and the virtual host it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct MatchedRoute<'a> {
    /// The virtual host chosen by authority.
    pub virtual_host: &'a VirtualHost,
    /// The first matching route in it.
    pub route: &'a Route,
    table_headers: &'a HeaderMutations,
}

impl<'a> MatchedRoute<'a> {
    /// The header mutation lists in the order MOSN applies them: route,
    /// virtual host, router.
    pub fn header_layers(&self) -> [&'a HeaderMutations; 3] {
        [
            self.route.headers(),
            self.virtual_host.headers(),
            self.table_headers,
        ]
    }
}

impl RouteTable {
    /// `router_config_name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route for a request, if any (MOSN's `MatchRoute`).
    pub fn route(&self, req: &dyn RouteRequest) -> Option<&Route> {
        self.select(req).map(|m| m.route)
    }

    /// Like [`RouteTable::route`], with the virtual host.
    pub fn select(&self, req: &dyn RouteRequest) -> Option<MatchedRoute<'_>> {
        let virtual_host = self.virtual_host_of(|| req.authority())?;
        let route = virtual_host.route(req)?;
        Some(MatchedRoute {
            virtual_host,
            route,
            table_headers: &self.headers,
        })
    }

    /// The virtual host for an authority (`None` = no authority); see the
    /// domain rules in the crate docs.
    pub fn virtual_host(&self, authority: Option<&str>) -> Option<&VirtualHost> {
        self.virtual_host_of(|| authority)
    }

    /// [`RouteTable::virtual_host`], reading the authority only when a
    /// domain could match it.
    fn virtual_host_of<'a>(
        &self,
        authority: impl FnOnce() -> Option<&'a str>,
    ) -> Option<&VirtualHost> {
        self.domains.find(authority).map(|i| &self.virtual_hosts[i])
    }

    /// Every virtual host, in config order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.virtual_hosts
    }

    /// Router-level header mutations (applied last).
    pub fn headers(&self) -> &HeaderMutations {
        &self.headers
    }

    /// What the build accepted but reads differently from MOSN, or ignores.
    pub fn warnings(&self) -> &[RouterConfigWarning] {
        &self.warnings
    }

    /// Every cluster the config names (forwarding and mirroring), so the
    /// gateway can check they exist. Clusters named by a request's header
    /// or variable are not known until then.
    pub fn static_cluster_names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for route in self.virtual_hosts.iter().flat_map(|vh| vh.routes()) {
            if let Some(f) = route.forward() {
                out.extend(f.static_cluster_names());
            }
            if let Some(m) = route.mirror() {
                out.insert(m.cluster.as_str());
            }
        }
        out
    }
}
