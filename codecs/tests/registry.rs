//! The protocol registry and detection: one `Auto` listener tells bolt v1,
//! bolt v2, Dubbo, HTTP/1 and HTTP/2 apart, in the configured order, with a
//! bounded wait.

use bytes::BytesMut;
use meshgate_codecs::{
    CodecError, Detect, Detection, Frame, FrameCodec, Limits, Registry, RegistryError, ReplyStatus,
};
use meshgate_test_support::vectors;
use std::sync::Arc;

/// The registry name a vector's `protocol` field corresponds to.
fn registry_name(protocol: &str) -> Option<&'static str> {
    Some(match protocol {
        "bolt" => "bolt",
        "boltv2" => "boltv2",
        "dubbo" => "dubbo",
        "http1" => "Http1",
        "http2" => "Http2",
        _ => return None,
    })
}

fn detected(set: &meshgate_codecs::ProtocolSet, bytes: &[u8]) -> Option<String> {
    match set.detect(bytes) {
        Detection::Match(p) => Some(p.name().to_owned()),
        _ => None,
    }
}

#[test]
fn builtin_names_in_order() {
    let names: Vec<_> = Registry::builtin().names().map(str::to_owned).collect();
    assert_eq!(names, ["bolt", "boltv2", "dubbo", "Http1", "Http2"]);
}

