//! `match.variables`: MOSN's variable rule (`pkg/router/variable_rule.go`).
//!
//! Entries are folded left to right. Each entry compares its variable with
//! `value` (exact) or, when `regex` is set, searches it with the regex. Its
//! `model` (`and` by default, or `or`) says how it joins the *next* entry:
//! after an `and`, the running result is ANDed with the next entry's; after
//! an `or`, the running result is replaced by the next entry's, and a true
//! running result at an `or` stops the fold. So `a(or) b(and) c` reads
//! `a || (b && c)`.
//!
//! One deliberate difference: MOSN reads an unset variable as `""`, so a
//! regex like `.*` matches it; here an unset variable never matches.

use crate::config::VariableMatcherConfig;
use crate::error::{BuildCx, RouterConfigError};
use crate::request::RouteRequest;
use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    And,
    Or,
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    value: Option<String>,
    regex: Option<Regex>,
    model: Model,
}

impl Item {
    fn matches(&self, req: &dyn RouteRequest) -> bool {
        let Some(actual) = req.variable(&self.name) else {
            return false;
        };
        match (&self.regex, &self.value) {
            (Some(re), _) => re.is_match(actual),
            (None, Some(v)) => v == actual,
            (None, None) => false,
        }
    }
}

/// The built `match.variables` chain.
#[derive(Debug, Clone)]
pub struct VariableMatcher {
    items: Vec<Item>,
}

impl VariableMatcher {
    /// True if the chain holds for this request.
    pub fn matches(&self, req: &dyn RouteRequest) -> bool {
        let mut result = true;
        let mut last = Model::And;
        for item in &self.items {
            let cur = item.matches(req);
            result = match last {
                Model::And => result && cur,
                Model::Or => cur,
            };
            if result && item.model == Model::Or {
                break;
            }
            last = item.model;
        }
        result
    }

    /// Builds the chain (the caller has entered `variables`); `None` when
    /// an entry is invalid (reported) or the list is empty.
    pub(crate) fn build(cfgs: &[VariableMatcherConfig], cx: &mut BuildCx) -> Option<Self> {
        let mut items = Vec::with_capacity(cfgs.len());
        let mut ok = true;
        for (i, cfg) in cfgs.iter().enumerate() {
            cx.index(i, |cx| {
                if cfg.name.is_empty() {
                    cx.error(RouterConfigError::Empty {
                        path: cx.at("name"),
                        what: "variable name to match on",
                    });
                    ok = false;
                }
                let regex = if cfg.regex.is_empty() {
                    None
                } else {
                    let re = cx.regex("regex", &cfg.regex);
                    ok &= re.is_some();
                    re
                };
                let model = match cfg.model.to_ascii_lowercase().as_str() {
                    "" | "and" => Model::And,
                    "or" => Model::Or,
                    _ => {
                        cx.error(RouterConfigError::Invalid {
                            path: cx.at("model"),
                            message: format!("unknown model {:?}", cfg.model),
                            hint: "use \"and\" (the default) or \"or\"",
                        });
                        ok = false;
                        Model::And
                    }
                };
                let value = (!cfg.value.is_empty()).then(|| cfg.value.clone());
                if value.is_none() && cfg.regex.is_empty() {
                    cx.warn(
                        "",
                        "neither value nor regex is set: this entry never matches",
                    );
                }
                if value.is_some() && regex.is_some() {
                    cx.warn(
                        "value",
                        "ignored: regex is set and takes its place, as in MOSN",
                    );
                }
                items.push(Item {
                    name: cfg.name.clone(),
                    value,
                    regex,
                    model,
                });
            });
        }
        (ok && !items.is_empty()).then_some(VariableMatcher { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MapRequest;

    fn var(name: &str, value: &str, regex: &str, model: &str) -> VariableMatcherConfig {
        VariableMatcherConfig {
            name: name.into(),
            value: value.into(),
            regex: regex.into(),
            model: model.into(),
        }
    }

    #[test]
    fn or_then_and_reads_like_mosn_tests() {
        // header == test || (method == test && uri ~ /[0-9]+) || uri == /1234
        let m = VariableMatcher::build(
            &[
                var("header", "test", "", "or"),
                var("method", "test", "", "and"),
                var("uri", "", "/[0-9]+", "or"),
                var("uri", "/1234", "", ""),
            ],
            &mut BuildCx::default(),
        )
        .unwrap();
        let one = |k: &str, v: &str| MapRequest::new().variable(k, v);
        assert!(m.matches(&one("header", "test")));
        assert!(!m.matches(&one("header", "/test/test")));
        assert!(!m.matches(&one("method", "test")));
        assert!(m.matches(&one("uri", "/1234")));
        assert!(!m.matches(&one("uri", "/abc")));
        let both = MapRequest::new()
            .variable("method", "test")
            .variable("uri", "/77");
        assert!(m.matches(&both));
    }

    #[test]
    fn all_and_by_default() {
        let m = VariableMatcher::build(
            &[var("a", "1", "", ""), var("b", "", "^x", "AND")],
            &mut BuildCx::default(),
        )
        .unwrap();
        assert!(m.matches(&MapRequest::new().variable("a", "1").variable("b", "xy")));
        assert!(!m.matches(&MapRequest::new().variable("a", "1")));
    }

    #[test]
    fn bad_model_and_regex_are_errors() {
        let mut cx = BuildCx::default();
        let m = VariableMatcher::build(&[var("a", "", "(", "xor")], &mut cx);
        assert!(m.is_none());
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(paths, ["[0].regex", "[0].model"]);
    }
}
