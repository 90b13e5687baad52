//! The posture rule catalogue: every rule this crate can report, in one list, for `rules list`,
//! `rules explain`, the docs and the fixture tests.

use palisade_core::RuleMeta;

/// Every posture rule, grouped by domain in a stable order.
pub fn rules() -> Vec<&'static RuleMeta> {
    let groups: [&'static [RuleMeta]; 5] = [
        crate::pss::RULES,
        crate::workload::RULES,
        crate::rbac::RULES,
        crate::netpol::RULES,
        crate::labels::RULES,
    ];
    let mut all: Vec<&'static RuleMeta> = groups.iter().flat_map(|g| g.iter()).collect();
    all.push(&crate::manifest::DUPLICATE_KEY);
    all.push(&palisade_core::exception::EXPIRED_EXCEPTION_RULE);
    all
}

/// Looks a rule up by its id.
pub fn find(id: &str) -> Option<&'static RuleMeta> {
    rules().into_iter().find(|r| r.id == id)
}
