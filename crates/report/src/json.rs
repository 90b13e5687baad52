//! The JSON format: a versioned document (`schemaVersion`) documented in docs/json-output.md.
//! Fields are only ever added within a schema version; renames and removals bump it. Findings are
//! written one per line as they arrive; stats and summary come last.

use crate::{Header, Note, ReportError, Stats, Totals};
use palisade_core::Finding;
use serde_json::json;
use std::io::Write;

/// Bumped on any incompatible change to the JSON output.
pub const JSON_SCHEMA_VERSION: &str = "1.0";

pub fn begin(out: &mut impl Write, header: &Header) -> Result<(), ReportError> {
    writeln!(out, "{{")?;
    writeln!(
        out,
        "  \"schemaVersion\": {},",
        serde_json::to_string(JSON_SCHEMA_VERSION)?
    )?;
    let tool = json!({"name": "palisade", "version": header.tool_version});
    writeln!(out, "  \"tool\": {},", serde_json::to_string(&tool)?)?;
    let scan = json!({"kind": header.scan_kind, "inputs": header.inputs});
    writeln!(out, "  \"scan\": {},", serde_json::to_string(&scan)?)?;
    write!(out, "  \"findings\": [")?;
    Ok(())
}

pub fn finding(out: &mut impl Write, f: &Finding, first: bool) -> Result<(), ReportError> {
    out.write_all(if first { b"\n    " } else { b",\n    " })?;
    serde_json::to_writer(&mut *out, f)?;
    Ok(())
}

pub fn finish(
    out: &mut impl Write,
    notes: &[Note],
    stats: &Stats,
    totals: &Totals,
) -> Result<(), ReportError> {
    let any = totals.open_total() + totals.excepted + totals.not_evaluated > 0;
    writeln!(out, "{}],", if any { "\n  " } else { "" })?;
    write!(out, "  \"notes\": [")?;
    for (i, note) in notes.iter().enumerate() {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        serde_json::to_writer(&mut *out, note)?;
    }
    writeln!(out, "{}],", if notes.is_empty() { "" } else { "\n  " })?;
    writeln!(out, "  \"stats\": {},", serde_json::to_string(stats)?)?;
    let open: serde_json::Map<String, serde_json::Value> = totals
        .severity_counts()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let summary = json!({"open": open, "excepted": totals.excepted, "not_evaluated": totals.not_evaluated});
    writeln!(out, "  \"summary\": {}", serde_json::to_string(&summary)?)?;
    writeln!(out, "}}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testdata;
    use crate::{Format, RenderOptions};

    #[test]
    fn golden_json() {
        let out = testdata::report()
            .render(Format::Json, RenderOptions::default())
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["findings"].as_array().unwrap().len(), 3);
        assert_eq!(parsed["summary"]["open"]["critical"], 1);
        testdata::golden("report.json", &out);
    }

    #[test]
    fn empty_report_is_valid_json() {
        let mut report = testdata::report();
        report.findings.clear();
        report.notes.clear();
        let out = report.render(Format::Json, RenderOptions::default()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["findings"], serde_json::json!([]));
    }
}
