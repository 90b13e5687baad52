//! Findings: one rule's verdict on one resource, with the evidence and everything a report needs.

use crate::{Category, Date, FrameworkRef, RuleMeta};
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = crate::CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(crate::CoreError::UnknownSeverity(s.to_string())),
        }
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a finding is about. Fields that do not apply stay `None` and are left out of JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The file the resource came from (`-` for standard input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line where the resource's document starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl ResourceRef {
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Where in the resource the problem is and what value was found there.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// JSON pointer (RFC 6901) into the object: the offending field, or the nearest parent when the
    /// problem is a missing field.
    pub pointer: String,
    /// The value found, if any; secrets are replaced by a redacted form before they get here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// 1-based line and column of `pointer` in the source file, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// Whether a finding still needs action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FindingStatus {
    Open,
    Excepted {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<Date>,
        /// Where the exception came from (`file.yaml`, `annotation`).
        source: String,
    },
    /// The check could not run; this is never a pass.
    NotEvaluated {
        reason: String,
    },
}

impl FindingStatus {
    pub fn is_open(&self) -> bool {
        matches!(self, FindingStatus::Open)
    }
}

/// What a vulnerability finding is about besides its resource: the advisory (with its aliases, so an
/// exception can name a CVE while the database calls it a GHSA) and the package it matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VulnerabilityRef {
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub package: String,
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub purl: String,
}

impl VulnerabilityRef {
    /// The advisory id and every alias.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule_id: String,
    pub severity: Severity,
    pub category: Category,
    pub title: String,
    pub message: String,
    pub resource: ResourceRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    pub remediation: String,
    pub frameworks: Vec<FrameworkRef>,
    /// Stable across scans: the same rule on the same resource and field gives the same fingerprint.
    pub fingerprint: String,
    pub status: FindingStatus,
    /// Set on vulnerability findings only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<VulnerabilityRef>,
}

impl Finding {
    /// A finding for `rule` on `resource`, taking title, severity, remediation and frameworks from the
    /// rule. The fingerprint is computed from the rule id, resource identity and evidence pointer.
    pub fn from_rule(
        rule: &RuleMeta,
        resource: ResourceRef,
        message: impl Into<String>,
        evidence: Option<Evidence>,
    ) -> Finding {
        let mut finding = Finding {
            rule_id: rule.id.to_string(),
            severity: rule.severity,
            category: rule.category,
            title: rule.title.to_string(),
            message: message.into(),
            resource,
            evidence,
            remediation: rule.remediation.to_string(),
            frameworks: rule.frameworks.to_vec(),
            fingerprint: String::new(),
            status: FindingStatus::Open,
            vulnerability: None,
        };
        finding.refresh_fingerprint();
        finding
    }

    /// Recomputes the fingerprint; call after changing the resource identity or evidence pointer.
    /// File and line are left out on purpose: moving a manifest must not make a finding "new".
    pub fn refresh_fingerprint(&mut self) {
        let r = &self.resource;
        let pointer = self.evidence.as_ref().map(|e| e.pointer.as_str()).unwrap_or("");
        let parts = [
            self.rule_id.as_str(),
            r.cluster.as_deref().unwrap_or(""),
            r.kind.as_str(),
            r.namespace.as_deref().unwrap_or(""),
            r.name.as_str(),
            r.container.as_deref().unwrap_or(""),
            pointer,
        ];
        self.fingerprint = format!("{:016x}", fnv1a64(&parts));
    }
}

/// FNV-1a over the parts with a separator byte, so ("ab","c") and ("a","bc") differ.
fn fnv1a64(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0x1f)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn fingerprint_ignores_location_but_not_identity() {
        static RULE: RuleMeta = RuleMeta {
            id: "test.rule",
            title: "t",
            severity: Severity::Low,
            category: Category::Misconfiguration,
            description: "",
            rationale: "",
            remediation: "",
            frameworks: &[],
            fixtures: crate::Fixtures { pass: &[], fail: &[] },
        };
        let res = |file: &str, name: &str| ResourceRef {
            kind: "Pod".into(),
            name: name.into(),
            file: Some(file.into()),
            ..Default::default()
        };
        let a = Finding::from_rule(&RULE, res("a.yaml", "web"), "m", None);
        let b = Finding::from_rule(&RULE, res("b.yaml", "web"), "m", None);
        let c = Finding::from_rule(&RULE, res("a.yaml", "api"), "m", None);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint.len(), 16);
    }
}
