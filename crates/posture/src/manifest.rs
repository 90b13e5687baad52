//! Rules about the manifest text itself rather than the object it describes. The loader finds these
//! (it sees the text); this module holds their metadata and builds their findings.

use crate::object::Object;
use palisade_core::{
    Category, Evidence, Finding, Fixtures, Framework, FrameworkRef, ResourceRef, RuleMeta, Severity,
};

pub static DUPLICATE_KEY: RuleMeta = RuleMeta {
    id: "manifest.duplicate-key",
    title: "Duplicate key in a manifest",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A mapping in the manifest has the same key twice. kubectl keeps the last value; other tools \
                  (and people reviewing the file) may read the first.",
    rationale: "When two readers disagree on what a manifest says, a reviewer or a scanner can approve a value \
                the cluster never sees: `privileged: false` above `privileged: true` looks safe in review.",
    remediation: "Remove the duplicate key so the manifest has a single, unambiguous value.",
    frameworks: &[FrameworkRef::new(Framework::NsaCisa, "Threat detection / Audit")],
    fixtures: Fixtures {
        pass: &["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: safe\n"],
        fail: &[
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: safe\n  mode: unsafe\n",
        ],
    },
};

/// A finding for a key written twice in `obj`; `line` is the second occurrence, `first_line` the first.
pub fn duplicate_key_finding(obj: &Object<'_>, pointer: &str, first_line: u32, line: u32) -> Finding {
    let mut finding = obj.finding(
        &DUPLICATE_KEY,
        format!("key {pointer} is set twice (lines {first_line} and {line}); the last value wins"),
        pointer,
    );
    if let Some(evidence) = finding.evidence.as_mut() {
        evidence.line = Some(line);
    }
    finding
}

/// A finding for a key written twice outside any object (a List's own fields).
pub fn duplicate_key_in_file(file: &str, pointer: &str, first_line: u32, line: u32) -> Finding {
    let resource = ResourceRef {
        kind: "Manifest".into(),
        name: file.to_string(),
        file: Some(file.to_string()),
        line: Some(line),
        ..Default::default()
    };
    let evidence = Evidence {
        pointer: pointer.to_string(),
        value: None,
        line: Some(line),
        column: None,
    };
    Finding::from_rule(
        &DUPLICATE_KEY,
        resource,
        format!("key {pointer} is set twice (lines {first_line} and {line}); the last value wins"),
        Some(evidence),
    )
}
