//! The JSON format: a versioned document (`schemaVersion`) documented in docs/json-output.md.
//! Fields are only ever added within a schema version; renames and removals bump it.

use crate::{Report, ReportError};
use serde_json::json;

/// Bumped on any incompatible change to the JSON output.
pub const JSON_SCHEMA_VERSION: &str = "1.0";

pub fn render(report: &Report) -> Result<String, ReportError> {
    let summary: serde_json::Map<String, serde_json::Value> = report
        .severity_counts()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let excepted = report.findings.iter().filter(|f| !f.status.is_open()).count();
    let doc = json!({
        "schemaVersion": JSON_SCHEMA_VERSION,
        "tool": {"name": "palisade", "version": report.tool_version},
        "scan": {"kind": report.scan_kind, "inputs": report.inputs},
        "stats": report.stats,
        "summary": {"open": summary, "excepted": excepted},
        "findings": report.findings,
        "notes": report.notes,
    });
    let mut out = serde_json::to_string_pretty(&doc)?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::testdata;

    #[test]
    fn golden_json() {
        let out = super::render(&testdata::report()).unwrap();
        testdata::golden("report.json", &out);
    }
}
