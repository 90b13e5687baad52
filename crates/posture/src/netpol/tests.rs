use super::*;
use crate::object::Origin;
use serde_json::json;

fn collect(objects: &[Value]) -> Collector {
    let mut collector = Collector::default();
    for (i, value) in objects.iter().enumerate() {
        let origin = Origin {
            file: Some("in.yaml".into()),
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

fn deployment(ns: Option<&str>, name: &str, labels: Value) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [
            {"name": name, "image": "img:1", "ports": [{"name": "http", "containerPort": 8080}]}
        ]}}}
    })
}

fn policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

#[test]
fn namespace_without_policies() {
    let out = findings(&[deployment(None, "web", json!({"app": "web"}))]);
    assert_eq!(
        ids(&out),
        [
            "netpol.no-default-deny-ingress",
            "netpol.no-default-deny-egress",
            "netpol.workload-not-selected"
        ]
    );
    let ns = &out[0];
    assert_eq!(ns.resource.kind, "Namespace");
    assert_eq!(ns.resource.name, "default");
    assert_eq!(
        (ns.resource.file.as_deref(), ns.resource.line),
        (Some("in.yaml"), Some(1))
    );
    assert_eq!(
        ns.evidence.as_ref().map(|e| e.pointer.as_str()),
        Some("/metadata")
    );
    let workload = &out[2];
    assert_eq!(workload.resource.display_name(), "Deployment/web");
    assert_eq!(
        workload.evidence.as_ref().map(|e| e.pointer.as_str()),
        Some("/spec/template/metadata/labels")
    );
}

#[test]
fn namespace_object_carries_the_finding() {
    let out = findings(&[
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        deployment(Some("shop"), "web", json!({"app": "web"})),
        policy("shop", "deny-in", json!({"podSelector": {}})),
    ]);
    assert_eq!(ids(&out), ["netpol.no-default-deny-egress"]);
    assert_eq!(out[0].resource.line, Some(1));
    assert_eq!(
        out[0].evidence.as_ref().map(|e| e.pointer.as_str()),
        Some("/metadata/name")
    );
}

#[test]
fn policy_types_defaulting() {
    // Egress rules without policyTypes: Ingress and Egress; the rules mean egress is not denied.
    let out = findings(&[
        deployment(Some("a"), "web", json!({"app": "web"})),
        policy(
            "a",
            "p",
            json!({"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}),
        ),
    ]);
    assert_eq!(ids(&out), ["netpol.no-default-deny-egress"]);
    // An empty egress list does not add Egress.
    let out = findings(&[
        deployment(Some("a"), "web", json!({"app": "web"})),
        policy("a", "p", json!({"podSelector": {}, "egress": []})),
    ]);
    assert_eq!(ids(&out), ["netpol.no-default-deny-egress"]);
    // Explicit Egress only: ingress is not denied.
    let out = findings(&[
        deployment(Some("a"), "web", json!({"app": "web"})),
        policy("a", "p", json!({"podSelector": {}, "policyTypes": ["Egress"]})),
    ]);
    assert_eq!(ids(&out), ["netpol.no-default-deny-ingress"]);
    // A default deny with a selector is not namespace-wide.
    let out = findings(&[
        deployment(Some("a"), "web", json!({"app": "web"})),
        deployment(Some("a"), "db", json!({"app": "db"})),
        policy(
            "a",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}),
        ),
    ]);
    assert_eq!(
        ids(&out),
        [
            "netpol.no-default-deny-ingress",
            "netpol.no-default-deny-egress",
            "netpol.workload-not-selected"
        ]
    );
    assert_eq!(out[2].resource.name, "db");
}

#[test]
fn allow_all_rules() {
    let cases = [
        (
            json!({"podSelector": {}, "ingress": [{}]}),
            Some(("netpol.allow-all-ingress", "/spec/ingress/0")),
        ),
        (
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}, {"from": []}]}),
            Some(("netpol.allow-all-ingress", "/spec/ingress/1")),
        ),
        (
            json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}),
            Some(("netpol.allow-all-ingress", "/spec/ingress/0/from/0/ipBlock/cidr")),
        ),
        (
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
            Some((
                "netpol.allow-all-ingress",
                "/spec/ingress/0/from/0/namespaceSelector",
            )),
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "::/0"}}]}]}),
            Some(("netpol.allow-all-egress", "/spec/egress/0/to/0/ipBlock/cidr")),
        ),
        (
            json!({"podSelector": {}, "egress": [{}]}),
            Some(("netpol.allow-all-egress", "/spec/egress/0")),
        ),
        // Restricted ports, exceptions, or rules the policy types switch off are not "everything".
        (
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 443}]}]}),
            None,
        ),
        (
            json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}]}),
            None,
        ),
        (
            json!({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}),
            None,
        ),
        (
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]}]}),
            None,
        ),
    ];
    for (spec, expected) in cases {
        let out: Vec<Finding> = findings(&[policy("x", "p", spec.clone())])
            .into_iter()
            .filter(|f| f.rule_id.contains("allow-all"))
            .collect();
        match expected {
            Some((id, pointer)) => {
                assert_eq!(ids(&out), [id], "{spec}");
                assert_eq!(
                    out[0].evidence.as_ref().map(|e| e.pointer.as_str()),
                    Some(pointer),
                    "{spec}"
                );
            }
            None => assert!(out.is_empty(), "{spec}: {out:?}"),
        }
    }
}

