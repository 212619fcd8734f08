//! The serde shapes config types use, read through the Go-compatible
//! reader: options, newtypes, enums of each kind, aliases, tuples, maps of
//! structs; and the shapes it cannot see through (flatten, untagged).

use meshgate_gocompat::{GoDuration, Parsed, from_str, from_value};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Default, Deserialize, PartialEq)]
struct Inner {
    max_connections: u32,
    #[serde(default)]
    timeout: Option<GoDuration>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Wrapped(Inner);

#[derive(Debug, Deserialize, PartialEq)]
enum Policy {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "fixed")]
    Fixed(Inner),
    #[serde(rename = "ranged")]
    Ranged { min_weight: u32, max_weight: u32 },
    #[serde(rename = "pair")]
    Pair(u8, u8),
}

#[derive(Debug, Deserialize, PartialEq)]
struct Shapes {
    #[serde(default)]
    optional: Option<Inner>,
    wrapped: Wrapped,
    policies: Vec<Policy>,
    #[serde(alias = "circuitBreakers")]
    circuit_breakers: Vec<Inner>,
    by_name: HashMap<String, Inner>,
    pair: (u16, Inner),
    #[serde(default = "default_retries")]
    retries: u32,
}

fn default_retries() -> u32 {
    3
}

fn read<T: serde::de::DeserializeOwned>(text: &str) -> Parsed<T> {
    match from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn folding_reaches_through_every_shape() {
    let parsed: Parsed<Shapes> = read(
        r#"{
          "OPTIONAL": {"Max_Connections": 1, "TIMEOUT": "2s"},
          "Wrapped": {"MAX_CONNECTIONS": 2},
          "Policies": ["NONE", {"fixed": {"Max_connections": 3}},
                       {"ranged": {"MIN_WEIGHT": 1, "Max_Weight": 9}}, {"pair": [1, 2]}],
          "CircuitBreakers": [{"max_CONNECTIONS": 4}],
          "By_Name": {"Upstream_A": {"MAX_CONNECTIONS": 5, "extra": 1}},
          "PAIR": [7, {"Max_Connections": 6}]
        }"#,
    );
    let v = parsed.value;
    assert_eq!(
        v.optional,
        Some(Inner {
            max_connections: 1,
            timeout: Some(GoDuration(Duration::from_secs(2)))
        })
    );
    assert_eq!(v.wrapped.0.max_connections, 2);
    assert_eq!(
        v.policies,
        [
            Policy::None,
            Policy::Fixed(Inner {
                max_connections: 3,
                timeout: None
            }),
            Policy::Ranged {
                min_weight: 1,
                max_weight: 9
            },
            Policy::Pair(1, 2),
        ]
    );
    // "CircuitBreakers" folds to the alias "circuitBreakers".
    assert_eq!(v.circuit_breakers[0].max_connections, 4);
    // The map key keeps its case; the struct inside it folds.
    assert_eq!(v.by_name["Upstream_A"].max_connections, 5);
    assert!(!v.by_name.contains_key("upstream_a"));
    assert_eq!(v.pair.0, 7);
    assert_eq!(v.pair.1.max_connections, 6);
    assert_eq!(v.retries, 3);
    let paths: Vec<&str> = parsed.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["by_name.Upstream_A.extra"]);
}

#[test]
fn variant_names_are_exact() {
    let e = from_str::<Vec<Policy>>(r#"[{"Fixed": {"max_connections": 1}}]"#).unwrap_err();
    assert_eq!(e.path, "[0]");
    assert!(e.message.contains("unknown variant `Fixed`"), "{e}");
}

#[test]
fn errors_inside_variants_and_tuples_have_paths() {
    let e =
        from_str::<Vec<Policy>>(r#"["NONE", {"ranged": {"min_weight": 1, "max_weight": "x"}}]"#)
            .unwrap_err();
    assert_eq!(e.path, "[1].ranged.max_weight");
    let e = from_str::<(u16, Inner)>(r#"[1, {"max_connections": -1}]"#).unwrap_err();
    assert_eq!(e.path, "[1].max_connections");
    let e = from_str::<Wrapped>(r#"{"timeout": "1s"}"#).unwrap_err();
    assert_eq!(e.to_string(), "missing field `max_connections`");
}

#[test]
fn unknown_keys_inside_variants_and_options_are_reported() {
    let parsed: Parsed<(Option<Inner>, Vec<Policy>)> = read(
        r#"[{"max_connections": 1, "a": 1},
            [{"fixed": {"max_connections": 2, "b": 2}}, {"ranged": {"min_weight": 0, "max_weight": 1, "c": 3}}]]"#,
    );
    let paths: Vec<&str> = parsed.warnings.iter().map(|w| w.path.as_str()).collect();
    // serde_ignored does not record an enum variant in its paths, so the
    // variant's key (`fixed`, `ranged`) is missing; errors have it (above).
    assert_eq!(paths, ["[0].a", "[1][0].b", "[1][1].c"]);
}

#[test]
fn from_value_and_from_str_agree_on_shapes() {
    let v = json!({
        "wrapped": {"max_connections": 1},
        "policies": ["NONE"],
        "circuit_breakers": [],
        "by_name": {},
        "pair": [1, {"max_connections": 2}],
        "Retries": null
    });
    let a: Parsed<Shapes> = from_value(v.clone()).unwrap();
    let b: Parsed<Shapes> = read(&v.to_string());
    assert_eq!(a, b);
    assert_eq!(a.value.retries, 3);
}

#[test]
fn an_exact_name_wins_over_a_folded_one() {
    #[derive(Debug, Deserialize)]
    struct Two {
        #[serde(default, rename = "Name")]
        upper: String,
        #[serde(default)]
        name: String,
    }
    let two: Parsed<Two> = read(r#"{"name": "exact", "Name": "upper"}"#);
    assert_eq!(
        (two.value.name.as_str(), two.value.upper.as_str()),
        ("exact", "upper")
    );
    // Neither exact: the first field in declaration order takes it, as in Go.
    let two: Parsed<Two> = read(r#"{"NAME": "folded"}"#);
    assert_eq!(
        (two.value.name.as_str(), two.value.upper.as_str()),
        ("", "folded")
    );
}

/// `#[serde(flatten)]` makes serde read the struct as a map and buffer it in
/// its own form: keys below it are not folded, and unknown keys below it are
/// not reported. Pinned here so a change is noticed.
#[test]
fn flatten_is_not_seen_through() {
    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default)]
        name: String,
        #[serde(flatten)]
        inner: Inner,
    }
    let parsed: Parsed<Outer> = read(r#"{"name": "n", "max_connections": 1, "zzz": 1}"#);
    assert_eq!(parsed.value.name, "n");
    assert_eq!(parsed.value.inner.max_connections, 1);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let e = from_str::<Outer>(r#"{"NAME": "n", "MAX_CONNECTIONS": 1}"#).unwrap_err();
    assert!(e.message.contains("missing field `max_connections`"), "{e}");
}

/// `#[serde(untagged)]` likewise: the variants' field names are not folded.
#[test]
fn untagged_is_not_seen_through() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Limits(Inner),
        Plain(u32),
    }
    let parsed: Parsed<Vec<Either>> = read(r#"[5, {"max_connections": 1}]"#);
    assert_eq!(parsed.value[0], Either::Plain(5));
    assert!(from_str::<Vec<Either>>(r#"[{"MAX_CONNECTIONS": 1}]"#).is_err());
}
