//! A read-only view of one Kubernetes object as a JSON value, with the accessors every check needs:
//! identity, labels, the pod template of any workload kind, and its containers with JSON pointers.

use palisade_core::{Evidence, Finding, ResourceRef, RuleMeta};
use serde_json::Value;

/// Where the adapter found the object; copied into every finding's resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// A Kubernetes object under inspection.
#[derive(Debug, Clone, Copy)]
pub struct Object<'a> {
    pub value: &'a Value,
    pub origin: &'a Origin,
}

/// The kinds whose objects carry a pod template (or are a pod).
pub const WORKLOAD_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

impl<'a> Object<'a> {
    pub fn new(value: &'a Value, origin: &'a Origin) -> Object<'a> {
        Object { value, origin }
    }

    pub fn kind(&self) -> &'a str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &'a str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }

    pub fn metadata(&self) -> Option<&'a Value> {
        self.value.get("metadata")
    }

    pub fn name(&self) -> &'a str {
        let meta = self.metadata();
        meta.and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .or_else(|| meta.and_then(|m| m.get("generateName")).and_then(Value::as_str))
            .unwrap_or("")
    }

    /// The namespace written in the manifest, if any (absent usually means "the current namespace").
    pub fn namespace(&self) -> Option<&'a str> {
        self.metadata()
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
    }

    pub fn labels(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.metadata()
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
    }

    pub fn annotations(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.metadata()
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.labels().and_then(|l| l.get(key)).and_then(Value::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations()
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    /// The resource reference findings about this object carry.
    pub fn resource(&self) -> ResourceRef {
        ResourceRef {
            cluster: None,
            api_version: Some(self.api_version().to_string()).filter(|s| !s.is_empty()),
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
            container: None,
            image: None,
            file: self.origin.file.clone(),
            line: self.origin.line,
        }
    }

    /// A finding of `rule` on this object, pointing at `pointer` (which may be the nearest existing
    /// parent when the problem is a missing field).
    pub fn finding(&self, rule: &RuleMeta, message: impl Into<String>, pointer: &str) -> Finding {
        let value = self
            .value
            .pointer(pointer)
            .filter(|v| !v.is_object() && !v.is_array())
            .cloned();
        Finding::from_rule(
            rule,
            self.resource(),
            message,
            Some(Evidence {
                pointer: pointer.to_string(),
                value,
                line: None,
                column: None,
            }),
        )
    }

    /// A finding about one container: the resource names the container and its image.
    pub fn container_finding(
        &self,
        rule: &RuleMeta,
        container: &Container<'_>,
        message: impl Into<String>,
        pointer: &str,
    ) -> Finding {
        let mut finding = self.finding(rule, message, pointer);
        finding.resource.container = Some(container.name.to_string());
        finding.resource.image = container.image.map(str::to_string);
        finding.refresh_fingerprint();
        finding
    }

    /// The pod template of a workload (or the pod itself for `Pod`), with pointers to its parts.
    pub fn pod_template(&self) -> Option<PodTemplate<'a>> {
        let (meta_ptr, spec_ptr) = match self.kind() {
            "Pod" => ("/metadata", "/spec"),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
                ("/spec/template/metadata", "/spec/template/spec")
            }
            "CronJob" => (
                "/spec/jobTemplate/spec/template/metadata",
                "/spec/jobTemplate/spec/template/spec",
            ),
            _ => return None,
        };
        let spec = self.value.pointer(spec_ptr)?;
        if !spec.is_object() {
            return None;
        }
        Some(PodTemplate {
            metadata: self.value.pointer(meta_ptr),
            spec,
            metadata_pointer: meta_ptr,
            spec_pointer: spec_ptr,
        })
    }
}

/// A pod spec and its metadata, wherever they sit in the object.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    pub metadata: Option<&'a Value>,
    pub spec: &'a Value,
    /// JSON pointer of the metadata (`/metadata` for a Pod, `/spec/template/metadata` for a Deployment).
    pub metadata_pointer: &'static str,
    /// JSON pointer of the spec (`/spec` for a Pod, `/spec/template/spec` for a Deployment).
    pub spec_pointer: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of a pod spec, with its JSON pointer inside the whole object.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    pub value: &'a Value,
    pub kind: ContainerKind,
    pub name: &'a str,
    pub image: Option<&'a str>,
    /// e.g. `/spec/template/spec/containers/0`.
    pub pointer: String,
}

impl<'a> Container<'a> {
    pub fn security_context(&self) -> Option<&'a Value> {
        self.value.get("securityContext")
    }

    /// Pointer to a field below this container: `field("securityContext/privileged")`.
    pub fn field(&self, path: &str) -> String {
        format!("{}/{}", self.pointer, path)
    }
}

impl<'a> PodTemplate<'a> {
    /// Init, regular and ephemeral containers, in that order.
    pub fn containers(&self) -> Vec<Container<'a>> {
        let mut out = Vec::new();
        for kind in [
            ContainerKind::Init,
            ContainerKind::Regular,
            ContainerKind::Ephemeral,
        ] {
            if let Some(list) = self.spec.get(kind.field()).and_then(Value::as_array) {
                for (i, value) in list.iter().enumerate() {
                    out.push(Container {
                        value,
                        kind,
                        name: value.get("name").and_then(Value::as_str).unwrap_or(""),
                        image: value.get("image").and_then(Value::as_str),
                        pointer: format!("{}/{}/{}", self.spec_pointer, kind.field(), i),
                    });
                }
            }
        }
        out
    }

    pub fn pod_security_context(&self) -> Option<&'a Value> {
        self.spec.get("securityContext")
    }

    /// Pointer to a field below the spec: `spec_field("securityContext/runAsUser")`.
    pub fn spec_field(&self, path: &str) -> String {
        format!("{}/{}", self.spec_pointer, path)
    }

    pub fn annotations(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.metadata
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
    }

    pub fn labels(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.metadata
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
    }
}

/// Escapes one JSON-pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cronjob_template_and_containers() {
        let v = json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "n"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "initContainers": [{"name": "i", "image": "busybox"}],
                "containers": [{"name": "a", "image": "nginx:1"}]
            }}}}}
        });
        let origin = Origin::default();
        let obj = Object::new(&v, &origin);
        let t = obj.pod_template().unwrap();
        let cs = t.containers();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1].pointer, "/spec/jobTemplate/spec/template/spec/containers/0");
        assert_eq!(cs[0].kind, ContainerKind::Init);
        assert_eq!(obj.resource().display_name(), "CronJob/n/c");
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
    }
}
