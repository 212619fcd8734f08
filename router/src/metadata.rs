//! Subset metadata: MOSN's `{"filter_metadata": {"mosn.lb": {"k": "v"}}}`,
//! kept as a sorted string map.
//!
//! The cluster crate's subset load balancer takes `&BTreeMap<String, String>`
//! ([`MetadataMatch::as_map`]); the two crates never depend on each other.

use crate::config::MetadataConfig;
use crate::error::{BuildCx, RouterConfigError};
use serde_json::Value;
use std::collections::BTreeMap;

/// The key under `filter_metadata` that MOSN's load balancers read.
pub const MOSN_LB: &str = "mosn.lb";

/// Metadata a host must carry to be chosen, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MetadataMatch(BTreeMap<String, String>);

impl MetadataMatch {
    /// No constraint.
    pub fn new() -> MetadataMatch {
        MetadataMatch::default()
    }

    /// The key/value pairs.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// True when there is no constraint.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `self` with `over`'s entries added or replacing (MOSN's
    /// `MergeMatchCriteria`): used for a weighted cluster's own
    /// `metadata_match` over the route's.
    pub fn merged_with(&self, over: &MetadataMatch) -> MetadataMatch {
        let mut map = self.0.clone();
        map.extend(over.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        MetadataMatch(map)
    }

    /// Reads a `MetadataConfig` (the caller has entered its field). As in
    /// MOSN (`configToMetadata`), only `mosn.lb` counts and non-string values
    /// are dropped; each is warned about here.
    pub(crate) fn build(cfg: Option<&MetadataConfig>, cx: &mut BuildCx) -> MetadataMatch {
        let mut map = BTreeMap::new();
        let Some(cfg) = cfg else {
            return MetadataMatch(map);
        };
        cx.field("filter_metadata", |cx| {
            for (key, value) in &cfg.filter_metadata {
                if key != MOSN_LB {
                    cx.warn(key, "ignored: only \"mosn.lb\" metadata selects hosts");
                    continue;
                }
                cx.field(key, |cx| match value {
                    Value::Object(entries) => {
                        for (k, v) in entries {
                            match v {
                                Value::String(s) => {
                                    map.insert(k.clone(), s.clone());
                                }
                                _ => cx.warn(
                                    k,
                                    format!(
                                        "ignored: {v} is not a string (MOSN drops it too); quote it"
                                    ),
                                ),
                            }
                        }
                    }
                    Value::Null => {}
                    _ => cx.error(RouterConfigError::Invalid {
                        path: cx.here(),
                        message: "must be an object of string values".into(),
                        hint: "write {\"mosn.lb\": {\"version\": \"1.0\"}}",
                    }),
                });
            }
        });
        MetadataMatch(map)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MetadataMatch {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        MetadataMatch(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mosn_lb_and_warns_about_the_rest() {
        let cfg: MetadataConfig = serde_json::from_str(
            r#"{"filter_metadata": {"mosn.lb": {"version": "1.0", "zone": "gz", "w": 3}, "envoy.lb": {}}}"#,
        )
        .unwrap();
        let mut cx = BuildCx::default();
        let md = cx.field("metadata_match", |cx| MetadataMatch::build(Some(&cfg), cx));
        assert_eq!(
            md,
            [("version", "1.0"), ("zone", "gz")].into_iter().collect()
        );
        let paths: Vec<_> = cx.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata_match.filter_metadata.envoy.lb",
                "metadata_match.filter_metadata.mosn.lb.w"
            ]
        );
    }

    #[test]
    fn merge_overrides_and_adds() {
        let route: MetadataMatch = [("version", "1"), ("zone", "a")].into_iter().collect();
        let cluster: MetadataMatch = [("version", "2"), ("stage", "gray")].into_iter().collect();
        let merged = route.merged_with(&cluster);
        assert_eq!(merged.get("version"), Some("2"));
        assert_eq!(merged.get("zone"), Some("a"));
        assert_eq!(merged.get("stage"), Some("gray"));
        let keys: Vec<_> = merged.as_map().keys().collect();
        assert_eq!(keys, ["stage", "version", "zone"]);
    }
}
