//! Virtual host selection: MOSN's domain priorities as a table.

use meshgate_router::{MapRequest, RouteRequest, RouteTable, RouterConfig};
use serde_json::json;

/// One virtual host per domain, each routing everything to a cluster
/// named after its domain.
fn table(domains: &[&str]) -> RouteTable {
    let hosts: Vec<_> = domains
        .iter()
        .map(|d| {
            json!({"name": d, "domains": [d],
                   "routers": [{"route": {"cluster_name": d}}]})
        })
        .collect();
    let cfg: RouterConfig =
        serde_json::from_value(json!({"virtual_hosts": hosts})).expect("a router config");
    RouteTable::build(&cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn host_for(t: &RouteTable, authority: Option<&str>) -> Option<String> {
    t.virtual_host(authority).map(|vh| vh.name().to_owned())
}

#[test]
fn priority_table() {
    let t = table(&[
        "*",
        "*.foo.com",
        "*-bar.foo.com",
        "www.foo.com",
        "www.foo.com:8080",
        "api.foo.com:*",
        "*.foo.com:9090",
        "*.net:*",
        "*:7070",
    ]);
    let cases: &[(Option<&str>, &str)] = &[
        // 1. exact host, exact port (no port matches no port)
        (Some("www.foo.com"), "www.foo.com"),
        (Some("www.foo.com:8080"), "www.foo.com:8080"),
        (Some("WWW.Foo.Com"), "www.foo.com"),
        // 2. exact host, any port
        (Some("api.foo.com:1234"), "api.foo.com:*"),
        (Some("api.foo.com"), "api.foo.com:*"),
        // 3. wildcard, exact port (longest suffix first)
        (Some("x.foo.com"), "*.foo.com"),
        (Some("foo-bar.foo.com"), "*-bar.foo.com"),
        (Some("a.b-bar.foo.com"), "*-bar.foo.com"),
        (Some("x.foo.com:9090"), "*.foo.com:9090"),
        (Some("anything:7070"), "*:7070"),
        // 4. wildcard, any port
        (Some("x.net:1"), "*.net:*"),
        (Some("x.net"), "*.net:*"),
        // 5. default
        (Some("www.foo.com:9999"), "*"), // a port-less domain misses a ported authority
        (Some("x.foo.com:1234"), "*"),
        (Some(".foo.com"), "*"), // a wildcard needs a character before its suffix
        (Some("foo.com"), "*"),
        (Some("example.org"), "*"),
        (None, "*"),
        (Some(""), "*"),
    ];
    for (authority, want) in cases {
        assert_eq!(
            host_for(&t, *authority).as_deref(),
            Some(*want),
            "{authority:?}"
        );
    }
    // An authority Go cannot split finds no host (MOSN: no route).
    assert_eq!(host_for(&t, Some("a:b:c")), None);
    assert_eq!(
        host_for(&t, Some("[::1]:8080")),
        Some("*".into()),
        "IPv6 literal authorities parse"
    );
}

#[test]
fn without_default_unknown_hosts_find_nothing() {
    let t = table(&["www.foo.com", "*.bar.com"]);
    assert_eq!(
        host_for(&t, Some("www.foo.com")).as_deref(),
        Some("www.foo.com")
    );
    assert_eq!(
        host_for(&t, Some("x.bar.com")).as_deref(),
        Some("*.bar.com")
    );
    assert_eq!(host_for(&t, Some("example.org")), None);
    assert_eq!(host_for(&t, None), None);
    assert!(
        t.route(&MapRequest::new().authority("example.org"))
            .is_none()
    );
}

#[test]
fn a_lone_default_host_takes_every_authority() {
    // MOSN's shortcut: with only `*`, the authority is not even parsed.
    let t = table(&["*"]);
    for a in [None, Some("x"), Some("a:b:c"), Some("[broken")] {
        assert_eq!(host_for(&t, a).as_deref(), Some("*"), "{a:?}");
    }
    let t = table(&["*:*"]);
    assert_eq!(host_for(&t, Some("x:1")).as_deref(), Some("*:*"));
}

#[test]
fn one_host_may_list_many_domains() {
    let cfg: RouterConfig = serde_json::from_value(json!({"virtual_hosts": [
        {"name": "both", "domains": ["a.com", "*.b.com"], "routers": [{"route": {"cluster_name": "c"}}]},
        {"name": "rest", "domains": ["*"], "routers": [{"route": {"cluster_name": "d"}}]}
    ]}))
    .unwrap();
    let t = RouteTable::build(&cfg).unwrap();
    assert_eq!(host_for(&t, Some("a.com")).as_deref(), Some("both"));
    assert_eq!(host_for(&t, Some("x.b.com")).as_deref(), Some("both"));
    assert_eq!(host_for(&t, Some("b.com")).as_deref(), Some("rest"));
}

/// A request that counts how often its authority is read.
struct CountingRequest {
    inner: MapRequest,
    authority_reads: std::cell::Cell<u32>,
}

impl RouteRequest for CountingRequest {
    fn header(&self, name: &str) -> Option<&str> {
        RouteRequest::header(&self.inner, name)
    }
    fn authority(&self) -> Option<&str> {
        self.authority_reads.set(self.authority_reads.get() + 1);
        RouteRequest::authority(&self.inner)
    }
    fn path(&self) -> Option<&str> {
        RouteRequest::path(&self.inner)
    }
    fn method(&self) -> Option<&str> {
        RouteRequest::method(&self.inner)
    }
}

#[test]
fn the_authority_is_read_only_when_a_domain_could_match_it() {
    let request = || CountingRequest {
        inner: MapRequest::new().authority("www.foo.com").path("/"),
        authority_reads: std::cell::Cell::new(0),
    };
    let only_default = request();
    let default_table = table(&["*"]);
    let matched = default_table
        .select(&only_default)
        .expect("the default host");
    assert_eq!(matched.virtual_host.name(), "*");
    assert_eq!(only_default.authority_reads.get(), 0);
    let named = request();
    let named_table = table(&["*", "www.foo.com"]);
    let matched = named_table.select(&named).expect("a host");
    assert_eq!(matched.virtual_host.name(), "www.foo.com");
    assert_eq!(named.authority_reads.get(), 1);
}
