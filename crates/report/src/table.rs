//! The terminal format: findings grouped by file and resource, in source order within a resource,
//! colour when writing to a terminal, then notes and a severity summary.

use crate::{Header, Note, RenderOptions, Stats, Totals, finding_line};
use palisade_core::{Finding, FindingStatus, Severity};
use std::io::Write;

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

/// Where the table is: the file and resource whose heading was written last.
pub struct TableState {
    width: usize,
    current_file: Option<String>,
    current_resource: Option<(String, Option<u32>)>,
    wrote_any: bool,
}

impl TableState {
    pub fn new(header: &Header) -> TableState {
        let width = header.rules.iter().map(|r| r.id.len()).max().unwrap_or(20);
        TableState {
            width,
            current_file: None,
            current_resource: None,
            wrote_any: false,
        }
    }

    pub fn finding(
        &mut self,
        out: &mut impl Write,
        f: &Finding,
        options: RenderOptions,
    ) -> std::io::Result<()> {
        let paint = Paint { on: options.color };
        let file = f.resource.file.as_deref().unwrap_or("-");
        if self.current_file.as_deref() != Some(file) {
            if self.current_file.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "{}", paint.wrap("1", file))?;
            self.current_file = Some(file.to_string());
            self.current_resource = None;
        }
        let resource = (f.resource.display_name(), f.resource.line);
        if self.current_resource.as_ref() != Some(&resource) {
            let at = resource.1.map(|l| format!(" (line {l})")).unwrap_or_default();
            writeln!(out, "  {}{}", paint.wrap("1", &resource.0), paint.wrap("2", &at))?;
            self.current_resource = Some(resource);
        }
        self.wrote_any = true;
        write_finding(out, &paint, f, self.width)
    }

    pub fn finish(
        &mut self,
        out: &mut impl Write,
        notes: &[Note],
        stats: &Stats,
        totals: &Totals,
        options: RenderOptions,
    ) -> std::io::Result<()> {
        let paint = Paint { on: options.color };
        if self.wrote_any {
            writeln!(out)?;
        }
        if !notes.is_empty() {
            writeln!(out, "{}", paint.wrap("1", "Notes"))?;
            for n in notes {
                let at = n.line.map(|l| format!(":{l}")).unwrap_or_default();
                writeln!(out, "  {}{at}: {}: {}", n.file, n.kind, n.message)?;
            }
            writeln!(out)?;
        }
        let counts: Vec<String> = totals
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
        let open = totals.open_total();
        let not_evaluated = if totals.not_evaluated > 0 {
            format!(", {} not evaluated", totals.not_evaluated)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{} {open} open finding{} ({}), {} excepted{not_evaluated}; {} object{} in {} file{}, {} skipped, {} error{}",
            paint.wrap("1", "Summary:"),
            plural(open),
            counts.join(", "),
            totals.excepted,
            stats.objects,
            plural(stats.objects),
            stats.files,
            plural(stats.files),
            stats.skipped,
            stats.errors,
            plural(stats.errors),
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_finding(out: &mut impl Write, paint: &Paint, f: &Finding, width: usize) -> std::io::Result<()> {
    let label = format!("{:<8}", f.severity.as_str().to_uppercase());
    let line = finding_line(f)
        .map(|l| format!("  [line {l}]"))
        .unwrap_or_default();
    match &f.status {
        FindingStatus::Open => {
            writeln!(
                out,
                "    {} {:<width$}  {}{}",
                paint.severity(f.severity, &label),
                f.rule_id,
                f.message,
                paint.wrap("2", &line)
            )
        }
        FindingStatus::Excepted { reason, expires, .. } => {
            let until = expires.map(|d| format!(" until {d}")).unwrap_or_default();
            let text = format!(
                "    {label} {:<width$}  {}  (excepted{until}: {reason}){line}",
                f.rule_id, f.message
            );
            writeln!(out, "{}", paint.wrap("2", &text))
        }
        FindingStatus::NotEvaluated { reason } => {
            let text = format!("    {label} {:<width$}  not evaluated: {reason}{line}", f.rule_id);
            writeln!(out, "{}", paint.wrap("2", &text))
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
        let plain = report
            .render(crate::Format::Table, RenderOptions { color: false })
            .unwrap();
        testdata::golden("report.txt", &plain);
        let colored = report
            .render(crate::Format::Table, RenderOptions { color: true })
            .unwrap();
        assert!(colored.contains("\x1b[1;31mCRITICAL"));
    }
}
