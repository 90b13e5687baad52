//! `palisade rules list` and `palisade rules explain ID`, straight from the rule definitions.

use crate::write_output;
use anyhow::{Result, bail};
use clap::Args;
use palisade_core::{RuleMeta, Severity};
use palisade_posture::catalogue;
use std::fmt::Write;

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only rules whose id starts with this prefix (`pss.`, `rbac.`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only rules at or above this severity.
    #[arg(long, value_parser = ["critical", "high", "medium", "low", "info"])]
    pub min_severity: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The rule id, e.g. pss.privileged.
    pub id: String,
    /// Output format.
    #[arg(long, short = 'f', default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// The posture catalogue, the admission-only rules, the image checks, the secret detectors and the
/// malware rules.
fn all_rules() -> Vec<&'static RuleMeta> {
    let mut rules = catalogue::rules();
    rules.extend(palisade_admission::role_guard::RULES.iter().copied());
    rules.extend(palisade_image::audit::RULES.iter().copied());
    rules.extend(palisade_secrets::rules());
    rules.extend(palisade_malware::catalogue::RULES.iter().copied());
    rules
}

pub fn list(args: ListArgs) -> Result<u8> {
    let min: Option<Severity> = args.min_severity.as_deref().map(str::parse).transpose()?;
    let rules: Vec<&RuleMeta> = all_rules()
        .into_iter()
        .filter(|r| args.prefix.as_deref().is_none_or(|p| r.id.starts_with(p)))
        .filter(|r| min.is_none_or(|m| r.severity >= m))
        .collect();
    if rules.is_empty() {
        bail!("no rule matches the filters");
    }
    let text = if args.format == "json" {
        format!("{}\n", serde_json::to_string_pretty(&rules)?)
    } else {
        let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for r in &rules {
            let refs: Vec<String> = r.frameworks.iter().take(3).map(|f| f.to_string()).collect();
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {}  [{}]",
                r.id,
                r.severity.as_str(),
                r.title,
                refs.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\n{} rules. `palisade rules explain ID` tells more.",
            rules.len()
        );
        out
    };
    write_output(None, &text)?;
    Ok(0)
}

pub fn explain(args: ExplainArgs) -> Result<u8> {
    let Some(rule) = all_rules().into_iter().find(|r| r.id == args.id) else {
        let close: Vec<&str> = all_rules()
            .into_iter()
            .map(|r| r.id)
            .filter(|id| {
                id.contains(args.id.as_str()) || args.id.contains(id.split('.').next_back().unwrap_or(id))
            })
            .take(5)
            .collect();
        if close.is_empty() {
            bail!("no rule {:?}; `palisade rules list` shows them all", args.id);
        }
        bail!("no rule {:?}; did you mean {}?", args.id, close.join(", "));
    };
    let text = if args.format == "json" {
        format!("{}\n", serde_json::to_string_pretty(rule)?)
    } else {
        let mut out = String::new();
        let _ = writeln!(out, "{} — {}\n", rule.id, rule.title);
        let _ = writeln!(
            out,
            "Severity:  {}\nCategory:  {}\n",
            rule.severity,
            rule.category.as_str()
        );
        let _ = writeln!(out, "{}\n", rule.description);
        let _ = writeln!(out, "Why it matters\n  {}\n", rule.rationale);
        let _ = writeln!(out, "How to fix\n  {}\n", rule.remediation);
        if !rule.frameworks.is_empty() {
            let _ = writeln!(out, "References");
            for f in rule.frameworks {
                let _ = writeln!(out, "  {}: {}", f.framework.as_str(), f.id);
            }
            out.push('\n');
        }
        for (title, fixtures) in [("Fails", rule.fixtures.fail), ("Passes", rule.fixtures.pass)] {
            if let Some(example) = fixtures.first() {
                let _ = writeln!(out, "Example that {}:", title.to_lowercase());
                for line in example.lines() {
                    let _ = writeln!(out, "  | {line}");
                }
                out.push('\n');
            }
        }
        out
    };
    write_output(None, &text)?;
    Ok(0)
}
