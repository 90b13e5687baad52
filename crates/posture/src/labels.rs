//! Organisation policy from `palisade.yaml`: required and forbidden labels and annotations (with
//! value patterns), and tolerations or node selectors that workloads must carry. Nothing is required
//! until the user's policy says so.

use crate::PostureError;
use crate::object::{Object, WORKLOAD_KINDS, escape_token};
use palisade_core::glob::glob_match;
use palisade_core::{Category, Finding, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

const NSA_LABELS: FrameworkRef = FrameworkRef::new(Framework::NsaCisa, "Logging and threat detection");
const CIS_NAMESPACES: FrameworkRef = FrameworkRef::new(Framework::CisKubernetes, "5.7.1");

pub static REQUIRED_LABEL: RuleMeta = RuleMeta {
    id: "policy.required-label",
    title: "Required label missing or malformed",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The object lacks a label the organisation's policy (palisade.yaml) requires, or its value does \
                  not match the required pattern.",
    rationale: "Ownership, environment and application labels drive NetworkPolicy selection, cost allocation, \
                incident response and alert routing. An unlabelled workload is one nobody answers for.",
    remediation: "Add the label with a value that matches the policy's pattern.",
    frameworks: &[NSA_LABELS, CIS_NAMESPACES],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app.kubernetes.io/name: web\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app.kubernetes.io/name: Web_Server\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
    },
};

pub static FORBIDDEN_LABEL: RuleMeta = RuleMeta {
    id: "policy.forbidden-label",
    title: "Forbidden label present",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "The object carries a label (or a label value) the organisation's policy forbids.",
    rationale: "Some labels switch security features off, such as opting a workload out of service-mesh mTLS \
                with `sidecar.istio.io/inject: \"false\"`; policy lists those that need an exception.",
    remediation: "Remove the label or change its value, or record an exception with a reason.",
    frameworks: &[NSA_LABELS],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    sidecar.istio.io/inject: \"true\"\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    sidecar.istio.io/inject: \"false\"\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
    },
};

pub static REQUIRED_ANNOTATION: RuleMeta = RuleMeta {
    id: "policy.required-annotation",
    title: "Required annotation missing or malformed",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The object lacks an annotation the organisation's policy requires, or its value does not match \
                  the required pattern.",
    rationale: "Annotations carry the contact, runbook and data-classification information responders need.",
    remediation: "Add the annotation with a value that matches the policy's pattern.",
    frameworks: &[NSA_LABELS],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    owner: team-shop@example.com\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n",
        ],
        fail: &[
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    owner: nobody\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n",
        ],
    },
};

pub static FORBIDDEN_ANNOTATION: RuleMeta = RuleMeta {
    id: "policy.forbidden-annotation",
    title: "Forbidden annotation present",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "The object carries an annotation the organisation's policy forbids.",
    rationale: "Some annotations leak data or weaken controls: `kubectl.kubernetes.io/last-applied-configuration` \
                on a Secret holds the secret's full content in plain text, readable by anyone who can read \
                metadata.",
    remediation: "Remove the annotation (for Secrets: apply with server-side apply or create them without \
                  `kubectl apply`).",
    frameworks: &[FrameworkRef::new(Framework::MitreAttack, "T1552.007")],
    fixtures: Fixtures {
        pass: &["apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"],
        fail: &[
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"data\":{\"password\":\"aHVudGVyMg==\"}}'\ntype: Opaque\n",
        ],
    },
};

pub static REQUIRED_TOLERATION: RuleMeta = RuleMeta {
    id: "policy.required-toleration",
    title: "Required toleration missing",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The workload's pod template lacks a toleration the organisation's policy requires for it.",
    rationale: "Tolerations and taints keep workloads on the nodes meant for them (dedicated, GPU or isolated \
                node pools). A missing toleration leaves pods pending or lands them on the wrong pool.",
    remediation: "Add the toleration to spec.tolerations of the pod template.",
    frameworks: &[FrameworkRef::new(Framework::Nist800190, "4.5.5")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: train\n  namespace: gpu-jobs\nspec:\n  tolerations:\n  - key: nvidia.com/gpu\n    operator: Exists\n    effect: NoSchedule\n  containers:\n  - name: app\n    image: trainer:1.0\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: train\n  namespace: gpu-jobs\nspec:\n  containers:\n  - name: app\n    image: trainer:1.0\n",
        ],
    },
};

