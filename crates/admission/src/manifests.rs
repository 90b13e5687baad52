//! `palisade admission manifests`: the Deployment, Service and webhook configurations that run the
//! webhook in a cluster. The Deployment passes `palisade scan k8s` at PSS restricted.

use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ManifestOptions {
    pub namespace: String,
    pub name: String,
    pub image: String,
    pub replicas: u32,
    /// `Fail` or `Ignore`.
    pub failure_policy: String,
    pub timeout_seconds: u32,
    /// Base64 PEM of the CA that signed the serving certificate.
    pub ca_bundle: Option<String>,
    /// Name of the Secret holding tls.crt and tls.key.
    pub tls_secret: String,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            namespace: "palisade-system".into(),
            name: "palisade-admission".into(),
            image: "ghcr.io/palisade-sec/palisade:0.1.0".into(),
            replicas: 2,
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            ca_bundle: None,
            tls_secret: "palisade-admission-tls".into(),
        }
    }
}

/// The objects, in apply order.
pub fn manifests(o: &ManifestOptions) -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/name": o.name, "app.kubernetes.io/part-of": "palisade"});
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": o.namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"
        }}
    });
    let service_account = json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": o.name, "namespace": o.namespace, "labels": labels},
        "automountServiceAccountToken": false
    });
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": o.name, "namespace": o.namespace, "labels": labels},
        "spec": {
            "replicas": o.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": o.name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": o.name,
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "containers": [{
                        "name": "webhook",
                        "image": o.image,
                        // A digest pins the image; a tag alone must be pulled again to be trusted.
                        "imagePullPolicy": if o.image.contains("@sha256:") { "IfNotPresent" } else { "Always" },
                        "args": ["admission", "serve", "--listen", "0.0.0.0:8443",
                                 "--cert", "/tls/tls.crt", "--key", "/tls/tls.key",
                                 "--failure-policy", o.failure_policy,
                                 // Below the container's 256Mi: a Rego memory bomb must end in an
                                 // evaluation error, not an OOM kill.
                                 "--rego-memory-limit", "192"],
                        "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"cpu": "1", "memory": "256Mi"}
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                            "capabilities": {"drop": ["ALL"]}
                        },
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}},
                        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true}]
                    }],
                    "volumes": [{"name": "tls", "secret": {"secretName": o.tls_secret}}]
                }
            }
        }
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": o.name, "namespace": o.namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": o.name},
            "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
        }
    });
    let client_config = |path: &str| {
        let mut c = json!({"service": {"name": o.name, "namespace": o.namespace, "path": path, "port": 443}});
        if let Some(ca) = &o.ca_bundle {
            c["caBundle"] = json!(ca);
        }
        c
    };
    // The webhook must not judge its own namespace (it could not start again) nor kube-system.
    let namespace_selector = json!({"matchExpressions": [{
        "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", o.namespace]
    }]});
    let rules = json!([
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["pods", "replicationcontrollers", "services", "serviceaccounts", "configmaps", "secrets"], "scope": "*"},
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "scope": "Namespaced"},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
        {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["ingresses", "networkpolicies"], "scope": "Namespaced"},
        {"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], "scope": "*"}
    ]);
    let webhook = |name: &str, path: &str, mutating: bool| {
        let mut w = json!({
            "name": format!("{name}.palisade.dev"),
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "timeoutSeconds": o.timeout_seconds,
            "failurePolicy": o.failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": namespace_selector,
            "clientConfig": client_config(path),
            "rules": rules,
        });
        if mutating {
            w["reinvocationPolicy"] = json!("IfNeeded");
        }
        w
    };
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": o.name, "labels": labels},
        "webhooks": [webhook("validate", "/validate", false)]
    });
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": o.name, "labels": labels},
        "webhooks": [webhook("mutate", "/mutate", true)]
    });
    // The webhook needs no egress and only the API server's calls on 8443 (whose source addresses
    // differ per cluster, so ingress is open on that port alone).
    let deny_all = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-all", "namespace": o.namespace, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    });
    let allow_webhook = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("{}-ingress", o.name), "namespace": o.namespace, "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": o.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": 8443}]}]
        }
    });
    vec![
        namespace,
        service_account,
        deployment,
        service,
        deny_all,
        allow_webhook,
        validating,
        mutating,
    ]
}
