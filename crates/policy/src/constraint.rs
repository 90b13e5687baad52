//! Constraints: the instances of a template's CRD kind, with `spec.parameters`, `spec.match` and
//! `spec.enforcementAction`, and Gatekeeper's matching rules. Pure functions of the constraint,
//! the object and (for `namespaceSelector`) the object's Namespace.

use crate::error::{PolicyError, Result};
use crate::util::{describe, group_version, str_at};
use serde::Serialize;
use serde_json::{Map, Value};

const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";

/// What Gatekeeper does with a violation of the constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementAction {
    /// Reject the request (the default).
    Deny,
    /// Admit the request with a warning.
    Warn,
    /// Admit the request; only audit reports the violation.
    Dryrun,
}

impl EnforcementAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Warn => "warn",
            Self::Dryrun => "dryrun",
        }
    }
}

impl std::fmt::Display for EnforcementAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub kind: String,
    pub name: String,
    /// `spec.parameters`, `{}` when absent (Gatekeeper defaults it so Rego need not).
    pub parameters: regorus::Value,
    pub enforcement_action: EnforcementAction,
    pub matcher: Match,
    /// New for every constraint read: remembered decisions of a replaced one are not used.
    pub generation: u64,
}

impl Constraint {
    /// Reads a constraint document; `schema` is the template's parameters schema, if any.
    pub(crate) fn parse(doc: &Value, schema: Option<&Value>) -> Result<Self> {
        let kind = str_at(doc, &["kind"]).unwrap_or("").to_string();
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_string();
        let label = format!(
            "{}/{}",
            if kind.is_empty() { "<no kind>" } else { &kind },
            if name.is_empty() { "<unnamed>" } else { &name }
        );
        let invalid = |message: String| PolicyError::InvalidConstraint {
            constraint: label.clone(),
            message,
        };
        if !doc.is_object() {
            return Err(invalid(format!("expected a mapping, found {}", describe(doc))));
        }
        let (group, _) = group_version(str_at(doc, &["apiVersion"]).unwrap_or(""));
        if group != CONSTRAINT_GROUP {
            return Err(invalid(format!(
                "apiVersion must be in group {CONSTRAINT_GROUP} (e.g. {CONSTRAINT_GROUP}/v1beta1)"
            )));
        }
        if kind.is_empty() || name.is_empty() {
            return Err(invalid("kind and metadata.name are required".into()));
        }
        let spec = match doc.get("spec") {
            None | Some(Value::Null) => &Value::Null,
            Some(spec @ Value::Object(_)) => spec,
            Some(other) => {
                return Err(invalid(format!(
                    "spec must be a mapping, found {}",
                    describe(other)
                )));
            }
        };
        let parameters = match spec.get("parameters") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(p) => {
                if let Some(schema) = schema {
                    check_schema(p, schema, "spec.parameters").map_err(|message| {
                        PolicyError::ConstraintSchema {
                            constraint: label.clone(),
                            message,
                        }
                    })?;
                }
                p.clone()
            }
        };
        let enforcement_action = match spec.get("enforcementAction") {
            None | Some(Value::Null) => EnforcementAction::Deny,
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "" | "deny" => EnforcementAction::Deny,
                "warn" => EnforcementAction::Warn,
                "dryrun" => EnforcementAction::Dryrun,
                _ => {
                    return Err(invalid(format!(
                        "spec.enforcementAction {s:?} is not supported: expected deny, warn or dryrun"
                    )));
                }
            },
            Some(other) => {
                return Err(invalid(format!(
                    "spec.enforcementAction must be a string, found {}",
                    describe(other)
                )));
            }
        };
        let matcher = match spec.get("match") {
            None | Some(Value::Null) => Match::default(),
            Some(m) => Match::parse(m).map_err(invalid)?,
        };
        Ok(Self {
            kind,
            name,
            parameters: regorus::Value::from(parameters),
            enforcement_action,
            matcher,
            generation: crate::decision_cache::next_generation(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Scope {
    #[default]
    Any,
    Cluster,
    Namespaced,
}

#[derive(Debug, Clone)]
struct KindSelector {
    groups: Vec<String>,
    kinds: Vec<String>,
}

/// `spec.match`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Match {
    kinds: Vec<KindSelector>,
    scope: Scope,
    namespaces: Vec<String>,
    excluded_namespaces: Vec<String>,
    label_selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    name: Option<String>,
    /// `source: Generated` only matches objects made by expansion, which we never review.
    generated_only: bool,
}

/// The outcome of matching when the answer cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MatchUnknown(pub String);

impl Match {
    fn parse(m: &Value) -> Result<Self, String> {
        if !m.is_object() {
            return Err(format!("spec.match must be a mapping, found {}", describe(m)));
        }
        let mut out = Match::default();
        if let Some(kinds) = non_null(m.get("kinds")) {
            let list = kinds
                .as_array()
                .ok_or_else(|| format!("spec.match.kinds must be a list, found {}", describe(kinds)))?;
            for (i, entry) in list.iter().enumerate() {
                let field = format!("spec.match.kinds[{i}]");
                out.kinds.push(KindSelector {
                    groups: string_list(entry.get("apiGroups"), &format!("{field}.apiGroups"))?,
                    kinds: string_list(entry.get("kinds"), &format!("{field}.kinds"))?,
                });
            }
        }
        out.scope = match non_null(m.get("scope")) {
            None => Scope::Any,
            Some(Value::String(s)) if s == "*" || s.is_empty() => Scope::Any,
            Some(Value::String(s)) if s == "Cluster" => Scope::Cluster,
            Some(Value::String(s)) if s == "Namespaced" => Scope::Namespaced,
            Some(other) => {
                return Err(format!(
                    "spec.match.scope must be Cluster, Namespaced or *, found {other}"
                ));
            }
        };
        out.namespaces = string_list(m.get("namespaces"), "spec.match.namespaces")?;
        out.excluded_namespaces = string_list(m.get("excludedNamespaces"), "spec.match.excludedNamespaces")?;
        if let Some(sel) = non_null(m.get("labelSelector")) {
            out.label_selector = Some(LabelSelector::parse(sel, "spec.match.labelSelector")?);
        }
        if let Some(sel) = non_null(m.get("namespaceSelector")) {
            out.namespace_selector = Some(LabelSelector::parse(sel, "spec.match.namespaceSelector")?);
        }
        match non_null(m.get("name")) {
            None => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => out.name = Some(s.clone()),
            Some(other) => {
                return Err(format!(
                    "spec.match.name must be a string, found {}",
                    describe(other)
                ));
            }
        }
        match non_null(m.get("source")) {
            None => {}
            Some(Value::String(s)) if s.is_empty() || s == "All" || s == "Original" => {}
            Some(Value::String(s)) if s == "Generated" => out.generated_only = true,
            Some(other) => {
                return Err(format!(
                    "spec.match.source must be All, Original or Generated, found {other}"
                ));
            }
        }
        Ok(out)
    }

    /// Whether one object (the request's object or oldObject) is matched. `namespace` is the
    /// Namespace object of the request's namespace when it is known.
    pub(crate) fn matches(&self, obj: &Value, namespace: Option<&Value>) -> Result<bool, MatchUnknown> {
        if self.generated_only {
            return Ok(false);
        }
        let api_version = str_at(obj, &["apiVersion"]).unwrap_or("");
        let (group, _) = group_version(api_version);
        let kind = str_at(obj, &["kind"]).unwrap_or("");
        let obj_name = str_at(obj, &["metadata", "name"]).unwrap_or("");
        let obj_namespace = str_at(obj, &["metadata", "namespace"]).unwrap_or("");
        let is_namespace = kind == "Namespace" && group.is_empty();

        if !self.kinds.is_empty() {
            let hit = self.kinds.iter().any(|k| {
                let kind_ok = k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || x == kind);
                let group_ok = k.groups.is_empty() || k.groups.iter().any(|x| x == "*" || x == group);
                kind_ok && group_ok
            });
            if !hit {
                return Ok(false);
            }
        }

        let has_namespace = !obj_namespace.is_empty() || namespace.is_some();
        // A Namespace counts as cluster-scoped; anything else by whether it has a namespace.
        let cluster_scoped = is_namespace || !has_namespace;
        match self.scope {
            Scope::Cluster if !cluster_scoped => return Ok(false),
            Scope::Namespaced if cluster_scoped => return Ok(false),
            _ => {}
        }

        // The namespace an object is "in" for namespaces/excludedNamespaces: a Namespace is in
        // itself; cluster-scoped objects are in none and are never excluded.
        let effective_ns = if is_namespace {
            Some(obj_name)
        } else if let Some(ns) = namespace {
            Some(str_at(ns, &["metadata", "name"]).unwrap_or(""))
        } else if !obj_namespace.is_empty() {
            Some(obj_namespace)
        } else {
            None
        };
        if let Some(ns) = effective_ns {
            if !self.namespaces.is_empty() && !self.namespaces.iter().any(|w| wildcard_matches(w, ns)) {
                return Ok(false);
            }
            if self.excluded_namespaces.iter().any(|w| wildcard_matches(w, ns)) {
                return Ok(false);
            }
        }

        if let Some(sel) = &self.label_selector
            && !sel.matches(obj.pointer("/metadata/labels"))
        {
            return Ok(false);
        }

        if let Some(sel) = &self.namespace_selector {
            if is_namespace {
                if !sel.matches(obj.pointer("/metadata/labels")) {
                    return Ok(false);
                }
            } else if let Some(ns) = namespace {
                if !sel.matches(ns.pointer("/metadata/labels")) {
                    return Ok(false);
                }
            } else if !obj_namespace.is_empty() {
                return Err(MatchUnknown(format!(
                    "spec.match.namespaceSelector needs the Namespace object {obj_namespace:?}, which is not in the inventory"
                )));
            }
        }

        if let Some(pattern) = &self.name {
            let generate_name = str_at(obj, &["metadata", "generateName"]).unwrap_or("");
            if !(wildcard_matches(pattern, obj_name) || generate_name_matches(pattern, generate_name)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match non_null(v) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{field}[{i}] must be a string, found {}", describe(item)))
            })
            .collect(),
        Some(other) => Err(format!(
            "{field} must be a list of strings, found {}",
            describe(other)
        )),
    }
}

/// Gatekeeper's wildcard: `*` at the start, the end or both (prefix, suffix, contains).
pub(crate) fn wildcard_matches(pattern: &str, candidate: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(_), Some(_)) if pattern.len() >= 2 => candidate.contains(&pattern[1..pattern.len() - 1]),
        (Some(_), Some(_)) => true, // "*" alone
        (Some(rest), None) => candidate.ends_with(rest),
        (None, Some(rest)) => candidate.starts_with(rest),
        (None, None) => pattern == candidate,
    }
}

