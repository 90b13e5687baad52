//! SARIF 2.1.0, shaped for GitHub code scanning: every result has the file and line of the offending
//! field, rules carry `security-severity` so GitHub ranks them, fingerprints track results across
//! runs, and excepted findings are reported as suppressed rather than dropped.

use crate::{Header, Note, ReportError, finding_line};
use palisade_core::{Finding, FindingStatus, RuleMeta, Severity};
use serde_json::{Value, json};
use std::io::Write;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/palisade-sec/palisade";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's scale: over 9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.1",
    }
}

/// A repository-relative URI where possible: `./a/b.yaml` → `a/b.yaml`; absolute paths become
/// `file://` URIs.
fn artifact_uri(file: &str) -> String {
    let file = file.replace('\\', "/");
    let mut rel = file.as_str();
    while let Some(rest) = rel.strip_prefix("./") {
        rel = rest;
    }
    let encoded: String = rel
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            '%' => "%25".to_string(),
            c => c.to_string(),
        })
        .collect();
    if encoded.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

fn rule_json(rule: &RuleMeta) -> Value {
    let mut tags = vec!["security".to_string(), rule.category.as_str().to_string()];
    tags.extend(rule.frameworks.iter().map(|f| f.to_string()));
    let refs: Vec<String> = rule
        .frameworks
        .iter()
        .map(|f| format!("- {}: {}", f.framework.as_str(), f.id))
        .collect();
    let markdown = format!(
        "**{}**\n\n{}\n\n**Why it matters.** {}\n\n**How to fix.** {}\n\n{}",
        rule.title,
        rule.description,
        rule.rationale,
        rule.remediation,
        if refs.is_empty() {
            String::new()
        } else {
            format!("**References**\n{}", refs.join("\n"))
        }
    );
    json!({
        "id": rule.id,
        "name": rule.id,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {"text": format!("{} Remediation: {}", rule.rationale, rule.remediation), "markdown": markdown},
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": {
            "tags": tags,
            "precision": "high",
            "problem.severity": level(rule.severity),
            "security-severity": security_severity(rule.severity),
        },
    })
}

fn result_json(f: &Finding, rule_index: Option<usize>) -> Value {
    let mut result = json!({
        "ruleId": f.rule_id,
        "level": level(f.severity),
        "message": {"text": format!("{}: {}", f.resource.display_name(), f.message)},
        "partialFingerprints": {"palisadeFingerprint/v1": f.fingerprint},
        "properties": {"severity": f.severity.as_str(), "category": f.category.as_str()},
    });
    if let Some(i) = rule_index {
        result["ruleIndex"] = json!(i);
    }
    let logical = json!([{
        "name": f.resource.name,
        "fullyQualifiedName": f.resource.display_name(),
        "kind": f.resource.kind,
    }]);
    let mut location = json!({"logicalLocations": logical});
    if let Some(file) = f.resource.file.as_deref().filter(|f| *f != "-") {
        let mut region = json!({"startLine": finding_line(f).unwrap_or(1).max(1)});
        if let Some(col) = f.evidence.as_ref().and_then(|e| e.line.and(e.column)) {
            region["startColumn"] = json!(col.max(1));
        }
        location["physicalLocation"] = json!({
            "artifactLocation": {"uri": artifact_uri(file)},
            "region": region,
        });
    }
    result["locations"] = json!([location]);
    if let FindingStatus::Excepted { reason, .. } = &f.status {
        result["suppressions"] = json!([{"kind": "external", "justification": reason}]);
    }
    result
}

pub fn begin(out: &mut impl Write, header: &Header) -> Result<(), ReportError> {
    let rules: Vec<Value> = header.rules.iter().map(|r| rule_json(r)).collect();
    let driver = json!({
        "name": "palisade",
        "version": header.tool_version,
        "semanticVersion": header.tool_version,
        "informationUri": INFORMATION_URI,
        "rules": rules,
    });
    writeln!(out, "{{")?;
    writeln!(out, "  \"$schema\": {},", serde_json::to_string(SCHEMA)?)?;
    writeln!(out, "  \"version\": \"2.1.0\",")?;
    writeln!(out, "  \"runs\": [")?;
    writeln!(out, "    {{")?;
    writeln!(
        out,
        "      \"tool\": {{\"driver\": {}}},",
        serde_json::to_string(&driver)?
    )?;
    let automation = json!({"id": format!("palisade/scan/{}/", header.scan_kind)});
    writeln!(
        out,
        "      \"automationDetails\": {},",
        serde_json::to_string(&automation)?
    )?;
    writeln!(out, "      \"columnKind\": \"unicodeCodePoints\",")?;
    write!(out, "      \"results\": [")?;
    Ok(())
}

pub fn finding(
    out: &mut impl Write,
    f: &Finding,
    rule_index: Option<usize>,
    first: bool,
) -> Result<(), ReportError> {
    out.write_all(if first { b"\n        " } else { b",\n        " })?;
    serde_json::to_writer(&mut *out, &result_json(f, rule_index))?;
    Ok(())
}

pub fn finish(out: &mut impl Write, _header: &Header, notes: &[Note]) -> Result<(), ReportError> {
    let notifications: Vec<Value> = notes
        .iter()
        .map(|n| {
            let mut location =
                json!({"physicalLocation": {"artifactLocation": {"uri": artifact_uri(&n.file)}}});
            if let Some(line) = n.line {
                location["physicalLocation"]["region"] = json!({"startLine": line.max(1)});
            }
            json!({
                "level": if n.kind == "not-kubernetes" { "note" } else { "error" },
                "message": {"text": format!("{}: {}", n.kind, n.message)},
                "locations": [location],
            })
        })
        .collect();
    writeln!(out, "\n      ],")?;
    let invocations = json!([{"executionSuccessful": true, "toolExecutionNotifications": notifications}]);
    writeln!(
        out,
        "      \"invocations\": {}",
        serde_json::to_string(&invocations)?
    )?;
    writeln!(out, "    }}")?;
    writeln!(out, "  ]")?;
    writeln!(out, "}}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn golden_sarif() {
        let out = testdata::report()
            .render(crate::Format::Sarif, crate::RenderOptions::default())
            .unwrap();
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["runs"][0]["results"].as_array().unwrap().len(), 3);
        testdata::golden("report.sarif", &out);
    }

    #[test]
    fn uris() {
        assert_eq!(artifact_uri("./deploy/a b.yaml"), "deploy/a%20b.yaml");
        assert_eq!(artifact_uri("/abs/x.yaml"), "file:///abs/x.yaml");
        assert_eq!(artifact_uri("dir\\x.yaml"), "dir/x.yaml");
    }
}
