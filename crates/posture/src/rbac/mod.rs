//! RBAC analysis: dangerous rules in Roles and ClusterRoles, dangerous bindings, service accounts of
//! workloads that can take over the cluster (Siloscape), and per-subject effective permissions for
//! `--rbac-report`. It keeps roles' rules and bindings' subjects, never whole objects, and it never
//! invents permissions: a binding to a role missing from the input is reported as not evaluated
//! (the one exception is cluster-admin, whose permissions Kubernetes fixes).

mod report;
mod rules;

pub use report::{NotEvaluatedGrant, ObjectRef, Permission, Scope, SubjectPermissions, render_report_text};
pub use rules::RULES;

use crate::netpol::selector::{Labels, Selector, labels_from};
use crate::object::Object;
use palisade_core::{Evidence, Finding, FindingStatus, ResourceRef, RuleMeta};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const CLUSTER_ADMIN: &str = "cluster-admin";
const DEFAULT_NAMESPACE: &str = crate::netpol::DEFAULT_NAMESPACE;

/// Roles bound by default to every authenticated (or anonymous) identity: harmless discovery.
const BENIGN_BROAD_ROLES: &[&str] = &[
    "system:basic-user",
    "system:discovery",
    "system:public-info-viewer",
    "system:service-account-issuer-discovery",
];

/// One entry of a role's `rules`, with non-string values dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl PolicyRule {
    fn parse(value: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(value.get("verbs")),
            api_groups: strings(value.get("apiGroups")),
            resources: strings(value.get("resources")),
            resource_names: strings(value.get("resourceNames")),
            non_resource_urls: strings(value.get("nonResourceURLs")),
        }
    }

    fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn has_group(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    /// Kubernetes' ResourceMatches: `*`, the exact resource, or `*/subresource`.
    fn resource_index(&self, resource: &str) -> Option<usize> {
        let subresource = resource.split_once('/').map(|(_, sub)| sub);
        self.resources.iter().position(|r| {
            r == "*" || r == resource || subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub))
        })
    }

    fn has_wildcard_resource(&self) -> bool {
        self.resources.iter().any(|r| r == "*")
    }
}

/// A permission that makes a rule dangerous, and the rule that reports it.
struct Capability {
    rule: &'static RuleMeta,
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    /// Empty means any verb.
    verbs: &'static [&'static str],
    /// Rules restricted to named objects do not count (reading one named secret is least privilege).
    unless_named: bool,
}

const WORKLOAD_WRITE: &[&str] = &["create", "update", "patch"];

static CAPABILITIES: &[Capability] = &[
    Capability {
        rule: &rules::SECRETS_READ,
        groups: &[""],
        resources: &["secrets"],
        verbs: &["get", "list", "watch"],
        unless_named: true,
    },
    Capability {
        rule: &rules::PODS_EXEC,
        groups: &[""],
        resources: &["pods/exec", "pods/attach"],
        verbs: &["create", "get"],
        unless_named: false,
    },
    Capability {
        rule: &rules::CREATE_PODS,
        groups: &[""],
        resources: &["pods"],
        verbs: &["create"],
        unless_named: false,
    },
    Capability {
        rule: &rules::CREATE_PODS,
        groups: &["apps", "extensions"],
        resources: &["deployments", "replicasets", "statefulsets", "daemonsets"],
        verbs: WORKLOAD_WRITE,
        unless_named: false,
    },
    Capability {
        rule: &rules::CREATE_PODS,
        groups: &["batch"],
        resources: &["jobs", "cronjobs"],
        verbs: WORKLOAD_WRITE,
        unless_named: false,
    },
    Capability {
        rule: &rules::CREATE_PODS,
        groups: &[""],
        resources: &["replicationcontrollers"],
        verbs: WORKLOAD_WRITE,
        unless_named: false,
    },
    Capability {
        rule: &rules::ESCALATE_BIND_IMPERSONATE,
        groups: &[RBAC_GROUP],
        resources: &["roles", "clusterroles"],
        verbs: &["escalate", "bind"],
        unless_named: false,
    },
    Capability {
        rule: &rules::ESCALATE_BIND_IMPERSONATE,
        groups: &["", "authentication.k8s.io"],
        resources: &["users", "groups", "serviceaccounts", "uids"],
        verbs: &["impersonate"],
        unless_named: false,
    },
    Capability {
        rule: &rules::NODES_PROXY,
        groups: &[""],
        resources: &["nodes/proxy"],
        verbs: &[],
        unless_named: false,
    },
    Capability {
        rule: &rules::CSR_APPROVAL,
        groups: &["certificates.k8s.io"],
        resources: &["certificatesigningrequests/approval"],
        verbs: &["update", "patch"],
        unless_named: false,
    },
    Capability {
        rule: &rules::CSR_APPROVAL,
        groups: &["certificates.k8s.io"],
        resources: &["signers"],
        verbs: &["approve"],
        unless_named: false,
    },
    Capability {
        rule: &rules::WEBHOOK_CONFIG,
        groups: &["admissionregistration.k8s.io"],
        resources: &["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        verbs: &["create", "update", "patch", "delete"],
        unless_named: false,
    },
    Capability {
        rule: &rules::SERVICEACCOUNT_TOKEN_CREATE,
        groups: &[""],
        resources: &["serviceaccounts/token"],
        verbs: &["create"],
        unless_named: false,
    },
];

impl Capability {
    /// Where `rule` grants this capability: the index of the matching resource and the verbs.
    fn granted_by(&self, rule: &PolicyRule) -> Option<(usize, Vec<&'static str>)> {
        if self.unless_named && !rule.resource_names.is_empty() {
            return None;
        }
        if !self.groups.iter().any(|g| rule.has_group(g)) {
            return None;
        }
        let index = self.resources.iter().find_map(|r| rule.resource_index(r))?;
        let verbs: Vec<&'static str> = if self.verbs.is_empty() {
            if rule.verbs.is_empty() {
                return None;
            }
            vec!["any verb"]
        } else {
            self.verbs.iter().copied().filter(|v| rule.has_verb(v)).collect()
        };
        (!verbs.is_empty()).then_some((index, verbs))
    }
}

