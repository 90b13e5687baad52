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
