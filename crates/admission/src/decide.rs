//! Turns per-rule outcomes into the webhook's answer: denials list every violated rule id with its
//! message, warnings carry warn-mode rules, and every decision gets audit annotations.

use crate::catalogue::{Action, CataloguePolicy, Outcome};
use crate::cosign::{IMAGE_SIGNATURE, ImageVerifier};
use crate::mutate;
use crate::review::{AdmissionRequest, Decision};
use crate::role_guard::RoleGuard;
use std::collections::BTreeMap;

/// Everything that decides a request. Built once at start; shared by all requests.
#[derive(Default)]
pub struct Webhook {
    pub catalogue: CataloguePolicy,
    pub role_guard: RoleGuard,
    /// Cosign verification of images, when configured.
    pub images: Option<ImageVerifier>,
    /// Gatekeeper ConstraintTemplates and Constraints; the cluster sync replaces their inventory
    /// under the write lock while reviews read.
    pub gatekeeper: Option<std::sync::Arc<std::sync::RwLock<palisade_policy::PolicySet>>>,
    /// Deny images whose scan result is too severe.
    pub scan_gate: Option<crate::scan_gate::ScanGate>,
    /// Deny (true) or allow (false) when a policy cannot be evaluated.
    pub fail_closed: bool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("catalogue", &self.catalogue)
            .field("role_guard", &self.role_guard)
            .finish()
    }
}

/// Images of the request's pod template (or Pod), each once.
fn images_of(request: &AdmissionRequest) -> Vec<String> {
    let Some(object) = request.object.as_ref() else {
        return Vec::new();
    };
    let origin = palisade_posture::Origin::default();
    let obj = palisade_posture::Object::new(object, &origin);
    let Some(template) = obj.pod_template() else {
        return Vec::new();
    };
    let mut images: Vec<String> = template
        .containers()
        .iter()
        .filter_map(|c| c.image.map(str::to_string))
        .collect();
    images.sort();
    images.dedup();
    images
}

/// Longest message we put in one warning (the API server truncates at 256 characters).
const WARNING_MAX: usize = 250;

