//! `palisade scan image` and `palisade scan fs`: open the image or directory, run the catalogers and
//! print the OS, layers and packages with their layer attribution (table or JSON).

use crate::{EXIT_ERROR, write_output};
use anyhow::Result;
use clap::Args;
use palisade_image::secrets::{SecretState, SecretVisitor, SecretsReport};
use palisade_image::vulns::Vulnerabilities;
use palisade_image::{ImageReport, Limits, Platform};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ScanImageArgs {
    /// A docker-archive (`docker save`) or OCI archive file, an OCI image layout directory, or a
    /// registry reference (`registry/repo:tag`, `@sha256:...`) pulled with ~/.docker/config.json credentials.
    #[arg(value_name = "ARCHIVE|DIR|REF")]
    pub image: PathBuf,
    /// Registries to reach over plain HTTP (loopback always is).
    #[arg(long)]
    pub insecure_registry: Vec<String>,
    /// Keep a summary of the result by image digest in this directory, for the admission webhook's
    /// scan gate (`admission.images.scan.cacheDir`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Platform to pick from a multi-platform index: os/arch[/variant] [default: linux/<this machine>].
    #[arg(long)]
    pub platform: Option<String>,
    #[command(flatten)]
    pub common: InventoryArgs,
}

#[derive(Args, Debug)]
pub struct ScanFsArgs {
    /// Directory or unpacked root filesystem (symlinks are not followed).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub common: InventoryArgs,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json", "sarif", "junit", "cyclonedx", "spdx"])]
    pub format: String,
    /// Only the software inventory (OS and packages), without config, layers and warnings.
    #[arg(long)]
    pub sbom_only: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Vulnerability database (`palisade db import`) [default: $XDG_DATA_HOME/palisade/vulndb.redb].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Leave out vulnerabilities that have no fixed version yet.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Exit with code 1 when a vulnerability, secret, malware or configuration finding reaches this
    /// severity.
    #[arg(long, value_parser = ["critical", "high", "medium", "low", "info"])]
    pub fail_on: Option<String>,
    /// Scanners to run, comma-separated: vuln (packages against the database), secret
    /// (credentials in files, deleted files and the image config), malware (YARA rules over every
    /// file), config (image configuration).
    #[arg(long, value_delimiter = ',', value_parser = SCANNERS, default_values = SCANNERS)]
    pub scanners: Vec<String>,
    /// Directory (searched recursively) or file of YARA rules (`.yar`, `.yara`) to run besides the
    /// built-in malware rules; repeatable.
    #[arg(long, value_name = "DIR")]
    pub yara_rules: Vec<PathBuf>,
    /// No progress display on standard error (it is only drawn on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Exceptions file (YAML, the `scan k8s --exceptions` format): vulnerabilities by id or alias and
    /// findings by rule, each with a reason and an optional expiry; suppressed findings are listed apart.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
}

/// Every scanner `--scanners` accepts; new ones are added here.
const SCANNERS: [&str; 4] = ["vuln", "secret", "malware", "config"];

impl InventoryArgs {
    /// Whether `name` runs: selected with `--scanners`, and not an SBOM-only run.
    fn runs(&self, name: &str) -> bool {
        !self.sbom_only && self.scanners.iter().any(|s| s == name)
    }

    /// A secret visitor for the walk, when the secret scanner runs.
    fn secret_visitor(&self) -> Result<Option<SecretVisitor>> {
        if !self.runs("secret") {
            return Ok(None);
        }
        Ok(Some(SecretVisitor::new()?))
    }
}

/// What the file walk of an image or directory produced.
struct Walked {
    report: ImageReport,
    secrets: Option<SecretsReport>,
    malware: Option<palisade_malware::MalwareResults>,
}

