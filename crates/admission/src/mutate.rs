//! Secure defaults applied by the mutating webhook, as RFC 6902 JSONPatch operations: seccomp
//! RuntimeDefault, allowPrivilegeEscalation false, capabilities drop ALL. Each mutation only adds
//! what is missing and never overrides an explicit choice, so a second pass yields no operations.

use crate::catalogue::{Action, CataloguePolicy};
use crate::review::AdmissionRequest;
use palisade_posture::object::{Container, PodTemplate};
use palisade_posture::{Object, Origin, catalogue};
use serde_json::{Value, json};

/// The rules that have a mutation, and the one that applies it.
pub const MUTABLE_RULES: &[&str] = &[
    "pss.seccomp-restricted",
    "pss.allow-privilege-escalation",
    "pss.capabilities-restricted",
];

/// The JSONPatch for the request, for the mutable rules whose action is `mutate` in its namespace,
/// and the ids of the rules that contributed operations.
pub fn patch_for(policy: &CataloguePolicy, request: &AdmissionRequest) -> (Vec<Value>, Vec<&'static str>) {
    let mut ops = Vec::new();
    let mut applied = Vec::new();
    if request.operation != "CREATE" && request.operation != "UPDATE" || request.sub_resource.is_some() {
        return (ops, applied);
    }
    let Some(object) = request.object.as_ref() else {
        return (ops, applied);
    };
    // Each mutation sees the object as the earlier ones left it, so their operations compose
    // (two mutations must not both create the same securityContext).
    let mut working = object.clone();
    let namespace = request.namespace.as_deref();
    let origin = Origin::default();
    for &rule_id in MUTABLE_RULES {
        let Some(rule) = catalogue::find(rule_id) else {
            continue;
        };
        if policy.action_for(rule_id, rule.severity, namespace) != Action::Mutate {
            continue;
        }
        let mut rule_ops = Vec::new();
        {
            let obj = Object::new(&working, &origin);
            let Some(template) = obj.pod_template() else {
                return (ops, applied);
            };
            match rule_id {
                "pss.seccomp-restricted" => seccomp_runtime_default(&template, &mut rule_ops),
                "pss.allow-privilege-escalation" => {
                    for c in template.containers() {
                        no_privilege_escalation(&c, &mut rule_ops);
                    }
                }
                "pss.capabilities-restricted" => {
                    for c in template.containers() {
                        drop_all_capabilities(&c, &mut rule_ops);
                    }
                }
                _ => {}
            }
        }
        if rule_ops.is_empty() {
            continue;
        }
        if apply_adds(&mut working, &rule_ops).is_err() {
            continue; // cannot happen for the operations above; skip rather than send a bad patch
        }
        ops.extend(rule_ops);
        applied.push(rule_id);
    }
    (ops, applied)
}

fn add(path: String, value: Value) -> Value {
    json!({"op": "add", "path": path, "value": value})
}

fn seccomp_runtime_default(template: &PodTemplate<'_>, ops: &mut Vec<Value>) {
    let pod_sc = template.pod_security_context();
    if pod_sc.and_then(|sc| sc.get("seccompProfile")).is_some() {
        return; // an explicit choice, valid or not, is the validating side's business
    }
    let profile = json!({"type": "RuntimeDefault"});
    match pod_sc.filter(|sc| sc.is_object()) {
        Some(_) => ops.push(add(
            template.spec_field("securityContext/seccompProfile"),
            profile,
        )),
        None if pod_sc.is_none() => ops.push(add(
            template.spec_field("securityContext"),
            json!({"seccompProfile": profile}),
        )),
        None => {} // securityContext of the wrong type: leave it to validation
    }
}

/// Adds `field` under the container's securityContext, creating the securityContext if absent.
fn add_to_security_context(c: &Container<'_>, field: &str, value: Value, ops: &mut Vec<Value>) {
    match c.security_context() {
        None => ops.push(add(c.field("securityContext"), json!({ field: value }))),
        Some(sc) if sc.is_object() => ops.push(add(c.field(&format!("securityContext/{field}")), value)),
        Some(_) => {}
    }
}