/// Rule ids of everything dangerous `rule` grants, as the role checks name them: a resource
/// wildcard stands for every dangerous resource it covers.
fn dangers(rule: &PolicyRule) -> Vec<&'static str> {
    let mut out = Vec::new();
    if rule.verbs.iter().any(|v| v == "*") {
        out.push(rules::WILDCARD_VERBS.id);
    }
    if rule.has_wildcard_resource() || rule.non_resource_urls.iter().any(|u| u == "*") {
        out.push(rules::WILDCARD_RESOURCES.id);
    }
    if rule.api_groups.iter().any(|g| g == "*") {
        out.push(rules::WILDCARD_API_GROUPS.id);
    }
    if rule.has_wildcard_resource() {
        return out;
    }
    for capability in CAPABILITIES {
        if !out.contains(&capability.rule.id) && capability.granted_by(rule).is_some() {
            out.push(capability.rule.id);
        }
    }
    out
}

fn can_create_pods(rule: &PolicyRule) -> bool {
    CAPABILITIES
        .iter()
        .any(|c| c.rule.id == rules::CREATE_PODS.id && c.granted_by(rule).is_some())
}

/// The secrets capability's verbs `rule` grants on every secret (no resourceNames).
fn secret_verbs(rule: &PolicyRule) -> Vec<&'static str> {
    CAPABILITIES
        .iter()
        .filter(|c| c.rule.id == rules::SECRETS_READ.id)
        .filter_map(|c| c.granted_by(rule))
        .flat_map(|(_, verbs)| verbs)
        .collect()
}

fn can_read_secrets(rule: &PolicyRule) -> bool {
    !secret_verbs(rule).is_empty()
}

fn can_list_secrets(rule: &PolicyRule) -> bool {
    secret_verbs(rule).iter().any(|v| *v == "list" || *v == "watch")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RoleKind {
    Role,
    ClusterRole,
}

impl RoleKind {
    fn as_str(self) -> &'static str {
        match self {
            RoleKind::Role => "Role",
            RoleKind::ClusterRole => "ClusterRole",
        }
    }
}

#[derive(Debug)]
struct Role {
    kind: RoleKind,
    rules: Vec<PolicyRule>,
    labels: Labels,
    /// `aggregationRule.clusterRoleSelectors` of an aggregated ClusterRole.
    aggregation: Option<Vec<Selector>>,
}

/// An RBAC subject: a User, Group or ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Subject {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl Subject {
    fn group(name: impl Into<String>) -> Subject {
        Subject {
            kind: "Group".into(),
            namespace: None,
            name: name.into(),
        }
    }

    fn service_account(namespace: &str, name: &str) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug)]