/// Runs `scan` (an image or directory walk) with the content scanners `--scanners` selects and the
/// progress display; `Ok(None)` after printing a scan error (exit 2).
fn walk(
    args: &InventoryArgs,
    scan: impl FnOnce(&mut [&mut dyn palisade_image::FileVisitor]) -> palisade_image::Result<ImageReport>,
) -> Result<Option<Walked>> {
    crate::ignore::check(args.ignore_file.as_deref())?;
    let engine = if args.runs("malware") {
        Some(std::sync::Arc::new(crate::malware::engine(&args.yara_rules)?))
    } else {
        None
    };
    let mut secret_visitor = args.secret_visitor()?;
    let mut malware = engine
        .map(palisade_malware::MalwareVisitor::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("cannot start the malware scanner: {e}"))?;
    let mut progress = crate::progress::ScanProgress::new(args.no_progress, "scanning");
    let mut extra: Vec<&mut dyn palisade_image::FileVisitor> = vec![&mut progress];
    if let Some(v) = secret_visitor.as_mut() {
        extra.push(v);
    }
    if let Some(m) = malware.as_mut() {
        extra.push(m);
    }
    let result = scan(&mut extra);
    drop(extra);
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: {e}");
            return Ok(None);
        }
    };
    let is_image = !report.layers.is_empty();
    Ok(Some(Walked {
        secrets: secret_visitor.map(|v| v.finish(&report)),
        malware: malware.map(|m| m.finish(is_image.then_some(&report.filesystem))),
        report,
    }))
}

fn match_vulnerabilities(report: &ImageReport, args: &InventoryArgs) -> Vulnerabilities {
    let path = args.db.clone().or_else(palisade_vulndb::default_path);
    palisade_image::vulns::match_vulnerabilities(report, path.as_deref(), args.ignore_unfixed)
}

pub fn scan_image(args: ScanImageArgs) -> Result<u8> {
    let platform = match args.platform.as_deref().map(Platform::parse).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("palisade: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    // A path that exists is a local archive or layout; anything else is a registry reference,
    // pulled into a temporary OCI layout (removed afterwards) and scanned from there.
    let pulled;
    let mut pulled_digest: Option<String> = None;
    let path = if args.image.exists() {
        args.image.clone()
    } else {
        let text = args.image.to_string_lossy().to_string();
        let reference = match palisade_registry::Reference::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "palisade: {}: no such file, and not an image reference: {e}",
                    args.image.display()
                );
                return Ok(EXIT_ERROR);
            }
        };
        let docker_config = match palisade_registry::DockerConfig::default_path() {
            Some(p) => palisade_registry::DockerConfig::load(&p)?,
            None => Default::default(),
        };
        let client = palisade_registry::Client::new(palisade_registry::ClientOptions {
            docker_config,
            insecure_registries: args.insecure_registry.clone(),
            ..Default::default()
        })?;
        pulled = tempfile::tempdir()?;
        let wanted = platform
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("linux/{}", default_arch()));
        let bar = crate::progress::bytes_bar(args.common.no_progress, &format!("pulling {reference}"));
        let pulled_result =
            client.pull_to_layout_with_progress(&reference, &wanted, pulled.path(), &mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
        bar.finish_and_clear();
        match pulled_result {
            Ok((top, _)) => pulled_digest = Some(top),
            Err(e) => {
                eprintln!("palisade: {e}");
                return Ok(EXIT_ERROR);
            }
        }
        pulled.path().to_path_buf()
    };
    let Some(Walked {
        mut report,
        secrets,
        malware,
    }) = walk(&args.common, |extra| {
        palisade_image::scan_image(&path, platform.as_ref(), &Limits::default(), extra)
    })?
    else {
        return Ok(EXIT_ERROR);
    };
    if let Some(dir) = &args.cache_dir {
        let vulns = match_vulnerabilities(&report, &args.common);
        let summary =
            palisade_image::cache::ScanSummary::new(&report, &vulns, &palisade_image::audit::audit(&report));
        let digests: Vec<&str> = report
            .manifest_digest
            .iter()
            .chain(pulled_digest.iter())
            .map(String::as_str)
            .collect();
        palisade_image::cache::write(dir, &digests, &summary)
            .map_err(|e| anyhow::anyhow!("cannot write the scan cache {}: {e}", dir.display()))?;
    }
    emit(&mut report, secrets, malware, &args.common)
}

