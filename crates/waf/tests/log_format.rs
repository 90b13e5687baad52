//! The ModSecurity-style error-log line is an output users parse (go-ftw, log pipelines): golden
//! file, `PALISADE_BLESS=1` rewrites it.

use palisade_waf::{Ruleset, format_error_log};
use std::path::Path;

#[test]
fn error_log_line_matches_golden_file() {
    let rs = Ruleset::parse(
        r#"
SecRuleEngine On
SecRule ARGS "@rx (?i)union\s+select" "id:942100,phase:1,block,capture,t:none,t:urlDecodeUni,msg:'SQL Injection Attack Detected via libinjection',logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}',tag:'application-multi',tag:'attack-sqli',tag:'paranoia-level/1',ver:'OWASP_CRS/4.28.0',severity:'CRITICAL',rev:'1'"
SecRule ARGS:q "@contains SELECT" "id:949110,phase:1,deny,status:403,log,msg:'Inbound Anomaly Score Exceeded (Total Score: 5)',tag:'anomaly-evaluation'"
"#,
    )
    .unwrap();
    let mut tx = rs.transaction();
    tx.set_unique_id("aGVsbG8");
    tx.set_connection("192.0.2.7", 41000, "192.0.2.1", 80);
    tx.set_request_line(b"GET", b"/search?q=1%20UNION%20SELECT%20%22x%22", b"HTTP/1.1");
    tx.add_request_header(b"Host", b"shop.example");
    tx.process_request_headers();
    // The rule file name of an inline rule set is fixed, so the whole output is stable.
    let mut line = String::new();
    for m in tx.matched_rules() {
        line.push_str(&format_error_log(
            m,
            tx.client_addr(),
            tx.server_name(),
            &tx.request_uri(),
            tx.unique_id(),
        ));
        line.push('\n');
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/error_log.txt");
    if std::env::var_os("PALISADE_BLESS").is_some() {
        std::fs::write(&golden, &line).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("missing {}; run with PALISADE_BLESS=1", golden.display()));
    assert_eq!(line, want, "review and rerun with PALISADE_BLESS=1");
    // The ids a log scraper reads.
    assert!(line.contains(r#"[id "942100"]"#) && line.contains(r#"[severity "CRITICAL"]"#));
    assert!(line.contains("Access denied with code 403 (phase 1)."));
}
