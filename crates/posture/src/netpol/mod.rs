//! NetworkPolicy microsegmentation: default-deny coverage per namespace, unselected workloads,
//! allow-all and select-nothing policies, a per-namespace summary and suggested policies.
//! It keeps compact summaries of workloads, Services and policies, never whole objects, and it only
//! reasons about what the input contains (a namespace without workloads in the input is not judged).

mod rules;
pub mod selector;

pub use rules::RULES;

use crate::object::Object;
use palisade_core::{Evidence, Finding, ResourceRef, RuleMeta};
use selector::{Labels, Selector, labels_from};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Namespace assumed for objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
struct ContainerPort {
    name: Option<String>,
    port: i64,
    protocol: String,
}

/// What the checks need of a Pod or of a controller's pod template.
#[derive(Debug)]
struct Workload {
    resource: ResourceRef,
    labels: Labels,
    /// Pointer to the pod template's labels (or its metadata when it has none).
    labels_pointer: String,
    /// Pointer to the namespace field (or `/metadata` when the namespace is implicit).
    namespace_pointer: &'static str,
    ports: Vec<ContainerPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PortValue {
    Number(i64),
    Name(String),
}

impl PortValue {
    fn parse(value: Option<&Value>) -> Option<PortValue> {
        match value? {
            Value::Number(n) => n
                .as_i64()
                .filter(|p| (1..=65535).contains(p))
                .map(PortValue::Number),
            Value::String(s) if !s.is_empty() => Some(match s.parse::<i64>() {
                Ok(n) => PortValue::Number(n),
                Err(_) => PortValue::Name(s.clone()),
            }),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            PortValue::Number(n) => json!(n),
            PortValue::Name(s) => json!(s),
        }
    }
}

#[derive(Debug)]
struct ServicePort {
    /// `targetPort`, or `port` when the target is not given.
    target: PortValue,
    protocol: String,
}

#[derive(Debug)]
struct Service {
    name: String,
    selector: Selector,
    /// The selector as written, for the suggested policy's `matchLabels`.
    selector_labels: Labels,
    ports: Vec<ServicePort>,
}

/// A NetworkPolicy reduced to what coverage needs.
#[derive(Debug)]
struct Policy {
    name: String,
    resource: ResourceRef,
    selector: Selector,
    /// Effective policy types after Kubernetes defaulting.
    ingress: bool,
    egress: bool,
    ingress_rules: usize,
    egress_rules: usize,
    allows_all: bool,
}

impl Policy {
    fn denies_all_ingress(&self) -> bool {
        self.selector.is_empty() && self.ingress && self.ingress_rules == 0
    }

    fn denies_all_egress(&self) -> bool {
        self.selector.is_empty() && self.egress && self.egress_rules == 0
    }
}

#[derive(Debug, Default)]
struct Namespace {
    /// The Namespace object, when the input has it.
    object: Option<ResourceRef>,
    workloads: Vec<Workload>,
    services: Vec<Service>,
    policies: Vec<Policy>,
}

/// Keeps workloads, Services and NetworkPolicies seen in the input.
#[derive(Debug, Default)]
pub struct Collector {
    namespaces: BTreeMap<String, Namespace>,
    /// Findings about single policies (allow-all), decided as the policy is observed.
    pending: Vec<Finding>,
}

/// One namespace's NetworkPolicy coverage, for the summary table and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceSummary {
    pub namespace: String,
    pub workloads: usize,
    pub selected_workloads: usize,
    pub default_deny_ingress: bool,
    pub default_deny_egress: bool,
    pub policies: usize,
    /// Names of the policies that admit all traffic in some direction.
    pub allow_all_policies: Vec<String>,
}

impl Collector {
    pub fn observe(&mut self, obj: &Object<'_>) {
        let kind = obj.kind();
        let api_version = obj.api_version();
        if let Some(template) = obj.pod_template() {
            let workload = Workload {
                resource: obj.resource(),
                labels: labels_from(template.labels()),
                labels_pointer: match template.labels() {
                    Some(_) => format!("{}/labels", template.metadata_pointer),
                    None => template.metadata_pointer.to_string(),
                },
                namespace_pointer: if obj.namespace().is_some() {
                    "/metadata/namespace"
                } else {
                    "/metadata"
                },
                ports: template
                    .containers()
                    .iter()
                    .flat_map(|c| container_ports(c.value))
                    .collect(),
            };
            self.namespace_mut(obj).workloads.push(workload);
            return;
        }
        match kind {
            "Namespace" if (api_version == "v1" || api_version.is_empty()) && !obj.name().is_empty() => {
                self.namespaces.entry(obj.name().to_string()).or_default().object = Some(obj.resource());
            }
            "Service" if api_version == "v1" || api_version.is_empty() => {
                if let Some(service) = parse_service(obj) {
                    self.namespace_mut(obj).services.push(service);
                }
            }
            // Only the Kubernetes API: Calico, Cilium and others have kinds of the same name with
            // other semantics.
            "NetworkPolicy" if api_version.starts_with("networking.k8s.io/") || api_version.is_empty() => {
                let policy = parse_policy(obj, &mut self.pending);
                self.namespace_mut(obj).policies.push(policy);
            }
            _ => {}
        }
    }

