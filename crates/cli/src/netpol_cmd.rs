//! `palisade netpol suggest` and `palisade netpol summary`: NetworkPolicy views of the input.

use crate::scan_k8s::{Outcome, scan_paths};
use crate::write_output;
use anyhow::Result;
use clap::Args;
use palisade_core::ExceptionSet;
use palisade_posture::ScanConfig;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct SuggestArgs {
    /// Manifest files, directories or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Write the policies to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Manifest files, directories or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

fn input_errors(outcome: &Outcome) -> Result<()> {
    if outcome.stats.errors > 0 {
        let first = outcome.notes.iter().find(|n| n.kind != "not-kubernetes");
        let detail = first
            .map(|n| format!(": {}:{} {}", n.file, n.line.unwrap_or(0), n.message))
            .unwrap_or_default();
        anyhow::bail!("{} input error(s){detail}", outcome.stats.errors);
    }
    Ok(())
}

pub fn suggest(args: SuggestArgs) -> Result<u8> {
    let outcome = scan_paths(
        &args.paths,
        ScanConfig::default(),
        ExceptionSet::new(),
        &mut |_| Ok(()),
    )?;
    input_errors(&outcome)?;
    let policies = outcome.scanner.netpol().suggest();
    let mut text = String::from(
        "# NetworkPolicies suggested by `palisade netpol suggest`: default-deny for every namespace with\n\
         # workloads, DNS egress, and ingress to each Service's pods on its target ports. Review the\n\
         # traffic between your workloads and add egress allows before applying.\n",
    );
    for policy in &policies {
        text.push_str("---\n");
        text.push_str(&palisade_k8s::emit::to_yaml(policy));
    }
    if policies.is_empty() {
        text.push_str("# No workloads in the input: nothing to suggest.\n");
    }
    write_output(args.output.as_deref(), &text)?;
    Ok(0)
}

pub fn summary(args: SummaryArgs) -> Result<u8> {
    let outcome = scan_paths(
        &args.paths,
        ScanConfig::default(),
        ExceptionSet::new(),
        &mut |_| Ok(()),
    )?;
    input_errors(&outcome)?;
    let summary = outcome.scanner.netpol().summary();
    let text = if args.format == "json" {
        format!("{}\n", serde_json::to_string_pretty(&summary)?)
    } else {
        let width = summary
            .iter()
            .map(|s| s.namespace.len())
            .max()
            .unwrap_or(9)
            .max(9);
        let mut out = format!(
            "{:<width$}  {:>9}  {:>8}  {:>12}  {:>11}  {:>8}  allow-all\n",
            "NAMESPACE", "WORKLOADS", "SELECTED", "DENY-INGRESS", "DENY-EGRESS", "POLICIES"
        );
        for s in &summary {
            let yes_no = |b: bool| if b { "yes" } else { "NO" };
            let _ = writeln!(
                out,
                "{:<width$}  {:>9}  {:>8}  {:>12}  {:>11}  {:>8}  {}",
                s.namespace,
                s.workloads,
                s.selected_workloads,
                yes_no(s.default_deny_ingress),
                yes_no(s.default_deny_egress),
                s.policies,
                if s.allow_all_policies.is_empty() {
                    "-".to_string()
                } else {
                    s.allow_all_policies.join(",")
                }
            );
        }
        out
    };
    write_output(None, &text)?;
    Ok(0)
}
