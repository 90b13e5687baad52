//! Acceptance: OWASP CRS v4.28 as shipped (crs-setup.conf.example, then rules/*.conf) loads with
//! zero errors, and the numbers of rules, chains and markers agree with a grep of the files.

use palisade_waf::{RulesetBuilder, fs::FsLoader};
use std::path::{Path, PathBuf};

fn crs_dir() -> Option<PathBuf> {
    let shared = match std::env::var_os("PALISADE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let crs = shared.join("data/crs");
    if crs.join("rules").is_dir() {
        Some(crs)
    } else {
        eprintln!(
            "\n\n*** SKIPPED: CRS not found at {} (set PALISADE_SHARED) ***\n\n",
            crs.display()
        );
        None
    }
}

/// Counts the way `grep -cE` would over the concatenated files (comment lines excluded).
fn grep_counts(crs: &Path) -> (usize, usize, usize) {
    let mut files = vec![crs.join("crs-setup.conf.example")];
    let mut rules: Vec<PathBuf> = std::fs::read_dir(crs.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    rules.sort();
    files.extend(rules);
    let (mut directives, mut chains, mut markers) = (0, 0, 0);
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let t = line.trim_start();
            if t.starts_with('#') {
                continue;
            }
            if t.starts_with("SecRule ") || t.starts_with("SecAction") {
                directives += 1;
            }
            if t.starts_with("SecMarker") {
                markers += 1;
            }
            chains += t
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| *w == "chain")
                .count();
        }
    }
    (directives, chains, markers)
}

#[test]
fn crs_loads_with_zero_errors_and_expected_counts() {
    let Some(crs) = crs_dir() else { return };
    let top = format!(
        "Include {}\nInclude {}\n",
        crs.join("crs-setup.conf.example").display(),
        crs.join("rules/*.conf").display()
    );
    let started = std::time::Instant::now();
    let mut b = RulesetBuilder::new();
    b.add("crs-test.conf", &top, &mut FsLoader)
        .unwrap_or_else(|e| panic!("CRS failed to load: {e}"));
    let rs = b.build().unwrap();
    eprintln!("CRS loaded in {:?}", started.elapsed());
    let (directives, chains, markers) = grep_counts(&crs);
    assert_eq!(rs.chained_rule_count(), chains, "chained rules");
    assert_eq!(
        rs.rule_count() + rs.chained_rule_count(),
        directives,
        "SecRule + SecAction directives"
    );
    assert_eq!(rs.marker_count(), markers);
    // Every id is unique.
    let mut ids = rs.rule_ids();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
    assert!(
        rs.config()
            .component_signatures
            .iter()
            .any(|s| s.contains("OWASP_CRS"))
    );
}

#[test]
fn load_errors_name_file_line_and_directive() {
    let Some(crs) = crs_dir() else { return };
    let top = format!(
        "Include {}\nSecRule ARGS \"@pmFromFile nope.data\" \"id:1\"\n",
        crs.join("crs-setup.conf.example").display()
    );
    let e = RulesetBuilder::new()
        .add("top.conf", &top, &mut FsLoader)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("top.conf:2: SecRule:") && e.contains("nope.data") && e.contains("[waf.operator]"),
        "{e}"
    );
}

/// CRS as a user deploys it (blocking, paranoia level 1): attacks are denied by the anomaly
/// threshold (949110) with 403, ordinary traffic passes with no rule logged.
#[test]
fn crs_blocks_attacks_and_passes_benign_requests() {
    let Some(crs) = crs_dir() else { return };
    let top = format!(
        "SecRuleEngine On\nSecRequestBodyAccess On\nSecDefaultAction \"phase:1,log,auditlog,deny,status:403\"\nSecDefaultAction \"phase:2,log,auditlog,deny,status:403\"\nInclude {}\nInclude {}\n",
        crs.join("crs-setup.conf.example").display(),
        crs.join("rules/*.conf").display()
    );
    let mut b = RulesetBuilder::new();
    b.add("crs-blocking.conf", &top, &mut FsLoader).unwrap();
    let rs = b.build().unwrap();
    let run = |uri: &str, body: Option<&str>| {
        let mut tx = rs.transaction();
        tx.set_connection("198.51.100.4", 40000, "198.51.100.1", 443);
        tx.set_request_line(
            if body.is_some() { b"POST" } else { b"GET" },
            uri.as_bytes(),
            b"HTTP/1.1",
        );
        for (k, v) in [
            ("Host", "shop.example"),
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
            ("Accept", "text/html"),
        ] {
            tx.add_request_header(k.as_bytes(), v.as_bytes());
        }
        if let Some(b) = body {
            tx.add_request_header(b"Content-Type", b"application/x-www-form-urlencoded");
            tx.add_request_header(b"Content-Length", b.len().to_string().as_bytes());
        }
        tx.process_request_headers();
        if let Some(b) = body {
            tx.append_request_body(b.as_bytes()).unwrap();
        }
        tx.process_request_body();
        tx.process_logging();
        let ids: Vec<u64> = tx
            .matched_rules()
            .iter()
            .filter(|m| m.log)
            .map(|m| m.id)
            .collect();
        (tx.intervention().map(|i| (i.status, i.rule_id)), ids)
    };
    assert_eq!(run("/products?id=42&sort=price", None), (None, vec![]));
    assert_eq!(run("/login", Some("user=alice&password=hunter2")), (None, vec![]));
    let (verdict, ids) = run(
        "/products?id=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        None,
    );
    assert_eq!(verdict, Some((403, 949110)), "{ids:?}");
    assert!(ids.contains(&942100), "{ids:?}");
    let (verdict, ids) = run("/comment", Some("text=%3Cscript%3Ealert(1)%3C%2Fscript%3E"));
    assert_eq!(verdict, Some((403, 949110)), "{ids:?}");
    assert!(ids.contains(&941100), "{ids:?}");
    let (verdict, _) = run("/files?path=../../../../etc/passwd", None);
    assert_eq!(verdict.map(|v| v.0), Some(403));
}
