//! The terminal format: findings grouped by file and resource, in source order within a resource,
//! colour when writing to a terminal, then notes and a severity summary.

use crate::{RenderOptions, Report, finding_line};
use palisade_core::{Finding, FindingStatus, Severity};
use std::fmt::Write;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity, text: &str) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.wrap(code, text)
    }
}

pub fn render(report: &Report, options: RenderOptions) -> String {
    let paint = Paint { on: options.color };
    let mut out = String::new();
    let width = report.findings.iter().map(|f| f.rule_id.len()).max().unwrap_or(0);
    let mut current_file: Option<&str> = None;
    let mut current_resource: Option<(String, Option<u32>)> = None;
    for f in &report.findings {
        let file = f.resource.file.as_deref().unwrap_or("-");
        if current_file != Some(file) {
            if current_file.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", paint.wrap("1", file));
            current_file = Some(file);
            current_resource = None;
        }
        let resource = (f.resource.display_name(), f.resource.line);
        if current_resource.as_ref() != Some(&resource) {
            let at = resource.1.map(|l| format!(" (line {l})")).unwrap_or_default();
            let _ = writeln!(out, "  {}{}", paint.wrap("1", &resource.0), paint.wrap("2", &at));
            current_resource = Some(resource);
        }
        write_finding(&mut out, &paint, f, width);
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "{}", paint.wrap("1", "Notes"));
        for n in &report.notes {
            let at = n.line.map(|l| format!(":{l}")).unwrap_or_default();
            let _ = writeln!(out, "  {}{at}: {}: {}", n.file, n.kind, n.message);
        }
        out.push('\n');
    }
    let counts: Vec<String> = report
        .severity_counts()
        .into_iter()
        .map(|(s, n)| {
            if n > 0 {
                paint.severity(s, &format!("{n} {s}"))
            } else {
                format!("{n} {s}")
            }
        })
        .collect();
    let open = report.open_findings().count();
    let excepted = report.findings.len() - open;
    let _ = writeln!(
        out,
        "{} {open} open finding{} ({}), {excepted} excepted; {} object{} in {} file{}, {} skipped, {} error{}",
        paint.wrap("1", "Summary:"),
        plural(open),
        counts.join(", "),
        report.stats.objects,
        plural(report.stats.objects),
        report.stats.files,
        plural(report.stats.files),
        report.stats.skipped,
        report.stats.errors,
        plural(report.stats.errors),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_finding(out: &mut String, paint: &Paint, f: &Finding, width: usize) {
    let label = format!("{:<8}", f.severity.as_str().to_uppercase());
    let line = finding_line(f)
        .map(|l| format!("  [line {l}]"))
        .unwrap_or_default();
    match &f.status {
        FindingStatus::Open => {
            let _ = writeln!(
                out,
                "    {} {:<width$}  {}{}",
                paint.severity(f.severity, &label),
                f.rule_id,
                f.message,
                paint.wrap("2", &line)
            );
        }
        FindingStatus::Excepted { reason, expires, .. } => {
            let until = expires.map(|d| format!(" until {d}")).unwrap_or_default();
            let text = format!(
                "    {label} {:<width$}  {}  (excepted{until}: {reason}){line}",
                f.rule_id, f.message
            );
            let _ = writeln!(out, "{}", paint.wrap("2", &text));
        }
        FindingStatus::NotEvaluated { reason } => {
            let text = format!("    {label} {:<width$}  not evaluated: {reason}{line}", f.rule_id);
            let _ = writeln!(out, "{}", paint.wrap("2", &text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn golden_table() {
        let mut report = testdata::report();
        report.sort();
        testdata::golden("report.txt", &render(&report, RenderOptions { color: false }));
        let colored = render(&report, RenderOptions { color: true });
        assert!(colored.contains("\x1b[1;31mCRITICAL"));
    }
}
