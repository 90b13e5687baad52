//! Hardening checks beyond Pod Security Standards: resources, images, service accounts, secrets in
//! env, probes, host mounts, Service and Ingress exposure, and the known attack paths (exposed
//! Kubernetes Dashboard, Siloscape-style escapes).

use crate::object::Object;
use palisade_core::{Finding, RuleMeta};

pub static RULES: &[RuleMeta] = &[];

/// Per-object hardening checks.
pub fn check(_obj: &Object<'_>, _out: &mut Vec<Finding>) {}

/// Keeps what the exposure checks need across objects (dashboards, Services, Ingresses).
#[derive(Debug, Default)]
pub struct ExposureCollector {}

impl ExposureCollector {
    pub fn observe(&mut self, _obj: &Object<'_>) {}
    pub fn finish(&mut self, _out: &mut Vec<Finding>) {}
}