fn line(outcome: &Outcome) -> String {
    format!("[{}] {}", outcome.finding.rule_id, outcome.finding.message)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max.saturating_sub(1);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn describe(request: &AdmissionRequest) -> String {
    let name = if request.name.is_empty() {
        request
            .object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/generateName"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
    } else {
        request.name.as_str()
    };
    match &request.namespace {
        Some(ns) => format!("{} {ns}/{name}", request.kind.kind),
        None => format!("{} {name}", request.kind.kind),
    }
}

impl Webhook {
    /// The validating decision.
    pub fn validate(&self, request: &AdmissionRequest) -> Decision {
        let started = std::time::Instant::now();
        let outcomes = self.catalogue.evaluate(request);
        let mut decision = Decision::allow();
        decision
            .timings
            .push(("posture-catalogue".to_string(), started.elapsed()));
        let mut denied = Vec::new();
        let mut by_action: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for outcome in &outcomes {
            by_action
                .entry(outcome.action.as_str())
                .or_default()
                .push(&outcome.finding.rule_id);
            match outcome.action {
                Action::Enforce => denied.push(line(outcome)),
                // A rule set to mutate that still fails here had no mutation that could fix it.
                Action::Warn | Action::Mutate => decision.warnings.push(truncate(line(outcome), WARNING_MAX)),
                Action::Audit | Action::Off => {}
            }
        }
        if let Some(verifier) = self.images.as_ref().filter(|v| !v.is_empty())
            && matches!(request.operation.as_str(), "CREATE" | "UPDATE")
            && request.sub_resource.is_none()
        {
            for image in images_of(request) {
                if let Err(why) = verifier.check(&image) {
                    by_action
                        .entry(Action::Enforce.as_str())
                        .or_default()
                        .push(IMAGE_SIGNATURE.id);
                    denied.push(format!("[{}] image {image:?}: {why}", IMAGE_SIGNATURE.id));
                }
            }
        }
        if let Some(gate) = &self.scan_gate
            && matches!(request.operation.as_str(), "CREATE" | "UPDATE")
            && request.sub_resource.is_none()
        {
            for image in images_of(request) {
                if let Err(why) = gate.check(&image, request.dry_run) {
                    by_action
                        .entry(Action::Enforce.as_str())
                        .or_default()
                        .push(crate::scan_gate::IMAGE_SCAN.id);
                    denied.push(format!("[{}] {why}", crate::scan_gate::IMAGE_SCAN.id));
                }
            }
        }
        if let Some(policies) = &self.gatekeeper {
            let policies = policies.read().unwrap_or_else(|e| e.into_inner());
            self.gatekeeper(&policies, request, &mut decision, &mut denied);
        }
        for violation in self.role_guard.check(request) {
            by_action
                .entry(Action::Enforce.as_str())
                .or_default()
                .push(violation.rule.id);
            denied.push(format!("[{}] {}", violation.rule.id, violation.message));
        }
        if !denied.is_empty() {
            decision.allowed = false;
            decision.code = Some(403);
            decision.message = Some(format!(
                "palisade denied {}: {} rule{} violated: {}",
                describe(request),
                denied.len(),
                if denied.len() == 1 { "" } else { "s" },
                denied.join("; ")
            ));
        }
        decision.audit_annotations.insert(
            "decision".into(),
            if decision.allowed { "allow" } else { "deny" }.into(),
        );
        for (action, ids) in by_action {
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            decision
                .audit_annotations
                .insert(format!("rules-{action}"), ids.join(","));
        }
        if request.dry_run {
            decision.audit_annotations.insert("dry-run".into(), "true".into());
        }
        if decision.allowed {
            let ids: Vec<&str> = outcomes.iter().map(|o| o.finding.rule_id.as_str()).collect();
            self.role_guard.learn(request, &ids);
        }
        decision
    }

    /// Gatekeeper constraints: deny, warn or dryrun per constraint; evaluation errors follow the
    /// failure policy; undecidable constraints are recorded, never passed silently.
    fn gatekeeper(
        &self,
        policies: &palisade_policy::PolicySet,
        request: &AdmissionRequest,
        decision: &mut Decision,
        denied: &mut Vec<String>,
    ) {
        // The object of a CREATE may not carry its namespace yet; the request's is the truth.
        let mut raw = request.raw.clone();
        if let Some(ns) = &request.namespace {
            for field in ["object", "oldObject"] {
                if let Some(meta) = raw
                    .get_mut(field)
                    .and_then(|o| o.get_mut("metadata"))
                    .and_then(|m| m.as_object_mut())
                {
                    meta.entry("namespace")
                        .or_insert_with(|| serde_json::Value::String(ns.clone()));
                }
            }
        }
        let gk_request = match palisade_policy::AdmissionRequest::from_request(&raw) {
            Ok(r) => r,
            Err(e) => {
                decision
                    .audit_annotations
                    .insert("gatekeeper-error".into(), truncate(e.to_string(), 512));
                if self.fail_closed {
                    denied.push(format!(
                        "[gatekeeper] the request could not be prepared for policy evaluation: {e}"
                    ));
                }
                return;
            }
        };
        let review = policies.review(&gk_request);
        decision.gatekeeper_remembered += review.remembered;
        decision.gatekeeper_evaluated += review.timings.len().saturating_sub(review.remembered);
        let mut by_template: BTreeMap<String, std::time::Duration> = BTreeMap::new();
        for (template, spent) in review.timings {
            *by_template.entry(template).or_default() += spent;
        }
        decision.timings.extend(
            by_template
                .into_iter()
                .map(|(t, d)| (format!("gatekeeper/{t}"), d)),
        );
        let mut dryrun = Vec::new();
        for v in &review.violations {
            let line = format!("[{}:{}] {}", v.constraint_kind, v.constraint_name, v.msg);
            match v.enforcement_action {
                palisade_policy::EnforcementAction::Deny => denied.push(line),
                palisade_policy::EnforcementAction::Warn => {
                    decision.warnings.push(truncate(line, WARNING_MAX))
                }
                palisade_policy::EnforcementAction::Dryrun => {
                    dryrun.push(format!("{}/{}", v.constraint_kind, v.constraint_name))
                }
            }
        }
        if !dryrun.is_empty() {
            dryrun.sort();
            dryrun.dedup();
            decision
                .audit_annotations
                .insert("gatekeeper-dryrun".into(), dryrun.join(","));
        }
        if !review.not_evaluated.is_empty() {
            let names: Vec<String> = review
                .not_evaluated
                .iter()
                .map(|n| format!("{}/{}: {}", n.constraint_kind, n.constraint_name, n.reason))
                .collect();
            decision.audit_annotations.insert(
                "gatekeeper-not-evaluated".into(),
                truncate(names.join("; "), 1024),
            );
        }
        if !review.errors.is_empty() {
            let errors: Vec<String> = review.errors.iter().map(|e| e.to_string()).collect();
            eprintln!(
                "palisade admission: policy evaluation failed: {}",
                errors.join("; ")
            );
            decision
                .audit_annotations
                .insert("gatekeeper-errors".into(), truncate(errors.join("; "), 1024));
            if self.fail_closed {
                denied.extend(
                    errors
                        .iter()
                        .map(|e| format!("[gatekeeper] could not evaluate: {e}")),
                );
            } else {
                decision.warnings.push(truncate(
                    format!(
                        "palisade could not evaluate every policy ({}); allowed by failure policy",
                        errors.join("; ")
                    ),
                    WARNING_MAX,
                ));
            }
        }
    }

    /// The mutating decision: always allowed; a JSONPatch when a secure default applies.
    pub fn mutate(&self, request: &AdmissionRequest) -> Decision {
        let (ops, applied) = mutate::patch_for(&self.catalogue, request);
        let mut decision = Decision::allow();
        decision.audit_annotations.insert(
            "mutated".into(),
            if ops.is_empty() { "false" } else { "true" }.into(),
        );
        if !applied.is_empty() {
            decision
                .audit_annotations
                .insert("rules-mutate".into(), applied.join(","));
            decision.patch = Some(ops);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::parse_review;
    use serde_json::json;

    fn request(object: serde_json::Value) -> AdmissionRequest {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop", "name": "p",
            "operation": "CREATE", "dryRun": true, "object": object}});
        parse_review(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn denial_lists_every_enforced_rule() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"hostPID": true, "containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}});
        let d = Webhook::default().validate(&request(pod));
        assert!(!d.allowed);
        let message = d.message.unwrap();
        assert!(
            message.contains("[pss.privileged]") && message.contains("[pss.host-namespaces]"),
            "{message}"
        );
        assert!(message.starts_with("palisade denied Pod shop/p"));
        assert_eq!(d.audit_annotations["decision"], "deny");
        assert_eq!(d.audit_annotations["dry-run"], "true");
        assert!(d.warnings.iter().all(|w| w.len() <= 256));
    }

    #[test]
    fn clean_pod_is_allowed_with_annotations() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
        let d = Webhook::default().validate(&request(pod));
        assert!(d.allowed, "{:?}", d.message);
        assert_eq!(d.audit_annotations["decision"], "allow");
        assert!(!d.warnings.is_empty(), "medium findings warn by default");
    }
}