struct Binding {
    resource: ResourceRef,
    cluster_wide: bool,
    /// The namespace a RoleBinding grants in (`default` when the manifest names none).
    namespace: Option<String>,
    role_kind: RoleKind,
    role_name: String,
    subjects: Vec<Subject>,
    bootstrap: bool,
}

impl Binding {
    fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.resource.kind.clone(),
            namespace: self.namespace.clone().filter(|_| !self.cluster_wide),
            name: self.resource.name.clone(),
        }
    }

    fn scope(&self) -> Scope {
        match (&self.namespace, self.cluster_wide) {
            (Some(ns), false) => Scope::Namespace {
                namespace: ns.clone(),
            },
            _ => Scope::Cluster,
        }
    }
}

#[derive(Debug)]
struct WorkloadAccount {
    resource: ResourceRef,
    namespace: String,
    service_account: String,
    pointer: String,
    /// `automountServiceAccountToken` of the pod spec.
    automount: Option<bool>,
}

/// Keeps roles and bindings seen in the input.
#[derive(Debug, Default)]
pub struct Collector {
    roles: Vec<Role>,
    /// (kind, namespace or "", name) → index in `roles`; a later definition wins.
    role_index: HashMap<(RoleKind, String, String), usize>,
    bindings: Vec<Binding>,
    workloads: Vec<WorkloadAccount>,
    /// ServiceAccount objects: (namespace, name) → `automountServiceAccountToken`.
    service_accounts: BTreeMap<(String, String), Option<bool>>,
    /// Findings about one role or binding alone, decided as it is observed.
    pending: Vec<Finding>,
}

fn is_rbac(obj: &Object<'_>) -> bool {
    let api_version = obj.api_version();
    api_version.is_empty() || api_version.starts_with("rbac.authorization.k8s.io/")
}

fn is_bootstrap(obj: &Object<'_>) -> bool {
    obj.label("kubernetes.io/bootstrapping") == Some("rbac-defaults")
}

/// What a binding's role resolves to.
enum Resolution<'a> {
    Rules {
        role: ObjectRef,
        rules: Vec<&'a PolicyRule>,
    },
    NotEvaluated {
        role: ObjectRef,
        reason: String,
    },
}

/// The built-in cluster-admin: every verb on everything.
fn cluster_admin_rules() -> &'static [PolicyRule] {
    static RULES: std::sync::OnceLock<Vec<PolicyRule>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let all = vec!["*".to_string()];
        vec![
            PolicyRule {
                verbs: all.clone(),
                api_groups: all.clone(),
                resources: all.clone(),
                ..PolicyRule::default()
            },
            PolicyRule {
                verbs: all.clone(),
                non_resource_urls: all,
                ..PolicyRule::default()
            },
        ]
    })
}

impl Collector {
    pub fn observe(&mut self, obj: &Object<'_>) {
        match obj.kind() {
            "Role" | "ClusterRole" if is_rbac(obj) => self.observe_role(obj),
            "RoleBinding" | "ClusterRoleBinding" if is_rbac(obj) => self.observe_binding(obj),
            "ServiceAccount" if obj.api_version() == "v1" || obj.api_version().is_empty() => {
                let automount = obj
                    .value
                    .get("automountServiceAccountToken")
                    .and_then(Value::as_bool);
                let namespace = obj.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string();
                self.service_accounts
                    .insert((namespace, obj.name().to_string()), automount);
            }
            _ => {
                if let Some(template) = obj.pod_template() {
                    let spec = template.spec;
                    let named = spec
                        .get("serviceAccountName")
                        .and_then(Value::as_str)
                        .map(|n| (n, "serviceAccountName"))
                        .or_else(|| {
                            spec.get("serviceAccount")
                                .and_then(Value::as_str)
                                .map(|n| (n, "serviceAccount"))
                        })
                        .filter(|(n, _)| !n.is_empty());
                    let (service_account, pointer) = match named {
                        Some((name, field)) => (name.to_string(), template.spec_field(field)),
                        None => ("default".to_string(), template.spec_pointer.to_string()),
                    };
                    self.workloads.push(WorkloadAccount {
                        resource: obj.resource(),
                        namespace: obj.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string(),
                        service_account,
                        pointer,
                        automount: spec.get("automountServiceAccountToken").and_then(Value::as_bool),
                    });
                }
            }
        }
    }

