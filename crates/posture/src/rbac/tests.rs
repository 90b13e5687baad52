use super::*;
use crate::object::Origin;
use serde_json::json;

fn collect(objects: &[Value]) -> Collector {
    let mut collector = Collector::default();
    for (i, value) in objects.iter().enumerate() {
        let origin = Origin {
            file: Some("rbac.yaml".into()),
            line: Some(i as u32 * 10 + 1),
        };
        collector.observe(&Object::new(value, &origin));
    }
    collector
}

fn findings(objects: &[Value]) -> Vec<Finding> {
    let mut out = Vec::new();
    collect(objects).finish(&mut out);
    out
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn pointer(finding: &Finding) -> &str {
    finding.evidence.as_ref().map_or("", |e| e.pointer.as_str())
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn cluster_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": subjects})
}

fn binding(ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
           "subjects": subjects})
}

fn sa(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

fn deployment(ns: &str, name: &str, service_account: Option<&str>) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "img:1"}]});
    if let Some(sa) = service_account {
        spec["serviceAccountName"] = json!(sa);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
           "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
}

#[test]
fn role_rules_point_at_the_offending_element() {
    let out = findings(&[role(
        "ci",
        "r",
        json!([
            {"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]},
            {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
            {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "verbs": ["delete"]},
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            {"apiGroups": ["*"], "resources": ["configmaps"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"], "verbs": ["get"]},
            {"nonResourceURLs": ["*"], "verbs": ["get"]},
        ]),
    )]);
    let got: Vec<(&str, &str)> = out.iter().map(|f| (f.rule_id.as_str(), pointer(f))).collect();
    assert_eq!(
        got,
        [
            ("rbac.secrets-read", "/rules/0/resources/1"),
            ("rbac.pods-exec", "/rules/1/resources/0"),
            ("rbac.create-pods", "/rules/2/resources/0"),
            ("rbac.escalate-bind-impersonate", "/rules/3/resources/0"),
            ("rbac.nodes-proxy", "/rules/4/resources/0"),
            ("rbac.csr-approval", "/rules/5/resources/0"),
            ("rbac.webhook-config", "/rules/6/resources/0"),
            ("rbac.serviceaccount-token-create", "/rules/7/resources/0"),
            ("rbac.wildcard-verbs", "/rules/8/verbs/0"),
            ("rbac.wildcard-api-groups", "/rules/8/apiGroups/0"),
            ("rbac.wildcard-resources", "/rules/10/nonResourceURLs/0"),
        ]
    );
    assert_eq!(
        out[0].evidence.as_ref().and_then(|e| e.value.clone()),
        Some(json!("secrets"))
    );
    assert_eq!(
        (out[0].resource.file.as_deref(), out[0].resource.line),
        (Some("rbac.yaml"), Some(1))
    );
    assert_eq!(out[0].resource.display_name(), "Role/ci/r");
}

#[test]
fn a_resource_wildcard_is_reported_once() {
    let out = findings(&[cluster_role(
        "all",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    )]);
    assert_eq!(ids(&out), ["rbac.wildcard-verbs", "rbac.wildcard-resources"]);
    // `*/exec` matches pods/exec like the API server does; `*` verbs count for named resources.
    let out = findings(&[cluster_role(
        "x",
        json!([
            {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]},
        ]),
    )]);
    assert_eq!(
        ids(&out),
        ["rbac.pods-exec", "rbac.wildcard-verbs", "rbac.secrets-read"]
    );
}

#[test]
fn wrong_groups_and_bootstrap_roles_are_not_reported() {
    let out = findings(&[
        cluster_role(
            "x",
            json!([
                {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["deployments"], "verbs": ["create"]},
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "delete"]},
            ]),
        ),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "system:controller:x", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "example.com/v1", "kind": "Role", "metadata": {"name": "crd"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    ]);
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn binding_checks() {
    let out = findings(&[
        cluster_role(
            "reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
        ),
        cluster_binding(
            "admins",
            "cluster-admin",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        cluster_binding(
            "masters",
            "cluster-admin",
            json!([{"kind": "Group", "name": "system:masters"}]),
        ),
        cluster_binding(
            "anon",
            "reader",
            json!([{"kind": "User", "name": "bob"}, {"kind": "User", "name": "system:anonymous"}]),
        ),
        cluster_binding(
            "public",
            "system:public-info-viewer",
            json!([{"kind": "Group", "name": "system:unauthenticated"}, {"kind": "Group", "name": "system:authenticated"}]),
        ),
        cluster_binding(
            "everyone",
            "reader",
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        ),
        binding(
            "ci",
            "dflt",
            "ClusterRole",
            "reader",
            json!([{"kind": "ServiceAccount", "name": "default"}]),
        ),
    ]);
    let got: Vec<(&str, &str, &str)> = out
        .iter()
        .map(|f| (f.rule_id.as_str(), f.resource.name.as_str(), pointer(f)))
        .collect();
    assert_eq!(
        got,
        [
            ("rbac.cluster-admin-binding", "admins", "/roleRef/name"),
            ("rbac.anonymous-binding", "anon", "/subjects/1/name"),
            ("rbac.authenticated-binding", "everyone", "/subjects/0/name"),
            ("rbac.default-service-account-binding", "dflt", "/subjects/0/name"),
            ("rbac.role-not-in-input", "public", "/roleRef/name"),
        ]
    );
}

#[test]
fn missing_roles_are_not_evaluated() {
    let out = findings(&[
        binding(
            "ci",
            "edit",
            "ClusterRole",
            "edit",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        binding(
            "ci",
            "own",
            "Role",
            "mine",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        // A Role of the same name in another namespace does not count.
        role("other", "mine", json!([])),
        cluster_binding(
            "admins",
            "cluster-admin",
            json!([{"kind": "User", "name": "root"}]),
        ),
    ]);
    assert_eq!(
        ids(&out),
        [
            "rbac.cluster-admin-binding",
            "rbac.role-not-in-input",
            "rbac.role-not-in-input"
        ]
    );
    assert!(matches!(out[1].status, FindingStatus::NotEvaluated { .. }));
    assert!(!out[1].status.is_open());
}

#[test]
fn secrets_cluster_wide_only_through_cluster_role_bindings() {
    let lister = cluster_role(
        "lister",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
    );
    let getter = cluster_role(
        "getter",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
    );
    let out = findings(&[
        lister,
        getter,
        cluster_binding("all", "lister", json!([{"kind": "User", "name": "a"}])),
        cluster_binding("get", "getter", json!([{"kind": "User", "name": "a"}])),
        binding(
            "ci",
            "ns",
            "ClusterRole",
            "lister",
            json!([{"kind": "User", "name": "a"}]),
        ),
    ]);
    let wide: Vec<&str> = out
        .iter()
        .filter(|f| f.rule_id == "rbac.secrets-cluster-wide")
        .map(|f| f.resource.name.as_str())
        .collect();
    assert_eq!(wide, ["all"]);
}

#[test]
fn siloscape_service_accounts() {
    let objects = [
        cluster_role(
            "pod-maker",
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]),
        ),
        cluster_role(
            "secret-reader",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ),
        cluster_binding("make", "pod-maker", json!([sa("ci", "builder")])),
        cluster_binding(
            "read",
            "secret-reader",
            json!([{"kind": "Group", "name": "system:serviceaccounts:ops"}]),
        ),
        binding(
            "web",
            "local",
            "ClusterRole",
            "pod-maker",
            json!([sa("web", "default")]),
        ),
        deployment("ci", "builder", Some("builder")),
        deployment("ci", "other", None),
        deployment("ops", "tool", None),
        deployment("web", "site", None),
        // Token not mounted: not a path.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quiet", "namespace": "ci"},
               "spec": {"serviceAccountName": "builder", "automountServiceAccountToken": false, "containers": []}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleepy", "namespace": "ci"},
               "automountServiceAccountToken": false}),
        deployment("ci", "sleeper", Some("sleepy")),
        cluster_binding("sleepy-admin", "cluster-admin", json!([sa("ci", "sleepy")])),
    ];
    let out: Vec<Finding> = findings(&objects)
        .into_iter()
        .filter(|f| f.rule_id == "rbac.workload-sa-cluster-access")
        .collect();
    let got: Vec<(&str, &str)> = out
        .iter()
        .map(|f| (f.resource.name.as_str(), pointer(f)))
        .collect();
    assert_eq!(
        got,
        [
            ("builder", "/spec/template/spec/serviceAccountName"),
            ("tool", "/spec/template/spec")
        ]
    );
    assert!(
        out[0].message.contains("create pods via ClusterRoleBinding/make"),
        "{}",
        out[0].message
    );
    assert!(out[1].message.contains("read secrets"), "{}", out[1].message);
    assert!(out[0].frameworks.iter().any(|f| f.id == "T1610"));
}

#[test]
fn aggregated_cluster_roles_use_label_selection() {
    let objects = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "monitoring"},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]},
               "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "monitoring-secrets", "labels": {"rbac.example.com/aggregate-to-monitoring": "true"}},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}),
        cluster_binding("mon", "monitoring", json!([sa("mon", "prometheus")])),
        deployment("mon", "prometheus", Some("prometheus")),
    ];
    let out = findings(&objects);
    assert!(ids(&out).contains(&"rbac.secrets-cluster-wide"));
    assert!(ids(&out).contains(&"rbac.workload-sa-cluster-access"));
    let report = collect(&objects).report();
    let prometheus = report
        .iter()
        .find(|s| s.subject.name == "prometheus")
        .expect("subject");
    assert_eq!(prometheus.permissions.len(), 1);
    assert_eq!(prometheus.permissions[0].role.name, "monitoring");
}

