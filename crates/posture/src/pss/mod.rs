//! Pod Security Standards (baseline and restricted, policy versions v1.0 to v1.37 and `latest`),
//! with the semantics of the upstream pod-security-admission library: versioned checks, restricted
//! checks that replace baseline ones, ephemeral containers, Windows and user-namespace exemptions.
//! It judges only what the pod template says; it never guesses defaults an API server would apply.

mod checks;
mod rules;

use crate::PostureError;
use crate::object::{Container, Object, PodTemplate};
use palisade_core::{Finding, RuleMeta};
use std::str::FromStr;

pub use rules::RULES;

/// The newest policy version the checks know (`latest` means this).
pub const LATEST_MINOR: u32 = 37;

/// Namespace label selecting the enforced level.
pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Namespace label selecting the enforced policy version.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum PssLevel {
    Privileged,
    #[default]
    Baseline,
    Restricted,
}

impl FromStr for PssLevel {
    type Err = PostureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(PssLevel::Privileged),
            "baseline" => Ok(PssLevel::Baseline),
            "restricted" => Ok(PssLevel::Restricted),
            _ => Err(PostureError::UnknownPssLevel(s.to_string())),
        }
    }
}

/// A policy version: `v1.N` or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PssVersion {
    Minor(u32),
    #[default]
    Latest,
}

impl FromStr for PssVersion {
    type Err = PostureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(PssVersion::Latest);
        }
        let minor = s
            .strip_prefix("v1.")
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| PostureError::InvalidPssVersion(s.to_string()))?;
        Ok(PssVersion::Minor(minor))
    }
}

impl PssVersion {
    /// The minor version whose check implementations apply: versions newer than the newest known
    /// one behave as `latest`, as upstream clamps them to its newest registered version.
    pub fn effective_minor(self) -> u32 {
        match self {
            PssVersion::Minor(m) => m.min(LATEST_MINOR),
            PssVersion::Latest => LATEST_MINOR,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PssSettings {
    pub level: PssLevel,
    pub version: PssVersion,
}

/// The upstream checks, by the ids pod-security-admission gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    HostNamespaces,
    Privileged,
    CapabilitiesBaseline,
    HostPathVolumes,
    HostPorts,
    AppArmorProfile,
    SeLinuxOptions,
    ProcMount,
    SeccompProfileBaseline,
    Sysctls,
    WindowsHostProcess,
    HostProbesAndHostLifecycle,
    RestrictedVolumes,
    RunAsNonRoot,
    AllowPrivilegeEscalation,
    SeccompProfileRestricted,
    CapabilitiesRestricted,
    RunAsUser,
    ProcMountRestricted,
}

impl CheckId {
    /// Every check, in the order of [`RULES`].
    pub const ALL: [CheckId; 19] = [
        CheckId::HostNamespaces,
        CheckId::Privileged,
        CheckId::CapabilitiesBaseline,
        CheckId::HostPathVolumes,
        CheckId::HostPorts,
        CheckId::AppArmorProfile,
        CheckId::SeLinuxOptions,
        CheckId::ProcMount,
        CheckId::SeccompProfileBaseline,
        CheckId::Sysctls,
        CheckId::WindowsHostProcess,
        CheckId::HostProbesAndHostLifecycle,
        CheckId::RestrictedVolumes,
        CheckId::RunAsNonRoot,
        CheckId::AllowPrivilegeEscalation,
        CheckId::SeccompProfileRestricted,
        CheckId::CapabilitiesRestricted,
        CheckId::RunAsUser,
        CheckId::ProcMountRestricted,
    ];

    /// The upstream check id (`capabilities_baseline`, `hostNamespaces`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::HostNamespaces => "hostNamespaces",
            CheckId::Privileged => "privileged",
            CheckId::CapabilitiesBaseline => "capabilities_baseline",
            CheckId::HostPathVolumes => "hostPathVolumes",
            CheckId::HostPorts => "hostPorts",
            CheckId::AppArmorProfile => "appArmorProfile",
            CheckId::SeLinuxOptions => "seLinuxOptions",
            CheckId::ProcMount => "procMount",
            CheckId::SeccompProfileBaseline => "seccompProfile_baseline",
            CheckId::Sysctls => "sysctls",
            CheckId::WindowsHostProcess => "windowsHostProcess",
            CheckId::HostProbesAndHostLifecycle => "hostProbesAndHostLifecycle",
            CheckId::RestrictedVolumes => "restrictedVolumes",
            CheckId::RunAsNonRoot => "runAsNonRoot",
            CheckId::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            CheckId::SeccompProfileRestricted => "seccompProfile_restricted",
            CheckId::CapabilitiesRestricted => "capabilities_restricted",
            CheckId::RunAsUser => "runAsUser",
            CheckId::ProcMountRestricted => "procMount_restricted",
        }
    }