    fn observe_role(&mut self, obj: &Object<'_>) {
        let kind = if obj.kind() == "Role" {
            RoleKind::Role
        } else {
            RoleKind::ClusterRole
        };
        let namespace = match kind {
            RoleKind::Role => Some(obj.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string()),
            RoleKind::ClusterRole => None,
        };
        let raw_rules = obj
            .value
            .get("rules")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let rules: Vec<PolicyRule> = raw_rules.iter().map(PolicyRule::parse).collect();
        if !is_bootstrap(obj) {
            for (i, (raw, rule)) in raw_rules.iter().zip(&rules).enumerate() {
                check_rule(obj, i, raw, rule, &mut self.pending);
            }
        }
        let aggregation = match kind {
            RoleKind::ClusterRole => obj.value.get("aggregationRule").map(|a| {
                a.get("clusterRoleSelectors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|s| Selector::parse(Some(s)))
                    .collect()
            }),
            RoleKind::Role => None,
        };
        let key = (kind, namespace.unwrap_or_default(), obj.name().to_string());
        let role = Role {
            kind,
            rules,
            labels: labels_from(obj.labels()),
            aggregation,
        };
        match self.role_index.get(&key) {
            Some(&i) => self.roles[i] = role,
            None => {
                self.role_index.insert(key, self.roles.len());
                self.roles.push(role);
            }
        }
    }

    fn observe_binding(&mut self, obj: &Object<'_>) {
        let cluster_wide = obj.kind() == "ClusterRoleBinding";
        let namespace = (!cluster_wide).then(|| obj.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string());
        let role_ref = obj.value.get("roleRef");
        let role_name = role_ref
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let role_kind = match role_ref.and_then(|r| r.get("kind")).and_then(Value::as_str) {
            Some("Role") => RoleKind::Role,
            _ => RoleKind::ClusterRole,
        };
        let subjects: Vec<Subject> = obj
            .value
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| {
                let kind = s.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                let explicit_ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty());
                let namespace = match kind.as_str() {
                    "ServiceAccount" => explicit_ns.map(str::to_string).or_else(|| namespace.clone()),
                    _ => None,
                };
                Subject {
                    kind,
                    namespace,
                    name: s.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                }
            })
            .collect();
        let binding = Binding {
            resource: obj.resource(),
            cluster_wide,
            namespace,
            role_kind,
            role_name,
            subjects,
            bootstrap: is_bootstrap(obj),
        };
        if !binding.bootstrap {
            check_binding(obj, &binding, &mut self.pending);
        }
        self.bindings.push(binding);
    }

    /// The rules of every ClusterRole with an aggregationRule: its own plus those of the ClusterRoles
    /// its selectors match (one level, as the controller keeps them flattened).
    fn aggregated(&self) -> HashMap<usize, Vec<&PolicyRule>> {
        let mut out = HashMap::new();
        for (i, role) in self.roles.iter().enumerate() {
            let Some(selectors) = &role.aggregation else {
                continue;
            };
            let mut rules: Vec<&PolicyRule> = role.rules.iter().collect();
            for (j, other) in self.roles.iter().enumerate() {
                if i != j
                    && other.kind == RoleKind::ClusterRole
                    && selectors.iter().any(|s| s.matches(&other.labels))
                {
                    rules.extend(other.rules.iter().filter(|r| !role.rules.contains(r)));
                }
            }
            out.insert(i, rules);
        }
        out
    }

    fn resolve<'a>(
        &'a self,
        binding: &Binding,
        aggregated: &HashMap<usize, Vec<&'a PolicyRule>>,
    ) -> Resolution<'a> {
        let namespace = match binding.role_kind {
            RoleKind::Role => binding.namespace.clone().unwrap_or_default(),
            RoleKind::ClusterRole => String::new(),
        };
        let role = ObjectRef {
            kind: binding.role_kind.as_str().to_string(),
            namespace: Some(namespace.clone()).filter(|n| !n.is_empty()),
            name: binding.role_name.clone(),
        };
        if binding.cluster_wide && binding.role_kind == RoleKind::Role {
            return Resolution::NotEvaluated {
                role,
                reason: "a ClusterRoleBinding cannot refer to a Role".into(),
            };
        }
        let key = (binding.role_kind, namespace, binding.role_name.clone());
        match self.role_index.get(&key) {
            Some(&i) => {
                let rules = aggregated
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| self.roles[i].rules.iter().collect());
                Resolution::Rules { role, rules }
            }
            None if binding.role_kind == RoleKind::ClusterRole && binding.role_name == CLUSTER_ADMIN => {
                Resolution::Rules {
                    role,
                    rules: cluster_admin_rules().iter().collect(),
                }
            }
            None => Resolution::NotEvaluated {
                role,
                reason: "the role is not in the input".into(),
            },
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        out.append(&mut self.pending);
        let aggregated = self.aggregated();
        // Cluster-wide dangerous grants per subject, for the workload check.
        let mut cluster_grants: HashMap<&Subject, Vec<String>> = HashMap::new();
        for binding in &self.bindings {
            match self.resolve(binding, &aggregated) {
                Resolution::NotEvaluated { role, reason } => {
                    let message = format!(
                        "{} refers to {}: {reason}; its permissions are not evaluated",
                        binding.resource.display_name(),
                        role.display()
                    );
                    let mut finding = finding_at(
                        &rules::ROLE_NOT_IN_INPUT,
                        &binding.resource,
                        message,
                        "/roleRef/name",
                        Some(json!(binding.role_name)),
                    );
                    finding.status = FindingStatus::NotEvaluated { reason };
                    out.push(finding);
                }
                Resolution::Rules { role, rules } if binding.cluster_wide => {
                    let mut powers = Vec::new();
                    if rules.iter().any(|r| can_create_pods(r)) {
                        powers.push("create pods");
                    }
                    if rules.iter().any(|r| can_read_secrets(r)) {
                        powers.push("read secrets");
                    }
                    if !powers.is_empty() {
                        let via = format!(
                            "{} via {} → {}",
                            powers.join(" and "),
                            binding.resource.display_name(),
                            role.display()
                        );
                        for subject in &binding.subjects {
                            cluster_grants.entry(subject).or_default().push(via.clone());
                        }
                    }
                    let is_cluster_admin = binding.role_name == CLUSTER_ADMIN;
                    if !binding.bootstrap && !is_cluster_admin && rules.iter().any(|r| can_list_secrets(r)) {
                        let message = format!(
                            "{} grants {} to {}: list or watch on secrets in every namespace",
                            binding.resource.display_name(),
                            role.display(),
                            subjects_text(&binding.subjects)
                        );
                        out.push(finding_at(
                            &rules::SECRETS_CLUSTER_WIDE,
                            &binding.resource,
                            message,
                            "/roleRef/name",
                            Some(json!(binding.role_name)),
                        ));
                    }
                }
                Resolution::Rules { .. } => {}
            }
        }
        if cluster_grants.is_empty() {
            return;
        }
        let mut verdicts: HashMap<(&str, &str), Option<Vec<String>>> = HashMap::new();
        for workload in &self.workloads {
            let key = (workload.namespace.as_str(), workload.service_account.as_str());
            let token_mounted = workload.automount.or_else(|| {
                self.service_accounts
                    .get(&(key.0.to_string(), key.1.to_string()))
                    .copied()
                    .flatten()
            });
            if token_mounted == Some(false) {
                continue;
            }
            let grants = verdicts
                .entry(key)
                .or_insert_with(|| {
                    let identities = [
                        Subject::service_account(key.0, key.1),
                        Subject::group("system:serviceaccounts"),
                        Subject::group(format!("system:serviceaccounts:{}", key.0)),
                        Subject::group("system:authenticated"),
                    ];
                    let found: Vec<String> = identities
                        .iter()
                        .filter_map(|s| cluster_grants.get(s))
                        .flatten()
                        .cloned()
                        .collect();
                    (!found.is_empty()).then_some(found)
                })
                .as_ref();
            if let Some(grants) = grants {
                let message = format!(
                    "{} runs as service account {}/{} with a mounted token, which may cluster-wide: {}",
                    workload.resource.display_name(),
                    key.0,
                    key.1,
                    grants.join("; ")
                );
                out.push(finding_at(
                    &rules::WORKLOAD_SA_CLUSTER_ACCESS,
                    &workload.resource,
                    message,
                    &workload.pointer,
                    Some(json!(key.1)),
                ));
            }
        }
    }
}