pub static REQUIRED_NODE_SELECTOR: RuleMeta = RuleMeta {
    id: "policy.required-node-selector",
    title: "Required node selector missing",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The workload's pod template neither sets the node selector the organisation's policy requires \
                  nor a required node affinity with the same key and value.",
    rationale: "Node selection keeps sensitive workloads apart from untrusted ones (NIST SP 800-190 4.5.5: \
                segment hosts by sensitivity) and puts them on the operating system they are built for.",
    remediation: "Set spec.nodeSelector (or a requiredDuringScheduling node affinity) in the pod template.",
    frameworks: &[FrameworkRef::new(Framework::Nist800190, "4.5.5")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - key: kubernetes.io/os\n            operator: In\n            values: [linux]\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  nodeSelector:\n    kubernetes.io/os: windows\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        ],
    },
};

pub static ALLOWED_REGISTRIES: RuleMeta = RuleMeta {
    id: "policy.allowed-registries",
    title: "Image from a registry the policy does not allow",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A container image comes from a registry or repository outside the organisation's allowlist \
                  (`policy.images.allowedRegistries` in palisade.yaml).",
    rationale: "Images from arbitrary registries bypass the organisation's build, scanning and signing pipeline; \
                typosquatted and poisoned public images are a common way into clusters (NIST SP 800-190 4.1.5, \
                ATT&CK T1525 Implant Internal Image, T1610 Deploy Container).",
    remediation: "Mirror the image into an allowed registry (after scanning it) and reference it from there.",
    frameworks: &[
        FrameworkRef::new(Framework::Nist800190, "4.1.5"),
        FrameworkRef::new(Framework::NsaCisa, "Building secure container images"),
        FrameworkRef::new(Framework::MitreAttack, "T1525"),
        FrameworkRef::new(Framework::MitreAttack, "T1610"),
    ],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  initContainers:\n  - name: init\n    image: busybox:1.36\n  containers:\n  - name: app\n    image: registry.example.com:5000/shop/web:2.4\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: evil.example.net/shop/web:2.4\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: someone/miner:1.0\n",
        ],
    },
};

pub static RULES: &[RuleMeta] = &[
    REQUIRED_LABEL,
    FORBIDDEN_LABEL,
    REQUIRED_ANNOTATION,
    FORBIDDEN_ANNOTATION,
    REQUIRED_TOLERATION,
    REQUIRED_NODE_SELECTOR,
    ALLOWED_REGISTRIES,
];

