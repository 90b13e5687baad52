use super::*;
use serde_json::json;

fn advisory(value: serde_json::Value) -> Advisory {
    Advisory::from_json(value.to_string().as_bytes(), "test.json").unwrap()
}

fn range_advisory(ecosystem: &str, name: &str, kind: &str, events: serde_json::Value) -> Advisory {
    advisory(json!({
        "id": "TEST-1",
        "aliases": ["CVE-2099-0001"],
        "summary": "test",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                      "ranges": [{"type": kind, "events": events}]}]
    }))
}

fn hit(a: &Advisory, ecosystem: &str, name: &str, version: &str) -> Option<VulnMatch> {
    match_advisory(a, &PackageRef::new(ecosystem, name, version)).unwrap()
}

fn affected(a: &Advisory, ecosystem: &str, name: &str, version: &str) -> bool {
    hit(a, ecosystem, name, version).is_some()
}

#[test]
fn introduced_zero_and_fixed() {
    let a = range_advisory(
        "PyPI",
        "jinja2",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "2.11.3"}]),
    );
    let m = hit(&a, "PyPI", "jinja2", "2.11.2").unwrap();
    assert_eq!(m.fixed_versions, vec!["2.11.3"]);
    assert_eq!(m.aliases, vec!["CVE-2099-0001"]);
    assert!(affected(&a, "PyPI", "Jinja2", "0.1"));
    assert!(affected(&a, "PyPI", "jinja2", "2.11.3rc1"));
    assert!(!affected(&a, "PyPI", "jinja2", "2.11.3"));
    assert!(!affected(&a, "PyPI", "jinja2", "3.1.4"));
    assert!(!affected(&a, "PyPI", "markupsafe", "1.0"));
    assert!(!affected(&a, "npm", "jinja2", "1.0.0"));
}

#[test]
fn last_affected_is_inclusive() {
    let a = range_advisory(
        "npm",
        "x",
        "SEMVER",
        json!([{"introduced": "1.0.0"}, {"last_affected": "1.5.0"}]),
    );
    assert!(!affected(&a, "npm", "x", "0.9.9"));
    assert!(affected(&a, "npm", "x", "1.0.0"));
    assert!(affected(&a, "npm", "x", "1.5.0"));
    assert!(!affected(&a, "npm", "x", "1.5.1"));
    assert!(
        affected(&a, "npm", "x", "1.5.0-0"),
        "a pre-release of 1.5.0 is below it"
    );
    assert_eq!(
        hit(&a, "npm", "x", "1.2.0").unwrap().fixed_versions,
        Vec::<String>::new()
    );
}

#[test]
fn events_are_sorted_by_the_ecosystem_order_not_by_position() {
    // Two affected spans written out of order; Maven order puts 2.4 after 2.3.1.
    let a = range_advisory(
        "Maven",
        "org.example:lib",
        "ECOSYSTEM",
        json!([{"introduced": "2.4"}, {"fixed": "2.12.2"}, {"introduced": "0"}, {"fixed": "2.3.1"}]),
    );
    for (v, want) in [
        ("2.0", true),
        ("2.3", true),
        ("2.3.1", false),
        ("2.3.2", false),
        ("2.4", true),
        ("2.12.1", true),
        ("2.12.2", false),
        ("2.14.1", false),
    ] {
        assert_eq!(affected(&a, "Maven", "org.example:lib", v), want, "{v}");
    }
    assert_eq!(
        hit(&a, "Maven", "org.example:lib", "2.2").unwrap().fixed_versions,
        vec!["2.3.1"]
    );
    assert_eq!(
        hit(&a, "Maven", "org.example:lib", "2.5").unwrap().fixed_versions,
        vec!["2.12.2"]
    );
}

#[test]
fn limit_bounds_the_range() {
    let a = range_advisory(
        "crates.io",
        "c",
        "SEMVER",
        json!([{"introduced": "0"}, {"limit": "2.0.0"}]),
    );
    assert!(affected(&a, "crates.io", "c", "1.9.9"));
    assert!(!affected(&a, "crates.io", "c", "2.0.0"));
    assert!(!affected(&a, "crates.io", "c", "3.0.0"));
    let star = range_advisory(
        "crates.io",
        "c",
        "SEMVER",
        json!([{"introduced": "1.0.0"}, {"limit": "*"}]),
    );
    assert!(affected(&star, "crates.io", "c", "9.0.0"));
}

