//! Organisation policy from `palisade.yaml`: required and forbidden labels and annotations (with
//! value patterns), and tolerations or node selectors that workloads must carry.

use crate::object::Object;
use palisade_core::{Finding, RuleMeta};

pub static RULES: &[RuleMeta] = &[];

/// The label/annotation/scheduling policy. Empty by default: nothing is required.
#[derive(Debug, Clone, Default)]
pub struct Policy {}

pub fn check(_obj: &Object<'_>, _policy: &Policy, _out: &mut Vec<Finding>) {}