/// Which objects a requirement applies to. Empty `kinds` means the workload kinds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Namespace globs; empty means every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl Scope {
    fn applies(&self, obj: &Object<'_>) -> bool {
        let kind_ok = if self.kinds.is_empty() {
            WORKLOAD_KINDS.contains(&obj.kind())
        } else {
            self.kinds.iter().any(|k| glob_match(k, obj.kind()))
        };
        let ns = obj.namespace().unwrap_or("default");
        kind_ok && (self.namespaces.is_empty() || self.namespaces.iter().any(|g| glob_match(g, ns)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRuleSpec {
    key: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(flatten)]
    scope: Scope,
}

/// A label or annotation requirement: the key, an optional value pattern (a regular expression,
/// matched against the whole value), and where it applies.
#[derive(Debug, Clone)]
pub struct KeyRule {
    pub key: String,
    pub pattern: Option<Regex>,
    pub scope: Scope,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRulesSpec {
    #[serde(default)]
    required: Vec<KeyRuleSpec>,
    #[serde(default)]
    forbidden: Vec<KeyRuleSpec>,
}

/// A toleration a workload must carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TolerationRule {
    pub key: String,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(flatten)]
    pub scope: Scope,
}

/// A node selector a workload must set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelectorRule {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(flatten)]
    pub scope: Scope,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequiredList<T> {
    #[serde(default = "Vec::new")]
    required: Vec<T>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImagesSpec {
    #[serde(default)]
    allowed_registries: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicySpec {
    #[serde(default)]
    images: ImagesSpec,
    #[serde(default)]
    labels: KeyRulesSpec,
    #[serde(default)]
    annotations: KeyRulesSpec,
    #[serde(default)]
    tolerations: Option<RequiredList<TolerationRule>>,
    #[serde(default)]
    node_selectors: Option<RequiredList<NodeSelectorRule>>,
}

/// The label/annotation/scheduling policy. Empty by default: nothing is required.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub required_labels: Vec<KeyRule>,
    pub forbidden_labels: Vec<KeyRule>,
    pub required_annotations: Vec<KeyRule>,
    pub forbidden_annotations: Vec<KeyRule>,
    pub required_tolerations: Vec<TolerationRule>,
    pub required_node_selectors: Vec<NodeSelectorRule>,
    /// Where images may come from: `registry.example.com` (a whole registry) or globs over the
    /// normalised `registry/path` (`docker.io/library/*`). Empty: any registry.
    pub allowed_registries: Vec<String>,
}

/// Upper bound on a compiled pattern, so a hostile policy cannot exhaust memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

fn compile(list: Vec<KeyRuleSpec>, what: &str) -> Result<Vec<KeyRule>, PostureError> {
    list.into_iter()
        .enumerate()
        .map(|(i, spec)| {
            if spec.key.is_empty() {
                return Err(PostureError::InvalidPolicy(format!("{what}[{i}]: empty key")));
            }
            let pattern = spec
                .pattern
                .map(|p| {
                    regex::RegexBuilder::new(&format!("^(?:{p})$"))
                        .size_limit(PATTERN_SIZE_LIMIT)
                        .build()
                        .map_err(|e| PostureError::InvalidPolicy(format!("{what}[{i}].pattern: {e}")))
                })
                .transpose()?;
            Ok(KeyRule {
                key: spec.key,
                pattern,
                scope: spec.scope,
            })
        })
        .collect()
}

impl Policy {
    /// Reads the `policy` section of palisade.yaml.
    pub fn from_value(value: Value) -> Result<Policy, PostureError> {
        let spec: PolicySpec =
            serde_json::from_value(value).map_err(|e| PostureError::InvalidPolicy(e.to_string()))?;
        Ok(Policy {
            required_labels: compile(spec.labels.required, "labels.required")?,
            forbidden_labels: compile(spec.labels.forbidden, "labels.forbidden")?,
            required_annotations: compile(spec.annotations.required, "annotations.required")?,
            forbidden_annotations: compile(spec.annotations.forbidden, "annotations.forbidden")?,
            required_tolerations: spec.tolerations.map(|t| t.required).unwrap_or_default(),
            required_node_selectors: spec.node_selectors.map(|t| t.required).unwrap_or_default(),
            allowed_registries: spec.images.allowed_registries,
        })
    }

    /// The example policy shipped in `examples/palisade.yaml`; the rule fixtures are written against it.
    pub fn example() -> Policy {
        let value = serde_json::json!({
            "labels": {
                "required": [{"key": "app.kubernetes.io/name", "pattern": "[a-z0-9]([-a-z0-9]*[a-z0-9])?"}],
                "forbidden": [{"key": "sidecar.istio.io/inject", "pattern": "false"}]
            },
            "annotations": {
                "required": [{"key": "owner", "pattern": ".+@.+", "kinds": ["Deployment", "StatefulSet", "DaemonSet"]}],
                "forbidden": [{"key": "kubectl.kubernetes.io/last-applied-configuration", "kinds": ["Secret"]}]
            },
            "tolerations": {"required": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule", "namespaces": ["gpu-*"]}]},
            "nodeSelectors": {"required": [{"key": "kubernetes.io/os", "value": "linux"}]},
            "images": {"allowedRegistries": ["registry.example.com:5000", "docker.io/library/*"]}
        });
        Policy::from_value(value).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.required_labels.is_empty()
            && self.forbidden_labels.is_empty()
            && self.required_annotations.is_empty()
            && self.forbidden_annotations.is_empty()
            && self.required_tolerations.is_empty()
            && self.required_node_selectors.is_empty()
            && self.allowed_registries.is_empty()
    }

    /// Whether an image reference comes from an allowed registry (always true with no allowlist).
    pub fn registry_allowed(&self, image: &str) -> bool {
        if self.allowed_registries.is_empty() {
            return true;
        }
        let parsed = crate::workload::image::ImageRef::parse(image);
        let normalized = parsed.normalized();
        let registry = normalized.split('/').next().unwrap_or("");
        self.allowed_registries.iter().any(|pattern| {
            if pattern.contains('/') {
                glob_match(pattern, &normalized)
            } else {
                glob_match(pattern, registry)
            }
        })
    }
}

fn check_keys(
    obj: &Object<'_>,
    map: Option<&Map<String, Value>>,
    field: &str,
    required: &[KeyRule],
    forbidden: &[KeyRule],
    rules: (&RuleMeta, &RuleMeta),
    out: &mut Vec<Finding>,
) {
    let noun = if field == "labels" { "label" } else { "annotation" };
    for rule in required.iter().filter(|r| r.scope.applies(obj)) {
        match map.and_then(|m| m.get(&rule.key)) {
            None => {
                let pointer = if map.is_some() {
                    format!("/metadata/{field}")
                } else {
                    "/metadata".to_string()
                };
                out.push(obj.finding(
                    rules.0,
                    format!("required {noun} {:?} is missing", rule.key),
                    &pointer,
                ));
            }
            Some(value) => {
                let text = value.as_str().unwrap_or("");
                if let Some(pattern) = &rule.pattern
                    && !pattern.is_match(text)
                {
                    let pointer = format!("/metadata/{field}/{}", escape_token(&rule.key));
                    out.push(obj.finding(
                        rules.0,
                        format!(
                            "{noun} {:?} value {:?} does not match the required pattern",
                            rule.key, text
                        ),
                        &pointer,
                    ));
                }
            }
        }
    }
    for rule in forbidden.iter().filter(|r| r.scope.applies(obj)) {
        if let Some(value) = map.and_then(|m| m.get(&rule.key)) {
            let text = value.as_str().unwrap_or("");
            if rule.pattern.as_ref().is_none_or(|p| p.is_match(text)) {
                let pointer = format!("/metadata/{field}/{}", escape_token(&rule.key));
                let what = if rule.pattern.is_some() {
                    format!(" with value {text:?}")
                } else {
                    String::new()
                };
                let mut finding = obj.finding(
                    rules.1,
                    format!("forbidden {noun} {:?}{what} is present", rule.key),
                    &pointer,
                );
                if field == "annotations"
                    && let Some(evidence) = finding.evidence.as_mut()
                {
                    // Annotation values can hold secrets (last-applied-configuration of a Secret).
                    evidence.value = None;
                }
                out.push(finding);
            }
        }
    }
}

fn toleration_matches(t: &Value, rule: &TolerationRule) -> bool {
    let s = |k: &str| t.get(k).and_then(Value::as_str);
    let operator = s("operator").unwrap_or("Equal");
    // A key-less `Exists` toleration tolerates every taint.
    if operator == "Exists" && s("key").is_none_or(str::is_empty) {
        return rule
            .effect
            .as_deref()
            .is_none_or(|e| s("effect").is_none_or(|te| te.is_empty() || te == e));
    }
    s("key") == Some(rule.key.as_str())
        && rule.operator.as_deref().is_none_or(|o| o == operator)
        && rule.value.as_deref().is_none_or(|v| s("value") == Some(v))
        && rule
            .effect
            .as_deref()
            .is_none_or(|e| s("effect").is_none_or(|te| te.is_empty() || te == e))
}

fn affinity_requires(spec: &Value, key: &str, value: Option<&str>) -> bool {
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    // Terms are ORed: every term must carry the requirement for it to hold.
    terms.is_some_and(|terms| {
        !terms.is_empty()
            && terms.iter().all(|term| {
                term.get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_some_and(|exprs| {
                        exprs.iter().any(|e| {
                            e.get("key").and_then(Value::as_str) == Some(key)
                                && match value {
                                    None => matches!(
                                        e.get("operator").and_then(Value::as_str),
                                        Some("In" | "Exists")
                                    ),
                                    Some(v) => {
                                        e.get("operator").and_then(Value::as_str) == Some("In")
                                            && e.get("values").and_then(Value::as_array).is_some_and(|vals| {
                                                !vals.is_empty() && vals.iter().all(|x| x.as_str() == Some(v))
                                            })
                                    }
                                }
                        })
                    })
            })
    })
}

pub fn check(obj: &Object<'_>, policy: &Policy, out: &mut Vec<Finding>) {
    if policy.is_empty() {
        return;
    }
    check_keys(
        obj,
        obj.labels(),
        "labels",
        &policy.required_labels,
        &policy.forbidden_labels,
        (&REQUIRED_LABEL, &FORBIDDEN_LABEL),
        out,
    );
    check_keys(
        obj,
        obj.annotations(),
        "annotations",
        &policy.required_annotations,
        &policy.forbidden_annotations,
        (&REQUIRED_ANNOTATION, &FORBIDDEN_ANNOTATION),
        out,
    );
    let Some(template) = obj.pod_template() else {
        return;
    };
    if !policy.allowed_registries.is_empty() {
        for container in template.containers() {
            let Some(image) = container.image else { continue };
            if crate::workload::image::is_templated(image) || policy.registry_allowed(image) {
                continue;
            }
            let normalized = crate::workload::image::ImageRef::parse(image).normalized();
            out.push(obj.container_finding(
                &ALLOWED_REGISTRIES,
                &container,
                format!(
                    "container {:?} uses image {image:?} ({normalized}) from a registry outside the allowlist",
                    container.name
                ),
                &container.field("image"),
            ));
        }
    }
    for rule in policy
        .required_tolerations
        .iter()
        .filter(|r| r.scope.applies(obj))
    {
        let tolerations = template.spec.get("tolerations").and_then(Value::as_array);
        if !tolerations.is_some_and(|ts| ts.iter().any(|t| toleration_matches(t, rule))) {
            out.push(obj.finding(
                &REQUIRED_TOLERATION,
                format!(
                        "pod template must tolerate taint {:?}{}",
                        rule.key,
                        rule.effect
                            .as_ref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ),
                &if tolerations.is_some() {
                    template.spec_field("tolerations")
                } else {
                    template.spec_pointer.to_string()
                },
            ));
        }
    }
    for rule in policy
        .required_node_selectors
        .iter()
        .filter(|r| r.scope.applies(obj))
    {
        let selected = template
            .spec
            .get("nodeSelector")
            .and_then(|n| n.get(&rule.key))
            .and_then(Value::as_str);
        let ok = match (&rule.value, selected) {
            (None, Some(_)) => true,
            (Some(v), Some(s)) => v == s,
            _ => false,
        } || affinity_requires(template.spec, &rule.key, rule.value.as_deref());
        if !ok {
            let want = rule
                .value
                .as_ref()
                .map(|v| format!("{}={v}", rule.key))
                .unwrap_or_else(|| rule.key.clone());
            let pointer = match selected {
                Some(_) => template.spec_field(&format!("nodeSelector/{}", escape_token(&rule.key))),
                None => template.spec_pointer.to_string(),
            };
            out.push(obj.finding(
                &REQUIRED_NODE_SELECTOR,
                format!("pod template must select nodes with {want}"),
                &pointer,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Origin;
    use serde_json::json;

    fn ids(value: Value, policy: &Policy) -> Vec<String> {
        let origin = Origin::default();
        let mut out = Vec::new();
        check(&Object::new(&value, &origin), policy, &mut out);
        out.into_iter().map(|f| f.rule_id).collect()
    }

    #[test]
    fn bad_policies_are_errors() {
        assert!(Policy::from_value(json!({"labels": {"required": [{"key": "a", "pattern": "("}]}})).is_err());
        assert!(Policy::from_value(json!({"labels": {"requird": []}})).is_err());
        assert!(Policy::from_value(json!({"labels": {"required": [{"key": ""}]}})).is_err());
        assert!(Policy::example().required_labels.len() == 1);
    }

    #[test]
    fn scopes_and_patterns() {
        let policy = Policy::example();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}});
        assert!(ids(svc, &policy).is_empty(), "labels default to workload kinds");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "p"}},
                         "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"operator": "Exists"}], "containers": []}});
        assert!(ids(pod, &policy).is_empty());
        let gpu = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "gpu-a", "labels": {"app.kubernetes.io/name": "p"}},
                         "spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"key": "other", "operator": "Exists"}]}});
        assert_eq!(ids(gpu, &policy), vec!["policy.required-toleration"]);
    }
}
