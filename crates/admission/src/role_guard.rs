//! Role assignment at admission: who may be given powerful roles, and who may touch the RBAC of
//! protected namespaces. Needs the request's userInfo, so it exists only at admission; the roles'
//! contents come from built-in knowledge (cluster-admin), configuration, and the Roles and
//! ClusterRoles this webhook has itself admitted (learned, never on dry runs).

use crate::review::AdmissionRequest;
use palisade_core::glob::glob_match;
use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::RwLock;

pub static DANGEROUS_ROLE_BINDING: RuleMeta = RuleMeta {
    id: "admission.dangerous-role-binding",
    title: "Powerful role granted to a subject outside the allowlist",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A RoleBinding or ClusterRoleBinding grants cluster-admin, a configured dangerous role, or a role \
                  with escalate/bind/impersonate or wildcard permissions to a subject the admission policy does \
                  not allow to hold such roles.",
    rationale: "Whoever can bind powerful roles can make any identity cluster-admin. Restricting who may receive \
                them keeps a stolen CI token or a compromised operator from quietly widening its own access.",
    remediation: "Bind a narrower role, or add the subject to admission.roleAssignment.allowedSubjects after review.",
    frameworks: &[
        FrameworkRef::new(Framework::CisKubernetes, "5.1.1"),
        FrameworkRef::new(Framework::CisKubernetes, "5.1.8"),
        FrameworkRef::new(Framework::NsaCisa, "Authentication and authorization"),
        FrameworkRef::new(Framework::MitreAttack, "T1078.001"),
    ],
    fixtures: Fixtures { pass: &[], fail: &[] },
};

pub static PROTECTED_NAMESPACE_RBAC: RuleMeta = RuleMeta {
    id: "admission.protected-namespace-rbac",
    title: "RBAC change in a protected namespace by a user outside the allowlist",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A Role or RoleBinding in a namespace listed in admission.roleAssignment.protectedNamespaces is \
                  created, changed or deleted by a user who is not one of that list's administrators.",
    rationale: "Namespaces such as kube-system or the security tooling's own hold the cluster's keys; their access \
                rules should change only through the people and pipelines that own them.",
    remediation: "Make the change through an identity listed in admission.roleAssignment.namespaceAdmins.",
    frameworks: &[
        FrameworkRef::new(Framework::NsaCisa, "Authentication and authorization"),
        FrameworkRef::new(Framework::MitreAttack, "T1098"),
    ],
    fixtures: Fixtures { pass: &[], fail: &[] },
};

/// Admission-only rules (they need the requesting user), listed with the catalogue.
pub static RULES: &[&RuleMeta] = &[
    &DANGEROUS_ROLE_BINDING,
    &PROTECTED_NAMESPACE_RBAC,
    &crate::cosign::IMAGE_SIGNATURE,
];

/// The posture findings that make a role dangerous to grant.
pub const DANGEROUS_ROLE_FINDINGS: &[&str] = &[
    "rbac.wildcard-verbs",
    "rbac.wildcard-resources",
    "rbac.escalate-bind-impersonate",
];

/// `admission.roleAssignment` in palisade.yaml. Subjects are written `User:NAME`, `Group:NAME` or
/// `ServiceAccount:NAMESPACE:NAME`, each part a glob.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleAssignmentConfig {
    #[serde(default)]
    pub allowed_subjects: Vec<String>,
    /// Roles to treat as dangerous besides cluster-admin (`ClusterRole:NAME` or `Role:NS:NAME`, or a bare name).
    #[serde(default)]
    pub dangerous_roles: Vec<String>,
    #[serde(default)]
    pub protected_namespaces: Vec<String>,
    /// Who may change RBAC in protected namespaces: `User:NAME` or `Group:NAME` globs.
    #[serde(default)]
    pub namespace_admins: Vec<String>,
}

/// A violation found by the guard.
#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: &'static RuleMeta,
    pub message: String,
}

type RoleKey = (String, String, String); // kind, namespace ("" for cluster roles), name

#[derive(Debug, Default)]
pub struct RoleGuard {
    config: RoleAssignmentConfig,
    /// Dangerous roles this webhook has admitted, with the findings that make them so.
    learned: RwLock<HashMap<RoleKey, Vec<String>>>,
}

fn subject_label(subject: &Value, binding_ns: Option<&str>) -> Option<String> {
    let kind = subject.get("kind")?.as_str()?;
    let name = subject.get("name")?.as_str()?;
    Some(match kind {
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .or(binding_ns)
                .unwrap_or("default");
            format!("ServiceAccount:{ns}:{name}")
        }
        other => format!("{other}:{name}"),
    })
}

impl RoleGuard {
    pub fn new(config: RoleAssignmentConfig) -> RoleGuard {
        RoleGuard {
            config,
            learned: RwLock::new(HashMap::new()),
        }
    }