#[test]
fn report_lists_subjects_permissions_and_gaps() {
    let collector = collect(&[
        role(
            "ci",
            "deployer",
            json!([
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "update"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app"], "verbs": ["get"]},
            ]),
        ),
        binding(
            "ci",
            "deploy",
            "Role",
            "deployer",
            json!([sa("ci", "builder"), {"kind": "User", "name": "alice"}]),
        ),
        binding(
            "ci",
            "view",
            "ClusterRole",
            "view",
            json!([{"kind": "Group", "name": "system:serviceaccounts:ci"}]),
        ),
        cluster_binding(
            "admins",
            "cluster-admin",
            json!([{"kind": "Group", "name": "ops"}]),
        ),
        deployment("ci", "web", None),
    ]);
    let report = collector.report();
    let subjects: Vec<String> = report.iter().map(|s| s.subject.display()).collect();
    assert_eq!(
        subjects,
        [
            "Group ops",
            "Group system:serviceaccounts:ci",
            "ServiceAccount ci/builder",
            "ServiceAccount ci/default",
            "User alice"
        ]
    );
    let ops = &report[0];
    assert_eq!(ops.permissions.len(), 2);
    assert_eq!(ops.permissions[0].scope, Scope::Cluster);
    assert_eq!(
        ops.permissions[0].dangerous,
        [
            "rbac.wildcard-verbs",
            "rbac.wildcard-resources",
            "rbac.wildcard-api-groups"
        ]
    );
    let builder = &report[2];
    assert_eq!(builder.permissions.len(), 2);
    assert_eq!(
        builder.permissions[0].scope,
        Scope::Namespace {
            namespace: "ci".into()
        }
    );
    assert_eq!(builder.permissions[0].dangerous, ["rbac.create-pods"]);
    assert!(builder.permissions[1].dangerous.is_empty());
    assert_eq!(builder.not_evaluated.len(), 1);
    assert_eq!(
        builder.not_evaluated[0].via_group.as_deref(),
        Some("system:serviceaccounts:ci")
    );
    let default_sa = &report[3];
    assert!(default_sa.permissions.is_empty() && default_sa.not_evaluated.len() == 1);

    let json = serde_json::to_value(&report).expect("serialises");
    assert_eq!(
        json[2]["permissions"][0]["scope"],
        json!({"type": "namespace", "namespace": "ci"})
    );
    assert_eq!(
        json[2]["permissions"][0]["binding"],
        json!({"kind": "RoleBinding", "namespace": "ci", "name": "deploy"})
    );
    let text = render_report_text(&report);
    assert!(text.contains("ServiceAccount ci/builder [dangerous]"), "{text}");
    assert!(text.contains("! namespace ci"), "{text}");
    assert!(text.contains("names=app"), "{text}");
    assert!(
        text.contains(
            "not evaluated: RoleBinding/ci/view -> ClusterRole/view (as system:serviceaccounts:ci)"
        ),
        "{text}"
    );
    // Deterministic.
    assert_eq!(report, collector.report());
}

