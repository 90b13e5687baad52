//! Exceptions (an ignore file) applied to an image or directory scan: matched vulnerabilities and
//! configuration findings that a live exception covers leave the results and the exit code but are
//! kept as suppressed, with the reason; an expired exception suppresses nothing and is reported.
//! The matching itself is core's exception model, the same one posture scans use.

use crate::scan::ImageReport;
use crate::vulns::{Vulnerabilities, to_findings};
use palisade_core::exception::Applied;
use palisade_core::{Date, ExceptionSet, Finding};

/// What applying the exceptions took out and added.
#[derive(Debug, Default)]
pub struct Suppression {
    /// Findings a live exception covers, with status `excepted` (reason, expiry, source).
    pub suppressed: Vec<Finding>,
    /// One `exception.expired` finding per expired exception.
    pub expired: Vec<Finding>,
}

/// Removes what `set` covers from `vulns` and `misconfigurations` as of `today`.
pub fn apply(
    report: &ImageReport,
    vulns: Option<&mut Vulnerabilities>,
    misconfigurations: &mut Vec<Finding>,
    set: &ExceptionSet,
    today: Date,
) -> Suppression {
    let mut out = Suppression::default();
    if set.is_empty() {
        return out;
    }
    if let Some(vulns) = vulns {
        let findings = to_findings(report, vulns);
        retain_unexcepted(&mut vulns.matches, findings, set, today, &mut out);
    }
    let findings = misconfigurations.clone();
    retain_unexcepted(misconfigurations, findings, set, today, &mut out);
    out.expired = set
        .iter()
        .filter(|e| e.is_expired(today))
        .map(|e| e.expired_finding())
        .collect();
    out
}

/// Removes the items of `items` an exception covers, given their findings (one per item, in the
/// same order, as the `to_findings` functions of the secret and malware scanners give them), and
/// adds those findings to `out.suppressed`.
pub fn retain_unexcepted<T>(
    items: &mut Vec<T>,
    findings: Vec<Finding>,
    set: &ExceptionSet,
    today: Date,
    out: &mut Suppression,
) {
    if set.is_empty() {
        return;
    }
    let mut keep = Vec::with_capacity(findings.len());
    for mut f in findings {
        let excepted = set.apply(&mut f, today) == Applied::Excepted;
        if excepted {
            out.suppressed.push(f);
        }
        keep.push(!excepted);
    }
    let mut flags = keep.into_iter();
    items.retain(|_| flags.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::testdata;

    #[test]
    fn suppresses_by_alias_and_rule_and_reports_expired() {
        let report = testdata::report();
        let mut vulns = testdata::vulnerabilities(&report);
        let root = palisade_core::Finding::from_rule(
            crate::audit::RULES[0],
            palisade_core::ResourceRef {
                kind: "Image".into(),
                name: report.target.clone(),
                ..Default::default()
            },
            "m",
            None,
        );
        let rule_id = root.rule_id.clone();
        let mut misconfigurations = vec![root];
        let set = ExceptionSet::from_value(
            serde_json::json!({"ignore": [
                {"vulnerability": "CVE-2021-44228", "purl": "pkg:maven/*", "reason": "JNDI disabled", "expires": "2027-01-01"},
                {"rule": rule_id, "reason": "old", "expires": "2020-01-01"},
            ]}),
            "ignore.yaml",
        )
        .unwrap();
        let today = Date::parse("2026-11-30").unwrap();
        let s = apply(&report, Some(&mut vulns), &mut misconfigurations, &set, today);
        assert!(vulns.matches.is_empty());
        assert_eq!(s.suppressed.len(), 1);
        assert!(matches!(
            &s.suppressed[0].status,
            palisade_core::FindingStatus::Excepted { reason, .. } if reason == "JNDI disabled"
        ));
        assert_eq!(
            misconfigurations.len(),
            1,
            "an expired exception does not suppress"
        );
        assert_eq!(s.expired.len(), 1);
        assert_eq!(s.expired[0].rule_id, "exception.expired");

        // After the expiry date the vulnerability is back.
        let mut vulns = testdata::vulnerabilities(&report);
        let later = Date::parse("2027-01-02").unwrap();
        let s = apply(&report, Some(&mut vulns), &mut Vec::new(), &set, later);
        assert_eq!(vulns.matches.len(), 1);
        assert!(s.suppressed.is_empty());
        assert_eq!(s.expired.len(), 2);
    }
}
