//! The scan gate: deny images whose scan result has findings at or above a severity. Results come
//! from the cache `palisade scan image --cache-dir` fills (in CI, or an earlier on-demand scan);
//! on a miss the webhook pulls and scans the image itself, bounded by the image limits and by the
//! request's time budget (a scan that outlives it still fills the cache for the next request).

use palisade_core::glob::glob_match;
use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};
use palisade_registry::{Client, Reference};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub static IMAGE_SCAN: RuleMeta = RuleMeta {
    id: "admission.image-scan",
    title: "Image scan has findings at or above the gate's severity",
    severity: Severity::High,
    category: Category::Vulnerability,
    description: "The image's scan (vulnerabilities and configuration) has a finding at or above \
                  admission.images.scan.failOn, or the image could not be scanned.",
    rationale: "Known-vulnerable images are the most common way attackers get code execution in clusters; \
                the gate keeps them out at deploy time, with the same scanner developers run in CI.",
    remediation: "Rebuild the image with fixed packages (see `palisade scan image`), or record an exception.",
    frameworks: &[
        FrameworkRef::new(Framework::Nist800190, "4.1.1"),
        FrameworkRef::new(Framework::NsaCisa, "Building secure container images"),
        FrameworkRef::new(Framework::MitreAttack, "T1190"),
    ],
    fixtures: Fixtures { pass: &[], fail: &[] },
};

/// `admission.images.scan` in palisade.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanGateConfig {
    /// Deny at or above this severity.
    pub fail_on: String,
    /// Where scan summaries live (written by `palisade scan image --cache-dir`).
    pub cache_dir: String,
    /// Scan images missing from the cache (default true).
    #[serde(default)]
    pub on_demand: Option<bool>,
    /// Vulnerability database for on-demand scans [default: the standard location].
    #[serde(default)]
    pub db: Option<String>,
    /// Cached results older than this are scanned again (default 24).
    #[serde(default)]
    pub max_age_hours: Option<u64>,
    /// Image globs (`registry/repo`) the gate applies to; empty: all.
    #[serde(default)]
    pub images: Vec<String>,
    /// Platform to scan from multi-platform images (default linux/amd64).
    #[serde(default)]
    pub platform: Option<String>,
}

pub struct ScanGate {
    fail_on: Severity,
    cache_dir: PathBuf,
    on_demand: bool,
    db: Option<PathBuf>,
    max_age: Duration,
    images: Vec<String>,
    platform: String,
    client: Client,
}

impl ScanGate {
    pub fn new(config: &ScanGateConfig, client: Client) -> Result<ScanGate, String> {
        let fail_on = config
            .fail_on
            .parse()
            .map_err(|e| format!("admission.images.scan.failOn: {e}"))?;
        Ok(ScanGate {
            fail_on,
            cache_dir: PathBuf::from(&config.cache_dir),
            on_demand: config.on_demand.unwrap_or(true),
            db: config
                .db
                .as_ref()
                .map(PathBuf::from)
                .or_else(palisade_vulndb::default_path),
            max_age: Duration::from_secs(config.max_age_hours.unwrap_or(24).saturating_mul(3600)),
            images: config.images.clone(),
            platform: config.platform.clone().unwrap_or_else(|| "linux/amd64".into()),
            client,
        })
    }

    /// `Ok(())` when the image passes (or the gate does not apply to it); `Err(why)` otherwise.
    /// A `dry_run` request is judged the same way but leaves no trace: an on-demand scan's result
    /// is not written to the cache (AdmissionReview dryRun promises no side effects).
    pub fn check(&self, image: &str, dry_run: bool) -> Result<(), String> {
        let reference = Reference::parse(image).map_err(|e| e.to_string())?;
        let name = format!("{}/{}", reference.registry, reference.repository);
        if !self.images.is_empty() && !self.images.iter().any(|g| glob_match(g, &name)) {
            return Ok(());
        }
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => {
                self.client
                    .get_manifest(&reference)
                    .map_err(|e| format!("cannot resolve {image}: {e}"))?
                    .digest
            }
        };
        let summary = match palisade_image::cache::read(&self.cache_dir, &digest, self.max_age) {
            Some(s) => s,
            None if self.on_demand => self.scan(&reference, &digest, !dry_run)?,
            None => return Err(format!("{image} ({digest}) has not been scanned")),
        };
        match summary.worst_severity() {
            Some(worst) if worst >= self.fail_on => Err(format!(
                "{image} ({digest}) scan has {} vulnerabilities and {} configuration findings, worst {worst} (gate: {})",
                summary.vulnerabilities, summary.misconfigurations, self.fail_on
            )),
            _ if !summary.vulnerabilities_evaluated => Err(format!(
                "{image} ({digest}): vulnerabilities were not evaluated (no database)"
            )),
            _ => Ok(()),
        }
    }

    fn scan(
        &self,
        reference: &Reference,
        digest: &str,
        keep: bool,
    ) -> Result<palisade_image::cache::ScanSummary, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let pinned = reference.with_digest(digest);
        let (top, _) = self
            .client
            .pull_to_layout(&pinned, &self.platform, dir.path())
            .map_err(|e| e.to_string())?;
        let platform = palisade_image::Platform::parse(&self.platform).map_err(|e| e.to_string())?;
        let report = palisade_image::scan_image(
            dir.path(),
            Some(&platform),
            &palisade_image::Limits::default(),
            &mut [],
        )
        .map_err(|e| e.to_string())?;
        let vulns = palisade_image::vulns::match_vulnerabilities(&report, self.db.as_deref(), false);
        let summary =
            palisade_image::cache::ScanSummary::new(&report, &vulns, &palisade_image::audit::audit(&report));
        let digests: Vec<&str> = report
            .manifest_digest
            .iter()
            .map(String::as_str)
            .chain([top.as_str()])
            .collect();
        if !keep {
            return Ok(summary);
        }
        if let Err(e) = palisade_image::cache::write(&self.cache_dir, &digests, &summary) {
            eprintln!(
                "palisade admission: cannot write the scan cache {}: {e}",
                self.cache_dir.display()
            );
        }
        Ok(summary)
    }
}
