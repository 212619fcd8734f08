//! Header add/remove lists at router, virtual host and route level
//! (`request_headers_to_add`, `…_to_remove`, `response_…`).
//!
//! The router only builds them; the proxy applies them. MOSN applies the
//! route's list, then the virtual host's, then the router's
//! (`pkg/router/base_rule.go` `finalizeRequestHeaders`); within a list,
//! removals happen before additions. Keys are lowercased. A value written
//! `%name%` is the value of variable `name` at apply time; any other value
//! containing `%` is skipped with a warning, as MOSN's
//! `headerformatter.go` does.

use crate::config::HeaderValueOption;
use crate::error::{BuildCx, RouterConfigError, RouterConfigErrors, RouterConfigWarning};

/// Where an added header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValueSource {
    /// This literal.
    Static(String),
    /// The request's variable of this name (empty when unset).
    Variable(String),
}

/// One header to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderToAdd {
    /// Lowercased name.
    pub key: String,
    /// The value.
    pub value: HeaderValueSource,
    /// Add beside an existing value (MOSN's default) instead of replacing.
    pub append: bool,
}

/// The four lists of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMutations {
    /// Added to the upstream request.
    pub request_add: Vec<HeaderToAdd>,
    /// Removed from the upstream request (lowercased).
    pub request_remove: Vec<String>,
    /// Added to the downstream response.
    pub response_add: Vec<HeaderToAdd>,
    /// Removed from the downstream response (lowercased).
    pub response_remove: Vec<String>,
}

impl HeaderMutations {
    /// True when this level changes nothing.
    pub fn is_empty(&self) -> bool {
        self.request_add.is_empty()
            && self.request_remove.is_empty()
            && self.response_add.is_empty()
            && self.response_remove.is_empty()
    }

    /// True when this level adds or removes request fields.
    pub fn changes_requests(&self) -> bool {
        !self.request_add.is_empty() || !self.request_remove.is_empty()
    }

    /// True when this level adds or removes response fields.
    pub fn changes_responses(&self) -> bool {
        !self.response_add.is_empty() || !self.response_remove.is_empty()
    }

    /// Builds the four lists outside a route table, for the gateway's
    /// header-mutation stream filter. Paths in errors and warnings are
    /// relative to the object holding the four fields.
    pub fn from_config(
        request_add: &[HeaderValueOption],
        request_remove: &[String],
        response_add: &[HeaderValueOption],
        response_remove: &[String],
    ) -> Result<(HeaderMutations, Vec<RouterConfigWarning>), RouterConfigErrors> {
        let mut cx = BuildCx::default();
        let built = HeaderMutations::build(
            request_add,
            request_remove,
            response_add,
            response_remove,
            &mut cx,
        );
        cx.finish(built)
    }

    /// Builds the four lists from the current node's fields.
    pub(crate) fn build(
        request_add: &[HeaderValueOption],
        request_remove: &[String],
        response_add: &[HeaderValueOption],
        response_remove: &[String],
        cx: &mut BuildCx,
    ) -> HeaderMutations {
        HeaderMutations {
            request_add: cx.field("request_headers_to_add", |cx| adds(request_add, cx)),
            request_remove: cx.field("request_headers_to_remove", |cx| {
                removes(request_remove, cx)
            }),
            response_add: cx.field("response_headers_to_add", |cx| adds(response_add, cx)),
            response_remove: cx.field("response_headers_to_remove", |cx| {
                removes(response_remove, cx)
            }),
        }
    }
}

fn adds(opts: &[HeaderValueOption], cx: &mut BuildCx) -> Vec<HeaderToAdd> {
    let mut out = Vec::with_capacity(opts.len());
    for (i, opt) in opts.iter().enumerate() {
        cx.index(i, |cx| {
            let Some(h) = &opt.header else {
                cx.error(RouterConfigError::Empty {
                    path: cx.at("header"),
                    what: "header to add: {\"header\": {\"key\": \"x-k\", \"value\": \"v\"}}",
                });
                return;
            };
            cx.field("header", |cx| {
                if h.key.is_empty() {
                    cx.error(RouterConfigError::Empty {
                        path: cx.at("key"),
                        what: "header name",
                    });
                    return;
                }
                let value = match h.value.strip_prefix('%').and_then(|v| v.strip_suffix('%')) {
                    Some(name) if !name.is_empty() && !name.contains('%') => {
                        HeaderValueSource::Variable(name.to_owned())
                    }
                    _ if h.value.contains('%') => {
                        cx.warn(
                            "value",
                            "skipped, as MOSN skips it: a value with '%' must be a whole %variable%",
                        );
                        return;
                    }
                    _ => HeaderValueSource::Static(h.value.clone()),
                };
                out.push(HeaderToAdd {
                    key: h.key.to_ascii_lowercase(),
                    value,
                    append: opt.append.unwrap_or(true),
                });
            });
        });
    }
    out
}

fn removes(names: &[String], cx: &mut BuildCx) -> Vec<String> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            let path = cx.index(i, |cx| cx.here());
            cx.error(RouterConfigError::Empty {
                path,
                what: "header name to remove",
            });
        } else {
            out.push(name.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_lists_with_mosn_defaults() {
        let add: Vec<HeaderValueOption> = serde_json::from_str(
            r#"[{"header": {"key": "X-Env", "value": "gray"}},
                {"header": {"key": "x-peer", "value": "%downstream_remote_address%"}, "append": false},
                {"header": {"key": "x-bad", "value": "50%"}},
                {"append": true}]"#,
        )
        .unwrap();
        let mut cx = BuildCx::default();
        let m = HeaderMutations::build(&add, &["X-Drop".into(), String::new()], &[], &[], &mut cx);
        assert_eq!(
            m.request_add,
            vec![
                HeaderToAdd {
                    key: "x-env".into(),
                    value: HeaderValueSource::Static("gray".into()),
                    append: true
                },
                HeaderToAdd {
                    key: "x-peer".into(),
                    value: HeaderValueSource::Variable("downstream_remote_address".into()),
                    append: false
                },
            ]
        );
        assert_eq!(m.request_remove, ["x-drop"]);
        assert_eq!(
            cx.warnings[0].path,
            "request_headers_to_add[2].header.value"
        );
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(
            paths,
            [
                "request_headers_to_add[3].header",
                "request_headers_to_remove[1]"
            ]
        );
    }

    #[test]
    fn a_level_tells_which_direction_it_changes() {
        let lists = |request: &[String], response: &[String]| {
            HeaderMutations::from_config(&[], request, &[], response)
                .unwrap()
                .0
        };
        let none = lists(&[], &[]);
        assert!(none.is_empty() && !none.changes_requests() && !none.changes_responses());
        let requests = lists(&["x-a".into()], &[]);
        assert!(requests.changes_requests() && !requests.changes_responses());
        let responses = lists(&[], &["x-b".into()]);
        assert!(!responses.changes_requests() && responses.changes_responses());
    }
}
