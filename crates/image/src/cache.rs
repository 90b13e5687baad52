//! Scan results kept by image digest, so the admission webhook can judge an image the scanner (CI
//! or a previous on-demand scan) has already looked at. One small JSON file per digest; writes go
//! through a temporary file and a rename so readers never see half a file.

use crate::scan::ImageReport;
use crate::vulns::Vulnerabilities;
use palisade_core::{Finding, Severity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub digest: String,
    pub target: String,
    /// Seconds since the Unix epoch.
    pub scanned_at: u64,
    /// Whether vulnerabilities were matched against a database (false: only configuration checks).
    pub vulnerabilities_evaluated: bool,
    pub vulnerabilities: usize,
    pub misconfigurations: usize,
    /// The worst severity among all findings, if any.
    pub worst: Option<String>,
    /// Findings per severity.
    pub counts: std::collections::BTreeMap<String, usize>,
}

impl ScanSummary {
    pub fn new(report: &ImageReport, vulns: &Vulnerabilities, findings: &[Finding]) -> ScanSummary {
        let mut counts = std::collections::BTreeMap::new();
        let mut worst: Option<Severity> = None;
        let severities = vulns
            .matches
            .iter()
            .filter_map(|m| m.advisory.severity)
            .chain(findings.iter().map(|f| f.severity));
        for s in severities {
            *counts.entry(s.as_str().to_string()).or_insert(0) += 1;
            worst = worst.max(Some(s));
        }
        ScanSummary {
            digest: report.manifest_digest.clone().unwrap_or_default(),
            target: report.target.clone(),
            scanned_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            vulnerabilities_evaluated: vulns.status == "evaluated",
            vulnerabilities: vulns.matches.len(),
            misconfigurations: findings.len(),
            worst: worst.map(|s| s.as_str().to_string()),
            counts,
        }
    }

    pub fn worst_severity(&self) -> Option<Severity> {
        self.worst.as_deref().and_then(|w| w.parse().ok())
    }

    pub fn age(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(now.saturating_sub(self.scanned_at))
    }
}

fn cache_path(dir: &Path, digest: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| dir.join(format!("sha256-{hex}.json")))
}

/// Stores the summary under each of `digests` (an index digest and its platform manifest's).
pub fn write(dir: &Path, digests: &[&str], summary: &ScanSummary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    for digest in digests {
        let Some(path) = cache_path(dir, digest) else {
            continue;
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// The summary for `digest`, if one exists and is younger than `max_age`.
pub fn read(dir: &Path, digest: &str, max_age: Duration) -> Option<ScanSummary> {
    let path = cache_path(dir, digest)?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > 1024 * 1024 {
        return None;
    }
    let summary: ScanSummary = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    (summary.age() <= max_age).then_some(summary)
}
