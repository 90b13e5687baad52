//! Every rule in the catalogue is a documented unit with fixtures that prove it: each fail fixture
//! must produce the rule, each pass fixture must not. Scanned with every posture check at PSS
//! restricted/latest, the strictest setting, so a pass fixture is a clean example for all rules.

use palisade_posture::{Origin, PssLevel, PssSettings, PssVersion, ScanConfig, Scanner, catalogue};
use std::collections::HashSet;

fn rule_ids_found(fixture: &str) -> Vec<String> {
    let objects = palisade_k8s::parse_documents(fixture)
        .unwrap_or_else(|e| panic!("fixture does not parse: {e}\n{fixture}"));
    let mut findings = Vec::new();
    let origin = Origin::default();
    palisade_k8s::load_str(fixture, "fixture.yaml", |loaded| {
        if let palisade_k8s::Loaded::Object(obj) = loaded {
            let view = palisade_posture::Object::new(&obj.value, &origin);
            for d in &obj.duplicate_keys {
                findings.push(palisade_posture::manifest::duplicate_key_finding(
                    &view,
                    &d.pointer,
                    d.first.line,
                    d.second.line,
                ));
            }
        }
    });
    let config = ScanConfig {
        pss: PssSettings {
            level: PssLevel::Restricted,
            version: PssVersion::Latest,
        },
        // Policy rules need a policy: the fixtures are written against the shipped example.
        policy: palisade_posture::labels::Policy::example(),
    };
    let mut scanner = Scanner::new(config);
    for obj in &objects {
        scanner.observe_namespace(obj);
    }
    for obj in &objects {
        findings.extend(scanner.scan(obj, &origin));
    }
    findings.extend(scanner.finish());
    findings.into_iter().map(|f| f.rule_id).collect()
}

#[test]
fn every_rule_is_documented_and_proven_by_its_fixtures() {
    let rules = catalogue::rules();
    let mut ids = HashSet::new();
    let mut problems = Vec::new();
    for rule in &rules {
        if !ids.insert(rule.id) {
            problems.push(format!("{}: duplicate rule id", rule.id));
        }
        let valid_id = rule.id.contains('.')
            && rule
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !valid_id {
            problems.push(format!("{}: ids are lowercase, dotted, with dashes", rule.id));
        }
        for (field, text) in [
            ("title", rule.title),
            ("description", rule.description),
            ("rationale", rule.rationale),
            ("remediation", rule.remediation),
        ] {
            if text.trim().is_empty() {
                problems.push(format!("{}: empty {field}", rule.id));
            }
        }
        if rule.id == "exception.expired" {
            continue; // reported by the exception machinery, not by a manifest
        }
        if rule.fixtures.pass.is_empty() || rule.fixtures.fail.is_empty() {
            problems.push(format!(
                "{}: needs at least one pass and one fail fixture",
                rule.id
            ));
        }
        for (i, fixture) in rule.fixtures.fail.iter().enumerate() {
            if !rule_ids_found(fixture).iter().any(|id| id == rule.id) {
                problems.push(format!("{}: fail fixture {i} does not produce the rule", rule.id));
            }
        }
        for (i, fixture) in rule.fixtures.pass.iter().enumerate() {
            if rule_ids_found(fixture).iter().any(|id| id == rule.id) {
                problems.push(format!("{}: pass fixture {i} produces the rule", rule.id));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