#[test]
fn introduced_and_fixed_at_one_version_affects_nothing() {
    let a = range_advisory(
        "npm",
        "x",
        "SEMVER",
        json!([{"introduced": "1.0.0"}, {"fixed": "1.0.0"}]),
    );
    assert!(!affected(&a, "npm", "x", "1.0.0"));
}

#[test]
fn rustsec_style_prerelease_bounds() {
    let a = range_advisory(
        "crates.io",
        "time",
        "SEMVER",
        json!([{"introduced": "0.0.0-0"}, {"fixed": "0.2.0"}, {"introduced": "0.2.7-0"}, {"fixed": "0.2.23"}]),
    );
    assert!(affected(&a, "crates.io", "time", "0.1.45"));
    assert!(!affected(&a, "crates.io", "time", "0.2.6"));
    assert!(affected(&a, "crates.io", "time", "0.2.22"));
    assert!(!affected(&a, "crates.io", "time", "0.3.36"));
    assert!(affected(&a, "crates.io", "Time", "0.2.7"));
}

#[test]
fn versions_list_matches_exactly_and_by_normalised_equality() {
    let a = advisory(
        json!({"id": "PYSEC-X", "affected": [{"package": {"ecosystem": "PyPI", "name": "PyYAML"},
        "versions": ["5.3", "5.4b1", "2.0rc1"]}]}),
    );
    assert!(affected(&a, "PyPI", "pyyaml", "5.3"));
    assert!(!affected(&a, "PyPI", "py_yaml", "5.3"), "py-yaml is another name");
    assert!(affected(&a, "PyPI", "pyyaml", "5.3.0"));
    assert!(affected(&a, "PyPI", "pyyaml", "2.0RC1"));
    assert!(!affected(&a, "PyPI", "pyyaml", "5.4"));
}

#[test]
fn withdrawn_advisories_never_match() {
    let a = advisory(
        json!({"id": "GHSA-W", "withdrawn": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "npm", "name": "x"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
    );
    assert!(!affected(&a, "npm", "x", "1.0.0"));
}

#[test]
fn go_modules_and_stdlib() {
    let a = range_advisory(
        "Go",
        "golang.org/x/text",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "0.3.8"}]),
    );
    assert!(affected(&a, "Go", "golang.org/x/text", "v0.3.7"));
    assert!(affected(
        &a,
        "Go",
        "golang.org/x/text",
        "v0.0.0-20191109021931-daa7c04131f5"
    ));
    assert!(!affected(&a, "Go", "golang.org/x/text", "v0.3.8"));
    assert!(
        !affected(&a, "Go", "golang.org/X/text", "v0.3.7"),
        "Go module paths are case-sensitive"
    );
    let std = range_advisory(
        "Go",
        "stdlib",
        "SEMVER",
        json!([{"introduced": "1.21.0-0"}, {"fixed": "1.21.11"}]),
    );
    assert!(affected(&std, "Go", "stdlib", "go1.21.0"));
    assert!(affected(&std, "Go", "stdlib", "go1.21rc2"));
    assert!(!affected(&std, "Go", "stdlib", "go1.20.14"));
    assert!(!affected(&std, "Go", "stdlib", "go1.21.11"));
}

#[test]
fn distro_releases_and_source_names() {
    let a = range_advisory(
        "Debian:13",
        "openssl",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "3.5.1-1"}]),
    );
    assert!(affected(&a, "Debian:13", "openssl", "3.5.0-2"));
    assert!(!affected(&a, "Debian:13", "openssl", "3.5.1-1"));
    assert!(!affected(&a, "Debian:12", "openssl", "3.0.11-1~deb12u2"));
    assert!(
        affected(&a, "Debian", "openssl", "3.0.0-1"),
        "unknown release: compared with every release"
    );
    let binary = PackageRef {
        source_name: Some("openssl".into()),
        ..PackageRef::new("Debian:13", "libssl3t64", "3.5.0-2")
    };
    assert!(match_advisory(&a, &binary).unwrap().is_some());
    assert!(!affected(&a, "Debian:13", "libssl3t64", "3.5.0-2"));

    let alpine = range_advisory(
        "Alpine:v3.20",
        "busybox",
        "ECOSYSTEM",
        json!([{"introduced": "0"}, {"fixed": "1.36.1-r29"}]),
    );
    assert!(affected(&alpine, "Alpine:3.20", "busybox", "1.36.1-r28"));
    assert!(affected(&alpine, "Alpine:v3.20", "busybox", "1.36.1-r5"));
    assert!(!affected(&alpine, "Alpine:v3.20", "busybox", "1.36.1-r29"));
    assert!(!affected(&alpine, "Alpine:v3.19", "busybox", "1.36.1-r5"));
}

