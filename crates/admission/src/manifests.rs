//! `palisade admission manifests`: the Deployment, Service and webhook configurations that run the
//! webhook in a cluster. The Deployment passes `palisade scan k8s` at PSS restricted.
//!
//! With a palisade.yaml, the manifests also carry it: the file and the Gatekeeper policies it names
//! go into a ConfigMap the webhook mounts, resources it syncs get a ClusterRole that may list them
//! (and the pod a service-account token), and the NetworkPolicies let it reach the API server and
//! registries it needs.

use crate::AdmissionError;
use crate::cluster::SyncedResource;
use serde_json::{Value, json};

/// Where the webhook finds its configuration inside the container.
pub const CONFIG_DIR: &str = "/etc/palisade";
/// Where the packaged Gatekeeper policies are mounted (`admission.gatekeeper.paths`).
pub const POLICY_DIR: &str = "/etc/palisade/policies";
/// A writable directory for `admission.images.scan.cacheDir` (the root filesystem is read-only).
pub const SCAN_CACHE_DIR: &str = "/var/cache/palisade/scans";
/// What a ConfigMap may hold (the API server refuses more).
pub const MAX_CONFIG_MAP_BYTES: usize = 1 << 20;

/// palisade.yaml ready to run in the cluster, with what it needs from outside the container.
#[derive(Debug, Clone, Default)]
pub struct PackagedConfig {
    /// The whole palisade.yaml with paths rewritten to the mounted ones (written as YAML by the
    /// caller).
    pub document: Value,
    /// Gatekeeper policy files: (key in the ConfigMap, content).
    pub policies: Vec<(String, String)>,
    /// Resources the webhook lists from the API (`admission.gatekeeper.sync`).
    pub sync: Vec<SyncedResource>,
    /// The webhook calls registries (signature verification, on-demand scans).
    pub registry_access: bool,
    /// The scan gate keeps summaries: a writable volume at `SCAN_CACHE_DIR`.
    pub scan_cache: bool,
}

impl PackagedConfig {
    /// Rewrites `document` (a whole palisade.yaml) for the container: `gatekeeper.paths` become
    /// the mounted policy directory, `publicKeyFile` entries are inlined from `key_files`
    /// (path, PEM), and the scan cache moves to a writable volume. `policies` are the files the
    /// Gatekeeper paths held, as (path, content).
    pub fn new(
        mut document: Value,
        policies: Vec<(String, String)>,
        key_files: &[(String, String)],
    ) -> Result<PackagedConfig, AdmissionError> {
        let invalid = |m: String| AdmissionError::Config(m);
        let mut packaged = PackagedConfig::default();
        let Some(admission) = document.get_mut("admission").filter(|a| a.is_object()) else {
            packaged.document = document;
            return Ok(packaged);
        };
        if let Some(gk) = admission.get_mut("gatekeeper").filter(|g| g.is_object()) {
            if gk.get("paths").is_some() {
                gk["paths"] = json!([POLICY_DIR]);
            }
            for entry in gk.get("sync").and_then(Value::as_array).into_iter().flatten() {
                let text = entry
                    .as_str()
                    .ok_or_else(|| invalid("admission.gatekeeper.sync: entries are strings".into()))?;
                packaged.sync.push(SyncedResource::parse(text)?);
            }
        }
        if let Some(images) = admission.get_mut("images").filter(|i| i.is_object()) {
            for entry in images
                .get_mut("verify")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                packaged.registry_access = true;
                let Some(path) = entry
                    .get("publicKeyFile")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                else {
                    continue;
                };
                let pem = key_files
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, pem)| pem.clone())
                    .ok_or_else(|| {
                        invalid(format!("admission.images.verify: key file {path:?} was not read"))
                    })?;
                if let Some(map) = entry.as_object_mut() {
                    map.remove("publicKeyFile");
                    map.insert("publicKey".into(), json!(pem));
                }
            }
            if let Some(scan) = images.get_mut("scan").filter(|s| s.is_object()) {
                scan["cacheDir"] = json!(SCAN_CACHE_DIR);
                packaged.scan_cache = true;
                if scan.get("onDemand") != Some(&json!(false)) {
                    packaged.registry_access = true;
                }
            }
        }
        packaged.policies = policies
            .into_iter()
            .enumerate()
            .map(|(i, (path, text))| (policy_key(i, &path), text))
            .collect();
        packaged.document = document;
        Ok(packaged)
    }
}

