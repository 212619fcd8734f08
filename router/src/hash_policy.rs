//! Hash keys for consistent-hash load balancers (`LB_MAGLEV`).
//!
//! MOSN (`pkg/router/types.go`) hashes `"key:value"` for a header,
//! `"name=value"` for a cookie, and the downstream IPv4 address; it uses only
//! the first `hash_policy` entry and falls back to the source IP when there
//! is none. meshgate keeps those inputs and that fallback, but tries the
//! entries in order and takes the first that yields a key (MOSN answers 0
//! for a missing header, sending every such request to one host; here the
//! load balancer gets no key and chooses by its own rule).
//!
//! The hash is FNV-1a (64-bit) followed by a murmur3 finalizer: stable
//! across runs, processes and machines, unlike std's randomized hasher, so
//! every gateway instance maps a key to the same host.

use crate::config::HashPolicyConfig;
use crate::error::{BuildCx, RouterConfigError};
use std::net::IpAddr;
use std::time::Duration;

/// One built `hash_policy[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicy {
    /// Hash this request header.
    Header(String),
    /// Hash this cookie. `path` and `ttl` are for generating the cookie,
    /// which MOSN does not do either.
    Cookie {
        /// Cookie name.
        name: String,
        /// Cookie path.
        path: Option<String>,
        /// Cookie lifetime.
        ttl: Option<Duration>,
    },
    /// Hash the downstream address.
    SourceIp,
}

impl HashPolicy {
    /// The key for this request, or `None` when its input is missing.
    pub fn hash_key(
        &self,
        req: &dyn crate::RouteRequest,
        source_ip: Option<IpAddr>,
    ) -> Option<u64> {
        match self {
            HashPolicy::Header(name) => {
                let value = req.header(name)?;
                Some(stable_hash(&[name.as_bytes(), b":", value.as_bytes()]))
            }
            HashPolicy::Cookie { name, .. } => {
                let value = req.cookie(name)?;
                Some(stable_hash(&[name.as_bytes(), b"=", value.as_bytes()]))
            }
            HashPolicy::SourceIp => Some(match source_ip? {
                IpAddr::V4(ip) => stable_hash(&[&ip.octets()]),
                IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                    Some(v4) => stable_hash(&[&v4.octets()]),
                    None => stable_hash(&[&ip.octets()]),
                },
            }),
        }
    }
}

/// Builds one `hash_policy[]` entry (the caller has entered it). As in
/// MOSN, `cookie` wins over `header`, and `source_ip` counts only alone.
pub(crate) fn build(cfg: &HashPolicyConfig, cx: &mut BuildCx) -> Option<HashPolicy> {
    let set = [
        cfg.header.is_some(),
        cfg.cookie.is_some(),
        cfg.source_ip.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        cx.warn("", "set one of header, cookie, source_ip; like MOSN, cookie wins over header over source_ip");
    }
    if let Some(c) = &cfg.cookie {
        if c.name.is_empty() {
            let path = cx.field("cookie", |cx| cx.at("name"));
            cx.error(RouterConfigError::Empty {
                path,
                what: "cookie name to hash",
            });
            return None;
        }
        return Some(HashPolicy::Cookie {
            name: c.name.clone(),
            path: (!c.path.is_empty()).then(|| c.path.clone()),
            ttl: c.ttl.map(|d| d.get()),
        });
    }
    if let Some(h) = &cfg.header {
        if h.key.is_empty() {
            let path = cx.field("header", |cx| cx.at("key"));
            cx.error(RouterConfigError::Empty {
                path,
                what: "header name to hash",
            });
            return None;
        }
        return Some(HashPolicy::Header(h.key.clone()));
    }
    if cfg.source_ip.is_some() {
        return Some(HashPolicy::SourceIp);
    }
    cx.warn(
        "",
        "ignored: an empty hash policy; set header, cookie or source_ip",
    );
    None
}

/// FNV-1a over the concatenated parts, then murmur3's `fmix64` so that
/// nearby inputs spread over the whole range.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    fmix64(fnv1a(parts))
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::MapRequest;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn stable_known_values() {
        // FNV-1a's published vectors.
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
        // Pinned: a change here moves every consistent-hash key.
        assert_eq!(stable_hash(&[b"a"]), 0x82a2_a958_a9be_ce5b);
    }

    #[test]
    fn header_cookie_and_ip_keys() {
        let req = MapRequest::new()
            .header("x-user", "alice")
            .header("cookie", "sid=42");
        let h = HashPolicy::Header("x-user".into());
        let k = h.hash_key(&req, None).unwrap();
        assert_eq!(k, stable_hash(&[b"x-user:alice"]));
        assert_ne!(
            k,
            h.hash_key(&MapRequest::new().header("x-user", "bob"), None)
                .unwrap()
        );
        assert_eq!(h.hash_key(&MapRequest::new(), None), None);

        let c = HashPolicy::Cookie {
            name: "sid".into(),
            path: None,
            ttl: None,
        };
        assert_eq!(c.hash_key(&req, None), Some(stable_hash(&[b"sid=42"])));

        let ip = HashPolicy::SourceIp;
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(ip.hash_key(&req, Some(v4)), ip.hash_key(&req, Some(mapped)));
        assert_ne!(
            ip.hash_key(&req, Some(v4)),
            ip.hash_key(&req, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
        );
        assert_eq!(ip.hash_key(&req, None), None);
    }
}