    /// Looks a check up by its upstream id.
    pub fn from_upstream(id: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.as_str() == id)
    }

    /// The rule this check reports under.
    pub fn rule(self) -> &'static RuleMeta {
        &RULES[self as usize]
    }

    /// The level that introduces the check (baseline checks also run at restricted).
    pub fn level(self) -> PssLevel {
        match self {
            CheckId::RestrictedVolumes
            | CheckId::RunAsNonRoot
            | CheckId::AllowPrivilegeEscalation
            | CheckId::SeccompProfileRestricted
            | CheckId::CapabilitiesRestricted
            | CheckId::RunAsUser
            | CheckId::ProcMountRestricted => PssLevel::Restricted,
            _ => PssLevel::Baseline,
        }
    }

    /// The first policy minor version (v1.N) at which the check exists.
    pub fn since(self) -> u32 {
        match self {
            CheckId::AllowPrivilegeEscalation => 8,
            CheckId::SeccompProfileRestricted => 19,
            CheckId::CapabilitiesRestricted => 22,
            CheckId::RunAsUser => 23,
            CheckId::HostProbesAndHostLifecycle => 34,
            CheckId::ProcMountRestricted => 35,
            _ => 0,
        }
    }

    /// The baseline check this restricted check replaces (from its first version on).
    pub fn overrides(self) -> Option<CheckId> {
        match self {
            CheckId::RestrictedVolumes => Some(CheckId::HostPathVolumes),
            CheckId::SeccompProfileRestricted => Some(CheckId::SeccompProfileBaseline),
            CheckId::CapabilitiesRestricted => Some(CheckId::CapabilitiesBaseline),
            CheckId::ProcMountRestricted => Some(CheckId::ProcMount),
            _ => None,
        }
    }
}

/// The checks upstream runs at `level` and `version`, in its order: baseline checks sorted by id,
/// then restricted checks sorted by id, without the baseline checks a restricted one overrides.
pub fn checks_at(level: PssLevel, version: PssVersion) -> Vec<CheckId> {
    let minor = version.effective_minor();
    let exists = |c: &CheckId| c.since() <= minor;
    let mut baseline: Vec<CheckId> = CheckId::ALL
        .into_iter()
        .filter(|c| c.level() == PssLevel::Baseline)
        .filter(exists)
        .collect();
    let mut restricted: Vec<CheckId> = match level {
        PssLevel::Privileged => return Vec::new(),
        PssLevel::Baseline => Vec::new(),
        PssLevel::Restricted => CheckId::ALL
            .into_iter()
            .filter(|c| c.level() == PssLevel::Restricted)
            .filter(exists)
            .collect(),
    };
    baseline.retain(|b| !restricted.iter().any(|r| r.overrides() == Some(*b)));
    baseline.sort_by_key(|c| c.as_str());
    restricted.sort_by_key(|c| c.as_str());
    baseline.append(&mut restricted);
    baseline
}

/// One failed check on one field or container of a pod template.
#[derive(Debug, Clone)]
pub struct Violation<'a> {
    /// The control the problem belongs to, which names the rule reported. It differs from
    /// `evaluated_by` only when a restricted check that replaces a baseline one finds something the
    /// baseline check forbids too (a hostPath volume, an added SYS_ADMIN, an `Unconfined` seccomp
    /// profile, an unmasked /proc): those are reported as the more severe baseline control.
    pub check: CheckId,
    /// The upstream check that failed.
    pub evaluated_by: CheckId,
    /// The container concerned, if the problem is in one.
    pub container: Option<Container<'a>>,
    /// JSON pointer into the whole object: the offending field or, when a required field is
    /// missing, its nearest existing parent.
    pub pointer: String,
    pub message: String,
}

/// Evaluates a pod template against the Pod Security Standards at `level` and `version`.
/// The pod is allowed exactly when the result is empty.
pub fn evaluate<'a>(template: &PodTemplate<'a>, level: PssLevel, version: PssVersion) -> Vec<Violation<'a>> {
    let ids = checks_at(level, version);
    if ids.is_empty() {
        return Vec::new();
    }
    let pod = checks::Pod::new(template);
    let minor = version.effective_minor();
    let mut out = Vec::new();
    for id in ids {
        checks::run(id, minor, &pod, &mut out);
    }
    out
}

/// The settings a Namespace's `pod-security.kubernetes.io/enforce` labels select, if it has them.
///
/// Like upstream, an unknown level fails closed to `restricted` and an unparsable version means
/// `latest`; a missing version label also means `latest`.
pub fn settings_from_namespace(ns: &Object<'_>, _default: PssSettings) -> Option<PssSettings> {
    let labels = ns.labels()?;
    let level_value = labels.get(ENFORCE_LEVEL_LABEL)?;
    let level = level_value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(PssLevel::Restricted);
    let version = labels
        .get(ENFORCE_VERSION_LABEL)
        .and_then(|v| v.as_str())
        .and_then(parse_label_version)
        .unwrap_or(PssVersion::Latest);
    Some(PssSettings { level, version })
}

/// Parses a version label the way upstream does: `latest` or `v1.N` with no leading zeros.
fn parse_label_version(s: &str) -> Option<PssVersion> {
    if s == "latest" {
        return Some(PssVersion::Latest);
    }
    let digits = s.strip_prefix("v1.")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    // A number too large for u32 is still a valid (future) version: it behaves as latest.
    Some(
        digits
            .parse::<u32>()
            .map(PssVersion::Minor)
            .unwrap_or(PssVersion::Latest),
    )
}

/// Reports every PSS check the object's pod template fails at `settings`.
pub fn check(obj: &Object<'_>, settings: PssSettings, out: &mut Vec<Finding>) {
    let Some(template) = obj.pod_template() else {
        return;
    };
    for v in evaluate(&template, settings.level, settings.version) {
        let rule = v.check.rule();
        let finding = match &v.container {
            Some(c) => obj.container_finding(rule, c, v.message, &v.pointer),
            None => obj.finding(rule, v.message, &v.pointer),
        };
        out.push(finding);
    }
}

#[cfg(test)]
mod tests;
