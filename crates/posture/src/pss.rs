//! Pod Security Standards (baseline and restricted, policy versions v1.0 to v1.37 and `latest`),
//! with the semantics of the upstream pod-security-admission library.

use crate::PostureError;
use crate::object::Object;
use palisade_core::{Finding, RuleMeta};
use std::str::FromStr;

/// The newest policy version the checks know (`latest` means this).
pub const LATEST_MINOR: u32 = 37;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PssSettings {
    pub level: PssLevel,
    pub version: PssVersion,
}

pub static RULES: &[RuleMeta] = &[];

/// The settings a Namespace's `pod-security.kubernetes.io/enforce` labels select, if it has them.
pub fn settings_from_namespace(_ns: &Object<'_>, _default: PssSettings) -> Option<PssSettings> {
    None
}

/// Reports every PSS check the object's pod template fails at `settings`.
pub fn check(_obj: &Object<'_>, _settings: PssSettings, _out: &mut Vec<Finding>) {}
