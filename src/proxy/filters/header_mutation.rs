//! `header_mutation`: meshgate's stream filter that adds and removes
//! request and response header fields, with the same four lists a route
//! has (`request_headers_to_add`, `request_headers_to_remove`,
//! `response_headers_to_add`, `response_headers_to_remove`):
//!
//! `{"type": "header_mutation", "config": {"request_headers_to_add":
//!   [{"header": {"key": "x-env", "value": "gray"}, "append": false}],
//!   "request_headers_to_remove": ["x-debug"]}}`
//!
//! Requests are changed before routing, so routes can match the result
//! and the upstream sees it; responses are changed before they go back.
//! The same lists apply to RPC and HTTP requests: RPC header maps hold
//! one value per key, so there an added field replaces any existing one;
//! HTTP header maps keep `append: true` values beside existing ones.
//! Values written `%variable%` take a request variable (see
//! `crate::proxy::variables`).

use crate::proxy::filter::{FilterCx, FilterHeaders, Flow, Stage, StreamFilter};
use crate::proxy::variables::apply_mutations;
use meshgate_router::{HeaderMutations, HeaderValueOption};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HeaderMutationConfig {
    request_headers_to_add: Vec<HeaderValueOption>,
    request_headers_to_remove: Vec<String>,
    response_headers_to_add: Vec<HeaderValueOption>,
    response_headers_to_remove: Vec<String>,
}

/// The built filter.
#[derive(Debug)]
pub(crate) struct HeaderMutation {
    mutations: HeaderMutations,
}

impl HeaderMutation {
    /// Builds from the parsed config; `Err` carries (path suffix, message).
    pub(crate) fn build(config: HeaderMutationConfig) -> Result<HeaderMutation, (String, String)> {
        HeaderMutations::from_config(
            &config.request_headers_to_add,
            &config.request_headers_to_remove,
            &config.response_headers_to_add,
            &config.response_headers_to_remove,
        )
        .map(|(mutations, _)| HeaderMutation { mutations })
        .map_err(|e| {
            e.errors
                .first()
                .map(|e| (e.path().to_owned(), e.message()))
                .unwrap_or_default()
        })
    }
}

impl StreamFilter for HeaderMutation {
    fn name(&self) -> &'static str {
        "header_mutation"
    }

    fn stage(&self) -> Stage {
        Stage::BeforeRoute
    }

    fn on_request(&self, cx: &mut FilterCx<'_>, _resumed: bool) -> Flow {
        apply_mutations(
            cx.request,
            &self.mutations.request_remove,
            &self.mutations.request_add,
            cx.downstream,
            cx.cluster.map(|c| &**c),
        );
        Flow::Continue
    }

    fn reads_response_headers(&self) -> bool {
        !self.mutations.response_add.is_empty() || !self.mutations.response_remove.is_empty()
    }

    fn on_response(&self, cx: &mut FilterCx<'_>, response: &mut (dyn FilterHeaders + Send)) {
        apply_mutations(
            response,
            &self.mutations.response_remove,
            &self.mutations.response_add,
            cx.downstream,
            cx.cluster.map(|c| &**c),
        );
    }
}
