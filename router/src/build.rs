//! Raw config → [`RouteTable`]: walks the whole document, builds every
//! part it can, and reports every problem at once, each with its JSON path
//! and a hint. A table is returned only when there is no error.

use crate::config::RouterConfig;
use crate::domain::DomainIndex;
use crate::error::{BuildCx, RouterConfigError, RouterConfigErrors};
use crate::header_mutation::HeaderMutations;
use crate::table::RouteTable;
use crate::virtual_host::VirtualHost;

impl RouteTable {
    /// Validates and builds a router configuration.
    ///
    /// Errors are collected, not returned at the first: the `Err` lists
    /// every problem in document order, with the warnings found on the way.
    /// On success, [`RouteTable::warnings`] lists what MOSN accepts that
    /// meshgate ignores or reads differently.
    pub fn build(cfg: &RouterConfig) -> Result<RouteTable, RouterConfigErrors> {
        let mut cx = BuildCx::default();
        if !cfg.router_configs.is_empty() && !cfg.virtual_hosts.is_empty() {
            cx.error(RouterConfigError::Conflict {
                path: String::new(),
                fields: "virtual_hosts and router_configs",
            });
        }
        if cfg.virtual_hosts.is_empty() {
            cx.error(RouterConfigError::NoVirtualHosts {
                path: cx.at("virtual_hosts"),
            });
        }
        let mut domains = DomainIndex::default();
        let virtual_hosts = cx.field("virtual_hosts", |cx| {
            cfg.virtual_hosts
                .iter()
                .enumerate()
                .map(|(i, vh)| {
                    cx.index(i, |cx| {
                        cx.field("domains", |cx| {
                            for (j, d) in vh.domains.iter().enumerate() {
                                cx.index(j, |cx| domains.add(d, i, cx));
                            }
                        });
                        VirtualHost::build(vh, i, cx)
                    })
                })
                .collect()
        });
        let headers = HeaderMutations::build(
            &cfg.request_headers_to_add,
            &cfg.request_headers_to_remove,
            &cfg.response_headers_to_add,
            &cfg.response_headers_to_remove,
            &mut cx,
        );
        if !cx.errors.is_empty() {
            return Err(RouterConfigErrors {
                errors: cx.errors,
                warnings: cx.warnings,
            });
        }
        Ok(RouteTable {
            name: cfg.router_config_name.clone(),
            virtual_hosts,
            domains,
            headers,
            warnings: cx.warnings,
        })
    }
}
