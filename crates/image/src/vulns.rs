//! Vulnerability matching of an image's packages against the local OSV database, with each match
//! keeping the package's file and layer.

use crate::scan::ImageReport;
use std::path::Path;

/// One vulnerable package, with where it came from.
#[derive(Debug, serde::Serialize)]
pub struct VulnerabilityRow {
    pub package: String,
    pub version: String,
    pub ecosystem: String,
    pub purl: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_created_by: Option<String>,
    pub advisory: palisade_vulndb::VulnMatch,
}

/// Vulnerability matching of the report's packages, or why it did not run.
#[derive(Debug, serde::Serialize)]
pub struct Vulnerabilities {
    /// `evaluated`, or `not evaluated: <reason>`: a missing database is never a clean result.
    pub status: String,
    pub matches: Vec<VulnerabilityRow>,
    /// Advisories that apply to a package but whose ranges could not be evaluated.
    pub unevaluated: Vec<serde_json::Value>,
}

/// Matches the report's packages against the database at `path` (a missing database is "not
/// evaluated", never clean).
pub fn match_vulnerabilities(
    report: &ImageReport,
    path: Option<&Path>,
    ignore_unfixed: bool,
) -> Vulnerabilities {
    let not_evaluated = |reason: String| Vulnerabilities {
        status: format!("not evaluated: {reason}"),
        matches: Vec::new(),
        unevaluated: Vec::new(),
    };
    let Some(path) = path else {
        return not_evaluated("no database path (set --db)".into());
    };
    if !path.exists() {
        return not_evaluated(format!(
            "no vulnerability database at {} (run `palisade db import`)",
            path.display()
        ));
    }
    let db = match palisade_vulndb::Database::open(path) {
        Ok(db) => db,
        Err(e) => return not_evaluated(e.to_string()),
    };
    let mut out = Vulnerabilities {
        status: "evaluated".into(),
        matches: Vec::new(),
        unevaluated: Vec::new(),
    };
    for p in &report.packages {
        let query = palisade_vulndb::PackageRef {
            ecosystem: p.osv_ecosystem(report.os.as_ref()),
            name: match &p.namespace {
                Some(ns) if p.ecosystem.osv_name() == "Maven" => format!("{ns}:{}", p.name),
                _ => p.name.clone(),
            },
            version: p.version.clone(),
            source_name: p.source_name.clone(),
        };
        let lookup = match db.lookup(&query) {
            Ok(l) => l,
            Err(e) => {
                out.unevaluated.push(serde_json::json!({"package": query.name, "version": query.version, "reason": e.to_string()}));
                continue;
            }
        };
        for u in lookup.unevaluated {
            out.unevaluated.push(serde_json::json!({"package": query.name, "version": query.version, "id": u.id, "reason": u.reason}));
        }
        for m in lookup.matches {
            if ignore_unfixed && m.fixed_versions.is_empty() {
                continue;
            }
            out.matches.push(VulnerabilityRow {
                package: display_name(p),
                version: p.version.clone(),
                ecosystem: query.ecosystem.clone(),
                purl: p.purl.clone(),
                path: p.path.clone(),
                layer: p.layer,
                layer_digest: p.layer_digest.clone(),
                layer_created_by: p.layer_created_by.clone(),
                advisory: m,
            });
        }
    }
    out.matches.sort_by(|a, b| {
        b.advisory
            .severity
            .cmp(&a.advisory.severity)
            .then(a.package.cmp(&b.package))
            .then(a.advisory.id.cmp(&b.advisory.id))
    });
    out
}

/// The worst severity among the matches, if any.
pub fn worst(v: &Vulnerabilities) -> Option<palisade_core::Severity> {
    v.matches.iter().filter_map(|m| m.advisory.severity).max()
}

fn display_name(p: &crate::catalog::Package) -> String {
    match &p.namespace {
        Some(ns) => format!("{ns}:{}", p.name),
        None => p.name.clone(),
    }
}

/// The rule under which vulnerable packages are reported in the shared formats (SARIF, JUnit); the
/// advisory itself is named in each finding.
pub static VULNERABLE_PACKAGE: palisade_core::RuleMeta = palisade_core::RuleMeta {
    id: "image.vulnerable-package",
    title: "Package with a known vulnerability",
    severity: palisade_core::Severity::Medium,
    category: palisade_core::Category::Vulnerability,
    description: "A package in the image matches an OSV advisory for its version.",
    rationale: "Known-vulnerable packages are the most common way into containers; most have a fixed version.",
    remediation: "Upgrade the package to a fixed version (listed in the finding) and rebuild the image.",
    frameworks: &[
        palisade_core::FrameworkRef::new(palisade_core::Framework::Nist800190, "4.1.1"),
        palisade_core::FrameworkRef::new(palisade_core::Framework::MitreAttack, "T1190"),
    ],
    fixtures: palisade_core::Fixtures { pass: &[], fail: &[] },
};

/// The matches as findings, each on the package's file with the advisory's severity (unknown
/// severities are reported as medium and say so).
pub fn to_findings(report: &ImageReport, vulns: &Vulnerabilities) -> Vec<palisade_core::Finding> {
    vulns
        .matches
        .iter()
        .map(|m| {
            let cve = m.advisory.aliases.iter().find(|a| a.starts_with("CVE-"));
            let fixed = if m.advisory.fixed_versions.is_empty() {
                "no fixed version yet".to_string()
            } else {
                format!("fixed in {}", m.advisory.fixed_versions.join(", "))
            };
            let known = m.advisory.severity;
            let message = format!(
                "{} {} ({}): {}{}{}; {fixed}{}",
                m.package,
                m.version,
                m.ecosystem,
                m.advisory.id,
                cve.map(|c| format!(" / {c}")).unwrap_or_default(),
                m.advisory
                    .summary
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default(),
                if known.is_none() {
                    " (severity unknown)"
                } else {
                    ""
                },
            );
            let resource = report.resource(Some(m.path.clone()));
            let evidence = palisade_core::Evidence {
                pointer: format!(
                    "/packages/{}/{}",
                    m.purl.replace('~', "~0").replace('/', "~1"),
                    m.advisory.id
                ),
                value: None,
                line: None,
                column: None,
            };
            let mut f =
                palisade_core::Finding::from_rule(&VULNERABLE_PACKAGE, resource, message, Some(evidence));
            f.severity = known.unwrap_or(palisade_core::Severity::Medium);
            f.vulnerability = Some(palisade_core::VulnerabilityRef {
                id: m.advisory.id.clone(),
                aliases: m.advisory.aliases.clone(),
                package: m.package.clone(),
                version: m.version.clone(),
                purl: m.purl.clone(),
            });
            f
        })
        .collect()
}