#[test]
fn auto_tells_every_builtin_protocol_apart() {
    let registry = Registry::builtin();
    let auto = registry.select("Auto").unwrap();
    let mut checked = 0;
    for v in vectors::all()
        .iter()
        .filter(|v| !v.file.starts_with("tricky/"))
    {
        let Some(want) = registry_name(&v.protocol) else {
            continue;
        };
        if v.file == "http/http1_response_200_node.bin" {
            // A response is never the first thing a client sends.
            assert_eq!(detected(&auto, &v.bytes), None, "{}", v.file);
            continue;
        }
        assert_eq!(
            detected(&auto, &v.bytes).as_deref(),
            Some(want),
            "{}",
            v.file
        );
        // Fed byte by byte, detection waits, then matches the same protocol;
        // it never commits to another one on the way.
        for len in 0..v.bytes.len() {
            match auto.detect(&v.bytes[..len]) {
                Detection::NeedMore => {}
                Detection::Match(p) => {
                    assert_eq!(p.name(), want, "{} at {len} bytes", v.file);
                    break;
                }
                Detection::NoMatch => panic!("{}: no match at {len} bytes", v.file),
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} vectors checked");
}

#[test]
fn tricky_prefixes() {
    let registry = Registry::builtin();
    let auto = registry.select("Auto").unwrap();
    let outcome = |file: &str| match auto.detect(&vectors::read(file)) {
        Detection::Match(p) => p.name().to_owned(),
        Detection::NeedMore => "need_more".to_owned(),
        Detection::NoMatch => "no_match".to_owned(),
    };
    assert_eq!(outcome("tricky/h2_preface_partial.bin"), "need_more");
    assert_eq!(outcome("tricky/http1_method_partial.bin"), "need_more");
    assert_eq!(outcome("tricky/h2_preface_lookalike.bin"), "no_match");
    assert_eq!(outcome("tricky/dubbo_bad_magic.bin"), "no_match");
    assert_eq!(
        outcome("xprotocol/x_example_request.bin"),
        "no_match",
        "x_example is not built in"
    );
    assert!(matches!(auto.detect(&[0xff; 8]), Detection::NoMatch));
}

#[test]
fn selection_forms() {
    let registry = Registry::builtin();
    let names = |spec: &str| -> Vec<String> {
        registry
            .select(spec)
            .unwrap()
            .protocols()
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    };
    assert_eq!(names("Auto").len(), 5);
    assert_eq!(names("dubbo"), ["dubbo"]);
    assert_eq!(names("Http1,bolt"), ["Http1", "bolt"]);
    assert_eq!(names(" bolt , dubbo ,bolt"), ["bolt", "dubbo"]);
    assert!(registry.select("dubbo").unwrap().single().is_some());
    assert!(registry.select("Auto").unwrap().single().is_none());

    let unknown = registry.select("bolt,thrift").unwrap_err();
    assert!(matches!(&unknown, RegistryError::Unknown { name, .. } if name == "thrift"));
    assert!(
        unknown
            .to_string()
            .contains("registered: bolt, boltv2, dubbo, Http1, Http2"),
        "{unknown}"
    );
    assert!(matches!(
        registry.select(" , "),
        Err(RegistryError::EmptySelection(_))
    ));
    assert!(
        registry.select("http1").is_err(),
        "names are case-sensitive, as in MOSN"
    );

    let bolt_only = registry.select("bolt").unwrap();
    assert_eq!(
        detected(
            &bolt_only,
            &vectors::read("dubbo/request_dubbo_remoting.bin")
        ),
        None
    );
}

/// A user protocol whose detector claims anything starting with `first`.
#[derive(Debug)]
struct Claims {
    name: &'static str,
    first: u8,
}

impl FrameCodec for Claims {
    fn name(&self) -> &str {
        self.name
    }
    fn detect(&self, prefix: &[u8]) -> Detect {
        match prefix.first() {
            None => Detect::NeedMore,
            Some(b) if *b == self.first => Detect::Match,
            Some(_) => Detect::NoMatch,
        }
    }
    fn decode(&self, _: &mut BytesMut, _: &Limits) -> Result<Option<Frame>, CodecError> {
        Ok(None)
    }
    fn encode_fields(&self, _: &Frame, _: &mut BytesMut) -> Result<(), CodecError> {
        Ok(())
    }
    fn set_request_id(&self, frame: &mut Frame, id: u64) {
        frame.request_id = id;
    }
    fn error_reply(&self, _: &Frame, _: ReplyStatus, _: &str) -> Option<Frame> {
        None
    }
}

/// A detector that never makes up its mind.
#[derive(Debug)]
struct Undecided;

impl FrameCodec for Undecided {
    fn name(&self) -> &str {
        "undecided"
    }
    fn detect(&self, _: &[u8]) -> Detect {
        Detect::NeedMore
    }
    fn decode(&self, _: &mut BytesMut, _: &Limits) -> Result<Option<Frame>, CodecError> {
        Ok(None)
    }
    fn encode_fields(&self, _: &Frame, _: &mut BytesMut) -> Result<(), CodecError> {
        Ok(())
    }
    fn set_request_id(&self, _: &mut Frame, _: u64) {}
    fn error_reply(&self, _: &Frame, _: ReplyStatus, _: &str) -> Option<Frame> {
        None
    }
}

#[test]
fn configured_order_decides_between_two_matches() {
    let mut registry = Registry::builtin();
    registry
        .register(Arc::new(Claims {
            name: "mine",
            first: 0x01,
        }))
        .unwrap();
    let bolt_request = vectors::read("bolt/v1_request_hessian2.bin");
    let auto = registry.select("Auto").unwrap();
    assert_eq!(
        detected(&auto, &bolt_request).as_deref(),
        Some("bolt"),
        "registry order: bolt first"
    );
    let mine_first = registry.select("mine,bolt").unwrap();
    assert_eq!(
        detected(&mine_first, &bolt_request).as_deref(),
        Some("mine"),
        "listed order wins"
    );
}

#[test]
fn register_rejects_duplicates_and_reserved_names() {
    let mut registry = Registry::builtin();
    for (name, want) in [
        ("bolt", RegistryError::Duplicate("bolt".into())),
        ("Auto", RegistryError::InvalidName("Auto".into())),
        ("", RegistryError::InvalidName(String::new())),
        ("a,b", RegistryError::InvalidName("a,b".into())),
    ] {
        assert_eq!(
            registry.register(Arc::new(Claims { name, first: 0 })),
            Err(want)
        );
    }
    assert_eq!(registry.names().count(), 5, "nothing was added");
}

#[test]
fn waiting_for_bytes_is_bounded() {
    let mut registry = Registry::empty();
    registry.register(Arc::new(Undecided)).unwrap();
    let set = registry.select("undecided").unwrap();
    let max = meshgate_codecs::ProtocolSet::DETECT_MAX_BYTES;
    assert!(matches!(set.detect(&vec![0; max - 1]), Detection::NeedMore));
    assert!(matches!(set.detect(&vec![0; max]), Detection::NoMatch));
}
