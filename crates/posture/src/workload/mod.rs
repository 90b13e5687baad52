//! Hardening checks beyond Pod Security Standards: resources, images, service accounts, secrets in
//! env, probes, host mounts, Service and Ingress exposure, and the known attack paths (exposed
//! Kubernetes Dashboard, Siloscape-style escapes). Checks never panic on malformed input and never
//! copy a secret value into a finding: credential evidence is always redacted.

/// The start of a one-container Pod fixture; `pod_with!` appends the container's remaining lines.
pub(crate) const POD_HEAD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n";

macro_rules! pod_with {
    ($lines:expr) => {
        concatcp!($crate::workload::POD_HEAD, $lines)
    };
}

/// Concatenates `&'static str` constants at compile time.
macro_rules! concatcp {
    ($a:expr, $b:expr) => {{
        const A: &str = $a;
        const B: &str = $b;
        const LEN: usize = A.len() + B.len();
        const BYTES: [u8; LEN] = {
            let mut out = [0u8; LEN];
            let (a, b) = (A.as_bytes(), B.as_bytes());
            let mut i = 0;
            while i < a.len() {
                out[i] = a[i];
                i += 1;
            }
            let mut j = 0;
            while j < b.len() {
                out[a.len() + j] = b[j];
                j += 1;
            }
            out
        };
        match std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("fixture is not UTF-8"),
        }
    }};
}

mod containers;
mod credentials;
mod exposure;
pub(crate) mod image;
mod network;
mod pod;
mod secrets;

pub use exposure::ExposureCollector;

use crate::object::{Container, ContainerKind, Object, PodTemplate};
use palisade_core::{Finding, Framework, FrameworkRef, RuleMeta};
use serde_json::Value;

/// Every hardening rule, grouped by domain in a stable order.
pub static RULES: &[RuleMeta] = &[
    // Resources.
    containers::CPU_REQUEST,
    containers::CPU_LIMIT,
    containers::MEMORY_REQUEST,
    containers::MEMORY_LIMIT,
    pod::EMPTY_DIR_SIZE_LIMIT,
    // Images.
    image::NO_TAG,
    image::LATEST_TAG,
    image::NO_DIGEST,
    image::PULL_POLICY,
    image::IMPLICIT_REGISTRY,
    // Container hardening.
    containers::READ_ONLY_ROOT_FS,
    containers::RUN_AS_UID_0,
    containers::LOW_UID,
    containers::ROOT_GROUP,
    containers::LOW_GID,
    containers::NET_RAW,
    containers::SYS_ADMIN,
    containers::DANGEROUS_CAPABILITIES,
    containers::PRIVILEGED_PORT,
    containers::LIVENESS_PROBE,
    containers::READINESS_PROBE,
    // Pod-level hardening.
    pod::SA_TOKEN_AUTOMOUNT,
    pod::DEFAULT_SERVICE_ACCOUNT,
    pod::DEFAULT_SA_AUTOMOUNT,
    pod::SHARE_PROCESS_NAMESPACE,
    pod::HOST_ALIASES,
    pod::HOST_NETWORK_PORTS,
    pod::SENSITIVE_HOST_PATH,
    pod::TERMINATION_GRACE_PERIOD,
    pod::JOB_DEADLINE,
    pod::CRONJOB_CONCURRENCY,
    pod::DEFAULT_NAMESPACE,
    pod::DEPRECATED_API,
    pod::HELM_TILLER,
    // Container escape paths (Siloscape and friends).
    pod::ESCAPE_HOST_PROCESS,
    pod::ESCAPE_PRIVILEGED,
    pod::ESCAPE_HOST_ROOT,
    pod::ESCAPE_RUNTIME_SOCKET,
    // Secrets.
    secrets::ENV_LITERAL,
    secrets::ENV_KNOWN_CREDENTIAL,
    secrets::ARGS_CREDENTIAL,
    secrets::SECRET_AS_ENV,
    secrets::CONFIGMAP_CREDENTIAL,
    secrets::SECRET_STRING_DATA,
    // Services and Ingresses.
    network::NODE_PORT,
    network::LOAD_BALANCER,
    network::EXTERNAL_IPS,
    network::SENSITIVE_PORT_EXPOSED,
    network::INGRESS_NO_TLS,
    network::INGRESS_SNIPPETS,
    // Kubernetes Dashboard (Tesla cryptojacking).
    exposure::DASHBOARD_LOGIN_DISABLED,
    exposure::DASHBOARD_EXPOSED,
    exposure::DASHBOARD_EXPOSED_WITHOUT_LOGIN,
];

