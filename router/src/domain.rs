//! Virtual host selection by authority, with MOSN's priorities
//! (`pkg/router/routers_impl.go` `findHighestPriorityIndex`):
//!
//! | priority | domain form            | example                |
//! |----------|------------------------|------------------------|
//! | 1        | exact host, exact port | `www.foo.com:8080`, `www.foo.com` (matches a request *without* a port) |
//! | 2        | exact host, any port   | `www.foo.com:*`        |
//! | 3        | wildcard, exact port   | `*.foo.com:8080`, `*.foo.com` (no port), `*:8080` |
//! | 4        | wildcard, any port     | `*.foo.com:*`          |
//! | 5        | default                | `*`, `*:*`             |
//!
//! Among wildcards the longest suffix wins; a wildcard needs at least one
//! character before its suffix (`*.foo.com` does not match `.foo.com`).
//! Domains and authorities compare in lowercase. As in MOSN, a domain
//! without a port does not match an authority with one (`www.foo.com`
//! misses `www.foo.com:8080`; write `www.foo.com:*`), and when a table has
//! only a default host every request goes there, whatever its authority.
//!
//! One deliberate difference: MOSN finds no virtual host for a request
//! without an authority (unless the default is the only host); meshgate
//! sends it to the default host, so RPC requests, which carry no authority,
//! route the same way whatever else the table holds.

use crate::error::{BuildCx, RouterConfigError};
use std::borrow::Cow;
use std::collections::HashMap;

/// Go's `net.SplitHostPort`, made lenient the way MOSN's
/// `SplitHostPortGraceful` is: a missing port is `""`, not an error.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Some((s, ""));
        }
        let port = after.strip_prefix(':')?;
        if port.contains([':', '[', ']']) {
            return None;
        }
        return Some((&rest[..close], port));
    }
    match s.rfind(':') {
        None => Some((s, "")),
        Some(i) if s[..i].contains(':') => None,
        Some(i) => Some((&s[..i], &s[i + 1..])),
    }
}

/// Built domain lookup: indexes into the table's virtual hosts.
#[derive(Debug, Clone, Default)]
pub(crate) struct DomainIndex {
    exact: HashMap<String, HashMap<String, usize>>,
    wildcard: HashMap<String, Vec<(String, usize)>>,
    default: Option<usize>,
    first_seen: HashMap<String, String>,
}

impl DomainIndex {
    /// Adds one domain of virtual host `vh` (the caller has entered
    /// `domains[i]`).
    pub(crate) fn add(&mut self, domain: &str, vh: usize, cx: &mut BuildCx) {
        let bad = |cx: &mut BuildCx, reason| {
            cx.error(RouterConfigError::BadDomain {
                path: cx.here(),
                domain: domain.to_owned(),
                reason,
            })
        };
        let lower = domain.to_ascii_lowercase();
        let Some((host, port)) = split_host_port(&lower) else {
            return bad(cx, "not host[:port]");
        };
        if host.is_empty() {
            return bad(cx, "the host is empty");
        }
        if !(port.is_empty() || port == "*" || port.bytes().all(|b| b.is_ascii_digit())) {
            return bad(cx, "the port must be a number or *");
        }
        let (key, slot) = if host == "*" && (port.is_empty() || port == "*") {
            ("*".to_owned(), Slot::Default)
        } else if let Some(suffix) = host.strip_prefix('*') {
            if suffix.contains('*') {
                return bad(cx, "only one leading * is allowed");
            }
            (format!("*{suffix}:{port}"), Slot::Wildcard(suffix, port))
        } else if host.contains('*') {
            return bad(cx, "a * may only begin the domain");
        } else {
            (format!("{host}:{port}"), Slot::Exact(host, port))
        };
        if let Some(first) = self.first_seen.get(&key) {
            return cx.error(RouterConfigError::DuplicateDomain {
                path: cx.here(),
                domain: domain.to_owned(),
                first: first.clone(),
            });
        }
        self.first_seen.insert(key, cx.here());
        match slot {
            Slot::Default => self.default = Some(vh),
            Slot::Exact(h, p) => {
                self.exact
                    .entry(h.to_owned())
                    .or_default()
                    .insert(p.to_owned(), vh);
            }
            Slot::Wildcard(s, p) => {
                let list = self.wildcard.entry(p.to_owned()).or_default();
                list.push((s.to_owned(), vh));
                // Longest suffix first; stable, so config order breaks ties.
                list.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
            }
        }
    }

    /// The virtual host for an authority (see the module docs).
    pub(crate) fn find<'a>(&self, authority: impl FnOnce() -> Option<&'a str>) -> Option<usize> {
        // Only `*`: the authority is not even read (a lookup per request).
        if self.exact.is_empty() && self.wildcard.is_empty() {
            return self.default;
        }
        let Some(authority) = authority().filter(|a| !a.is_empty()) else {
            return self.default;
        };
        let (host, port) = split_host_port(authority)?;
        let host: Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        if let Some(ports) = self.exact.get(host.as_ref())
            && let Some(&i) = ports.get(port).or_else(|| ports.get("*"))
        {
            return Some(i);
        }
        for p in [port, "*"] {
            let Some(list) = self.wildcard.get(p) else {
                continue;
            };
            let hit = list
                .iter()
                .find(|(suffix, _)| suffix.len() < host.len() && host.ends_with(suffix.as_str()));
            if let Some(&(_, i)) = hit {
                return Some(i);
            }
        }
        self.default
    }
}

enum Slot<'a> {
    Default,
    Exact(&'a str, &'a str),
    Wildcard(&'a str, &'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        assert_eq!(split_host_port("a.com"), Some(("a.com", "")));
        assert_eq!(split_host_port("a.com:80"), Some(("a.com", "80")));
        assert_eq!(split_host_port("a.com:"), Some(("a.com", "")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", "")));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port("[::1]x"), None);
    }

    fn index(domains: &[&str]) -> (DomainIndex, BuildCx) {
        let mut idx = DomainIndex::default();
        let mut cx = BuildCx::default();
        for (i, d) in domains.iter().enumerate() {
            cx.index(i, |cx| idx.add(d, i, cx));
        }
        (idx, cx)
    }

    #[test]
    fn rejects_what_mosn_cannot_use() {
        let (_, cx) = index(&[
            "",
            "a:b:c",
            "*.*.foo",
            "foo*.com",
            ":80",
            "a.com:http",
            "A.com",
            "a.com",
            "*",
            "*:*",
        ]);
        let got: Vec<_> = cx.errors.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(
            got,
            ["[0]", "[1]", "[2]", "[3]", "[4]", "[5]", "[7]", "[9]"]
        );
        assert!(cx.errors[6].to_string().contains("already used at [6]"));
    }
}
