//! The proxy's request-framing guard over arbitrary client bytes, split at an arbitrary point:
//! no panic, no unbounded growth, the same verdicts whichever way the bytes are split, and what it
//! passes on to hyper is the input itself whenever no head was rewritten or held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_proxy::framing::{FramingGuard, FramingLimits, HeadVerdict};

fn run(parts: &[&[u8]]) -> (Vec<HeadVerdict>, Option<&'static str>, Vec<u8>) {
    let limits = FramingLimits {
        max_header_bytes: 2048,
        max_headers: 16,
    };
    let mut guard = FramingGuard::new(limits);
    let mut out = Vec::new();
    for part in parts {
        guard.feed(part, &mut out);
    }
    let mut verdicts = Vec::new();
    while let Some(v) = guard.take_verdict() {
        verdicts.push(v);
    }
    (verdicts, guard.body_refusal().map(|r| r.reason), out)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % data.len();
    let input = &data[1..];
    let split = split.min(input.len());
    let whole = run(&[input]);
    let halves = run(&[&input[..split], &input[split..]]);
    assert_eq!(whole.0, halves.0, "verdicts depend on how the bytes were split");
    assert_eq!(whole.1, halves.1);
    assert_eq!(whole.2, halves.2, "what hyper reads depends on how the bytes were split");
    // Output never exceeds input by more than the percent-encoding of targets (3x).
    assert!(whole.2.len() <= input.len() * 3);
});
