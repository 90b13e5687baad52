//! The posture catalogue at the cluster's door: every rule of `palisade scan k8s` can be enforced,
//! warned or audited per namespace, with the same ids a developer sees from the scanner. Pure: an
//! admission request in, per-rule outcomes out.

use crate::review::AdmissionRequest;
use palisade_core::glob::glob_match;
use palisade_core::{Finding, FindingStatus, Severity};
use palisade_posture::{Origin, PssLevel, PssSettings, PssVersion, ScanConfig, Scanner};
use serde::Deserialize;

/// What happens when a rule fires on an admission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Deny the request.
    Enforce,
    /// Allow, with a warning shown to the user.
    Warn,
    /// Allow; record it in the audit annotations only.
    Audit,
    /// Fix it on the mutating endpoint (where a mutation exists), else warn.
    Mutate,
    /// Ignore the rule.
    Off,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `action: off` is the boolean false to a YAML 1.1 reader (as Kubernetes reads YAML).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Flag(bool),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(Action::Off),
            Raw::Flag(true) => Err(serde::de::Error::custom(
                "action `on` is ambiguous: use enforce, warn, audit or mutate",
            )),
            Raw::Text(text) => match text.to_ascii_lowercase().as_str() {
                "enforce" | "deny" => Ok(Action::Enforce),
                "warn" => Ok(Action::Warn),
                "audit" | "dryrun" => Ok(Action::Audit),
                "mutate" => Ok(Action::Mutate),
                "off" => Ok(Action::Off),
                other => Err(serde::de::Error::custom(format!(
                    "unknown action {other:?}: expected enforce, warn, audit, mutate or off"
                ))),
            },
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "enforce",
            Action::Warn => "warn",
            Action::Audit => "audit",
            Action::Mutate => "mutate",
            Action::Off => "off",
        }
    }
}

/// One line of the per-namespace action table: first match wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRule {
    /// Rule ids or globs (`pss.*`).
    pub rules: Vec<String>,
    /// Namespace globs; empty means every namespace (and cluster-scoped objects).
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub action: Action,
}

/// Actions by severity for rules no action rule names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityDefaults {
    pub critical: Action,
    pub high: Action,
    pub medium: Action,
    pub low: Action,
    pub info: Action,
}

impl Default for SeverityDefaults {
    fn default() -> Self {
        SeverityDefaults {
            critical: Action::Enforce,
            high: Action::Enforce,
            medium: Action::Warn,
            low: Action::Audit,
            info: Action::Off,
        }
    }
}

/// Rule families that describe the whole cluster (coverage of namespaces by NetworkPolicies,
/// exposure through other objects, bindings to roles elsewhere): one object on its own cannot
/// decide them, so admission leaves them to `palisade scan k8s` and `admission audit`.
const CLUSTER_WIDE_RULES: &[&str] = &[
    "netpol.*",
    "dashboard.exposed*",
    "rbac.workload-sa-cluster-access",
    "rbac.role-not-in-input",
    "exception.expired",
];

