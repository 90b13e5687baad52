//! `palisade policy verify`: runs Gatekeeper `suite.yaml` files like `gator verify`. The runner is
//! palisade-policy's; this file finds the suites, reads files for it and prints the results.

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use palisade_k8s::{InputFile, Limits, discover, parse_documents, read_input};
use palisade_policy::suite::{Counts, RunOptions, SuiteFiles, SuiteResult, is_suite, run_suite};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Run Gatekeeper test suites (suite.yaml) like `gator verify`.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Suite files, or directories searched recursively for files named suite.yaml.
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// Print every test and case, not only failures.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Time budget for evaluating one constraint, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub time_budget_ms: u64,
    /// Rego evaluator: `auto` (regorus' register VM for the templates a static check proves
    /// cannot disagree with the interpreter, the interpreter for the rest) or `interpreter`.
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = ["auto", "interpreter"])]
    pub rego_engine: String,
    /// Also evaluate every case with the interpreter alone; a case fails when the two differ.
    #[arg(long)]
    pub compare_engines: bool,
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        PolicyCommand::Verify(args) => verify(args),
    }
}

/// Reads the files a suite names, relative to the suite's directory, with the manifest loader.
struct DirFiles {
    dir: PathBuf,
    limits: Limits,
}

impl SuiteFiles for DirFiles {
    fn read_documents(&self, path: &str) -> Result<Vec<Value>, String> {
        let full = self.dir.join(path);
        let text = read_input(&InputFile::Path(full.clone()), &self.limits)
            .map_err(|e| format!("{}: {e}", full.display()))?;
        parse_documents(&text).map_err(|e| format!("{}: {e}", full.display()))
    }
}

fn find_suites(paths: &[String], limits: &Limits) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arg in paths {
        let meta = std::fs::metadata(arg).map_err(|e| anyhow!("{arg}: {e}"))?;
        if meta.is_dir() {
            let files = discover(std::slice::from_ref(arg), limits).map_err(|(p, e)| anyhow!("{p}: {e}"))?;
            out.extend(files.into_iter().filter_map(|f| match f {
                InputFile::Path(p) if p.file_name().is_some_and(|n| n == "suite.yaml") => Some(p),
                _ => None,
            }));
        } else {
            out.push(PathBuf::from(arg));
        }
    }
    if out.is_empty() {
        bail!("no suite.yaml found under {}", paths.join(", "));
    }
    Ok(out)
}

fn verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let limits = Limits::default();
    let options = RunOptions {
        time_budget: Duration::from_millis(args.time_budget_ms.max(1)),
        rego_engine: args.rego_engine.parse().map_err(|e: String| anyhow!(e))?,
        compare_engines: args.compare_engines,
    };
    let mut text = String::new();
    let mut total = Counts::default();
    let mut any_failure = false;
    for path in find_suites(&args.paths, &limits)? {
        let content = read_input(&InputFile::Path(path.clone()), &limits)
            .with_context(|| format!("{}", path.display()))?;
        let docs = parse_documents(&content).with_context(|| format!("{}", path.display()))?;
        let suites: Vec<&Value> = docs.iter().filter(|d| is_suite(d)).collect();
        if suites.is_empty() {
            bail!(
                "{}: no Suite (kind Suite, apiVersion test.gatekeeper.sh/v1alpha1)",
                path.display()
            );
        }
        let files = DirFiles {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            limits,
        };
        for suite in suites {
            let result = run_suite(suite, &files, &options);
            print_suite(&mut text, &path, &result, args.verbose);
            total += result.counts();
            any_failure |= result.is_failure();
        }
    }
    text.push_str(if any_failure { "FAIL\n" } else { "PASS\n" });
    let _ = write!(text, "{} passed, {} failed", total.passed, total.failed);
    if total.skipped > 0 {
        let _ = write!(text, ", {} skipped", total.skipped);
    }
    text.push('\n');
    crate::write_output(None, &text)?;
    Ok(if any_failure { crate::EXIT_FINDINGS } else { 0 })
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// gator's Go-test-like layout: failures always, passes with --verbose, one ok/FAIL line per suite.
fn print_suite(out: &mut String, path: &Path, r: &SuiteResult, verbose: bool) {
    for t in &r.tests {
        if verbose {
            let _ = writeln!(
                out,
                "=== {}   {}",
                if t.skipped { "SKIP" } else { "RUN " },
                t.name
            );
        }
        for c in &t.cases {
            if verbose {
                let _ = writeln!(
                    out,
                    "    === {}   {}",
                    if c.skipped { "SKIP" } else { "RUN " },
                    c.name
                );
            }
            match &c.error {
                Some(e) => {
                    let _ = writeln!(
                        out,
                        "    --- FAIL: {}\t({})\n        {e}",
                        c.name,
                        secs(c.runtime)
                    );
                }
                None if verbose && !c.skipped => {
                    let _ = writeln!(out, "    --- PASS: {}\t({})", c.name, secs(c.runtime));
                }
                None => {}
            }
        }
        if t.is_failure() {
            let _ = writeln!(out, "--- FAIL: {}\t({})", t.name, secs(t.runtime));
            if let Some(e) = &t.error {
                let _ = writeln!(out, "  {e}");
            }
        } else if verbose && !t.skipped {
            let _ = writeln!(out, "--- PASS: {}\t({})", t.name, secs(t.runtime));
        }
    }
    let status = if r.is_failure() { "FAIL" } else { "ok" };
    let _ = writeln!(out, "{status}\t{}\t{}", path.display(), secs(r.runtime));
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  {e}");
    }
}