fn generate_name_matches(pattern: &str, generate_name: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(_), Some(_)) if pattern.len() >= 2 => generate_name.contains(&pattern[1..pattern.len() - 1]),
        (Some(_), Some(_)) => true,
        (None, Some(rest)) => generate_name.starts_with(rest),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A Kubernetes `metav1.LabelSelector`; an empty selector matches everything.
#[derive(Debug, Clone)]
struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    fn parse(v: &Value, field: &str) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("{field} must be a mapping, found {}", describe(v)))?;
        let mut requirements = Vec::new();
        if let Some(labels) = non_null(obj.get("matchLabels")) {
            let labels = labels.as_object().ok_or_else(|| {
                format!(
                    "{field}.matchLabels must be a mapping, found {}",
                    describe(labels)
                )
            })?;
            for (key, value) in labels {
                let value = value.as_str().ok_or_else(|| {
                    format!(
                        "{field}.matchLabels.{key} must be a string, found {}",
                        describe(value)
                    )
                })?;
                requirements.push(Requirement {
                    key: key.clone(),
                    operator: Operator::In,
                    values: vec![value.to_string()],
                });
            }
        }
        if let Some(exprs) = non_null(obj.get("matchExpressions")) {
            let exprs = exprs.as_array().ok_or_else(|| {
                format!(
                    "{field}.matchExpressions must be a list, found {}",
                    describe(exprs)
                )
            })?;
            for (i, e) in exprs.iter().enumerate() {
                let at = format!("{field}.matchExpressions[{i}]");
                let key = str_at(e, &["key"])
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| format!("{at}.key must be a non-empty string"))?;
                let operator = match str_at(e, &["operator"]) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(format!(
                            "{at}.operator must be In, NotIn, Exists or DoesNotExist, found {other:?}"
                        ));
                    }
                };
                let values = string_list(e.get("values"), &format!("{at}.values"))?;
                match operator {
                    Operator::In | Operator::NotIn if values.is_empty() => {
                        return Err(format!("{at}.values must be non-empty for In and NotIn"));
                    }
                    Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                        return Err(format!("{at}.values must be empty for Exists and DoesNotExist"));
                    }
                    _ => {}
                }
                requirements.push(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        Ok(Self { requirements })
    }

    fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r.operator {
            Operator::In => get(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
            Operator::NotIn => get(&r.key).is_none_or(|v| !r.values.iter().any(|x| x == v)),
            Operator::Exists => get(&r.key).is_some(),
            Operator::DoesNotExist => get(&r.key).is_none(),
        })
    }
}