/// Per-object hardening checks.
pub fn check(obj: &Object<'_>, out: &mut Vec<Finding>) {
    pod::check_object(obj, out);
    secrets::check_object(obj, out);
    network::check_object(obj, out);
    if let Some(template) = obj.pod_template() {
        let pod = Pod::new(obj, template);
        containers::check(&pod, out);
        image::check(&pod, out);
        pod::check(&pod, out);
        secrets::check(&pod, out);
        exposure::check(&pod, out);
    }
}

/// A pod spec under inspection with its containers, gathered once per object.
pub(crate) struct Pod<'o, 'a> {
    pub obj: &'o Object<'a>,
    pub template: PodTemplate<'a>,
    pub containers: Vec<Container<'a>>,
}

impl<'o, 'a> Pod<'o, 'a> {
    fn new(obj: &'o Object<'a>, template: PodTemplate<'a>) -> Self {
        let containers = template.containers();
        Pod {
            obj,
            template,
            containers,
        }
    }

    pub fn spec(&self) -> &'a Value {
        self.template.spec
    }

    /// Windows pods (`spec.os.name: windows`) do not support several Linux-only controls.
    pub fn is_windows(&self) -> bool {
        self.spec().pointer("/os/name").and_then(Value::as_str) == Some("windows")
    }

    /// Batch pods (Jobs, CronJobs, pods that are not restarted) run to completion.
    pub fn is_batch(&self) -> bool {
        matches!(self.obj.kind(), "Job" | "CronJob")
            || matches!(
                self.spec().get("restartPolicy").and_then(Value::as_str),
                Some("Never" | "OnFailure")
            )
    }

    /// Init and regular containers: the ones that may carry resources and a security context that
    /// persists (ephemeral debug containers are added by `kubectl debug`, not by manifests).
    pub fn long_lived(&self) -> impl Iterator<Item = &Container<'a>> {
        self.containers
            .iter()
            .filter(|c| c.kind != ContainerKind::Ephemeral)
    }

    pub fn regular(&self) -> impl Iterator<Item = &Container<'a>> {
        self.containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Regular)
    }

    pub fn finding(&self, rule: &RuleMeta, c: &Container<'_>, message: String, pointer: &str) -> Finding {
        self.obj.container_finding(rule, c, message, pointer)
    }
}

/// `container "web"`, `init container "setup"`, for messages.
pub(crate) fn describe(c: &Container<'_>) -> String {
    let kind = match c.kind {
        ContainerKind::Init => "init container",
        ContainerKind::Regular => "container",
        ContainerKind::Ephemeral => "ephemeral container",
    };
    format!("{kind} \"{}\"", c.name)
}

/// The deepest of `paths` (relative to `base`, shallowest first) that exists in `root`, as a pointer:
/// the evidence for a missing field is its nearest existing parent.
pub(crate) fn nearest(root: &Value, base: &str, paths: &[&str]) -> String {
    let mut best = base.to_string();
    for p in paths {
        let candidate = format!("{best}/{p}");
        if root.pointer(&candidate).is_none() {
            break;
        }
        best = candidate;
    }
    best
}

/// Replaces the evidence value of a finding about a credential, so the secret never leaves the scan.
pub(crate) fn redact(mut finding: Finding) -> Finding {
    if let Some(evidence) = finding.evidence.as_mut() {
        evidence.value = Some(Value::String(REDACTED.to_string()));
    }
    finding
}

pub(crate) const REDACTED: &str = "<redacted>";

/// Truthy only for a JSON `true` (a string "true" is not a valid boolean in the API).
pub(crate) fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

pub(crate) fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) const fn cis(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::CisKubernetes, id)
}
pub(crate) const fn nsa(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::NsaCisa, id)
}
pub(crate) const fn nist(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::Nist800190, id)
}
pub(crate) const fn attack(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::MitreAttack, id)
}