fn finding_at(
    rule: &RuleMeta,
    resource: &ResourceRef,
    message: String,
    pointer: &str,
    value: Option<Value>,
) -> Finding {
    Finding::from_rule(
        rule,
        resource.clone(),
        message,
        Some(Evidence {
            pointer: pointer.to_string(),
            value,
            line: None,
            column: None,
        }),
    )
}

fn subjects_text(subjects: &[Subject]) -> String {
    if subjects.is_empty() {
        return "no subjects".into();
    }
    subjects
        .iter()
        .map(Subject::display)
        .collect::<Vec<_>>()
        .join(", ")
}

fn position(raw: &Value, field: &str, wanted: &str) -> Option<usize> {
    raw.get(field)?
        .as_array()?
        .iter()
        .position(|v| v.as_str() == Some(wanted))
}

/// The findings one entry of a role's `rules` earns on its own.
fn check_rule(obj: &Object<'_>, i: usize, raw: &Value, rule: &PolicyRule, out: &mut Vec<Finding>) {
    let name = obj.resource().display_name();
    if let Some(j) = position(raw, "verbs", "*") {
        out.push(obj.finding(
            &rules::WILDCARD_VERBS,
            format!("{name} rule {i} grants every verb"),
            &format!("/rules/{i}/verbs/{j}"),
        ));
    }
    if let Some(j) = position(raw, "resources", "*") {
        out.push(obj.finding(
            &rules::WILDCARD_RESOURCES,
            format!("{name} rule {i} grants access to every resource"),
            &format!("/rules/{i}/resources/{j}"),
        ));
        // Everything below is covered by the wildcard; one finding is enough.
        return;
    }
    if let Some(j) = position(raw, "nonResourceURLs", "*") {
        out.push(obj.finding(
            &rules::WILDCARD_RESOURCES,
            format!("{name} rule {i} grants every non-resource URL"),
            &format!("/rules/{i}/nonResourceURLs/{j}"),
        ));
    }
    if let Some(j) = position(raw, "apiGroups", "*") {
        out.push(obj.finding(
            &rules::WILDCARD_API_GROUPS,
            format!("{name} rule {i} grants access in every API group"),
            &format!("/rules/{i}/apiGroups/{j}"),
        ));
    }
    let mut reported: Vec<&str> = Vec::new();
    for capability in CAPABILITIES {
        if reported.contains(&capability.rule.id) {
            continue;
        }
        if let Some((index, verbs)) = capability.granted_by(rule) {
            reported.push(capability.rule.id);
            let resource = &rule.resources[index];
            let j = position(raw, "resources", resource).unwrap_or(0);
            let message = format!("{name} rule {i} grants {} on {resource}", verbs.join(", "));
            out.push(obj.finding(capability.rule, message, &format!("/rules/{i}/resources/{j}")));
        }
    }
}

