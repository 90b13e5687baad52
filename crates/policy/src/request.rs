//! The object under review as Gatekeeper hands it to Rego: `input.review` is the AdmissionRequest
//! serialised exactly as Go's encoding/json writes `admission/v1.AdmissionRequest` (zero values for
//! fields without omitempty, `null` for absent raw objects). Built either from a plain object, as
//! gator does, or from an AdmissionReview/AdmissionRequest decoded strictly.

use crate::error::{PolicyError, Result};
use crate::util::{describe, group_version, str_at};
use serde_json::{Map, Value, json};

/// A validated AdmissionRequest, ready to review.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRequest {
    review: Value,
}

impl AdmissionRequest {
    /// The minimal request gator makes from a plain object: `kind`, `object`, `name` and
    /// `namespace` only, so `operation` is empty and there is no `userInfo` or `oldObject`.
    pub fn from_object(obj: &Value) -> Result<Self> {
        check_object(obj, "object")?;
        let api_version = str_at(obj, &["apiVersion"]).unwrap_or("");
        let (group, version) = group_version(api_version);
        if version.is_empty() {
            return Err(PolicyError::InvalidRequest("object has no apiVersion".into()));
        }
        let mut req = Map::new();
        req.insert(
            "kind".into(),
            json!({"group": group, "version": version, "kind": str_at(obj, &["kind"]).unwrap_or("")}),
        );
        req.insert("object".into(), obj.clone());
        for (key, field) in [("name", "name"), ("namespace", "namespace")] {
            if let Some(v) = str_at(obj, &["metadata", field]).filter(|v| !v.is_empty()) {
                req.insert(key.into(), Value::String(v.to_string()));
            }
        }
        Self::from_request(&Value::Object(req))
    }

    /// An `admission.k8s.io` AdmissionReview: its `request`, decoded strictly.
    pub fn from_admission_review(doc: &Value) -> Result<Self> {
        let map = doc.as_object().ok_or_else(|| {
            invalid(format!(
                "AdmissionReview must be a mapping, found {}",
                describe(doc)
            ))
        })?;
        for key in map.keys() {
            if !["apiVersion", "kind", "request", "response"].contains(&key.as_str()) {
                return Err(invalid(format!("AdmissionReview: unknown field {key:?}")));
            }
        }
        match map.get("request") {
            None | Some(Value::Null) => Err(invalid("AdmissionReview has no request".into())),
            Some(req) => Self::from_request(req),
        }
    }

    /// An AdmissionRequest (the `request` of an AdmissionReview), decoded strictly: unknown
    /// fields and wrong types are errors; `object` or `oldObject` must be present; on DELETE the
    /// `oldObject` is reviewed as the `object`.
    pub fn from_request(req: &Value) -> Result<Self> {
        let map = req
            .as_object()
            .ok_or_else(|| invalid(format!("request must be a mapping, found {}", describe(req))))?;
        const KNOWN: [&str; 15] = [
            "uid",
            "kind",
            "resource",
            "subResource",
            "requestKind",
            "requestResource",
            "requestSubResource",
            "name",
            "namespace",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "dryRun",
            "options",
        ];
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(invalid(format!("request: unknown field {key:?}")));
            }
        }
        let string = |key: &str| -> Result<Value> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(Value::String(String::new())),
                Some(v @ Value::String(_)) => Ok(v.clone()),
                Some(other) => Err(invalid(format!(
                    "request.{key} must be a string, found {}",
                    describe(other)
                ))),
            }
        };
        let mut out = Map::new();
        out.insert("uid".into(), string("uid")?);
        out.insert(
            "kind".into(),
            struct_of(map.get("kind"), "kind", &["group", "version", "kind"])?,
        );
        out.insert(
            "resource".into(),
            struct_of(map.get("resource"), "resource", &["group", "version", "resource"])?,
        );
        for (key, fields) in [
            ("subResource", None),
            ("requestKind", Some(&["group", "version", "kind"][..])),
            ("requestResource", Some(&["group", "version", "resource"][..])),
            ("requestSubResource", None),
            ("name", None),
            ("namespace", None),
        ] {
            match fields {
                None => {
                    if let Value::String(s) = string(key)?
                        && !s.is_empty()
                    {
                        out.insert(key.into(), Value::String(s));
                    }
                }
                Some(fields) => {
                    if map.get(key).is_some_and(|v| !v.is_null()) {
                        out.insert(key.into(), struct_of(map.get(key), key, fields)?);
                    }
                }
            }
        }
        let operation = string("operation")?;
        let is_delete = operation.as_str() == Some("DELETE");
        out.insert("operation".into(), operation);
        out.insert("userInfo".into(), user_info(map.get("userInfo"))?);
        let object = raw_object(map.get("object"), "object")?;
        let old_object = raw_object(map.get("oldObject"), "oldObject")?;
        if object.is_null() && old_object.is_null() {
            return Err(invalid(
                "request has neither object nor oldObject to review".into(),
            ));
        }
        if is_delete && old_object.is_null() {
            return Err(invalid("oldObject cannot be null for DELETE operations".into()));
        }
        out.insert(
            "object".into(),
            if is_delete { old_object.clone() } else { object },
        );
        out.insert("oldObject".into(), old_object);
        match map.get("dryRun") {
            None | Some(Value::Null) => {}
            Some(v @ Value::Bool(_)) => {
                out.insert("dryRun".into(), v.clone());
            }
            Some(other) => {
                return Err(invalid(format!(
                    "request.dryRun must be a boolean, found {}",
                    describe(other)
                )));
            }
        }
        out.insert(
            "options".into(),
            map.get("options").cloned().unwrap_or(Value::Null),
        );
        Ok(Self {
            review: Value::Object(out),
        })
    }

    /// `input.review` as Rego sees it (before `namespaceObject` is added).
    pub fn as_json(&self) -> &Value {
        &self.review
    }

    /// The request's namespace (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &str {
        str_at(&self.review, &["namespace"]).unwrap_or("")
    }

    /// The objects the constraint's `match` is tried on: object and oldObject, when present.
    pub(crate) fn match_targets(&self) -> impl Iterator<Item = &Value> {
        ["object", "oldObject"]
            .into_iter()
            .filter_map(|k| self.review.get(k).filter(|v| v.is_object()))
    }
}