/// A structural check of `spec.parameters` against the template's openAPIV3Schema: types,
/// properties, items, additionalProperties and enum, as the API server would reject them.
fn check_schema(value: &Value, schema: &Value, path: &str) -> Result<(), String> {
    if value.is_null() {
        return if schema.get("nullable").and_then(Value::as_bool) == Some(true)
            || schema.get("type").is_none()
        {
            Ok(())
        } else {
            Err(format!("{path}: must not be null"))
        };
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return if value.is_string() || value.is_i64() || value.is_u64() {
            Ok(())
        } else {
            Err(format!(
                "{path}: expected an integer or a string, found {}",
                describe(value)
            ))
        };
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("number") => value.is_number(),
        Some("integer") => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        Some(_) => true,
    };
    if !ok {
        return Err(format!(
            "{path}: expected {}, found {}",
            schema.get("type").and_then(Value::as_str).unwrap_or("?"),
            describe(value)
        ));
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        return Err(format!(
            "{path}: {value} is not one of {}",
            Value::Array(choices.clone())
        ));
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, item) in map {
                let sub = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(sub) = sub {
                    check_schema(item, sub, &format!("{path}.{key}"))?;
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item, sub, &format!("{path}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_follow_gatekeeper() {
        assert!(wildcard_matches("kube-*", "kube-system"));
        assert!(wildcard_matches("*-system", "kube-system"));
        assert!(wildcard_matches("*sys*", "kube-system"));
        assert!(wildcard_matches("*", "anything"));
        assert!(!wildcard_matches("kube-*", "default"));
        assert!(wildcard_matches("default", "default"));
        assert!(!wildcard_matches("default", "default2"));
    }

    fn constraint(spec: Value) -> Constraint {
        Constraint::parse(
            &json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K", "metadata": {"name": "c"}, "spec": spec}),
            None,
        )
        .unwrap()
    }

    #[test]
    fn match_kinds_namespaces_scope_labels_name() {
        let c = constraint(json!({"match": {
            "kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}],
            "excludedNamespaces": ["kube-*"],
            "labelSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
            "scope": "Namespaced",
            "name": "web-*"
        }}));
        let obj = |ns: &str, team: &str, name: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": name, "namespace": ns, "labels": {"team": team}}})
        };
        assert_eq!(c.matcher.matches(&obj("prod", "a", "web-1"), None), Ok(true));
        assert_eq!(
            c.matcher.matches(&obj("kube-system", "a", "web-1"), None),
            Ok(false)
        );
        assert_eq!(c.matcher.matches(&obj("prod", "b", "web-1"), None), Ok(false));
        assert_eq!(c.matcher.matches(&obj("prod", "a", "api"), None), Ok(false));
        assert_eq!(c.matcher.matches(&obj("", "a", "web-1"), None), Ok(false));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "prod", "labels": {"team": "a"}}});
        assert_eq!(c.matcher.matches(&pod, None), Ok(false));
    }

    #[test]
    fn namespace_selector_needs_the_namespace() {
        let c = constraint(json!({"match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}});
        assert!(c.matcher.matches(&pod, None).is_err());
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"env": "prod"}}});
        assert_eq!(c.matcher.matches(&pod, Some(&ns)), Ok(true));
        assert_eq!(c.matcher.matches(&ns, None), Ok(true));
        let cluster = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}});
        assert_eq!(c.matcher.matches(&cluster, None), Ok(true));
    }

    #[test]
    fn bad_constraints_are_clear_errors() {
        let bad = [
            json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "c"}}),
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K", "metadata": {"name": "c"}, "spec": {"enforcementAction": "explode"}}),
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K", "metadata": {"name": "c"}, "spec": {"match": {"kinds": "Pod"}}}),
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K", "metadata": {"name": "c"}, "spec": {"match": {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}}}),
            json!([1, 2]),
        ];
        for doc in bad {
            assert!(Constraint::parse(&doc, None).is_err(), "{doc}");
        }
    }

    #[test]
    fn parameters_are_checked_against_the_schema() {
        let schema = json!({"type": "object", "properties": {"repos": {"type": "array", "items": {"type": "string"}}}});
        let doc = |params: Value| json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K", "metadata": {"name": "c"}, "spec": {"parameters": params}});
        assert!(Constraint::parse(&doc(json!({"repos": ["a"]})), Some(&schema)).is_ok());
        let err = Constraint::parse(&doc(json!({"repos": "a"})), Some(&schema)).unwrap_err();
        assert!(matches!(err, PolicyError::ConstraintSchema { .. }), "{err}");
    }
}
