//! Fuzzes the secret engine with arbitrary bytes. Properties: no panic, matches inside the input
//! with sane lines and columns, redaction never longer than 4 shown characters, and no secret
//! detected in the input detected again in redact_text's output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_secrets::{ScanOptions, scanner};

fuzz_target!(|data: &[u8]| {
    let s = scanner().expect("built-in patterns compile");
    let opts = ScanOptions {
        max_bytes: 64 << 10,
        max_matches: 20,
    };
    let result = s.scan(data, &opts);
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    for m in &result.matches {
        assert!(m.line >= 1 && m.line <= lines && m.column >= 1);
        assert!(m.redacted.trim_end_matches('*').chars().count() <= 4);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let all = ScanOptions {
            max_matches: usize::MAX,
            ..ScanOptions::default()
        };
        let before: Vec<String> = s.scan(data, &all).matches.into_iter().map(|m| m.fingerprint).collect();
        let redacted = s.redact_text(text);
        for m in s.scan(redacted.as_bytes(), &all).matches {
            assert!(!before.contains(&m.fingerprint), "{} survived redaction", m.rule.id);
        }
    }
});