fn invalid(message: String) -> PolicyError {
    PolicyError::InvalidRequest(message)
}

/// A Kubernetes object must be a mapping with a kind (as unstructured decoding requires).
fn check_object(obj: &Value, field: &str) -> Result<()> {
    if !obj.is_object() {
        return Err(invalid(format!(
            "{field} must be a mapping, found {}",
            describe(obj)
        )));
    }
    if str_at(obj, &["kind"]).is_none_or(str::is_empty) {
        return Err(invalid(format!("{field}: Object 'Kind' is missing")));
    }
    Ok(())
}

fn raw_object(v: Option<&Value>, field: &str) -> Result<Value> {
    match v {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(obj) => {
            check_object(obj, &format!("request.{field}"))?;
            Ok(obj.clone())
        }
    }
}

/// A struct of string fields, all always written (Go's GroupVersionKind has no omitempty).
fn struct_of(v: Option<&Value>, field: &str, fields: &[&str]) -> Result<Value> {
    let mut out = Map::new();
    for f in fields {
        out.insert((*f).to_string(), Value::String(String::new()));
    }
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if !fields.contains(&key.as_str()) {
                    return Err(invalid(format!("request.{field}: unknown field {key:?}")));
                }
                match value {
                    Value::Null => {}
                    Value::String(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    other => {
                        return Err(invalid(format!(
                            "request.{field}.{key} must be a string, found {}",
                            describe(other)
                        )));
                    }
                }
            }
        }
        Some(other) => {
            return Err(invalid(format!(
                "request.{field} must be a mapping, found {}",
                describe(other)
            )));
        }
    }
    Ok(Value::Object(out))
}

/// authentication/v1 UserInfo: every field omitempty.
fn user_info(v: Option<&Value>) -> Result<Value> {
    let mut out = Map::new();
    let map = match v {
        None | Some(Value::Null) => return Ok(Value::Object(out)),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(invalid(format!(
                "request.userInfo must be a mapping, found {}",
                describe(other)
            )));
        }
    };
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let well_typed = match key.as_str() {
            "username" | "uid" => value.is_string(),
            "groups" => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "extra" => value.as_object().is_some_and(|m| {
                m.values()
                    .all(|v| v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
            }),
            _ => return Err(invalid(format!("request.userInfo: unknown field {key:?}"))),
        };
        if !well_typed {
            return Err(invalid(format!("request.userInfo.{key} has the wrong type")));
        }
        // Every UserInfo field is omitempty.
        let empty = match value {
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_object_gives_gators_minimal_request() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}});
        let req = AdmissionRequest::from_object(&pod).unwrap();
        assert_eq!(
            req.as_json(),
            &json!({"uid": "", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "", "resource": ""},
                    "name": "p", "namespace": "ns", "operation": "", "userInfo": {},
                    "object": pod, "oldObject": null, "options": null})
        );
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        let req = AdmissionRequest::from_object(&deploy).unwrap();
        assert_eq!(req.as_json()["kind"]["group"], "apps");
        assert!(req.as_json().get("namespace").is_none());
    }

    #[test]
    fn admission_review_is_strict_and_delete_reviews_the_old_object() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"operation": "DELETE", "oldObject": pod, "userInfo": {"username": "u"}}});
        let req = AdmissionRequest::from_admission_review(&review).unwrap();
        assert_eq!(req.as_json()["object"], pod);
        assert_eq!(req.as_json()["userInfo"], json!({"username": "u"}));

        for bad in [
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": pod, "bogus": 1}}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "UPDATE"}}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "DELETE", "object": pod}}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": pod, "userInfo": {"groups": "g"}}}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": {"metadata": {}}}}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "extra": 1, "request": {"object": pod}}),
        ] {
            assert!(AdmissionRequest::from_admission_review(&bad).is_err(), "{bad}");
        }
    }
}