#[test]
fn what_cannot_be_evaluated_is_reported() {
    let bad_event = range_advisory(
        "npm",
        "x",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "not-a-version"}]),
    );
    let err = match_advisory(&bad_event, &PackageRef::new("npm", "x", "1.0.0")).unwrap_err();
    assert!(err.contains("not-a-version"), "{err}");
    let a = range_advisory(
        "npm",
        "x",
        "SEMVER",
        json!([{"introduced": "0"}, {"fixed": "2.0.0"}]),
    );
    let err = match_advisory(&a, &PackageRef::new("npm", "x", "garbage")).unwrap_err();
    assert!(err.contains("garbage"), "{err}");
    let unknown = range_advisory("Hackage", "x", "ECOSYSTEM", json!([{"introduced": "0"}]));
    assert!(
        match_advisory(&unknown, &PackageRef::new("Hackage", "x", "1.0"))
            .unwrap_err()
            .contains("no version scheme")
    );
    let lookup = lookup_in([&a, &bad_event], &PackageRef::new("npm", "x", "1.0.0"));
    assert_eq!(lookup.matches.len(), 1);
    assert_eq!(lookup.unevaluated.len(), 0, "same id matched");
}

#[test]
fn severity_from_vectors_and_database_ratings() {
    let mut a = range_advisory("npm", "x", "SEMVER", json!([{"introduced": "0"}]));
    a.severity = vec![SeverityEntry {
        kind: "CVSS_V3".into(),
        score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H".into(),
    }];
    let m = hit(&a, "npm", "x", "1.0.0").unwrap();
    assert_eq!(m.severity, Some(Severity::Critical));
    assert_eq!(m.cvss.as_ref().unwrap().score, Some(10.0));

    let rated = advisory(
        json!({"id": "GHSA-1", "database_specific": {"severity": "MODERATE"}, "severity": [
        {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"}],
        "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
    );
    let m = hit(&rated, "npm", "x", "1.0.0").unwrap();
    assert_eq!(m.severity, Some(Severity::Medium));
    let cvss = m.cvss.unwrap();
    assert_eq!((cvss.kind.as_str(), cvss.score), ("CVSS_V4", None));

    let rustsec = advisory(
        json!({"id": "RUSTSEC-1", "affected": [{"package": {"ecosystem": "crates.io", "name": "x"},
        "database_specific": {"cvss": "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}),
    );
    let m = hit(&rustsec, "crates.io", "x", "1.0.0").unwrap();
    assert_eq!(
        (m.severity, m.cvss.unwrap().score),
        (Some(Severity::Medium), Some(6.2))
    );

    let none = range_advisory("npm", "x", "SEMVER", json!([{"introduced": "0"}]));
    assert_eq!(hit(&none, "npm", "x", "1.0.0").unwrap().severity, None);
}

#[test]
fn git_ranges_defer_to_the_versions_list() {
    let a = advisory(
        json!({"id": "OSV-G", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
        "ranges": [{"type": "GIT", "repo": "https://example.org/x", "events": [{"introduced": "abc123"}, {"fixed": "def456"}]}],
        "versions": ["1.0"]}]}),
    );
    assert!(affected(&a, "PyPI", "x", "1.0"));
    assert!(!affected(&a, "PyPI", "x", "1.1"));
}

#[test]
fn name_normalisation() {
    assert_eq!(normalize_name("pypi", "Jinja2"), "jinja2");
    assert_eq!(normalize_name("pypi", "Foo__Bar.-baz"), "foo-bar-baz");
    assert_eq!(normalize_name("crates.io", "Serde"), "serde");
    assert_eq!(normalize_name("npm", "Lodash"), "Lodash");
    assert_eq!(index_key("PyPI", "PyYAML"), index_key("pypi", "pyyaml"));
    assert_eq!(
        split_ecosystem("Alpine:v3.20"),
        ("alpine".into(), Some("3.20".into()))
    );
    assert_eq!(split_ecosystem("Debian:13"), ("debian".into(), Some("13".into())));
    assert_eq!(split_ecosystem("Go"), ("go".into(), None));
}
