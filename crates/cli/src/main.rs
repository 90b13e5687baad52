//! The `palisade` binary: argument parsing and wiring of the library crates, nothing else.

mod admission_cmd;
mod config;
mod db_cmd;
mod ignore;
mod image_cmd;
mod malware;
mod netpol_cmd;
mod policy_cmd;
mod progress;
mod rules_cmd;
mod sbom_cmd;
mod scan_k8s;
mod waf_cmd;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

// The global allocator is regorus' vendored mimalloc (declared by regorus with its
// `allocator-memory-limits` feature; see the workspace Cargo.toml): it counts allocations so that
// Rego evaluation can be bounded in memory.

/// Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Kubernetes security: posture, images, admission, WAF, runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan manifests (and later images and filesystems) for security problems.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// The rule catalogue.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The admission webhook: serve it, print its cluster manifests, audit existing objects.
    #[command(subcommand)]
    Admission(AdmissionCommand),
    /// NetworkPolicy microsegmentation: suggested policies and a per-namespace summary.
    #[command(subcommand)]
    Netpol(NetpolCommand),
    /// The vulnerability database (OSV): import, status.
    #[command(subcommand)]
    Db(db_cmd::DbCommand),
    /// Admission policies: run Gatekeeper test suites.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// The web application firewall: a reverse proxy running SecLang rules (OWASP CRS).
    #[command(subcommand)]
    Waf(waf_cmd::WafCommand),
}

#[derive(Subcommand)]
enum ScanCommand {
    /// Posture of Kubernetes manifests: files, directories (recursively) and `-` for stdin.
    K8s(scan_k8s::ScanK8sArgs),
    /// Packages and layers of a docker-archive, OCI archive or OCI layout image.
    Image(image_cmd::ScanImageArgs),
    /// Packages in a directory or unpacked root filesystem.
    Fs(image_cmd::ScanFsArgs),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// List every rule.
    List(rules_cmd::ListArgs),
    /// Explain one rule: what it checks, why, how to fix it, framework references, examples.
    Explain(rules_cmd::ExplainArgs),
}

#[derive(Subcommand)]
enum AdmissionCommand {
    /// Run the validating and mutating webhook over HTTPS.
    Serve(admission_cmd::ServeArgs),
    /// Print the Namespace, ServiceAccount, Deployment, Service and webhook configurations.
    Manifests(admission_cmd::ManifestsArgs),
    /// Evaluate existing objects against the admission policy (exit 1 when any would be denied).
    Audit(admission_cmd::AuditArgs),
}

#[derive(Subcommand)]
enum NetpolCommand {
    /// Write default-deny and allow NetworkPolicies derived from the workloads and Services in the input.
    Suggest(netpol_cmd::SuggestArgs),
    /// Per namespace: workloads, how many a policy selects, default-deny coverage, allow-all policies.
    Summary(netpol_cmd::SummaryArgs),
}

/// Options every command that writes a report shares.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json", "sarif", "junit"])]
    pub format: String,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<std::path::PathBuf>,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// Print nothing but the report (no progress or hints on stderr).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn main() -> ExitCode {
    // One crypto provider for every TLS use; a dependency that brings aws-lc-rs must not make rustls
    // choose at run time.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(ScanCommand::K8s(args)) => scan_k8s::run(args),
        Command::Scan(ScanCommand::Image(args)) => image_cmd::scan_image(args),
        Command::Scan(ScanCommand::Fs(args)) => image_cmd::scan_fs(args),
        Command::Rules(RulesCommand::List(args)) => rules_cmd::list(args),
        Command::Rules(RulesCommand::Explain(args)) => rules_cmd::explain(args),
        Command::Admission(AdmissionCommand::Serve(args)) => admission_cmd::serve(args),
        Command::Admission(AdmissionCommand::Manifests(args)) => admission_cmd::print_manifests(args),
        Command::Admission(AdmissionCommand::Audit(args)) => admission_cmd::audit(args),
        Command::Netpol(NetpolCommand::Suggest(args)) => netpol_cmd::suggest(args),
        Command::Netpol(NetpolCommand::Summary(args)) => netpol_cmd::summary(args),
        Command::Db(cmd) => db_cmd::run(cmd),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Waf(cmd) => waf_cmd::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("palisade: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Writes `text` to the output file or standard output.
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
                // A closed pipe (`| head`) is not an error worth a message.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(Into::into),
            }
        }
    }
}

/// Whether to colour output written to standard output.
pub fn use_color(choice: &str, to_file: bool) -> bool {
    use std::io::IsTerminal;
    match choice {
        "always" => true,
        "never" => false,
        _ => !to_file && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    }
}