    fn is_configured(&self) -> bool {
        !self.config.allowed_subjects.is_empty()
            || !self.config.dangerous_roles.is_empty()
            || !self.config.protected_namespaces.is_empty()
    }

    /// Remembers (or forgets) a Role or ClusterRole this webhook admitted, from the posture findings
    /// it produced. Dry runs leave no trace.
    pub fn learn(&self, request: &AdmissionRequest, finding_ids: &[&str]) {
        if request.dry_run || !matches!(request.kind.kind.as_str(), "Role" | "ClusterRole") {
            return;
        }
        let key = (
            request.kind.kind.clone(),
            if request.kind.kind == "Role" {
                request.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            request.name.clone(),
        );
        let reasons: Vec<String> = finding_ids
            .iter()
            .filter(|id| DANGEROUS_ROLE_FINDINGS.contains(id))
            .map(|id| id.to_string())
            .collect();
        let Ok(mut learned) = self.learned.write() else {
            return;
        };
        if request.operation == "DELETE" || reasons.is_empty() {
            learned.remove(&key);
        } else {
            learned.insert(key, reasons);
        }
    }

    /// Why the role a binding refers to is dangerous, if it is.
    fn danger(&self, role_kind: &str, role_name: &str, binding_ns: Option<&str>) -> Option<String> {
        if role_kind == "ClusterRole" && role_name == "cluster-admin" {
            return Some("cluster-admin grants every permission".into());
        }
        let qualified = match role_kind {
            "Role" => format!("Role:{}:{role_name}", binding_ns.unwrap_or("")),
            _ => format!("ClusterRole:{role_name}"),
        };
        if self
            .config
            .dangerous_roles
            .iter()
            .any(|g| glob_match(g, &qualified) || glob_match(g, role_name))
        {
            return Some(format!("{qualified} is listed as dangerous"));
        }
        let key = (
            role_kind.to_string(),
            if role_kind == "Role" {
                binding_ns.unwrap_or("").to_string()
            } else {
                String::new()
            },
            role_name.to_string(),
        );
        let learned = self.learned.read().ok()?;
        learned
            .get(&key)
            .map(|reasons| format!("{qualified} has {}", reasons.join(", ")))
    }

    fn user_matches(&self, request: &AdmissionRequest, patterns: &[String]) -> bool {
        let user_info = request.raw.get("userInfo");
        let username = user_info
            .and_then(|u| u.get("username"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let groups: Vec<&str> = user_info
            .and_then(|u| u.get("groups"))
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        patterns.iter().any(|p| {
            if let Some(user) = p.strip_prefix("User:") {
                glob_match(user, username)
            } else if let Some(group) = p.strip_prefix("Group:") {
                groups.iter().any(|g| glob_match(group, g))
            } else {
                glob_match(p, username)
            }
        })
    }

    /// The violations of the request.
    pub fn check(&self, request: &AdmissionRequest) -> Vec<Violation> {
        let mut out = Vec::new();
        if !self.is_configured() {
            return out;
        }
        let kind = request.kind.kind.as_str();
        let is_rbac_group = request.kind.group == "rbac.authorization.k8s.io";
        if !is_rbac_group {
            return out;
        }
        if matches!(kind, "Role" | "RoleBinding")
            && let Some(ns) = request.namespace.as_deref()
            && self.config.protected_namespaces.iter().any(|g| glob_match(g, ns))
            && !self.user_matches(request, &self.config.namespace_admins)
        {
            out.push(Violation {
                rule: &PROTECTED_NAMESPACE_RBAC,
                message: format!(
                    "{} of {kind} {ns}/{} is reserved to the namespace's administrators (user {:?})",
                    request.operation.to_lowercase(),
                    request.name,
                    request.username
                ),
            });
        }
        if !matches!(kind, "RoleBinding" | "ClusterRoleBinding") || request.operation == "DELETE" {
            return out;
        }
        let Some(object) = request.object.as_ref() else {
            return out;
        };
        let role_kind = object
            .pointer("/roleRef/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let role_name = object
            .pointer("/roleRef/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let binding_ns = if kind == "RoleBinding" {
            request.namespace.as_deref()
        } else {
            None
        };
        let Some(danger) = self.danger(role_kind, role_name, binding_ns) else {
            return out;
        };
        let subjects = object
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for subject in &subjects {
            let Some(label) = subject_label(subject, binding_ns) else {
                continue;
            };
            if !self.config.allowed_subjects.iter().any(|g| glob_match(g, &label)) {
                out.push(Violation {
                    rule: &DANGEROUS_ROLE_BINDING,
                    message: format!(
                        "{kind} {} grants {role_kind} {role_name} to {label}: {danger}",
                        request.name
                    ),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::parse_review;
    use serde_json::json;

    fn request(
        kind: &str,
        namespace: Option<&str>,
        operation: &str,
        user: &str,
        groups: &[&str],
        object: Value,
        dry_run: bool,
    ) -> AdmissionRequest {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": kind},
            "name": object["metadata"]["name"], "namespace": namespace, "operation": operation, "dryRun": dry_run,
            "userInfo": {"username": user, "groups": groups}, "object": object}});
        parse_review(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn binding(role_kind: &str, role: &str, subjects: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": subjects})
    }

    fn guard() -> RoleGuard {
        RoleGuard::new(RoleAssignmentConfig {
            allowed_subjects: vec![
                "Group:platform-admins".into(),
                "ServiceAccount:kube-system:*".into(),
            ],
            dangerous_roles: vec!["admin".into()],
            protected_namespaces: vec!["kube-system".into(), "palisade-*".into()],
            namespace_admins: vec![
                "Group:platform-admins".into(),
                "User:system:serviceaccount:argocd:*".into(),
            ],
        })
    }

    #[test]
    fn cluster_admin_only_to_allowed_subjects() {
        let g = guard();
        let subjects = json!([{"kind": "User", "name": "mallory"}, {"kind": "Group", "name": "platform-admins"},
                              {"kind": "ServiceAccount", "name": "ci", "namespace": "kube-system"}]);
        let v = g.check(&request(
            "ClusterRoleBinding",
            None,
            "CREATE",
            "bob",
            &[],
            binding("ClusterRole", "cluster-admin", subjects),
            false,
        ));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("User:mallory"));
        let harmless = g.check(&request(
            "ClusterRoleBinding",
            None,
            "CREATE",
            "bob",
            &[],
            binding(
                "ClusterRole",
                "view",
                json!([{"kind": "User", "name": "mallory"}]),
            ),
            false,
        ));
        assert!(harmless.is_empty());
        let listed = g.check(&request(
            "ClusterRoleBinding",
            None,
            "CREATE",
            "bob",
            &[],
            binding(
                "ClusterRole",
                "admin",
                json!([{"kind": "User", "name": "mallory"}]),
            ),
            false,
        ));
        assert_eq!(listed.len(), 1);
    }

    #[test]
    fn learned_roles_but_not_from_dry_runs() {
        let g = guard();
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "power"}, "rules": []});
        g.learn(
            &request("ClusterRole", None, "CREATE", "bob", &[], role.clone(), true),
            &["rbac.wildcard-verbs"],
        );
        let b = binding(
            "ClusterRole",
            "power",
            json!([{"kind": "User", "name": "mallory"}]),
        );
        assert!(
            g.check(&request(
                "ClusterRoleBinding",
                None,
                "CREATE",
                "bob",
                &[],
                b.clone(),
                false
            ))
            .is_empty(),
            "dry run learned nothing"
        );
        g.learn(
            &request("ClusterRole", None, "CREATE", "bob", &[], role.clone(), false),
            &["rbac.wildcard-verbs"],
        );
        let v = g.check(&request(
            "ClusterRoleBinding",
            None,
            "CREATE",
            "bob",
            &[],
            b.clone(),
            false,
        ));
        assert!(v[0].message.contains("rbac.wildcard-verbs"), "{v:?}");
        g.learn(
            &request("ClusterRole", None, "UPDATE", "bob", &[], role, false),
            &[],
        );
        assert!(
            g.check(&request(
                "ClusterRoleBinding",
                None,
                "CREATE",
                "bob",
                &[],
                b,
                false
            ))
            .is_empty(),
            "defanged role forgotten"
        );
    }

    #[test]
    fn protected_namespaces() {
        let g = guard();
        let rb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "kube-system"},
                        "roleRef": {"kind": "Role", "name": "r"}, "subjects": []});
        let v = g.check(&request(
            "RoleBinding",
            Some("kube-system"),
            "CREATE",
            "bob",
            &["dev"],
            rb.clone(),
            false,
        ));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule.id, "admission.protected-namespace-rbac");
        assert!(
            g.check(&request(
                "RoleBinding",
                Some("kube-system"),
                "CREATE",
                "alice",
                &["platform-admins"],
                rb.clone(),
                false
            ))
            .is_empty()
        );
        assert!(
            g.check(&request(
                "RoleBinding",
                Some("kube-system"),
                "UPDATE",
                "system:serviceaccount:argocd:app",
                &[],
                rb.clone(),
                false
            ))
            .is_empty()
        );
        assert!(
            g.check(&request(
                "RoleBinding",
                Some("shop"),
                "CREATE",
                "bob",
                &[],
                rb,
                false
            ))
            .is_empty()
        );
        assert!(
            RoleGuard::default()
                .check(&request(
                    "RoleBinding",
                    Some("kube-system"),
                    "CREATE",
                    "bob",
                    &[],
                    json!({"metadata": {"name": "x"}}),
                    false
                ))
                .is_empty()
        );
    }
}
