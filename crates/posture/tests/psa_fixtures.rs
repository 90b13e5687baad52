//! Runs the Pod Security Standards engine over every official pod-security-admission conformance
//! fixture (`$PALISADE_SHARED/data/psa-fixtures`, see its LAYOUT.md): each file must get the
//! verdict its directory names, at its own level and version, both as the Pod it is and wrapped in
//! a Deployment template. Every disagreement is printed before the test fails.

use palisade_posture::object::{Object, Origin};
use palisade_posture::pss::{self, CheckId, PssLevel, PssVersion};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const EXPECTED_FIXTURES: usize = 4537;

fn shared_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn load_documents(root: &Path, rel: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(root.join(rel)).map_err(|e| e.to_string())?;
    palisade_k8s::parse_documents(&text).map_err(|e| e.to_string())
}

struct Row {
    level: PssLevel,
    version: PssVersion,
    expect_pass: bool,
    check_id: String,
    path: String,
}

fn read_index(root: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(root.join("index.tsv")).expect("index.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("level\tversion\texpected\tcheck_id\tindex\tpath"),
        "index.tsv header"
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 6, "index.tsv line {line:?}");
            Row {
                level: cols[0].parse().expect("level"),
                version: cols[1].parse().expect("version"),
                expect_pass: match cols[2] {
                    "pass" => true,
                    "fail" => false,
                    other => panic!("index.tsv: unknown verdict {other:?}"),
                },
                check_id: cols[3].to_string(),
                path: cols[5].to_string(),
            }
        })
        .collect()
}

/// The pod's metadata and spec as the template of a Deployment.
fn as_deployment(pod: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pod["metadata"]["name"].clone(), "namespace": "fixtures"},
        "spec": {
            "selector": {"matchLabels": {"app": "fixture"}},
            "template": {"metadata": pod["metadata"].clone(), "spec": pod["spec"].clone()}
        }
    })
}

/// The checks the engine reports for `value` (as reported control, and as the upstream check that
/// failed), or None when it has no pod template.
fn evaluate(value: &Value, level: PssLevel, version: PssVersion) -> Option<Vec<(CheckId, CheckId)>> {
    let origin = Origin::default();
    let obj = Object::new(value, &origin);
    let template = obj.pod_template()?;
    Some(
        pss::evaluate(&template, level, version)
            .into_iter()
            .map(|v| (v.check, v.evaluated_by))
            .collect(),
    )
}

fn describe(found: &[(CheckId, CheckId)]) -> String {
    if found.is_empty() {
        return "pass".to_string();
    }
    let mut s = String::from("fail [");
    for (i, (check, by)) in found.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(check.as_str());
        if check != by {
            let _ = write!(s, " via {}", by.as_str());
        }
    }
    s.push(']');
    s
}

#[test]
fn psa_conformance_fixtures() {
    let root = shared_dir().join("data/psa-fixtures");
    if !root.join("index.tsv").is_file() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: PSA fixtures not found at {} !!!!!!!!",
            root.display()
        );
        eprintln!("!!!!!!!! set PALISADE_SHARED to the shared folder to run this test !!!!!!!!\n");
        return;
    }
    let rows = read_index(&root);
    assert_eq!(rows.len(), EXPECTED_FIXTURES, "index.tsv row count");

    let mut agree = 0;
    let mut wrapped_agree = 0;
    let mut untargeted = Vec::new();
    let mut disagreements = Vec::new();
    for row in &rows {
        let expected = if row.expect_pass { "pass" } else { "fail" };
        let docs = match load_documents(&root, &row.path) {
            Ok(docs) => docs,
            Err(e) => {
                disagreements.push(format!(
                    "{}: expected {expected}, got a load error: {e}",
                    row.path
                ));
                continue;
            }
        };
        let [pod] = docs.as_slice() else {
            disagreements.push(format!("{}: expected one document, got {}", row.path, docs.len()));
            continue;
        };
        let Some(found) = evaluate(pod, row.level, row.version) else {
            disagreements.push(format!("{}: expected {expected}, got no pod template", row.path));
            continue;
        };
        if found.is_empty() == row.expect_pass {
            agree += 1;
        } else {
            disagreements.push(format!(
                "{}: expected {expected}, got {}",
                row.path,
                describe(&found)
            ));
        }
        let wrapped = evaluate(&as_deployment(pod), row.level, row.version).unwrap_or_default();
        if wrapped == found {
            wrapped_agree += 1;
        } else {
            disagreements.push(format!(
                "{} (as Deployment): expected {}, got {}",
                row.path,
                describe(&found),
                describe(&wrapped)
            ));
        }
        let targeted = found
            .iter()
            .any(|(c, by)| c.as_str() == row.check_id || by.as_str() == row.check_id);
        if !row.expect_pass && !found.is_empty() && !targeted {
            untargeted.push(format!(
                "{}: targets {}, got {}",
                row.path,
                row.check_id,
                describe(&found)
            ));
        }
    }

    let fails = rows.iter().filter(|r| !r.expect_pass).count();
    println!(
        "PSA fixtures: {agree}/{} verdicts agree; {wrapped_agree} agree as Deployments",
        rows.len()
    );
    println!(
        "fail fixtures reporting their targeted check: {}/{fails}",
        fails - untargeted.len()
    );
    for line in &untargeted {
        println!("  not targeted: {line}");
    }
    for line in &disagreements {
        eprintln!("DISAGREE {line}");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements (listed above)",
        disagreements.len()
    );
    assert_eq!(agree, EXPECTED_FIXTURES);
    assert!(
        untargeted.is_empty(),
        "{} fail fixtures did not report their targeted check",
        untargeted.len()
    );
}