pub fn scan_fs(args: ScanFsArgs) -> Result<u8> {
    let Some(Walked {
        mut report,
        secrets,
        malware,
    }) = walk(&args.common, |extra| {
        palisade_image::scan_directory_with(&args.dir, &Limits::default(), extra)
    })?
    else {
        return Ok(EXIT_ERROR);
    };
    emit(&mut report, secrets, malware, &args.common)
}

fn emit(
    report: &mut ImageReport,
    mut secrets: Option<SecretsReport>,
    mut malware: Option<palisade_malware::MalwareResults>,
    args: &InventoryArgs,
) -> Result<u8> {
    let fail_on: Option<palisade_core::Severity> = args.fail_on.as_deref().map(str::parse).transpose()?;
    // The configuration checks read the raw config; everything printed after this point comes
    // from the redacted report.
    let mut misconfigurations = if args.runs("config") {
        Some(palisade_image::audit::audit(report))
    } else {
        None
    };
    palisade_image::secrets::redact_report(report);
    let report: &ImageReport = report;
    let mut vulns = if args.runs("vuln") {
        Some(match_vulnerabilities(report, args))
    } else {
        None
    };
    let mut config_findings = misconfigurations.take().unwrap_or_default();
    let suppression = crate::ignore::apply(
        report,
        args.ignore_file.as_deref().filter(|_| !args.sbom_only),
        vulns.as_mut(),
        &mut config_findings,
        secrets.as_mut(),
        malware.as_mut(),
    )?;
    let (secrets, malware) = (secrets.as_ref(), malware.as_ref());
    if args.runs("config") || !config_findings.is_empty() {
        misconfigurations = Some(config_findings);
    }
    let failed = fail_on.is_some_and(|limit| {
        vulns.as_ref().is_some_and(|v| {
            v.matches
                .iter()
                .any(|m| m.advisory.severity.is_some_and(|s| s >= limit))
        }) || misconfigurations.iter().flatten().any(|f| f.severity >= limit)
            || secrets.is_some_and(|s| s.findings.iter().any(|f| f.severity >= limit))
            || malware.is_some_and(|m| m.matches.iter().any(|d| d.detection.severity >= limit))
    });
    let text = match args.format.as_str() {
        "cyclonedx" | "spdx" => crate::sbom_cmd::render(report, vulns.as_ref(), &args.format)?,
        "sarif" | "junit" => {
            let mut findings = vulns
                .as_ref()
                .map(|v| palisade_image::vulns::to_findings(report, v))
                .unwrap_or_default();
            if let Some(s) = secrets {
                findings.extend(palisade_image::secrets::to_findings(report, s));
            }
            findings.extend(misconfigurations.iter().flatten().cloned());
            if let Some(m) = malware {
                findings.extend(palisade_malware::to_findings(report, m));
            }
            findings.extend(suppression.suppressed.iter().cloned());
            let mut rules: Vec<&'static palisade_core::RuleMeta> = Vec::new();
            if vulns.is_some() {
                rules.push(&palisade_image::vulns::VULNERABLE_PACKAGE);
            }
            if secrets.is_some() {
                rules.extend(palisade_secrets::rules());
                // Env secrets no detector recognises are reported under this rule.
                rules.push(&palisade_image::audit::SECRET_IN_ENV);
            }
            if misconfigurations.is_some() {
                rules.extend(palisade_image::audit::RULES.iter().copied());
            }
            if malware.is_some() {
                rules.extend(palisade_malware::catalogue::RULES.iter().copied());
            }
            if args.ignore_file.is_some() {
                rules.push(&palisade_core::exception::EXPIRED_EXCEPTION_RULE);
            }
            let mut ids = std::collections::BTreeSet::new();
            rules.retain(|r| ids.insert(r.id));
            let mut notes = Vec::new();
            if let Some(v) = vulns.as_ref().filter(|v| v.status != "evaluated") {
                notes.push(palisade_report::Note {
                    kind: "not-evaluated".into(),
                    file: report.target.clone(),
                    line: None,
                    message: format!("vulnerabilities {}", v.status),
                });
            }
            let out = palisade_report::Report {
                header: palisade_report::Header {
                    tool_version: env!("CARGO_PKG_VERSION").to_string(),
                    scan_kind: "image".into(),
                    inputs: vec![report.target.clone()],
                    rules,
                },
                findings,
                notes,
                stats: palisade_report::Stats {
                    files: 1,
                    objects: report.packages.len(),
                    ..Default::default()
                },
            };
            let format = if args.format == "sarif" {
                palisade_report::Format::Sarif
            } else {
                palisade_report::Format::Junit
            };
            out.render(format, palisade_report::RenderOptions::default())?
        }
        "json" if args.sbom_only => {
            let v =
                serde_json::json!({ "target": report.target, "os": report.os, "packages": report.packages });
            serde_json::to_string_pretty(&v)? + "\n"
        }
        "json" => {
            let mut v = serde_json::to_value(report)?;
            if let Some(map) = v.as_object_mut() {
                if let Some(vulns) = &vulns {
                    map.insert("vulnerabilities".into(), serde_json::to_value(vulns)?);
                }
                if let Some(secrets) = secrets {
                    map.insert("secrets".into(), serde_json::to_value(secrets)?);
                }
                if let Some(misconfigurations) = &misconfigurations {
                    map.insert(
                        "misconfigurations".into(),
                        serde_json::to_value(misconfigurations)?,
                    );
                }
                if let Some(m) = malware {
                    map.insert("malware".into(), serde_json::to_value(m)?);
                }
                if args.ignore_file.is_some() {
                    map.insert(
                        "suppressed".into(),
                        serde_json::to_value(&suppression.suppressed)?,
                    );
                }
            }
            serde_json::to_string_pretty(&v)? + "\n"
        }
        _ => {
            let mut text = table(report, args.sbom_only);
            if let Some(v) = &vulns {
                vulnerability_table(&mut text, v);
            }
            if let Some(s) = secrets {
                secret_table(&mut text, s);
            }
            if let Some(misconfigurations) = &misconfigurations {
                let _ = writeln!(text, "\nConfiguration: {}", misconfigurations.len());
                for f in misconfigurations {
                    let _ = writeln!(
                        text,
                        "  {:<8} {:<26} {}",
                        f.severity.as_str().to_uppercase(),
                        f.rule_id,
                        f.message
                    );
                }
            }
            if let Some(m) = malware {
                crate::malware::table(&mut text, m);
            }
            crate::ignore::table(&mut text, &suppression);
            text
        }
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(if failed { crate::EXIT_FINDINGS } else { 0 })
}

fn vulnerability_table(s: &mut String, v: &Vulnerabilities) {
    if v.status != "evaluated" {
        let _ = writeln!(s, "\nVulnerabilities: {}", v.status);
        return;
    }
    let _ = writeln!(s, "\nVulnerabilities: {}", v.matches.len());
    for m in &v.matches {
        let severity = m
            .advisory
            .severity
            .map(|s| s.as_str().to_uppercase())
            .unwrap_or_else(|| "UNKNOWN".into());
        let score = m
            .advisory
            .cvss
            .as_ref()
            .and_then(|c| c.score)
            .map(|s| format!("{s:.1}"))
            .unwrap_or_default();
        let cve = m
            .advisory
            .aliases
            .iter()
            .find(|a| a.starts_with("CVE-"))
            .cloned()
            .unwrap_or_default();
        let fixed = if m.advisory.fixed_versions.is_empty() {
            "no fix".to_string()
        } else {
            m.advisory.fixed_versions.join(", ")
        };
        let layer = m.layer.map(|l| format!("layer {l}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {severity:<8} {score:>4}  {:<22} {:<16} {:<30} {:<14} fixed: {fixed:<16} {layer:<8} {}",
            m.advisory.id,
            cve,
            format!("{} {}", m.package, m.version),
            m.ecosystem,
            m.path
        );
    }
    if !v.unevaluated.is_empty() {
        let _ = writeln!(
            s,
            "  ({} advisories could not be evaluated; see --format json)",
            v.unevaluated.len()
        );
    }
}

fn secret_table(s: &mut String, secrets: &SecretsReport) {
    let _ = writeln!(
        s,
        "\nSecrets: {} ({} files, {} bytes scanned)",
        secrets.findings.len(),
        secrets.files_scanned,
        secrets.bytes_scanned
    );
    for f in &secrets.findings {
        let place = match f.line {
            Some(line) => format!("{}:{line}", f.location),
            None => f.location.clone(),
        };
        let layer = match (f.layer, &f.layer_digest) {
            (Some(l), Some(d)) => format!("layer {l} {}", short(d)),
            _ => "config".to_string(),
        };
        let state = match (f.state, f.removed_by_layer) {
            (SecretState::Removed, Some(by)) => format!("  REMOVED by layer {by}, still in the image"),
            (SecretState::Unknown, _) => "  (layer attribution unknown)".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<8} {:<34} {:<40} {:<20} {}{state}",
            f.severity.as_str().to_uppercase(),
            f.rule.id,
            place,
            layer,
            f.redacted
        );
        if let Some(cmd) = &f.created_by {
            let cmd: String = cmd.chars().take(100).collect();
            let _ = writeln!(s, "           introduced by: {cmd}");
        }
    }
    let mut notes = Vec::new();
    if secrets.files_skipped_too_large > 0 {
        notes.push(format!(
            "{} files over the size bound not scanned",
            secrets.files_skipped_too_large
        ));
    }
    if secrets.files_truncated > 0 {
        notes.push(format!("{} files only partly scanned", secrets.files_truncated));
    }
    if secrets.matches_dropped > 0 {
        notes.push(format!(
            "{} matches over the per-file bound not shown",
            secrets.matches_dropped
        ));
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "  ({})", notes.join("; "));
    }
}

