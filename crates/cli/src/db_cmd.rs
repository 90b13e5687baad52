//! `palisade db import PATH` and `palisade db status`: the local OSV vulnerability database.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use palisade_vulndb::{Database, ImportLimits, default_path, import};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Import OSV records from a directory (recursively), a .zip as OSV publishes per ecosystem, or
    /// one .json file; replaces the database atomically.
    Import(ImportArgs),
    /// Download the per-ecosystem OSV archives (`BASE/ECOSYSTEM/all.zip`) and replace the database
    /// atomically; the old database stays in place if any download or the import fails.
    Update(UpdateArgs),
    /// Show the database's path, schema version, age, advisory counts and checksum.
    Status(StatusArgs),
}

/// Where OSV publishes its per-ecosystem archives.
pub const DEFAULT_OSV_BASE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The ecosystems palisade has version schemes and catalogers for.
const DEFAULT_ECOSYSTEMS: &[&str] = &[
    "Debian",
    "Ubuntu",
    "Alpine",
    "Red Hat",
    "Rocky Linux",
    "AlmaLinux",
    "PyPI",
    "npm",
    "crates.io",
    "Go",
    "Maven",
];

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Base URL of an OSV mirror (http, https or file://): archives are read from
    /// BASE/<ecosystem>/all.zip.
    #[arg(long, env = "PALISADE_OSV_BASE_URL", default_value = DEFAULT_OSV_BASE_URL)]
    pub base_url: String,
    /// Ecosystem to download, as OSV names it (`Debian`, `PyPI`, `Red Hat`); repeatable
    /// [default: every ecosystem palisade matches].
    #[arg(long = "ecosystem", value_name = "NAME")]
    pub ecosystems: Vec<String>,
    /// Largest archive accepted, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_archive_mib: u64,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub db: DbPath,
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct DbPath {
    /// The database file [default: $XDG_DATA_HOME/palisade/vulndb.redb or ~/.local/share/palisade/vulndb.redb].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl DbPath {
    fn resolve(&self) -> Result<PathBuf> {
        match &self.db {
            Some(p) => Ok(p.clone()),
            None => default_path()
                .ok_or_else(|| anyhow!("no --db given and neither XDG_DATA_HOME nor HOME is set")),
        }
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Directory, .zip or .json file of OSV records.
    pub path: PathBuf,
    #[command(flatten)]
    pub db: DbPath,
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: DbPath,
    /// Output format.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Recompute the content checksum and fail if it differs from the recorded one.
    #[arg(long)]
    pub verify: bool,
}

pub fn run(command: DbCommand) -> Result<u8> {
    match command {
        DbCommand::Import(args) => run_import(args),
        DbCommand::Update(args) => run_update(args),
        DbCommand::Status(args) => run_status(args),
    }
}

/// Percent-encodes an ecosystem name for a URL path segment (`Red Hat` → `Red%20Hat`).
fn path_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn run_update(args: UpdateArgs) -> Result<u8> {
    let target = args.db.resolve()?;
    let base = args.base_url.trim_end_matches('/');
    let ecosystems: Vec<String> = if args.ecosystems.is_empty() {
        DEFAULT_ECOSYSTEMS.iter().map(|e| e.to_string()).collect()
    } else {
        args.ecosystems.clone()
    };
    for e in &ecosystems {
        if e.is_empty() || e.contains('/') || e.contains("..") {
            bail!("invalid ecosystem name {e:?}");
        }
    }
    let limit = args.max_archive_mib.saturating_mul(1 << 20);
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    // Downloads go next to the database, so a full disk shows before the old database is touched.
    let staging = tempfile::Builder::new()
        .prefix(".palisade-osv-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a download directory in {}", parent.display()))?;
    let client = palisade_registry::Client::new(palisade_registry::ClientOptions::default())?;
    let started = std::time::Instant::now();
    let mut downloaded = Vec::new();
    for (i, ecosystem) in ecosystems.iter().enumerate() {
        let url = format!("{base}/{}/all.zip", path_segment(ecosystem));
        let file_name = format!("{:02}-{}.zip", i, path_segment(ecosystem).replace('%', "_"));
        let dest_path = staging.path().join(&file_name);
        let mut dest = std::io::BufWriter::new(
            std::fs::File::create(&dest_path)
                .with_context(|| format!("cannot create {}", dest_path.display()))?,
        );
        let bar = crate::progress::bytes_bar(args.no_progress, &format!("{ecosystem:<12}"));
        let bytes = if let Some(path) = url.strip_prefix("file://") {
            let mut src = std::fs::File::open(path).with_context(|| format!("{url}: cannot open"))?;
            let len = src.metadata().map(|m| m.len()).unwrap_or(0);
            if len > limit {
                bail!("{url}: {len} bytes is over the limit of {limit} bytes (--max-archive-mib)");
            }
            let n = std::io::copy(&mut std::io::Read::take(&mut src, limit), &mut dest)
                .with_context(|| format!("{url}: cannot copy"))?;
            bar.set_position(n);
            n
        } else {
            client
                .download(&url, &mut dest, limit, &mut |done, total| {
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                    bar.set_position(done);
                })
                .with_context(|| {
                    format!("downloading the {ecosystem} archive failed; the database was not changed")
                })?
        };
        std::io::Write::flush(&mut dest).with_context(|| format!("cannot write {}", dest_path.display()))?;
        bar.finish_and_clear();
        downloaded.push((ecosystem.clone(), bytes));
    }
    let spinner = crate::progress::spinner(args.no_progress, "importing");
    let report = palisade_vulndb::import_labelled(staging.path(), &target, ImportLimits::default(), base)?;
    spinner.finish_and_clear();
    let elapsed = started.elapsed();
    if args.format == "json" {
        let mut value = serde_json::to_value(&report)?;
        value["source"] = serde_json::json!(base);
        value["downloads"] = serde_json::json!(
            downloaded
                .iter()
                .map(|(e, b)| serde_json::json!({"ecosystem": e, "bytes": b}))
                .collect::<Vec<_>>()
        );
        value["elapsed_ms"] = serde_json::json!(elapsed.as_millis() as u64);
        crate::write_output(None, &format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(0);
    }
    let mut out = String::new();
    let total: u64 = downloaded.iter().map(|(_, b)| b).sum();
    writeln!(
        out,
        "downloaded {} archives ({} bytes) from {base}; imported {} advisories into {} in {:.2} s",
        downloaded.len(),
        total,
        report.advisories,
        report.database.display(),
        elapsed.as_secs_f64()
    )?;
    write_counts(&mut out, &report.per_ecosystem)?;
    writeln!(
        out,
        "skipped {}, checksum sha256:{}",
        report.skipped.len(),
        report.checksum
    )?;
    crate::write_output(None, &out)?;
    Ok(0)
}

/// Skipped files listed on stderr before the rest is summarised as a count.
const SKIPPED_SHOWN: usize = 20;

fn run_import(args: ImportArgs) -> Result<u8> {
    let target = args.db.resolve()?;
    let started = std::time::Instant::now();
    let report = import(&args.path, &target, ImportLimits::default())?;
    let elapsed = started.elapsed();
    for skipped in report.skipped.iter().take(SKIPPED_SHOWN) {
        eprintln!("palisade: warning: skipped {}: {}", skipped.file, skipped.reason);
    }
    if report.skipped.len() > SKIPPED_SHOWN {
        eprintln!(
            "palisade: warning: … and {} more skipped files",
            report.skipped.len() - SKIPPED_SHOWN
        );
    }
    if args.format == "json" {
        let mut value = serde_json::to_value(&report)?;
        value["elapsed_ms"] = serde_json::json!(elapsed.as_millis() as u64);
        crate::write_output(None, &format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(0);
    }
    let mut out = String::new();
    writeln!(
        out,
        "imported {} advisories from {} into {} in {:.2} s",
        report.advisories,
        report.source.display(),
        report.database.display(),
        elapsed.as_secs_f64()
    )?;
    write_counts(&mut out, &report.per_ecosystem)?;
    writeln!(
        out,
        "files read {}, skipped {}, not OSV (ignored) {}, duplicate ids {}, withdrawn {}",
        report.files_read,
        report.skipped.len(),
        report.ignored,
        report.duplicates,
        report.withdrawn
    )?;
    writeln!(
        out,
        "size {} bytes, checksum sha256:{}",
        report.size_bytes, report.checksum
    )?;
    crate::write_output(None, &out)?;
    Ok(0)
}

fn run_status(args: StatusArgs) -> Result<u8> {
    let path = args.db.resolve()?;
    let db = Database::open(&path)?;
    let status = db.status()?;
    let verified = if args.verify { Some(db.verify()?) } else { None };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let age = now.saturating_sub(status.imported_at);
    if args.format == "json" {
        let mut value = serde_json::to_value(&status)?;
        value["age_seconds"] = serde_json::json!(age);
        if let Some(ok) = verified {
            value["checksum_verified"] = serde_json::json!(ok);
        }
        crate::write_output(None, &format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        let mut out = String::new();
        writeln!(out, "database    {}", status.path.display())?;
        writeln!(out, "schema      {}", status.schema_version)?;
        writeln!(
            out,
            "imported    {} ({} ago)",
            utc_timestamp(status.imported_at),
            human_age(age)
        )?;
        writeln!(out, "source      {}", status.source)?;
        writeln!(out, "size        {} bytes", status.size_bytes)?;
        writeln!(out, "checksum    sha256:{}", status.checksum)?;
        if let Some(ok) = verified {
            writeln!(
                out,
                "verified    {}",
                if ok {
                    "yes"
                } else {
                    "NO: content differs from the checksum"
                }
            )?;
        }
        writeln!(out, "advisories  {}", status.advisories)?;
        write_counts(&mut out, &status.per_ecosystem)?;
        crate::write_output(None, &out)?;
    }
    if verified == Some(false) {
        bail!(
            "{}: content checksum does not match the recorded one: import the data again",
            path.display()
        );
    }
    Ok(0)
}

fn write_counts(out: &mut String, counts: &std::collections::BTreeMap<String, u64>) -> Result<()> {
    let width = counts.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    for (ecosystem, count) in counts {
        writeln!(out, "  {ecosystem:<width$}  {count:>8}").context("formatting counts")?;
    }
    Ok(())
}

fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} days {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds.
fn utc_timestamp(seconds: u64) -> String {
    palisade_core::date::rfc3339_utc(seconds as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_ages() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(utc_timestamp(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(human_age(59), "59 s");
        assert_eq!(human_age(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(human_age(2 * 86_400 + 3600), "2 days 1 h");
    }
}
