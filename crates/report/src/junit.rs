//! JUnit XML for CI systems: one test suite per rule that fired, one failing test case per open
//! finding, a skipped case per excepted finding; a clean scan is one passing case.

use crate::{Header, Stats, Totals, finding_line};
use palisade_core::{Finding, FindingStatus};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for XML attributes and character data; drops characters XML 1.0 cannot carry.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn case_name(f: &Finding) -> String {
    let mut name = f.resource.display_name();
    if let Some(c) = &f.resource.container {
        let _ = write!(name, " container={c}");
    }
    if let Some(file) = &f.resource.file {
        let _ = write!(name, " ({file}:{})", finding_line(f).unwrap_or(0));
    }
    name
}

pub fn render(header: &Header, findings: &[Finding], stats: &Stats, totals: &Totals) -> String {
    let mut by_rule: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        by_rule.entry(f.rule_id.as_str()).or_default().push(f);
    }
    let failures = totals.open_total();
    let skipped = findings.len() - failures;
    let total = findings.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"palisade scan {}\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"{}\">",
        xml(&header.scan_kind),
        stats.errors
    );
    if by_rule.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"palisade\" tests=\"1\" failures=\"0\" skipped=\"0\" errors=\"0\">"
        );
        let _ = writeln!(
            out,
            "    <testcase classname=\"palisade\" name=\"{} objects scanned, no findings\"/>",
            stats.objects
        );
        out.push_str("  </testsuite>\n");
    }
    for (rule, findings) in by_rule {
        let open = findings.iter().filter(|f| f.status.is_open()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{open}\" skipped=\"{}\" errors=\"0\">",
            xml(rule),
            findings.len(),
            findings.len() - open
        );
        for f in findings {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(rule),
                xml(&case_name(f))
            );
            match &f.status {
                FindingStatus::Open => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}\nSeverity: {}\nRemediation: {}</failure>\n    </testcase>",
                        f.severity,
                        xml(&f.message),
                        xml(&f.title),
                        f.severity,
                        xml(&f.remediation)
                    );
                }
                FindingStatus::Excepted { reason, .. } => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"excepted: {}\"/>\n    </testcase>",
                        xml(reason)
                    );
                }
                FindingStatus::NotEvaluated { reason } => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"not evaluated: {}\"/>\n    </testcase>",
                        xml(reason)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn golden_junit() {
        let out = testdata::report()
            .render(crate::Format::Junit, crate::RenderOptions::default())
            .unwrap();
        testdata::golden("report.junit.xml", &out);
    }

    #[test]
    fn escapes() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
