//! `palisade scan image` and `palisade scan fs`: open the image or directory, run the catalogers and
//! print the OS, layers and packages with their layer attribution (table or JSON).

use crate::{EXIT_ERROR, write_output};
use anyhow::Result;
use clap::Args;
use palisade_image::{ImageReport, Limits, Platform};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ScanImageArgs {
    /// A docker-archive (`docker save`) or OCI archive file, or an OCI image layout directory.
    #[arg(value_name = "ARCHIVE|DIR")]
    pub image: PathBuf,
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
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only the software inventory (OS and packages), without config, layers and warnings.
    #[arg(long)]
    pub sbom_only: bool,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub fn scan_image(args: ScanImageArgs) -> Result<u8> {
    let platform = match args.platform.as_deref().map(Platform::parse).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("palisade: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    let report = match palisade_image::scan_image(&args.image, platform.as_ref(), &Limits::default(), &mut [])
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    emit(&report, &args.common)
}

pub fn scan_fs(args: ScanFsArgs) -> Result<u8> {
    let report = match palisade_image::scan_directory(&args.dir, &Limits::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    emit(&report, &args.common)
}

fn emit(report: &ImageReport, args: &InventoryArgs) -> Result<u8> {
    let text = match args.format.as_str() {
        "json" if args.sbom_only => {
            let v =
                serde_json::json!({ "target": report.target, "os": report.os, "packages": report.packages });
            serde_json::to_string_pretty(&v)? + "\n"
        }
        "json" => serde_json::to_string_pretty(report)? + "\n",
        _ => table(report, args.sbom_only),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(0)
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