fn short(digest: &str) -> &str {
    let d = digest.strip_prefix("sha256:").unwrap_or(digest);
    &d[..d.len().min(12)]
}

fn table(r: &ImageReport, sbom_only: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Target: {}", r.target);
    match &r.os {
        Some(os) => {
            let _ = writeln!(s, "OS: {} {} {}", os.id, os.version_id, os.version_codename);
        }
        None => {
            let _ = writeln!(s, "OS: not detected");
        }
    }
    if !sbom_only {
        if let Some(c) = &r.config {
            let user = if c.user.is_empty() { "(root)" } else { &c.user };
            let _ = writeln!(
                s,
                "Platform: {}/{}   User: {}   Ports: {}",
                c.os,
                c.architecture,
                user,
                c.exposed_ports.join(", ")
            );
        }
        if !r.layers.is_empty() {
            let _ = writeln!(s, "\nLayers:");
            for l in &r.layers {
                let cmd = l
                    .history
                    .as_ref()
                    .and_then(|h| h.created_by.as_deref())
                    .unwrap_or("-");
                let cmd: String = cmd.chars().take(90).collect();
                let _ = writeln!(
                    s,
                    "  {:>2}  {}  {:>10}  {:<4}  {}",
                    l.index,
                    short(&l.digest),
                    l.uncompressed_size,
                    l.compression,
                    cmd
                );
            }
        }
    }
    let mut by_eco: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for p in &r.packages {
        by_eco.entry(p.ecosystem).or_default().push(p);
    }
    let _ = writeln!(s, "\nPackages: {}", r.packages.len());
    for (eco, pkgs) in by_eco {
        let _ = writeln!(s, "\n  {} ({})", eco, pkgs.len());
        for p in pkgs {
            let layer = p.layer.map(|l| format!("layer {l}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "    {:<40} {:<24} {:<8} {}",
                display_name(p),
                p.version,
                layer,
                p.path
            );
        }
    }
    if !sbom_only && !r.warnings.is_empty() {
        let _ = writeln!(s, "\nWarnings:");
        for w in &r.warnings {
            let _ = writeln!(
                s,
                "  {}: {}",
                if w.path.is_empty() { "-" } else { &w.path },
                w.message
            );
        }
    }
    s
}

fn display_name(p: &palisade_image::Package) -> String {
    match &p.namespace {
        Some(ns) => format!("{ns}:{}", p.name),
        None => p.name.clone(),
    }
}

/// The OCI architecture name of this machine.
fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
