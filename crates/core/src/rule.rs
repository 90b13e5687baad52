//! Rule metadata: what a rule is, why it matters, how to fix it and where the frameworks say so.
//! Built-in catalogues define their rules as `'static` data so `rules list`, the docs and the engine
//! read the same definitions and cannot drift.

use crate::Severity;
use serde::Serialize;
use std::fmt;

/// The family a finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Misconfiguration,
    Vulnerability,
    Secret,
    Malware,
    Runtime,
    Network,
    Audit,
    Web,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Misconfiguration => "misconfiguration",
            Category::Vulnerability => "vulnerability",
            Category::Secret => "secret",
            Category::Malware => "malware",
            Category::Runtime => "runtime",
            Category::Network => "network",
            Category::Audit => "audit",
            Category::Web => "web",
        }
    }
}

/// Compliance frameworks and threat catalogues that rules map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Framework {
    /// CIS Kubernetes Benchmark (section ids such as `5.2.2`).
    #[serde(rename = "CIS Kubernetes Benchmark")]
    CisKubernetes,
    /// NSA/CISA Kubernetes Hardening Guide (section titles).
    #[serde(rename = "NSA/CISA Kubernetes Hardening Guide")]
    NsaCisa,
    /// NIST SP 800-190 Application Container Security Guide (section ids such as `4.4.3`).
    #[serde(rename = "NIST SP 800-190")]
    Nist800190,
    /// MITRE ATT&CK for containers (technique ids such as `T1611`).
    #[serde(rename = "MITRE ATT&CK")]
    MitreAttack,
    /// Kubernetes Pod Security Standards (control names).
    #[serde(rename = "Pod Security Standards")]
    PodSecurityStandards,
}

impl Framework {
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::CisKubernetes => "CIS Kubernetes Benchmark",
            Framework::NsaCisa => "NSA/CISA Kubernetes Hardening Guide",
            Framework::Nist800190 => "NIST SP 800-190",
            Framework::MitreAttack => "MITRE ATT&CK",
            Framework::PodSecurityStandards => "Pod Security Standards",
        }
    }

    /// A short tag for compact output (`CIS 5.2.2`, `ATT&CK T1611`).
    pub fn short(self) -> &'static str {
        match self {
            Framework::CisKubernetes => "CIS",
            Framework::NsaCisa => "NSA",
            Framework::Nist800190 => "NIST-800-190",
            Framework::MitreAttack => "ATT&CK",
            Framework::PodSecurityStandards => "PSS",
        }
    }
}

/// One reference from a rule to a framework control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FrameworkRef {
    pub framework: Framework,
    /// The control's id in that framework (`5.2.2`, `T1611`, `Pod security`).
    pub id: &'static str,
}

impl FrameworkRef {
    pub const fn new(framework: Framework, id: &'static str) -> FrameworkRef {
        FrameworkRef { framework, id }
    }
}

impl fmt::Display for FrameworkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.framework.short(), self.id)
    }
}

/// Example inputs that must pass and must fail the rule. Engines test every rule against its fixtures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fixtures {
    pub pass: &'static [&'static str],
    pub fail: &'static [&'static str],
}

/// Everything a person needs to understand a rule. One value per rule; ids are stable forever.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RuleMeta {
    /// Stable, dotted id: `pss.privileged`, `workload.resource-limits`, `rbac.wildcard-verbs`.
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub category: Category,
    pub description: &'static str,
    pub rationale: &'static str,
    pub remediation: &'static str,
    pub frameworks: &'static [FrameworkRef],
    pub fixtures: Fixtures,
}
