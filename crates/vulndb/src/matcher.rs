//! Matching one package version against OSV advisories, with OSV's documented semantics: events
//! sorted by the ecosystem's version order, `introduced: "0"` below every version, `fixed` and
//! `limit` exclusive, `last_affected` inclusive, and explicit `versions` lists. Pure: advisories
//! and a package in, matches out. An advisory that cannot be evaluated is reported as such.

use crate::cvss::{CvssV3, severity_from_score};
use crate::osv::{Advisory, Affected, Event, RangeType, SeverityEntry};
use crate::version::{Scheme, Version};
use palisade_core::Severity;
use serde::Serialize;
use std::cmp::Ordering;

/// The package to look up. `source_name` is the name advisories are filed under when it differs
/// from `name` (Debian and Alpine track source packages: `openssl` for `libssl3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    /// An OSV ecosystem, optionally with a release: `PyPI`, `Go`, `Debian:13`, `Alpine:v3.20`.
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    pub source_name: Option<String>,
}

impl PackageRef {
    pub fn new(ecosystem: &str, name: &str, version: &str) -> PackageRef {
        PackageRef {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: version.into(),
            source_name: None,
        }
    }

    /// The name advisories for this package are indexed under.
    pub fn lookup_name(&self) -> &str {
        self.source_name.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvssScore {
    /// `CVSS_V3` or `CVSS_V4`, as OSV names it.
    pub kind: String,
    pub vector: String,
    /// Computed for CVSS v3 vectors; `None` for versions palisade does not score.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VulnMatch {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    /// From the CVSS v3 score, else the database's own rating; `None` when the advisory has neither.
    pub severity: Option<Severity>,
    pub cvss: Option<CvssScore>,
    /// Versions that fix this advisory and are newer than the package's; empty when unfixed.
    pub fixed_versions: Vec<String>,
    /// The advisory's ecosystem and package name that matched.
    pub ecosystem: String,
    pub package: String,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub references: Vec<String>,
}

/// An advisory for the package whose ranges could not be evaluated; not a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unevaluated {
    pub id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lookup {
    pub matches: Vec<VulnMatch>,
    pub unevaluated: Vec<Unevaluated>,
}

/// An ecosystem split into its lower-cased base and optional release (`Debian:13` → debian, 13).
pub fn split_ecosystem(ecosystem: &str) -> (String, Option<String>) {
    let ecosystem = ecosystem.trim();
    match ecosystem.split_once(':') {
        Some((base, release)) if !release.trim().is_empty() => {
            let release = release.trim().to_ascii_lowercase();
            let release = if base.eq_ignore_ascii_case("alpine") {
                release.strip_prefix('v').map(str::to_string).unwrap_or(release)
            } else {
                release
            };
            (base.trim().to_ascii_lowercase(), Some(release))
        }
        Some((base, _)) => (base.trim().to_ascii_lowercase(), None),
        None => (ecosystem.to_ascii_lowercase(), None),
    }
}

/// A package name as its ecosystem compares names: PyPI per PEP 503, crates.io case-insensitively,
/// others exactly.
pub fn normalize_name(ecosystem_base: &str, name: &str) -> String {
    let name = name.trim();
    match ecosystem_base {
        "pypi" => {
            let mut out = String::with_capacity(name.len());
            let mut in_separator = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_separator {
                        out.push('-');
                    }
                    in_separator = true;
                } else {
                    out.push(c.to_ascii_lowercase());
                    in_separator = false;
                }
            }
            out
        }
        "crates.io" => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// The index key an (ecosystem, name) pair is stored under.
pub fn index_key(ecosystem: &str, name: &str) -> String {
    let (base, _) = split_ecosystem(ecosystem);
    let name = normalize_name(&base, name);
    format!("{base}\u{0}{name}")
}

fn affected_applies(affected: &Affected, pkg_base: &str, pkg_release: Option<&str>, pkg_name: &str) -> bool {
    let Some(package) = &affected.package else {
        return false;
    };
    let (base, release) = split_ecosystem(&package.ecosystem);
    if base != pkg_base || normalize_name(&base, &package.name) != pkg_name {
        return false;
    }
    // An entry without a release applies to every release; a package of unknown release is
    // compared against every release rather than none.
    match (release.as_deref(), pkg_release) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Lower bound of an event: `introduced: "0"` is below every version.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Zero,
    At(Version),
}

/// Evaluates one SEMVER or ECOSYSTEM range. `Ok(Some(fixed))` when affected, with the fixed
/// versions newer than `version`.
fn evaluate_range(
    scheme: Scheme,
    version: &Version,
    events: &[Event],
) -> Result<Option<Vec<String>>, String> {
    let mut sorted = Vec::with_capacity(events.len());
    let mut limits = Vec::new();
    for event in events {
        let parse = |v: &str| scheme.parse(v).map_err(|e| format!("event {e}"));
        match event {
            Event::Introduced(v) if v == "0" => sorted.push((Bound::Zero, event)),
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) => {
                sorted.push((Bound::At(parse(v)?), event));
            }
            Event::Limit(v) if v == "*" => {}
            Event::Limit(v) => limits.push(parse(v)?),
        }
    }
    // Stable: events at one version keep the advisory's order.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut affected = false;
    for (bound, event) in &sorted {
        let order = match bound {
            Bound::Zero => Ordering::Greater,
            Bound::At(v) => version.cmp(v),
        };
        match event {
            Event::Introduced(_) if order != Ordering::Less => affected = true,
            Event::Fixed(_) if order != Ordering::Less => affected = false,
            Event::LastAffected(_) if order == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    if !limits.is_empty() && !limits.iter().any(|limit| version < limit) {
        affected = false;
    }
    if !affected {
        return Ok(None);
    }
    let fixed = sorted
        .iter()
        .filter_map(|(bound, event)| match (bound, event) {
            (Bound::At(v), Event::Fixed(text)) if v > version => Some(text.clone()),
            _ => None,
        })
        .take(1)
        .collect();
    Ok(Some(fixed))
}

/// Matches one advisory against a package. `Ok(None)`: not affected (or withdrawn).
/// `Err(reason)`: the advisory names the package but its ranges could not be evaluated.
pub fn match_advisory(advisory: &Advisory, pkg: &PackageRef) -> Result<Option<VulnMatch>, String> {
    if advisory.withdrawn.is_some() {
        return Ok(None);
    }
    let (pkg_base, pkg_release) = split_ecosystem(&pkg.ecosystem);
    let pkg_name = normalize_name(&pkg_base, pkg.lookup_name());
    let ecosystem_scheme = Scheme::for_ecosystem(&pkg_base);
    let semver_scheme = if pkg_base == "go" {
        Scheme::Go
    } else {
        Scheme::Semver
    };
    let mut problem = None;
    let mut hit: Option<(&Affected, Vec<String>)> = None;
    for affected in &advisory.affected {
        if !affected_applies(affected, &pkg_base, pkg_release.as_deref(), &pkg_name) {
            continue;
        }
        let mut is_affected = false;
        let mut fixed = Vec::new();
        let listed = affected.versions.iter().any(|v| v.trim() == pkg.version.trim())
            || ecosystem_scheme.is_some_and(|s| {
                let Ok(mine) = s.parse(&pkg.version) else {
                    return false;
                };
                affected
                    .versions
                    .iter()
                    .any(|v| s.parse(v).is_ok_and(|v| v == mine))
            });
        if listed {
            is_affected = true;
        }
        for range in &affected.ranges {
            let scheme = match range.kind {
                // GIT ranges name commits; the `versions` list carries what they resolve to.
                RangeType::Git => continue,
                RangeType::Semver => semver_scheme,
                RangeType::Ecosystem => match ecosystem_scheme {
                    Some(s) => s,
                    None => {
                        problem = Some(format!("no version scheme for ecosystem {:?}", pkg.ecosystem));
                        continue;
                    }
                },
            };
            let version = match scheme.parse(&pkg.version) {
                Ok(v) => v,
                Err(e) => {
                    problem = Some(format!("package {e}"));
                    continue;
                }
            };
            match evaluate_range(scheme, &version, &range.events) {
                Ok(Some(f)) => {
                    is_affected = true;
                    for v in f {
                        if !fixed.contains(&v) {
                            fixed.push(v);
                        }
                    }
                }
                Ok(None) => {}
                Err(reason) => problem = Some(reason),
            }
        }
        if is_affected {
            match &mut hit {
                Some((_, all)) => {
                    for v in fixed {
                        if !all.contains(&v) {
                            all.push(v);
                        }
                    }
                }
                None => hit = Some((affected, fixed)),
            }
        }
    }
    match hit {
        Some((affected, fixed)) => Ok(Some(build_match(advisory, affected, fixed))),
        None => match problem {
            Some(reason) => Err(reason),
            None => Ok(None),
        },
    }
}

fn build_match(advisory: &Advisory, affected: &Affected, fixed_versions: Vec<String>) -> VulnMatch {
    let (severity, cvss) = severity_of(advisory, affected);
    let package = affected.package.as_ref();
    VulnMatch {
        id: advisory.id.clone(),
        aliases: advisory.aliases.clone(),
        summary: advisory.summary.clone(),
        severity,
        cvss,
        fixed_versions,
        ecosystem: package.map(|p| p.ecosystem.clone()).unwrap_or_default(),
        package: package.map(|p| p.name.clone()).unwrap_or_default(),
        published: advisory.published.clone(),
        modified: advisory.modified.clone(),
        references: advisory.references.iter().map(|r| r.url.clone()).collect(),
    }
}

/// Severity: a CVSS v3 vector (the package's own, then the advisory's, then RustSec's
/// `database_specific.cvss`) scored; else the database's rating (GitHub's LOW/MODERATE/HIGH/
/// CRITICAL); a CVSS v4 vector is kept but not scored.
fn severity_of(advisory: &Advisory, affected: &Affected) -> (Option<Severity>, Option<CvssScore>) {
    let entries: Vec<&SeverityEntry> = affected.severity.iter().chain(&advisory.severity).collect();
    let rustsec_vector = affected
        .database_specific
        .as_ref()
        .and_then(|d| d.get("cvss"))
        .and_then(|v| v.as_str())
        .map(|v| SeverityEntry {
            kind: "CVSS_V3".into(),
            score: v.to_string(),
        });
    let v3 = entries
        .iter()
        .copied()
        .chain(rustsec_vector.as_ref())
        .find_map(|e| {
            (e.kind == "CVSS_V3")
                .then(|| CvssV3::parse(&e.score).ok().map(|c| (e, c.base_score())))
                .flatten()
        });
    let database_rating = || {
        affected
            .database_specific
            .as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(|v| v.as_str())
            .or_else(|| advisory.database_severity())
            .and_then(|s| s.parse::<Severity>().ok())
    };
    if let Some((entry, score)) = v3 {
        let cvss = CvssScore {
            kind: entry.kind.clone(),
            vector: entry.score.clone(),
            score: Some(score),
        };
        return (Some(severity_from_score(score)), Some(cvss));
    }
    let other = entries
        .iter()
        .find(|e| e.kind.starts_with("CVSS_"))
        .map(|e| CvssScore {
            kind: e.kind.clone(),
            vector: e.score.clone(),
            score: None,
        });
    (database_rating(), other)
}

/// Matches a package against candidate advisories (those indexed under its name).
pub fn lookup_in<'a>(advisories: impl IntoIterator<Item = &'a Advisory>, pkg: &PackageRef) -> Lookup {
    let mut lookup = Lookup::default();
    for advisory in advisories {
        match match_advisory(advisory, pkg) {
            Ok(Some(m)) => {
                if !lookup.matches.iter().any(|x| x.id == m.id) {
                    lookup.matches.push(m);
                }
            }
            Ok(None) => {}
            Err(reason) => lookup.unevaluated.push(Unevaluated {
                id: advisory.id.clone(),
                reason,
            }),
        }
    }
    // Another record of the same id (a duplicate import) that did match settles it.
    let matched: Vec<String> = lookup.matches.iter().map(|m| m.id.clone()).collect();
    lookup.unevaluated.retain(|u| !matched.contains(&u.id));
    lookup.matches.sort_by(|a, b| a.id.cmp(&b.id));
    lookup
}

#[cfg(test)]
mod tests;
