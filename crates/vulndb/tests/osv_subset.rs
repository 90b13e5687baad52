//! Imports the shared OSV subset (the advisories for the packages planted in the test images) and
//! checks that the planted versions match exactly the advisories the data says they should, and
//! that fixed versions match none.

use palisade_core::Severity;
use palisade_vulndb::{Database, ImportLimits, PackageRef, import};
use std::path::PathBuf;

fn shared_osv() -> Option<PathBuf> {
    let shared = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let osv = shared.join("data/osv");
    if osv.is_dir() {
        Some(osv)
    } else {
        eprintln!(
            "\n*** SKIPPED: {} not found (set PALISADE_SHARED) ***\n",
            osv.display()
        );
        None
    }
}

fn ids(db: &Database, ecosystem: &str, name: &str, version: &str) -> Vec<String> {
    let lookup = db.lookup(&PackageRef::new(ecosystem, name, version)).unwrap();
    assert!(
        lookup.unevaluated.is_empty(),
        "{ecosystem}/{name}@{version}: {:?}",
        lookup.unevaluated
    );
    lookup.matches.into_iter().map(|m| m.id).collect()
}

#[test]
fn planted_packages_match_the_expected_advisories() {
    let Some(osv) = shared_osv() else { return };
    let dir = std::env::temp_dir().join(format!("palisade-vulndb-subset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db_path = dir.join("vulndb.redb");
    let started = std::time::Instant::now();
    let report = import(&osv, &db_path, ImportLimits::default()).unwrap();
    eprintln!(
        "imported {} advisories in {:?}, {} bytes: {:?}",
        report.advisories,
        started.elapsed(),
        report.size_bytes,
        report.per_ecosystem
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.advisories, 246);
    assert_eq!(report.ignored, 2, "SOURCES.md and LICENSES.md");
    for (ecosystem, count) in [
        ("Go", 203),
        ("PyPI", 28),
        ("crates.io", 8),
        ("npm", 6),
        ("Maven", 1),
    ] {
        assert_eq!(report.per_ecosystem.get(ecosystem), Some(&count), "{ecosystem}");
    }

    let db = Database::open(&db_path).unwrap();
    assert!(db.verify().unwrap());

    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("PyPI", "Jinja2", "2.10", &["PYSEC-2019-217", "PYSEC-2021-66"]),
        ("PyPI", "PyYAML", "5.3", &["PYSEC-2020-96", "PYSEC-2021-142"]),
        ("PyPI", "requests", "2.19.1", &["PYSEC-2018-28", "PYSEC-2023-74"]),
        (
            "PyPI",
            "urllib3",
            "1.24.1",
            &[
                "PYSEC-2019-132",
                "PYSEC-2019-133",
                "PYSEC-2020-148",
                "PYSEC-2021-108",
                "PYSEC-2023-192",
                "PYSEC-2023-207",
                "PYSEC-2023-212",
            ],
        ),
        (
            "npm",
            "lodash",
            "4.17.15",
            &[
                "GHSA-29mw-wpgm-hmr9",
                "GHSA-35jh-r3h4-6jhm",
                "GHSA-p6mc-m468-83gw",
            ],
        ),
        (
            "npm",
            "minimist",
            "1.2.0",
            &["GHSA-vh95-rmgr-6w4m", "GHSA-xvch-5gv4-984h"],
        ),
        ("crates.io", "smallvec", "1.6.0", &["RUSTSEC-2021-0003"]),
        ("crates.io", "time", "0.1.43", &["RUSTSEC-2020-0071"]),
        ("crates.io", "regex", "1.5.4", &["RUSTSEC-2022-0013"]),
        (
            "Go",
            "golang.org/x/text",
            "v0.3.5",
            &["GO-2021-0113", "GO-2022-1059", "GO-2026-5970"],
        ),
        (
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            &["GHSA-jfh8-c2jp-5v3q"],
        ),
        // Fixed versions match nothing.
        ("PyPI", "jinja2", "3.1.4", &[]),
        ("npm", "lodash", "4.17.21", &[]),
        ("npm", "minimist", "1.2.8", &[]),
        ("crates.io", "smallvec", "1.6.1", &[]),
        ("crates.io", "regex", "1.5.5", &[]),
        ("Go", "golang.org/x/text", "v0.39.0", &[]),
        ("Maven", "org.apache.logging.log4j:log4j-core", "2.12.2", &[]),
        ("Maven", "org.apache.logging.log4j:log4j-core", "2.17.1", &[]),
    ];
    for (ecosystem, name, version, want) in cases {
        assert_eq!(
            ids(&db, ecosystem, name, version),
            *want,
            "{ecosystem}/{name}@{version}"
        );
    }

    let log4shell = db
        .lookup(&PackageRef::new(
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
        ))
        .unwrap();
    let m = &log4shell.matches[0];
    assert_eq!(m.aliases, vec!["CVE-2021-44228"]);
    assert_eq!(m.severity, Some(Severity::Critical));
    assert_eq!(m.cvss.as_ref().and_then(|c| c.score), Some(10.0));
    assert_eq!(m.fixed_versions, vec!["2.15.0"]);

    let time = db
        .lookup(&PackageRef::new("crates.io", "time", "0.1.43"))
        .unwrap();
    assert_eq!(time.matches[0].cvss.as_ref().and_then(|c| c.score), Some(6.2));
    assert_eq!(time.matches[0].fixed_versions, vec!["0.2.0"]);

    // The Go standard library as a binary's build info reports it.
    let stdlib = ids(&db, "Go", "stdlib", "go1.19.1");
    assert!(stdlib.len() > 20, "{stdlib:?}");
    assert!(
        ids(&db, "Go", "stdlib", "go1.19.1")
            .iter()
            .all(|id| id.starts_with("GO-"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