/// The `admission:` section of palisade.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionConfig {
    /// Pod Security level and version the webhook checks pods against (default baseline/latest).
    #[serde(default)]
    pub pss: Option<PssConfig>,
    /// `Fail` (deny) or `Ignore` (allow) when an evaluation cannot finish.
    #[serde(default)]
    pub failure_policy: Option<String>,
    /// Time budget of one evaluation, in milliseconds.
    #[serde(default)]
    pub evaluation_timeout_ms: Option<u64>,
    /// Per-rule, per-namespace actions; first match wins.
    #[serde(default)]
    pub actions: Vec<ActionRule>,
    /// Actions by severity for rules no entry in `actions` names.
    #[serde(default)]
    pub defaults: Option<SeverityDefaults>,
    /// Who may be granted powerful roles; who may change RBAC in protected namespaces.
    #[serde(default)]
    pub role_assignment: Option<crate::role_guard::RoleAssignmentConfig>,
    /// Image signature verification.
    #[serde(default)]
    pub images: Option<ImagesConfig>,
    /// Gatekeeper ConstraintTemplates and Constraints to enforce.
    #[serde(default)]
    pub gatekeeper: Option<GatekeeperConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatekeeperConfig {
    /// Files or directories (searched recursively) holding ConstraintTemplates and Constraints;
    /// other objects in them are ignored.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Time budget of one constraint evaluation, in milliseconds (default 100).
    #[serde(default)]
    pub time_budget_ms: Option<u64>,
    /// Resources listed from the cluster into `data.inventory` (and the Namespaces that
    /// `namespaceSelector` needs): `[group/]version/resource`, e.g. `v1/namespaces`.
    #[serde(default)]
    pub sync: Vec<String>,
    /// How often the synced resources are listed again, in seconds (default 30).
    #[serde(default)]
    pub sync_interval_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImagesConfig {
    /// Images that must carry a cosign signature verifying with a key.
    #[serde(default)]
    pub verify: Vec<crate::cosign::VerifyEntry>,
    /// Registries reached over plain HTTP (loopback always is).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Time budget of the registry calls of one verification, in milliseconds.
    #[serde(default)]
    pub registry_timeout_ms: Option<u64>,
    /// Deny images whose scan has findings at or above a severity.
    #[serde(default)]
    pub scan: Option<crate::scan_gate::ScanGateConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PssConfig {
    pub level: Option<String>,
    pub version: Option<String>,
}

impl AdmissionConfig {
    /// The catalogue policy this configuration describes; errors name the field.
    pub fn catalogue_policy(&self) -> Result<CataloguePolicy, String> {
        let mut policy = CataloguePolicy::default();
        if let Some(pss) = &self.pss {
            if let Some(level) = &pss.level {
                policy.pss.level = level.parse().map_err(|e| format!("admission.pss.level: {e}"))?;
            }
            if let Some(version) = &pss.version {
                policy.pss.version = version
                    .parse()
                    .map_err(|e| format!("admission.pss.version: {e}"))?;
            }
        }
        for (i, rule) in self.actions.iter().enumerate() {
            if rule.rules.is_empty() {
                return Err(format!("admission.actions[{i}]: `rules` is empty"));
            }
        }
        policy.actions = self.actions.clone();
        if let Some(defaults) = self.defaults {
            policy.defaults = defaults;
        }
        Ok(policy)
    }
}

/// The catalogue policy of the webhook.
#[derive(Debug, Clone)]
pub struct CataloguePolicy {
    pub pss: PssSettings,
    /// The organisation policy of palisade.yaml (`policy:`): labels, registries, ...
    pub policy: palisade_posture::labels::Policy,
    pub actions: Vec<ActionRule>,
    pub defaults: SeverityDefaults,
}

impl Default for CataloguePolicy {
    fn default() -> Self {
        CataloguePolicy {
            pss: PssSettings {
                level: PssLevel::Baseline,
                version: PssVersion::Latest,
            },
            policy: Default::default(),
            actions: Vec::new(),
            defaults: SeverityDefaults::default(),
        }
    }
}

/// One rule's verdict on the request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub finding: Finding,
    pub action: Action,
}

impl CataloguePolicy {
    pub fn action_for(&self, rule_id: &str, severity: Severity, namespace: Option<&str>) -> Action {
        for rule in &self.actions {
            let ns_ok = rule.namespaces.is_empty()
                || namespace.is_some_and(|ns| rule.namespaces.iter().any(|g| glob_match(g, ns)));
            if ns_ok && rule.rules.iter().any(|g| glob_match(g, rule_id)) {
                return rule.action;
            }
        }
        match severity {
            Severity::Critical => self.defaults.critical,
            Severity::High => self.defaults.high,
            Severity::Medium => self.defaults.medium,
            Severity::Low => self.defaults.low,
            Severity::Info => self.defaults.info,
        }
    }

    /// Runs the posture checks on the request's object. DELETE and CONNECT carry nothing to check.
    pub fn evaluate(&self, request: &AdmissionRequest) -> Vec<Outcome> {
        let Some(object) = request.object.as_ref() else {
            return Vec::new();
        };
        if request.sub_resource.is_some() {
            return Vec::new(); // status, scale, exec...: not the object's spec
        }
        // The object in a CREATE may have no namespace yet: the request's namespace is the truth.
        let mut object = object.clone();
        if let (Some(ns), Some(meta)) = (
            &request.namespace,
            object.get_mut("metadata").and_then(|m| m.as_object_mut()),
        ) {
            meta.entry("namespace")
                .or_insert_with(|| serde_json::Value::String(ns.clone()));
        }
        let mut scanner = Scanner::new(ScanConfig {
            pss: self.pss,
            policy: Default::default(),
        });
        let origin = Origin::default();
        let mut findings = scanner.scan(&object, &origin);
        findings.extend(scanner.finish());
        let namespace = request.namespace.as_deref();
        findings
            .into_iter()
            .filter(|f| matches!(f.status, FindingStatus::Open))
            .filter(|f| !CLUSTER_WIDE_RULES.iter().any(|g| glob_match(g, &f.rule_id)))
            .filter_map(|finding| {
                let action = self.action_for(&finding.rule_id, finding.severity, namespace);
                (action != Action::Off).then_some(Outcome { finding, action })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::parse_review;
    use serde_json::json;

    fn request(object: serde_json::Value, namespace: &str) -> AdmissionRequest {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": namespace,
            "operation": "CREATE", "object": object}});
        parse_review(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn privileged_pod() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}})
    }

    #[test]
    fn severity_defaults_and_namespace_overrides() {
        let mut policy = CataloguePolicy::default();
        let outcomes = policy.evaluate(&request(privileged_pod(), "shop"));
        let privileged = outcomes
            .iter()
            .find(|o| o.finding.rule_id == "pss.privileged")
            .unwrap();
        assert_eq!(privileged.action, Action::Enforce);
        assert_eq!(privileged.finding.resource.namespace.as_deref(), Some("shop"));
        assert!(!outcomes.iter().any(|o| o.finding.rule_id.starts_with("netpol.")));

        policy.actions.push(ActionRule {
            rules: vec!["pss.*".into()],
            namespaces: vec!["dev-*".into()],
            action: Action::Warn,
        });
        let outcomes = policy.evaluate(&request(privileged_pod(), "dev-alice"));
        assert_eq!(
            outcomes
                .iter()
                .find(|o| o.finding.rule_id == "pss.privileged")
                .unwrap()
                .action,
            Action::Warn
        );
        let outcomes = policy.evaluate(&request(privileged_pod(), "prod"));
        assert_eq!(
            outcomes
                .iter()
                .find(|o| o.finding.rule_id == "pss.privileged")
                .unwrap()
                .action,
            Action::Enforce
        );
    }
}