/// A Deployment that passes every container and pod hardening rule; fixtures of those rules use it as
/// their passing case.
pub(crate) const GOOD_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.2@sha256:4c1e4f8e7f7a8e2c3b6d5a9f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5
          imagePullPolicy: Always
          ports:
            - containerPort: 8080
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: 500m
              memory: 256Mi
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8080
          readinessProbe:
            httpGet:
              path: /ready
              port: 8080
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
"#;

#[cfg(test)]
pub(crate) mod testutil {
    use crate::object::{Object, Origin};
    use palisade_core::Finding;
    use serde_json::Value;

    /// Runs the per-object checks over one object.
    pub fn scan(v: &Value) -> Vec<Finding> {
        let origin = Origin::default();
        let obj = Object::new(v, &origin);
        let mut out = Vec::new();
        super::check(&obj, &mut out);
        out
    }

    /// Runs the per-object and the cross-object checks over several objects.
    pub fn scan_all(values: &[Value]) -> Vec<Finding> {
        let origin = Origin::default();
        let mut collector = super::ExposureCollector::default();
        let mut out = Vec::new();
        for v in values {
            let obj = Object::new(v, &origin);
            super::check(&obj, &mut out);
            collector.observe(&obj);
        }
        collector.finish(&mut out);
        out
    }

    pub fn with_rule<'f>(findings: &'f [Finding], id: &str) -> Vec<&'f Finding> {
        findings.iter().filter(|f| f.rule_id == id).collect()
    }

    pub fn has(findings: &[Finding], id: &str) -> bool {
        findings.iter().any(|f| f.rule_id == id)
    }

    /// A Pod with the given containers and extra spec fields.
    pub fn pod(spec: Value) -> Value {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": spec})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rules_are_documented_and_unique() {
        let mut ids = HashSet::new();
        assert!(RULES.len() >= 40, "only {} rules", RULES.len());
        for r in RULES {
            assert!(ids.insert(r.id), "duplicate id {}", r.id);
            let prefix = r.id.split('.').next().unwrap_or("");
            assert!(
                [
                    "workload",
                    "image",
                    "service",
                    "ingress",
                    "secret",
                    "serviceaccount",
                    "api",
                    "dashboard"
                ]
                .contains(&prefix),
                "{}",
                r.id
            );
            assert!(!r.title.is_empty() && !r.description.is_empty() && !r.rationale.is_empty());
            assert!(!r.remediation.is_empty(), "{}", r.id);
            assert!(
                !r.fixtures.pass.is_empty() && !r.fixtures.fail.is_empty(),
                "{} lacks fixtures",
                r.id
            );
        }
    }

    #[test]
    fn large_and_malformed_input_stays_fast_and_safe() {
        let n = 20_000;
        let volumes: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"name": format!("v{i}"), "hostPath": {"path": "/etc"}}))
            .collect();
        let mounts: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"name": format!("v{i}")}))
            .collect();
        let env: Vec<Value> = (0..n)
            .map(|i| serde_json::json!({"name": format!("E{i}"), "value": "x"}))
            .collect();
        let v = testutil::pod(serde_json::json!({"volumes": volumes,
            "containers": [{"name": "a", "volumeMounts": mounts, "env": env}]}));
        let started = std::time::Instant::now();
        let f = testutil::scan(&v);
        assert_eq!(testutil::with_rule(&f, "workload.sensitive-host-path").len(), n);
        assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
        for junk in [
            serde_json::json!(null),
            serde_json::json!([1, 2]),
            serde_json::json!({"kind": "Pod", "spec": []}),
            serde_json::json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": {"a": 1},
                "volumes": 3, "securityContext": "x"}}}}),
        ] {
            let _ = testutil::scan(&junk);
            let _ = testutil::scan_all(&[junk]);
        }
    }

    #[test]
    fn nearest_parent_pointer() {
        let v = serde_json::json!({"a": {"b": {"c": 1}}});
        assert_eq!(nearest(&v, "/a", &["b", "c", "d"]), "/a/b/c");
        assert_eq!(nearest(&v, "/a", &["x"]), "/a");
    }
}