    fn namespace_mut(&mut self, obj: &Object<'_>) -> &mut Namespace {
        self.namespaces
            .entry(obj.namespace().unwrap_or(DEFAULT_NAMESPACE).to_string())
            .or_default()
    }

    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        out.append(&mut self.pending);
        for (name, ns) in &self.namespaces {
            let Some(first) = ns.workloads.first() else {
                continue;
            };
            let coverage = Coverage::of(ns);
            let mut absent = Vec::new();
            if !coverage.deny_ingress {
                absent.push((&rules::NO_DEFAULT_DENY_INGRESS, "ingress"));
            }
            if !coverage.deny_egress {
                absent.push((&rules::NO_DEFAULT_DENY_EGRESS, "egress"));
            }
            for (rule, direction) in absent {
                let message = format!(
                    "namespace {name:?} has {} workload(s) (first: {}) but no default-deny {direction} \
                     NetworkPolicy (empty podSelector, policyTypes with {}, no rules)",
                    ns.workloads.len(),
                    first.resource.display_name(),
                    capitalise(direction),
                );
                out.push(namespace_finding(rule, name, ns, first, message));
            }
            for (workload, selected) in ns.workloads.iter().zip(&coverage.selected) {
                if !selected {
                    let message = format!(
                        "{} is selected by no NetworkPolicy in namespace {name:?}: all its traffic is allowed",
                        workload.resource.display_name()
                    );
                    out.push(finding_at(
                        &rules::WORKLOAD_NOT_SELECTED,
                        &workload.resource,
                        message,
                        workload.labels_pointer.clone(),
                        None,
                    ));
                }
            }
            for (policy, matched) in ns.policies.iter().zip(&coverage.matched) {
                if *matched == 0 {
                    let why = if policy.selector.is_valid() {
                        "matches"
                    } else {
                        "is malformed and matches"
                    };
                    let message = format!(
                        "NetworkPolicy {name}/{}: its podSelector {why} none of the {} workload(s) of the \
                         namespace in the input",
                        policy.name,
                        ns.workloads.len()
                    );
                    out.push(finding_at(
                        &rules::SELECTS_NOTHING,
                        &policy.resource,
                        message,
                        "/spec/podSelector".into(),
                        None,
                    ));
                }
            }
        }
    }

    /// Coverage per namespace that has workloads or policies in the input, sorted by namespace.
    pub fn summary(&self) -> Vec<NamespaceSummary> {
        self.namespaces
            .iter()
            .filter(|(_, ns)| !ns.workloads.is_empty() || !ns.policies.is_empty())
            .map(|(name, ns)| {
                let coverage = Coverage::of(ns);
                NamespaceSummary {
                    namespace: name.clone(),
                    workloads: ns.workloads.len(),
                    selected_workloads: coverage.selected.iter().filter(|s| **s).count(),
                    default_deny_ingress: coverage.deny_ingress,
                    default_deny_egress: coverage.deny_egress,
                    policies: ns.policies.len(),
                    allow_all_policies: ns
                        .policies
                        .iter()
                        .filter(|p| p.allows_all)
                        .map(|p| p.name.clone())
                        .collect(),
                }
            })
            .collect()
    }

    /// NetworkPolicies that would isolate every namespace with workloads while keeping it working:
    /// a default deny (ingress and egress), DNS egress to kube-dns, and per Service that selects
    /// workloads an ingress allow on its target ports. Traffic between workloads that the input does
    /// not describe (clients of those Services, external APIs) needs egress rules the user adds.
    pub fn suggest(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (name, ns) in &self.namespaces {
            if ns.workloads.is_empty() {
                continue;
            }
            out.push(json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny-all", "namespace": name},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            }));
            out.push(json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-dns-egress", "namespace": name},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{
                        "to": [{
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}
                        }],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
                    }]
                }
            }));
            let mut services: Vec<&Service> = ns.services.iter().collect();
            services.sort_by(|a, b| a.name.cmp(&b.name));
            for service in services {
                if let Some(policy) = suggest_for_service(name, ns, service) {
                    out.push(policy);
                }
            }
        }
        out
    }
}

