//! Subset load balancing: route to the hosts whose metadata matches the
//! request's, with a fallback when none do (MOSN `subset_loadbalancer.go`,
//! Envoy's subset LB).
//!
//! At build time, each selector (a set of metadata keys) groups the hosts
//! that carry all of its keys by their values; each distinct group is a
//! subset with a balancer of its own, of the cluster's `lb_type`. A request
//! whose `metadata_match` has exactly the keys of some selector, with values
//! some host has, is served by that subset. The match is on the whole key
//! set: with selectors `[["version"]]`, a request asking for
//! `{version, zone}` matches nothing (MOSN walks a trie of sorted keys and
//! needs an entry at the last one; the sorted list here gives the same
//! answers with no allocation per request).
//!
//! Otherwise (no metadata, or no subset with it) the fallback policy
//! decides: no host at all, any host of the cluster, or the hosts matching
//! `default_subset` (an empty `default_subset` matches every host; one that
//! matches none behaves as no fallback, as in Envoy).
//!
//! Once a subset is found its hosts are the only candidates, even when all
//! of them are unhealthy: the panic threshold applies to the subset's own
//! hosts, and in panic the balancer picks among all of them.
//! Metadata usually means "this version" or "this zone"; sending such a
//! request elsewhere because a health check failed would be a routing
//! change the route did not ask for.

use crate::config::LbSubsetConfig;
use crate::error::{ConfigIssue, Issues};
use crate::host::{Host, HostSet};
use crate::lb::{LbContext, LbOptions, LbType, LoadBalancer};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// MOSN's `fall_back_policy`: what serves a request no subset matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackPolicy {
    /// 0: no host; the request fails with "no healthy upstream".
    NoFallback,
    /// 1: any host of the cluster, by the cluster's balancer.
    AnyEndpoint,
    /// 2: the hosts matching `default_subset`.
    DefaultSubset,
}

impl FallbackPolicy {
    /// Reads MOSN's number; `None` for values above 2.
    pub fn from_mosn(value: u8) -> Option<FallbackPolicy> {
        match value {
            0 => Some(FallbackPolicy::NoFallback),
            1 => Some(FallbackPolicy::AnyEndpoint),
            2 => Some(FallbackPolicy::DefaultSubset),
            _ => None,
        }
    }
}

/// Validated `lb_subset_config` of a cluster with subsets enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetSettings {
    /// What serves unmatched requests.
    pub fallback_policy: FallbackPolicy,
    /// Labels of the fallback hosts under [`FallbackPolicy::DefaultSubset`].
    pub default_subset: BTreeMap<String, String>,
    /// Selectors with their keys sorted, without duplicates or empty ones.
    pub selectors: Vec<Vec<String>>,
}

/// The subsets of one cluster and its fallback.
#[derive(Debug)]
pub(crate) struct Subsets {
    /// Sorted by `labels`, for binary search.
    entries: Vec<Subset>,
    fallback: Fallback,
}

#[derive(Debug)]
struct Subset {
    /// Key/value pairs in key order.
    labels: Vec<(String, String)>,
    lb: Box<dyn LoadBalancer>,
}

#[derive(Debug)]
enum Fallback {
    None,
    /// The cluster's own balancer, passed in at choose time.
    Cluster,
    Hosts(Box<dyn LoadBalancer>),
}

