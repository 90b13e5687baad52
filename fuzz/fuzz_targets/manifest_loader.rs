//! Fuzzes the manifest loader with arbitrary bytes, and every object it yields through the posture
//! scanner. Properties: no panic, bounded time and memory (alias expansion and nesting are capped),
//! and every loaded object written back as YAML loads to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_k8s::{Loaded, load_str};
use palisade_posture::{Origin, ScanConfig, Scanner};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut scanner = Scanner::new(ScanConfig::default());
    let origin = Origin::default();
    load_str(text, "fuzz.yaml", |loaded| {
        if let Loaded::Object(obj) = loaded {
            let _ = scanner.scan(&obj.value, &origin);
            let yaml = palisade_k8s::emit::to_yaml(&obj.value);
            let back = palisade_k8s::parse_documents(&yaml).expect("emitted YAML must load");
            assert_eq!(back, vec![obj.value], "round trip through the emitter");
        }
    });
    let _ = scanner.finish();
});