/// The findings a binding earns on its own: who it binds to what.
fn check_binding(obj: &Object<'_>, binding: &Binding, out: &mut Vec<Finding>) {
    let name = binding.resource.display_name();
    let role = &binding.role_name;
    if binding.role_kind == RoleKind::ClusterRole
        && role == CLUSTER_ADMIN
        && binding
            .subjects
            .iter()
            .any(|s| !(s.kind == "Group" && s.name == "system:masters"))
    {
        let message = format!(
            "{name} grants cluster-admin to {}",
            subjects_text(&binding.subjects)
        );
        out.push(obj.finding(&rules::CLUSTER_ADMIN_BINDING, message, "/roleRef/name"));
    }
    let benign = binding.role_kind == RoleKind::ClusterRole && BENIGN_BROAD_ROLES.contains(&role.as_str());
    for (j, subject) in binding.subjects.iter().enumerate() {
        let pointer = format!("/subjects/{j}/name");
        let rule = match (subject.kind.as_str(), subject.name.as_str()) {
            ("User", "system:anonymous") | ("Group", "system:unauthenticated")
                if !(benign && role == "system:public-info-viewer") =>
            {
                Some(&rules::ANONYMOUS_BINDING)
            }
            ("Group", "system:authenticated" | "system:serviceaccounts") if !benign => {
                Some(&rules::AUTHENTICATED_BINDING)
            }
            ("ServiceAccount", "default") => Some(&rules::DEFAULT_SERVICE_ACCOUNT_BINDING),
            _ => None,
        };
        if let Some(rule) = rule {
            let message = format!(
                "{name} grants {} {role} to {}",
                binding.role_kind.as_str(),
                subject.display()
            );
            out.push(obj.finding(rule, message, &pointer));
        }
    }
}

#[cfg(test)]
mod tests;
