//! Fuzzes the SecLang parser and compiler with arbitrary text. Properties: no panic; bounded time
//! and memory (regex size limits, no includes without a loader); a rule set that loads can run a
//! request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::Ruleset;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rs) = Ruleset::parse(text) {
        let mut tx = rs.transaction();
        tx.set_request_line(b"GET", b"/a?b=c", b"HTTP/1.1");
        tx.add_request_header(b"Host", b"x");
        tx.process_request_headers();
        tx.process_logging();
    }
});
