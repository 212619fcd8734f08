#![no_main]
//! Protocol detection over every built-in protocol: never panics, and its
//! answer is consistent with each protocol's own detector.

use libfuzzer_sys::fuzz_target;
use meshgate_codecs::{Detect, Detection, ProtocolSet, Registry};

fuzz_target!(|data: &[u8]| {
    let registry = Registry::builtin();
    let auto = registry.select("Auto").expect("Auto always selects");
    let answers: Vec<Detect> = auto.protocols().iter().map(|p| p.detect(data)).collect();
    match auto.detect(data) {
        Detection::Match(p) => {
            let first = answers.iter().position(|a| *a == Detect::Match).expect("some protocol matched");
            assert_eq!(auto.protocols()[first].name(), p.name(), "the first match wins");
        }
        Detection::NeedMore => {
            assert!(!answers.contains(&Detect::Match));
            assert!(answers.contains(&Detect::NeedMore));
            assert!(data.len() < ProtocolSet::DETECT_MAX_BYTES, "detection waits only so long");
        }
        Detection::NoMatch => assert!(!answers.contains(&Detect::Match)),
    }
});