#[test]
fn malformed_input_does_not_panic() {
    let objects = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "rules": "all"}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": [], "rules": [1, null, {"verbs": "*", "resources": [2, "*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": "x"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "roleRef": 5, "subjects": [null, {"kind": 1}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "r"},
               "roleRef": {"kind": "Role", "name": "x"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": "no"}),
        json!({"kind": "Pod", "spec": {"serviceAccountName": 7, "containers": []}}),
        json!("text"),
    ];
    let out = findings(&objects);
    assert!(out.iter().all(|f| f.rule_id.starts_with("rbac.")));
    assert!(ids(&out).contains(&"rbac.wildcard-resources"));
    let report = collect(&objects).report();
    assert!(!render_report_text(&report).is_empty());
}

#[test]
fn many_bindings_stay_fast() {
    let mut objects = vec![cluster_role(
        "pod-maker",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]),
    )];
    for i in 0..2000 {
        let ns = format!("ns{}", i % 50);
        objects.push(binding(
            &ns,
            &format!("b{i}"),
            "ClusterRole",
            "view",
            json!([sa(&ns, &format!("sa{i}"))]),
        ));
        objects.push(deployment(&ns, &format!("d{i}"), Some(&format!("sa{i}"))));
    }
    objects.push(cluster_binding(
        "everyone",
        "pod-maker",
        json!([{"kind": "Group", "name": "system:serviceaccounts"}]),
    ));
    let start = std::time::Instant::now();
    let out = findings(&objects);
    assert_eq!(
        out.iter()
            .filter(|f| f.rule_id == "rbac.workload-sa-cluster-access")
            .count(),
        2000
    );
    let report = collect(&objects).report();
    assert_eq!(report.len(), 2001);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
