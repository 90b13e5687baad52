//! RBAC analysis: dangerous rules in Roles and ClusterRoles, dangerous bindings, and per-subject
//! effective permissions for `--rbac-report`.

use crate::object::Object;
use palisade_core::{Finding, RuleMeta};

pub static RULES: &[RuleMeta] = &[];

/// Keeps roles and bindings seen in the input.
#[derive(Debug, Default)]
pub struct Collector {}

impl Collector {
    pub fn observe(&mut self, _obj: &Object<'_>) {}
    pub fn finish(&mut self, _out: &mut Vec<Finding>) {}
}
