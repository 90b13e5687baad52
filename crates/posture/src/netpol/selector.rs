//! Kubernetes label selectors (`matchLabels` and `matchExpressions`) and plain Service selectors,
//! parsed leniently from untrusted JSON. A malformed selector selects nothing; it never panics.

use serde_json::Value;
use std::collections::BTreeMap;

/// Labels of one pod (template), keeping only string values as Kubernetes does.
pub type Labels = BTreeMap<String, String>;

/// Copies the string-valued labels of a `metadata.labels`-style map.
pub fn labels_from(map: Option<&serde_json::Map<String, Value>>) -> Labels {
    map.into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A `metav1.LabelSelector`. The empty selector selects every pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// Set when the selector could not be understood; it then selects nothing.
    invalid: bool,
}

impl Selector {
    /// Parses a LabelSelector; absent or `null` is the empty selector (what the API server stores).
    pub fn parse(value: Option<&Value>) -> Selector {
        let mut selector = Selector::default();
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return selector;
        };
        let Some(obj) = value.as_object() else {
            selector.invalid = true;
            return selector;
        };
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, v) in map {
                    match v.as_str() {
                        Some(v) => selector.requirements.push(Requirement {
                            key: key.clone(),
                            operator: Operator::In,
                            values: vec![v.to_string()],
                        }),
                        None => selector.invalid = true,
                    }
                }
            }
            Some(_) => selector.invalid = true,
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for expr in list {
                    match parse_requirement(expr) {
                        Some(r) => selector.requirements.push(r),
                        None => selector.invalid = true,
                    }
                }
            }
            Some(_) => selector.invalid = true,
        }
        selector
    }

    /// A Service-style selector: a plain map of labels that must all match. An empty map is `None`
    /// (a Service without a selector manages no endpoints).
    pub fn from_map(value: Option<&Value>) -> Option<Selector> {
        let map = value?.as_object()?;
        if map.is_empty() {
            return None;
        }
        let mut selector = Selector::default();
        for (key, v) in map {
            let v = v.as_str()?;
            selector.requirements.push(Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: vec![v.to_string()],
            });
        }
        Some(selector)
    }

    /// A selector that could not be understood: it selects nothing.
    pub fn malformed() -> Selector {
        Selector {
            requirements: Vec::new(),
            invalid: true,
        }
    }

    /// True for `{}`: selects every pod of the namespace.
    pub fn is_empty(&self) -> bool {
        !self.invalid && self.requirements.is_empty()
    }

    pub fn is_valid(&self) -> bool {
        !self.invalid
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.invalid && self.requirements.iter().all(|r| r.matches(labels))
    }
}

fn parse_requirement(expr: &Value) -> Option<Requirement> {
    let key = expr.get("key")?.as_str()?.to_string();
    let operator = match expr.get("operator")?.as_str()? {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        _ => return None,
    };
    let values: Vec<String> = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => vs
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()?,
        Some(_) => return None,
    };
    // The API server rejects these combinations; treat them as selecting nothing.
    let needs_values = matches!(operator, Operator::In | Operator::NotIn);
    if needs_values == values.is_empty() {
        return None;
    }
    Some(Requirement {
        key,
        operator,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_and_absent_select_everything() {
        assert!(Selector::parse(None).matches(&labels(&[])));
        assert!(Selector::parse(Some(&json!({}))).is_empty());
        assert!(Selector::parse(Some(&Value::Null)).is_empty());
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = Selector::parse(Some(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        })));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "edge"), ("team", "a")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "a"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "a"),
            ("legacy", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "back"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "edge"), ("team", "a")])));
    }

    #[test]
    fn malformed_selects_nothing() {
        for bad in [
            json!("app=web"),
            json!({"matchLabels": {"app": 1}}),
            json!({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": "nope"}),
        ] {
            let s = Selector::parse(Some(&bad));
            assert!(
                !s.is_valid() && !s.matches(&labels(&[("a", "x"), ("app", "web")])),
                "{bad}"
            );
        }
    }

    #[test]
    fn service_selector() {
        assert!(Selector::from_map(Some(&json!({}))).is_none());
        assert!(Selector::from_map(Some(&json!({"app": 3}))).is_none());
        let s = Selector::from_map(Some(&json!({"app": "web"}))).unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("x", "y")])));
        assert!(!s.matches(&labels(&[])));
    }
}