impl Subsets {
    pub(crate) fn build(
        hosts: &HostSet,
        settings: &SubsetSettings,
        lb_type: LbType,
        options: &LbOptions,
    ) -> Subsets {
        let mut groups = BTreeSet::new();
        for host in hosts.hosts() {
            for keys in &settings.selectors {
                let labels: Option<Vec<(String, String)>> = keys
                    .iter()
                    .map(|k| host.metadata().get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                if let Some(labels) = labels {
                    groups.insert(labels);
                }
            }
        }
        let entries = groups
            .into_iter()
            .map(|labels| {
                let members = hosts.filter(|h| has_labels(h, &labels));
                let lb = lb_type.build(members, options);
                Subset { labels, lb }
            })
            .collect();
        let fallback = match settings.fallback_policy {
            FallbackPolicy::NoFallback => Fallback::None,
            FallbackPolicy::AnyEndpoint => Fallback::Cluster,
            FallbackPolicy::DefaultSubset => {
                let wanted: Vec<_> = settings.default_subset.clone().into_iter().collect();
                let members = hosts.filter(|h| has_labels(h, &wanted));
                Fallback::Hosts(lb_type.build(members, options))
            }
        };
        Subsets { entries, fallback }
    }

    /// The subset whose labels are exactly `metadata`.
    fn find(&self, metadata: &BTreeMap<String, String>) -> Option<&Subset> {
        self.entries
            .binary_search_by(|s| compare_labels(&s.labels, metadata))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The hosts of the subset matching `metadata`, if any.
    pub(crate) fn hosts_for(&self, metadata: &BTreeMap<String, String>) -> Option<&HostSet> {
        self.find(metadata).map(|s| s.lb.hosts())
    }

    /// Every subset: its labels and its hosts.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[(String, String)], &HostSet)> {
        self.entries
            .iter()
            .map(|s| (s.labels.as_slice(), s.lb.hosts()))
    }

    /// The host for `cx`: from the matching subset, else from the
    /// fallback. Each set applies the panic threshold to its own hosts.
    pub(crate) fn choose(
        &self,
        cx: &LbContext<'_>,
        cluster_lb: &dyn LoadBalancer,
        panic_threshold: u32,
    ) -> Option<Arc<Host>> {
        if let Some(subset) = cx.metadata_match.and_then(|md| self.find(md))
            && let Some(host) = subset.lb.choose_with_panic_threshold(cx, panic_threshold)
        {
            return Some(host);
        }
        match &self.fallback {
            Fallback::None => None,
            Fallback::Cluster => cluster_lb.choose_with_panic_threshold(cx, panic_threshold),
            Fallback::Hosts(lb) => lb.choose_with_panic_threshold(cx, panic_threshold),
        }
    }
}

fn has_labels(host: &Host, labels: &[(String, String)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| host.metadata().get(k).is_some_and(|hv| hv == v))
}

/// Orders label lists the way `Vec<(String, String)>` orders (pair by pair),
/// comparing against a map without building a vector from it.
fn compare_labels(labels: &[(String, String)], metadata: &BTreeMap<String, String>) -> Ordering {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .cmp(metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

pub(crate) fn subset_settings(
    cfg: &LbSubsetConfig,
    hosts: &[Arc<Host>],
    path: &str,
    issues: &mut Issues,
) -> Option<SubsetSettings> {
    let sp = format!("{path}.lb_subset_config");
    let fallback_policy = FallbackPolicy::from_mosn(cfg.fall_back_policy).unwrap_or_else(|| {
        issues.warn(
            ConfigIssue::new(
                format!("{sp}.fall_back_policy"),
                format!(
                    "unknown policy {}; using 0 (as MOSN does)",
                    cfg.fall_back_policy
                ),
            )
            .hint("0: no fallback, 1: any host, 2: default_subset"),
        );
        FallbackPolicy::NoFallback
    });
    let mut selectors: Vec<Vec<String>> = Vec::new();
    for (k, keys) in cfg.subset_selectors.iter().enumerate() {
        let at = format!("{sp}.subset_selectors[{k}]");
        let mut keys = keys.clone();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            issues.warn(ConfigIssue::new(at, "empty selector ignored"));
            continue;
        }
        if !hosts
            .iter()
            .any(|h| keys.iter().all(|key| h.metadata().contains_key(key)))
        {
            let missing: Vec<_> = keys
                .iter()
                .filter(|key| !hosts.iter().any(|h| h.metadata().contains_key(*key)))
                .collect();
            issues.warn(
                ConfigIssue::new(
                    at,
                    format!("no host has all of the keys {keys:?}; this selector makes no subset"),
                )
                .hint(if missing.is_empty() {
                    "host labels go in hosts[].metadata.filter_metadata[\"mosn.lb\"]".to_owned()
                } else {
                    format!("no host has {missing:?} in metadata.filter_metadata[\"mosn.lb\"]")
                }),
            );
        }
        if !selectors.contains(&keys) {
            selectors.push(keys);
        }
    }
    if selectors.is_empty() {
        if cfg.fall_back_policy != 0 || !cfg.default_subset.is_empty() {
            issues.warn(
                ConfigIssue::new(sp, "subset load balancing is off without subset_selectors")
                    .hint("add selectors such as [[\"version\"]], or remove lb_subset_config"),
            );
        }
        return None;
    }
    let matches_default = |h: &&Arc<Host>| {
        cfg.default_subset
            .iter()
            .all(|(k, v)| h.metadata().get(k) == Some(v))
    };
    if fallback_policy == FallbackPolicy::DefaultSubset
        && !hosts.iter().any(|h| matches_default(&h))
    {
        issues.warn(
            ConfigIssue::new(
                format!("{sp}.default_subset"),
                "no host matches default_subset",
            )
            .hint("requests matching no subset will get no host, as with fall_back_policy 0"),
        );
    } else if fallback_policy != FallbackPolicy::DefaultSubset && !cfg.default_subset.is_empty() {
        issues.warn(ConfigIssue::new(
            format!("{sp}.default_subset"),
            "ignored: default_subset is used with fall_back_policy 2 only",
        ));
    }
    Some(SubsetSettings {
        fallback_policy,
        default_subset: cfg.default_subset.clone(),
        selectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn host(port: u16, labels: &[(&str, &str)]) -> Arc<Host> {
        let h = Host::new(SocketAddr::from(([127, 0, 0, 1], port)));
        Arc::new(h.with_metadata(md(labels)))
    }

    #[test]
    fn subsets_group_hosts_per_selector_and_values() {
        let hosts = HostSet::new(vec![
            host(1, &[("stage", "prod"), ("version", "1.0")]),
            host(2, &[("stage", "prod"), ("version", "1.1")]),
            host(3, &[("stage", "dev"), ("version", "1.1")]),
            host(4, &[("zone", "a")]),
        ]);
        let settings = SubsetSettings {
            fallback_policy: FallbackPolicy::NoFallback,
            default_subset: BTreeMap::new(),
            selectors: vec![
                vec!["version".into()],
                vec!["stage".into(), "version".into()],
            ],
        };
        let subsets = Subsets::build(&hosts, &settings, LbType::RoundRobin, &LbOptions::default());
        let labels: Vec<_> = subsets.iter().map(|(l, h)| (l.to_vec(), h.len())).collect();
        assert_eq!(labels.len(), 5);
        let v11 = subsets.hosts_for(&md(&[("version", "1.1")])).unwrap();
        assert_eq!(v11.len(), 2);
        assert!(subsets.hosts_for(&md(&[("stage", "prod")])).is_none());
        assert!(subsets.hosts_for(&md(&[("zone", "a")])).is_none());
        let exact = subsets
            .hosts_for(&md(&[("stage", "dev"), ("version", "1.1")]))
            .unwrap();
        assert_eq!(exact.hosts()[0].address().port(), 3);
    }

    #[test]
    fn compare_labels_agrees_with_vec_order() {
        let a = vec![("a".to_string(), "1".to_string())];
        let b = vec![("a".to_string(), "1".to_string()), ("b".into(), "2".into())];
        assert_eq!(
            compare_labels(&a, &md(&[("a", "1"), ("b", "2")])),
            a.cmp(&b)
        );
        assert_eq!(compare_labels(&b, &md(&[("a", "1")])), b.cmp(&a));
        assert_eq!(compare_labels(&a, &md(&[("a", "1")])), Ordering::Equal);
    }
}