/// Which workloads of a namespace some policy selects and how many workloads each policy matches.
struct Coverage {
    selected: Vec<bool>,
    matched: Vec<usize>,
    deny_ingress: bool,
    deny_egress: bool,
}

impl Coverage {
    fn of(ns: &Namespace) -> Coverage {
        let mut selected = vec![false; ns.workloads.len()];
        let mut matched = vec![0; ns.policies.len()];
        for (policy, count) in ns.policies.iter().zip(matched.iter_mut()) {
            if policy.selector.is_empty() {
                *count = ns.workloads.len();
                selected.iter_mut().for_each(|s| *s = true);
                continue;
            }
            for (workload, is_selected) in ns.workloads.iter().zip(selected.iter_mut()) {
                if policy.selector.matches(&workload.labels) {
                    *count += 1;
                    *is_selected = true;
                }
            }
        }
        Coverage {
            selected,
            matched,
            deny_ingress: ns.policies.iter().any(Policy::denies_all_ingress),
            deny_egress: ns.policies.iter().any(Policy::denies_all_egress),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn finding_at(
    rule: &RuleMeta,
    resource: &ResourceRef,
    message: String,
    pointer: String,
    value: Option<Value>,
) -> Finding {
    Finding::from_rule(
        rule,
        resource.clone(),
        message,
        Some(Evidence {
            pointer,
            value,
            line: None,
            column: None,
        }),
    )
}

/// A finding about a namespace: on its Namespace object when the input has one, otherwise on the
/// namespace as named by its first workload (whose file and line it carries).
fn namespace_finding(
    rule: &RuleMeta,
    name: &str,
    ns: &Namespace,
    first: &Workload,
    message: String,
) -> Finding {
    match &ns.object {
        Some(object) => finding_at(rule, object, message, "/metadata/name".into(), Some(json!(name))),
        None => {
            let resource = ResourceRef {
                api_version: Some("v1".into()),
                kind: "Namespace".into(),
                name: name.to_string(),
                file: first.resource.file.clone(),
                line: first.resource.line,
                ..ResourceRef::default()
            };
            let value = first.resource.namespace.as_ref().map(|_| json!(name));
            finding_at(rule, &resource, message, first.namespace_pointer.into(), value)
        }
    }
}

fn container_ports(container: &Value) -> Vec<ContainerPort> {
    let Some(ports) = container.get("ports").and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .filter_map(|p| {
            Some(ContainerPort {
                name: p.get("name").and_then(Value::as_str).map(str::to_string),
                port: p.get("containerPort").and_then(Value::as_i64)?,
                protocol: protocol(p),
            })
        })
        .collect()
}

fn protocol(port: &Value) -> String {
    port.get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
        .to_string()
}

fn parse_service(obj: &Object<'_>) -> Option<Service> {
    let spec = obj.value.get("spec")?;
    let raw_selector = spec.get("selector");
    let selector = Selector::from_map(raw_selector)?;
    let selector_labels = labels_from(raw_selector.and_then(Value::as_object));
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    let target =
                        PortValue::parse(p.get("targetPort")).or_else(|| PortValue::parse(p.get("port")))?;
                    Some(ServicePort {
                        target,
                        protocol: protocol(p),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Service {
        name: obj.name().to_string(),
        selector,
        selector_labels,
        ports,
    })
}

/// Parses a NetworkPolicy and records allow-all findings on it in `pending`.
fn parse_policy(obj: &Object<'_>, pending: &mut Vec<Finding>) -> Policy {
    let resource = obj.resource();
    let spec = obj.value.get("spec").filter(|s| !s.is_null());
    let spec_object = spec.and_then(Value::as_object);
    let selector = match (spec, spec_object) {
        (Some(_), None) => Selector::malformed(),
        _ => Selector::parse(spec_object.and_then(|s| s.get("podSelector"))),
    };
    let rules_of = |field: &str| spec_object.and_then(|s| s.get(field)).and_then(Value::as_array);
    let ingress_rules = rules_of("ingress");
    let egress_rules = rules_of("egress");
    let (ingress, egress) = match spec_object
        .and_then(|s| s.get("policyTypes"))
        .and_then(Value::as_array)
    {
        Some(types) => (
            types.iter().any(|t| t.as_str() == Some("Ingress")),
            types.iter().any(|t| t.as_str() == Some("Egress")),
        ),
        // Kubernetes defaulting: Ingress always, Egress when there are egress rules.
        None => (true, egress_rules.is_some_and(|r| !r.is_empty())),
    };
    let mut allows_all = false;
    for (enabled, direction, field, peers, rule) in [
        (ingress, "ingress", "ingress", "from", &rules::ALLOW_ALL_INGRESS),
        (egress, "egress", "egress", "to", &rules::ALLOW_ALL_EGRESS),
    ] {
        if !enabled {
            continue;
        }
        let list = if field == "ingress" {
            ingress_rules
        } else {
            egress_rules
        };
        if let Some((pointer, what)) = list.and_then(|l| allow_all_rule(l, field, peers)) {
            allows_all = true;
            let message = format!(
                "NetworkPolicy {}/{} admits {direction} {what} to the pods it selects",
                resource.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
                resource.name
            );
            pending.push(obj.finding(rule, message, &pointer));
        }
    }
    Policy {
        name: obj.name().to_string(),
        resource,
        selector,
        ingress,
        egress,
        ingress_rules: ingress_rules.map_or(0, Vec::len),
        egress_rules: egress_rules.map_or(0, Vec::len),
        allows_all,
    }
}

/// The first rule of `list` that admits every peer on every port: its pointer and a description.
fn allow_all_rule(list: &[Value], field: &str, peers_field: &str) -> Option<(String, &'static str)> {
    for (i, rule) in list.iter().enumerate() {
        let Some(rule) = rule.as_object() else { continue };
        let ports_open = rule
            .get("ports")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if !ports_open {
            continue;
        }
        let peers = rule.get(peers_field).and_then(Value::as_array);
        let Some(peers) = peers.filter(|p| !p.is_empty()) else {
            return Some((
                format!("/spec/{field}/{i}"),
                "from and to every address on every port",
            ));
        };
        for (j, peer) in peers.iter().enumerate() {
            let cidr = peer.pointer("/ipBlock/cidr").and_then(Value::as_str);
            let except = peer
                .pointer("/ipBlock/except")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            if matches!(cidr, Some("0.0.0.0/0" | "::/0")) && !except {
                return Some((
                    format!("/spec/{field}/{i}/{peers_field}/{j}/ipBlock/cidr"),
                    "from and to every IP address (ipBlock 0.0.0.0/0) on every port",
                ));
            }
            let all_namespaces = peer
                .get("namespaceSelector")
                .is_some_and(|s| Selector::parse(Some(s)).is_empty());
            let all_pods = Selector::parse(peer.get("podSelector")).is_empty();
            if all_namespaces && all_pods && cidr.is_none() {
                return Some((
                    format!("/spec/{field}/{i}/{peers_field}/{j}/namespaceSelector"),
                    "from and to every pod of every namespace on every port",
                ));
            }
        }
    }
    None
}

fn suggest_for_service(namespace: &str, ns: &Namespace, service: &Service) -> Option<Value> {
    let selected: Vec<&Workload> = ns
        .workloads
        .iter()
        .filter(|w| service.selector.matches(&w.labels))
        .collect();
    if selected.is_empty() {
        return None;
    }
    let mut ports = BTreeSet::new();
    for port in &service.ports {
        let target = match &port.target {
            PortValue::Name(name) => resolve_named_port(name, &port.protocol, &selected),
            number => number.clone(),
        };
        ports.insert((port.protocol.clone(), target));
    }
    if ports.is_empty() {
        return None;
    }
    let ports: Vec<Value> = ports
        .into_iter()
        .map(|(protocol, port)| json!({"protocol": protocol, "port": port.to_json()}))
        .collect();
    Some(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": format!("allow-ingress-{}", service.name), "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": service.selector_labels},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": ports}]
        }
    }))
}

/// A named target port becomes a number when every selected workload names the same one; otherwise
/// it stays a name, which NetworkPolicy also accepts and resolves per pod.
fn resolve_named_port(name: &str, protocol: &str, workloads: &[&Workload]) -> PortValue {
    let numbers: BTreeSet<i64> = workloads
        .iter()
        .flat_map(|w| &w.ports)
        .filter(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
        .map(|p| p.port)
        .collect();
    let every_workload_has_it = workloads.iter().all(|w| {
        w.ports
            .iter()
            .any(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
    });
    match (numbers.len(), every_workload_has_it) {
        (1, true) => numbers
            .into_iter()
            .next()
            .map_or_else(|| PortValue::Name(name.into()), PortValue::Number),
        _ => PortValue::Name(name.to_string()),
    }
}

#[cfg(test)]
mod tests;