#[test]
fn selects_nothing_and_expressions() {
    let out = findings(&[
        deployment(Some("a"), "web", json!({"app": "web", "tier": "front"})),
        policy(
            "a",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
        policy(
            "a",
            "front",
            json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}}),
        ),
        policy(
            "a",
            "not-front",
            json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}}),
        ),
        policy("a", "broken", json!({"podSelector": "app=web"})),
        // No workloads in namespace b in the input: not judged.
        policy(
            "b",
            "orphan",
            json!({"podSelector": {"matchLabels": {"app": "x"}}}),
        ),
    ]);
    assert_eq!(ids(&out), ["netpol.selects-nothing", "netpol.selects-nothing"]);
    assert_eq!(out[0].resource.name, "not-front");
    assert_eq!(out[1].resource.name, "broken");
    assert!(out[1].message.contains("malformed"));
}

#[test]
fn calico_policies_and_malformed_input_are_ignored_without_panic() {
    let out = findings(&[
        json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy", "metadata": {"name": "c", "namespace": "a"}, "spec": {"selector": "all()"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": "nope", "spec": "x"}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": 3}, "spec": {"ingress": "x", "egress": [1, null], "policyTypes": "Ingress"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": [1], "ports": "x"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "a"}, "ports": [{"targetPort": true}, 7, {"port": 99999}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": "x"}, "spec": {"containers": [{"ports": [{"containerPort": "a"}, 5]}]}}),
        json!(null),
        json!([1, 2]),
    ]);
    assert!(out.iter().all(|f| f.rule_id.starts_with("netpol.")));
    let collector = collect(&[
        json!({"kind": "Pod", "spec": {"containers": []}}),
        json!({"kind": "Service", "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}),
    ]);
    assert_eq!(collector.summary().len(), 1);
    assert_eq!(collector.suggest().len(), 2);
}

#[test]
fn summary_per_namespace() {
    let collector = collect(&[
        deployment(Some("a"), "web", json!({"app": "web"})),
        deployment(Some("a"), "db", json!({"app": "db"})),
        policy(
            "a",
            "web",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}),
        ),
        policy(
            "b",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
        deployment(None, "x", json!({})),
    ]);
    let summary = collector.summary();
    assert_eq!(
        summary[0],
        NamespaceSummary {
            namespace: "a".into(),
            workloads: 2,
            selected_workloads: 1,
            default_deny_ingress: false,
            default_deny_egress: false,
            policies: 1,
            allow_all_policies: vec!["web".into()],
        }
    );
    assert_eq!(summary[1].namespace, "b");
    assert!(summary[1].default_deny_ingress && summary[1].default_deny_egress && summary[1].workloads == 0);
    assert_eq!(
        (summary[2].namespace.as_str(), summary[2].workloads),
        ("default", 1)
    );
    assert!(serde_json::to_value(&summary).is_ok());
}

#[test]
fn suggestions_resolve_ports_and_pass_the_scan() {
    let input = vec![
        deployment(Some("shop"), "web", json!({"app": "web"})),
        deployment(Some("shop"), "worker", json!({"app": "worker"})),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"app": "web"}, "ports": [
                   {"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": "metrics"},
                   {"port": 53, "protocol": "UDP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ghost", "namespace": "shop"},
               "spec": {"selector": {"app": "ghost"}, "ports": [{"port": 80}]}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
               "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "r", "image": "r:1"}]}}}}}}),
        policy(
            "shop",
            "too-open",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 8080}]}]}),
        ),
    ];
    let suggested = collect(&input).suggest();
    let names: Vec<String> = suggested
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                p["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "default/default-deny-all",
            "default/allow-dns-egress",
            "shop/default-deny-all",
            "shop/allow-dns-egress",
            "shop/allow-ingress-web"
        ]
    );
    assert_eq!(
        suggested[4]["spec"]["ingress"][0]["ports"],
        json!([{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": "metrics"}, {"protocol": "UDP", "port": 53}])
    );

    let mut scanner = crate::Scanner::new(crate::ScanConfig::default());
    let origin = Origin::default();
    for value in input.iter().chain(&suggested) {
        scanner.scan(value, &origin);
    }
    let leftover: Vec<Finding> = scanner
        .finish()
        .into_iter()
        .filter(|f| f.rule_id.starts_with("netpol."))
        .collect();
    assert!(leftover.is_empty(), "{leftover:#?}");
    let summary = scanner.netpol().summary();
    assert!(
        summary
            .iter()
            .all(|s| s.default_deny_ingress && s.default_deny_egress && s.selected_workloads == s.workloads)
    );
}

#[test]
fn many_objects_stay_fast() {
    let mut objects = Vec::new();
    for i in 0..3000 {
        objects.push(deployment(
            Some(&format!("ns{}", i % 30)),
            &format!("w{i}"),
            json!({"app": format!("a{i}")}),
        ));
    }
    for i in 0..600 {
        objects.push(policy(
            &format!("ns{}", i % 30),
            &format!("p{i}"),
            json!({"podSelector": {"matchLabels": {"app": format!("a{i}")}}}),
        ));
    }
    let start = std::time::Instant::now();
    let out = findings(&objects);
    assert_eq!(
        out.iter()
            .filter(|f| f.rule_id == "netpol.workload-not-selected")
            .count(),
        2400
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
