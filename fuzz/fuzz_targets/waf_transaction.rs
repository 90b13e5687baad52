//! Fuzzes a transaction (URI, headers, body through every body processor) against rules that touch
//! every collection and transformation. Properties: no panic, bounded time and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::Ruleset;
use std::sync::OnceLock;

const RULES: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^text/xml" "id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|REQUEST_HEADERS|FILES|FILES_NAMES|MULTIPART_PART_HEADERS|XML:/*|XML://@*|REQUEST_FILENAME|REQUEST_BASENAME|QUERY_STRING|REQUEST_BODY "@rx (?i)<script|union\s+select" "id:3,phase:2,pass,log,multiMatch,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:jsDecode,t:cssDecode,t:cmdLine,t:normalizePathWin,t:base64DecodeExt,t:hexDecode,t:utf8toUnicode,t:escapeSeqDecode,t:removeComments,t:replaceComments,t:compressWhitespace,t:lowercase"
SecRule ARGS "@detectSQLi" "id:4,phase:2,pass,log"
SecRule ARGS "@detectXSS" "id:5,phase:2,pass,log"
SecRule REQBODY_ERROR|MULTIPART_STRICT_ERROR "!@eq 0" "id:6,phase:2,pass,log"
SecRule REQUEST_URI "@validateUrlEncoding" "id:7,phase:1,pass,log"
SecRule ARGS "@validateUtf8Encoding" "id:8,phase:2,pass,log"
"#;

fuzz_target!(|data: &[u8]| {
    static RS: OnceLock<Ruleset> = OnceLock::new();
    let rs = RS.get_or_init(|| Ruleset::parse(RULES).expect("fuzz rules load"));
    // Layout: first byte picks the content type, then URI \0 cookie \0 body.
    let Some((&kind, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |&c| c == 0);
    let uri = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let ct: &[u8] = match kind % 4 {
        0 => b"application/x-www-form-urlencoded",
        1 => b"multipart/form-data; boundary=b",
        2 => b"application/json",
        _ => b"text/xml",
    };
    let mut tx = rs.transaction();
    tx.set_request_line(b"POST", uri, b"HTTP/1.1");
    tx.add_request_header(b"Content-Type", ct);
    tx.add_request_header(b"Cookie", cookie);
    tx.process_request_headers();
    let _ = tx.append_request_body(body);
    tx.process_request_body();
    tx.process_logging();
});