fn no_privilege_escalation(c: &Container<'_>, ops: &mut Vec<Value>) {
    let sc = c.security_context();
    if sc.and_then(|sc| sc.get("allowPrivilegeEscalation")).is_some() {
        return;
    }
    // The API server rejects allowPrivilegeEscalation=false together with privileged or CAP_SYS_ADMIN.
    let privileged = sc.and_then(|sc| sc.get("privileged")).and_then(Value::as_bool) == Some(true);
    let sys_admin = sc
        .and_then(|sc| sc.pointer("/capabilities/add"))
        .and_then(Value::as_array)
        .is_some_and(|add| {
            add.iter()
                .any(|c| c.as_str() == Some("SYS_ADMIN") || c.as_str() == Some("CAP_SYS_ADMIN"))
        });
    if privileged || sys_admin {
        return;
    }
    add_to_security_context(c, "allowPrivilegeEscalation", Value::Bool(false), ops);
}

fn drop_all_capabilities(c: &Container<'_>, ops: &mut Vec<Value>) {
    let sc = c.security_context();
    let caps = sc.and_then(|sc| sc.get("capabilities"));
    let drop = caps.and_then(|c| c.get("drop"));
    match (sc, caps, drop) {
        (_, _, Some(Value::Array(list))) => {
            if !list.iter().any(|d| d.as_str() == Some("ALL")) {
                ops.push(add(c.field("securityContext/capabilities/drop/-"), json!("ALL")));
            }
        }
        (_, _, Some(_)) => {}
        (_, Some(caps), None) if caps.is_object() => {
            ops.push(add(c.field("securityContext/capabilities/drop"), json!(["ALL"])))
        }
        (_, Some(_), None) => {}
        (_, None, None) => add_to_security_context(c, "capabilities", json!({"drop": ["ALL"]}), ops),
    }
}

/// Applies the `add` operations this module produces (object members and array appends): enough to
/// check idempotency in tests and for `admission audit` to show the mutated object.
pub fn apply_adds(target: &mut Value, ops: &[Value]) -> Result<(), String> {
    for op in ops {
        let path = op.get("path").and_then(Value::as_str).ok_or("op without path")?;
        let value = op.get("value").cloned().ok_or("op without value")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let parent = target
            .pointer_mut(parent)
            .ok_or_else(|| format!("no parent for {path}"))?;
        match parent {
            Value::Object(map) => {
                map.insert(last, value);
            }
            Value::Array(list) if last == "-" => list.push(value),
            _ => return Err(format!("cannot add at {path}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::ActionRule;
    use crate::review::parse_review;

    fn request(object: Value) -> AdmissionRequest {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "namespace": "shop",
            "operation": "CREATE", "object": object}});
        parse_review(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn mutate_all() -> CataloguePolicy {
        CataloguePolicy {
            actions: vec![ActionRule {
                rules: MUTABLE_RULES.iter().map(|s| s.to_string()).collect(),
                namespaces: vec![],
                action: Action::Mutate,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn secure_defaults_are_idempotent() {
        let mut deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}],
            "containers": [
                {"name": "app", "image": "nginx:1.27"},
                {"name": "debug", "image": "busybox:1.36", "securityContext": {"privileged": true, "allowPrivilegeEscalation": true}},
                {"name": "sidecar", "image": "envoy:1.30", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}
            ]}}}});
        let policy = mutate_all();
        let (ops, applied) = patch_for(&policy, &request(deployment.clone()));
        assert_eq!(applied, MUTABLE_RULES.to_vec());
        apply_adds(&mut deployment, &ops).unwrap();
        let spec = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(
            spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            spec["containers"][0]["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(
            spec["containers"][1]["securityContext"]["allowPrivilegeEscalation"], true,
            "explicit choice kept"
        );
        assert_eq!(
            spec["initContainers"][0]["securityContext"]["capabilities"]["drop"],
            json!(["NET_RAW", "ALL"])
        );
        assert_eq!(
            spec["containers"][2]["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );

        let (again, _) = patch_for(&policy, &request(deployment));
        assert!(again.is_empty(), "second pass must be a no-op: {again:?}");
    }

    #[test]
    fn nothing_without_mutate_action_or_template() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        assert!(patch_for(&CataloguePolicy::default(), &request(pod)).0.is_empty());
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(patch_for(&mutate_all(), &request(cm)).0.is_empty());
        let odd = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"securityContext": 5, "containers": [{"name": "c", "securityContext": "x"}]}});
        assert!(patch_for(&mutate_all(), &request(odd)).0.is_empty());
    }
}
