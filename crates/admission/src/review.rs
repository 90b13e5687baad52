//! AdmissionReview v1: the request the API server sends and the response it expects. Pure: bytes
//! in, a validated request out; a decision in, response JSON out.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Why a request body is not an AdmissionReview we can answer (the server replies 400 with this).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error(
        "unsupported apiVersion {0:?}: this webhook speaks admission.k8s.io/v1 (set admissionReviewVersions: [v1])"
    )]
    WrongVersion(String),
    #[error("kind is {0:?}, expected AdmissionReview")]
    WrongKind(String),
    #[error("invalid AdmissionReview: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// The parts of an AdmissionRequest the policies use. The raw request is kept for engines (such
/// as Gatekeeper's Rego) that want to see it whole.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: String,
    pub sub_resource: Option<String>,
    pub dry_run: bool,
    pub username: String,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub raw: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestShape {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    user_info: Option<Value>,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    old_object: Option<Value>,
}

const OPERATIONS: &[&str] = &["CREATE", "UPDATE", "DELETE", "CONNECT"];

/// Parses and validates an AdmissionReview v1 request body.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, ReviewError> {
    let review: Value = serde_json::from_slice(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
    let api_version = review.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != "admission.k8s.io/v1" {
        return Err(ReviewError::WrongVersion(api_version.to_string()));
    }
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(ReviewError::WrongKind(kind.to_string()));
    }
    let Some(raw) = review.get("request").filter(|r| r.is_object()).cloned() else {
        return Err(ReviewError::Invalid("no request".into()));
    };
    let shape: RequestShape =
        serde_json::from_value(raw.clone()).map_err(|e| ReviewError::Invalid(format!("request: {e}")))?;
    if shape.uid.is_empty() {
        return Err(ReviewError::Invalid("request.uid is empty".into()));
    }
    if !OPERATIONS.contains(&shape.operation.as_str()) {
        return Err(ReviewError::Invalid(format!(
            "unknown operation {:?}",
            shape.operation
        )));
    }
    let not_null = |v: Option<Value>| v.filter(|v| !v.is_null());
    let object = not_null(shape.object);
    if shape.operation != "DELETE"
        && shape.operation != "CONNECT"
        && object.as_ref().is_none_or(|o| !o.is_object())
    {
        return Err(ReviewError::Invalid(format!(
            "{} request without an object",
            shape.operation
        )));
    }
    let username = shape
        .user_info
        .as_ref()
        .and_then(|u| u.get("username"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(AdmissionRequest {
        uid: shape.uid,
        kind: shape.kind,
        name: shape.name,
        namespace: shape.namespace.filter(|n| !n.is_empty()),
        operation: shape.operation,
        sub_resource: shape.sub_resource.filter(|s| !s.is_empty()),
        dry_run: shape.dry_run.unwrap_or(false),
        username,
        object,
        old_object: not_null(shape.old_object),
        raw,
    })
}

/// What the webhook answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Shown to the user on denial.
    pub message: Option<String>,
    /// HTTP-style code in `status.code` on denial (403).
    pub code: Option<u16>,
    pub warnings: Vec<String>,
    /// `auditAnnotations`: keys are prefixed by the API server with the webhook's name.
    pub audit_annotations: BTreeMap<String, String>,
    /// A JSONPatch (RFC 6902) for mutating webhooks.
    pub patch: Option<Vec<Value>>,
    /// Time spent per policy (for metrics; not part of the response).
    pub timings: Vec<(String, std::time::Duration)>,
    /// Gatekeeper constraints answered from remembered decisions, and evaluated (for metrics).
    pub gatekeeper_remembered: usize,
    pub gatekeeper_evaluated: usize,
}

impl Decision {
    pub fn allow() -> Decision {
        Decision {
            allowed: true,
            ..Default::default()
        }
    }
}

/// The AdmissionReview v1 response for `uid`.
pub fn response(uid: &str, decision: &Decision) -> Value {
    let mut response = json!({"uid": uid, "allowed": decision.allowed});
    if let Some(message) = &decision.message {
        response["status"] = json!({
            "code": decision.code.unwrap_or(403),
            "message": message,
            "reason": if decision.allowed { "" } else { "Forbidden" },
        });
    }
    if !decision.warnings.is_empty() {
        // The API server limits each warning to 256 characters; longer ones are truncated there.
        response["warnings"] = json!(decision.warnings);
    }
    if !decision.audit_annotations.is_empty() {
        response["auditAnnotations"] = json!(decision.audit_annotations);
    }
    if let Some(patch) = &decision.patch
        && !patch.is_empty()
    {
        use base64::Engine;
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(request: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}),
        )
        .unwrap()
    }

    #[test]
    fn parses_a_pod_create() {
        let body = review(json!({
            "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "name": "p", "namespace": "shop",
            "operation": "CREATE", "userInfo": {"username": "alice"}, "dryRun": true,
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
        }));
        let req = parse_review(&body).unwrap();
        assert_eq!(
            (req.uid.as_str(), req.kind.kind.as_str(), req.username.as_str()),
            ("u1", "Pod", "alice")
        );
        assert!(req.dry_run);
        assert_eq!(req.namespace.as_deref(), Some("shop"));
    }

    #[test]
    fn rejects_what_it_cannot_answer() {
        assert!(matches!(parse_review(b"{not json"), Err(ReviewError::NotJson(_))));
        let v1beta1 =
            serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}))
                .unwrap();
        assert!(matches!(
            parse_review(&v1beta1),
            Err(ReviewError::WrongVersion(_))
        ));
        assert!(matches!(
            parse_review(&review(
                json!({"uid": "", "kind": {}, "operation": "CREATE", "object": {}})
            )),
            Err(ReviewError::Invalid(_))
        ));
        assert!(matches!(
            parse_review(&review(
                json!({"uid": "x", "kind": {}, "operation": "EXPLODE", "object": {}})
            )),
            Err(ReviewError::Invalid(_))
        ));
        assert!(matches!(
            parse_review(&review(json!({"uid": "x", "kind": {}, "operation": "CREATE"}))),
            Err(ReviewError::Invalid(_))
        ));
        assert!(matches!(
            parse_review(&review(
                json!({"uid": 5, "kind": {}, "operation": "CREATE", "object": {}})
            )),
            Err(ReviewError::Invalid(_))
        ));
        assert!(
            parse_review(&review(
                json!({"uid": "x", "kind": {}, "operation": "DELETE", "oldObject": {}})
            ))
            .is_ok()
        );
    }

    #[test]
    fn responses() {
        let mut d = Decision {
            allowed: false,
            message: Some("no".into()),
            ..Default::default()
        };
        d.warnings.push("careful".into());
        d.audit_annotations.insert("decision".into(), "deny".into());
        let r = response("u1", &d);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["warnings"][0], "careful");
        let p = Decision {
            patch: Some(vec![json!({"op": "add", "path": "/a", "value": 1})]),
            ..Decision::allow()
        };
        let r = response("u2", &p);
        assert_eq!(r["response"]["patchType"], "JSONPatch");
        assert!(r["response"]["patch"].as_str().unwrap().len() > 10);
    }
}
