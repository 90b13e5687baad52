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
    /// Show the database's path, schema version, age, advisory counts and checksum.
    Status(StatusArgs),
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
        DbCommand::Status(args) => run_status(args),
    }
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

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (proleptic Gregorian calendar).
fn utc_timestamp(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    // Days since 0000-03-01 in 400-year eras, so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
