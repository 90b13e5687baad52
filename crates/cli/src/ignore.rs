//! `--ignore-file` for `scan image` and `scan fs`: loads the exceptions file and applies it to the
//! scan's results (the image crate's `suppress`), and prints what was suppressed. The file is only
//! read when named: a file found by itself in the working directory would change a CI result
//! without anything on the command line saying so.

use anyhow::Result;
use palisade_core::Finding;
use palisade_image::ImageReport;
use palisade_image::secrets::SecretsReport;
use palisade_image::suppress::{Suppression, retain_unexcepted};
use palisade_image::vulns::Vulnerabilities;
use palisade_malware::MalwareResults;
use std::fmt::Write as _;
use std::path::Path;

/// Reads the ignore file once before scanning, so a mistake in it fails in a second rather than after
/// a long pull and scan.
pub fn check(path: Option<&Path>) -> Result<()> {
    if let Some(path) = path {
        crate::config::load_exceptions(path)?;
    }
    Ok(())
}

/// Applies the ignore file, if any. Expired exceptions are added to `misconfigurations` as
/// `exception.expired` findings, so they are reported and count for `--fail-on`.
pub fn apply(
    report: &ImageReport,
    path: Option<&Path>,
    vulns: Option<&mut Vulnerabilities>,
    misconfigurations: &mut Vec<Finding>,
    secrets: Option<&mut SecretsReport>,
    malware: Option<&mut MalwareResults>,
) -> Result<Suppression> {
    let Some(path) = path else {
        return Ok(Suppression::default());
    };
    let set = crate::config::load_exceptions(path)?;
    let today = crate::scan_k8s::today();
    let mut s = palisade_image::suppress::apply(report, vulns, misconfigurations, &set, today);
    if let Some(secrets) = secrets {
        let findings = palisade_image::secrets::to_findings(report, secrets);
        retain_unexcepted(&mut secrets.findings, findings, &set, today, &mut s);
    }
    if let Some(malware) = malware {
        let findings = palisade_malware::to_findings(report, malware);
        retain_unexcepted(&mut malware.matches, findings, &set, today, &mut s);
    }
    misconfigurations.append(&mut s.expired);
    Ok(s)
}

/// The table section listing suppressed findings with their reasons.
pub fn table(text: &mut String, s: &Suppression) {
    if s.suppressed.is_empty() {
        return;
    }
    let _ = writeln!(text, "\nSuppressed: {}", s.suppressed.len());
    for f in &s.suppressed {
        let what = match &f.vulnerability {
            Some(v) => format!("{} {} {}", v.id, v.package, v.version),
            None => f.rule_id.clone(),
        };
        if let palisade_core::FindingStatus::Excepted {
            reason,
            expires,
            source,
        } = &f.status
        {
            let until = expires.map(|d| format!(" until {d}")).unwrap_or_default();
            let _ = writeln!(
                text,
                "  {:<8} {what:<50} {reason}{until}  [{source}]",
                f.severity.as_str().to_uppercase()
            );
        }
    }
}