/// A ConfigMap key for the i-th policy file: its position (keys are unique and keep the order)
/// and the file name reduced to the characters keys allow.
fn policy_key(i: usize, path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() {
        format!("policy-{i:04}.yaml")
    } else {
        format!("policy-{i:04}-{name}")
    }
}

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
    /// palisade.yaml and what it refers to; its text is `config_text`.
    pub config: Option<PackagedConfig>,
    /// palisade.yaml as written into the ConfigMap (YAML of `config.document`).
    pub config_text: String,
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
            config: None,
            config_text: String::new(),
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
    let config = o.config.as_ref();
    let sync = config.map_or(&[][..], |c| c.sync.as_slice());
    let config_map_name = format!("{}-config", o.name);
    let mut args = vec![
        json!("admission"),
        json!("serve"),
        json!("--listen"),
        json!("0.0.0.0:8443"),
        json!("--cert"),
        json!("/tls/tls.crt"),
        json!("--key"),
        json!("/tls/tls.key"),
        json!("--failure-policy"),
        json!(o.failure_policy),
        // Below the container's 256Mi: a Rego memory bomb must end in an evaluation error, not
        // an OOM kill.
        json!("--rego-memory-limit"),
        json!("192"),
    ];
    let mut mounts = vec![json!({"name": "tls", "mountPath": "/tls", "readOnly": true})];
    let mut volumes = vec![json!({"name": "tls", "secret": {"secretName": o.tls_secret}})];
    if let Some(c) = config {
        args.extend([json!("--config"), json!(format!("{CONFIG_DIR}/palisade.yaml"))]);
        mounts.push(json!({"name": "config", "mountPath": CONFIG_DIR, "readOnly": true}));
        let mut items = vec![json!({"key": "palisade.yaml", "path": "palisade.yaml"})];
        let policy_dir = POLICY_DIR
            .strip_prefix(CONFIG_DIR)
            .unwrap_or("/policies")
            .trim_start_matches('/');
        items.extend(
            c.policies
                .iter()
                .map(|(key, _)| json!({"key": key, "path": format!("{policy_dir}/{key}")})),
        );
        volumes.push(json!({"name": "config", "configMap": {"name": config_map_name, "items": items}}));
        if !c.sync.is_empty() {
            // What the kubelet would automount, as a bound token that expires within the hour
            // (the webhook reads the file again for every list).
            mounts.push(json!({"name": "api-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}));
            volumes.push(json!({"name": "api-token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
            ]}}));
        }
        if c.scan_cache {
            mounts.push(json!({"name": "scan-cache", "mountPath": SCAN_CACHE_DIR}));
            volumes.push(json!({"name": "scan-cache", "emptyDir": {"sizeLimit": "256Mi"}}));
        }
    }
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
                    // No automatic token: when the webhook lists resources from the API server it
                    // gets a projected, expiring one (below).
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
                        "args": args,
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
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
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
    // By default the webhook needs no egress (see the egress policy below for what a configuration
    // adds) and only the API server's calls on 8443 (whose source addresses differ per cluster,
    // so ingress is open on that port alone).
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
    let mut objects = vec![namespace, service_account];
    if let Some(c) = config {
        let mut data = serde_json::Map::new();
        data.insert("palisade.yaml".into(), json!(o.config_text));
        for (key, text) in &c.policies {
            data.insert(key.clone(), json!(text));
        }
        objects.push(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map_name, "namespace": o.namespace, "labels": labels},
            "data": data
        }));
    }
    if !sync.is_empty() {
        // `list` on exactly the synced resources, nothing else.
        let mut rules: Vec<Value> = Vec::new();
        for r in sync {
            match rules
                .iter_mut()
                .find(|rule| rule["apiGroups"][0] == r.group.as_str())
            {
                Some(rule) => {
                    if let Some(list) = rule["resources"].as_array_mut()
                        && !list.iter().any(|x| x == r.resource.as_str())
                    {
                        list.push(json!(r.resource));
                    }
                }
                None => {
                    rules.push(json!({"apiGroups": [r.group], "resources": [r.resource], "verbs": ["list"]}))
                }
            }
        }
        let role_name = format!("{}-sync", o.name);
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": role_name, "labels": labels},
            "rules": rules
        }));
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": role_name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": o.name, "namespace": o.namespace}]
        }));
    }
    objects.extend([deployment, service, deny_all, allow_webhook]);
    let registry_access = config.is_some_and(|c| c.registry_access);
    if !sync.is_empty() || registry_access {
        // The API server (443 behind the `kubernetes` Service, 6443 on the control plane) and
        // registries (443, found through DNS) have addresses that differ per cluster: the
        // policy opens the ports, not the destinations.
        let mut ports = vec![
            json!({"protocol": "TCP", "port": 443}),
            json!({"protocol": "TCP", "port": 6443}),
        ];
        if registry_access {
            ports.extend([
                json!({"protocol": "UDP", "port": 53}),
                json!({"protocol": "TCP", "port": 53}),
            ]);
        }
        objects.push(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("{}-egress", o.name), "namespace": o.namespace, "labels": labels},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": o.name}},
                "policyTypes": ["Egress"],
                "egress": [{"ports": ports}]
            }
        }));
    }
    objects.extend([validating, mutating]);
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaging_rewrites_paths_and_inlines_keys() {
        let doc = json!({"admission": {
            "gatekeeper": {"paths": ["/home/me/policies"], "sync": ["v1/namespaces"]},
            "images": {
                "verify": [{"images": ["r.example/*"], "publicKeyFile": "k.pem"}],
                "scan": {"failOn": "high", "cacheDir": "/home/me/cache", "onDemand": false}
            }
        }, "pss": {"level": "restricted"}});
        let p = PackagedConfig::new(
            doc,
            vec![
                ("/home/me/policies/a b.yaml".into(), "x".into()),
                ("/p/.hidden".into(), "y".into()),
            ],
            &[("k.pem".into(), "PEM".into())],
        )
        .unwrap();
        let a = &p.document["admission"];
        assert_eq!(a["gatekeeper"]["paths"], json!([POLICY_DIR]));
        assert_eq!(
            a["images"]["verify"][0],
            json!({"images": ["r.example/*"], "publicKey": "PEM"})
        );
        assert_eq!(a["images"]["scan"]["cacheDir"], SCAN_CACHE_DIR);
        assert_eq!(p.document["pss"]["level"], "restricted", "the rest is kept");
        let keys: Vec<&str> = p.policies.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["policy-0000-a_b.yaml", "policy-0001-hidden"]);
        assert_eq!(p.sync.len(), 1);
        assert!(p.scan_cache && p.registry_access);
    }

    #[test]
    fn packaging_refuses_what_the_webhook_would() {
        let unread =
            json!({"admission": {"images": {"verify": [{"images": ["*"], "publicKeyFile": "k.pem"}]}}});
        assert!(PackagedConfig::new(unread, vec![], &[]).is_err());
        let bad_sync = json!({"admission": {"gatekeeper": {"sync": ["namespaces"]}}});
        assert!(PackagedConfig::new(bad_sync, vec![], &[]).is_err());
        let not_text = json!({"admission": {"gatekeeper": {"sync": [3]}}});
        assert!(PackagedConfig::new(not_text, vec![], &[]).is_err());
        // Without an admission section there is nothing to package but the file itself.
        let p = PackagedConfig::new(json!({"pss": {}}), vec![], &[]).unwrap();
        assert!(p.sync.is_empty() && !p.registry_access && !p.scan_cache);
    }

    #[test]
    fn no_configuration_means_no_token_and_no_egress() {
        let objects = manifests(&ManifestOptions::default());
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert!(
            !kinds.contains(&"ConfigMap") && !kinds.contains(&"ClusterRole"),
            "{kinds:?}"
        );
        assert!(
            !objects
                .iter()
                .any(|o| o["spec"]["policyTypes"] == json!(["Egress"]))
        );
    }
}
