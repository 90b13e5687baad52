//! Pod-level checks: service accounts, namespaces shared with the node, host mounts and the container
//! escape paths Siloscape used, batch settings, and object-level checks (namespace, API version, Helm
//! v2 Tiller). PSS reports any hostPath or privileged container in general terms; these rules name the
//! mounts and settings that reach the node.

use super::image::ImageRef;
use super::{GOOD_DEPLOYMENT, Pod, array, attack, cis, describe, is_true, nearest, nist, nsa};
use crate::object::{Object, WORKLOAD_KINDS};
use palisade_core::{Category, Finding, Fixtures, RuleMeta, Severity};
use serde_json::Value;
use std::collections::HashMap;

pub(crate) fn check(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    service_account(pod, out);
    let spec = pod.spec();
    let obj = pod.obj;
    if is_true(spec.get("shareProcessNamespace")) {
        let msg = "containers of the pod share one process namespace: each can see and signal the others' processes \
                   and read their environment and files through /proc";
        out.push(obj.finding(
            &SHARE_PROCESS_NAMESPACE,
            msg,
            &pod.template.spec_field("shareProcessNamespace"),
        ));
    }
    if !array(spec.get("hostAliases")).is_empty() {
        let msg = "pod overrides name resolution with hostAliases entries in /etc/hosts";
        out.push(obj.finding(&HOST_ALIASES, msg, &pod.template.spec_field("hostAliases")));
    }
    if let Some(seconds) = spec.get("terminationGracePeriodSeconds").and_then(Value::as_i64)
        && seconds > MAX_GRACE_SECONDS
    {
        let msg =
            format!("pod keeps running for up to {seconds}s after deletion (terminationGracePeriodSeconds)");
        let ptr = pod.template.spec_field("terminationGracePeriodSeconds");
        out.push(obj.finding(&TERMINATION_GRACE_PERIOD, msg, &ptr));
    }
    let host_network = is_true(spec.get("hostNetwork"));
    if is_true(spec.pointer("/securityContext/windowsOptions/hostProcess")) {
        let msg = "pod runs as a Windows HostProcess pod: its containers are processes on the node with the node's \
                   privileges (Siloscape-style escape)";
        out.push(
            obj.finding(
                &ESCAPE_HOST_PROCESS,
                msg,
                &pod.template
                    .spec_field("securityContext/windowsOptions/hostProcess"),
            ),
        );
    }
    for c in &pod.containers {
        let who = describe(c);
        if host_network && !array(c.value.get("ports")).is_empty() {
            let msg = format!(
                "{who} listens on the node's own network interfaces (hostNetwork with declared ports)"
            );
            out.push(pod.finding(&HOST_NETWORK_PORTS, c, msg, &c.field("ports")));
        }
        let sc = c.security_context();
        if is_true(sc.and_then(|s| s.get("privileged"))) {
            let msg = format!(
                "{who} is privileged: it has every capability and the node's devices, so it can mount the node's disk \
                 and escape to the host"
            );
            out.push(pod.finding(&ESCAPE_PRIVILEGED, c, msg, &c.field("securityContext/privileged")));
        }
        if is_true(sc.and_then(|s| s.pointer("/windowsOptions/hostProcess"))) {
            let msg = format!(
                "{who} is a Windows HostProcess container: a process on the node with its privileges"
            );
            out.push(pod.finding(
                &ESCAPE_HOST_PROCESS,
                c,
                msg,
                &c.field("securityContext/windowsOptions/hostProcess"),
            ));
        }
    }
    volumes(pod, out);
    tiller(pod, out);
}

const MAX_GRACE_SECONDS: i64 = 300;

fn service_account(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    let spec = pod.spec();
    let (field, name) = ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|f| {
            spec.get(*f)
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|n| (*f, n))
        })
        .unwrap_or(("", "default"));
    if name == "default" {
        let ptr = if field.is_empty() {
            pod.template.spec_pointer.to_string()
        } else {
            pod.template.spec_field(field)
        };
        let msg = "pod runs as the namespace's default service account; give it a dedicated one";
        out.push(pod.obj.finding(&DEFAULT_SERVICE_ACCOUNT, msg, &ptr));
    }
    let automount = spec.get("automountServiceAccountToken");
    if automount.and_then(Value::as_bool) != Some(false) {
        let ptr = match automount {
            Some(_) => pod.template.spec_field("automountServiceAccountToken"),
            None => pod.template.spec_pointer.to_string(),
        };
        let msg = format!(
            "pod mounts the API token of service account {name} (automountServiceAccountToken is not false)"
        );
        out.push(pod.obj.finding(&SA_TOKEN_AUTOMOUNT, msg, &ptr));
    }
}

/// What a hostPath reaches on the node.
#[derive(Debug, PartialEq, Eq)]
enum HostPathClass {
    /// The node's root filesystem (`/`, `C:\`).
    Root,
    /// A container runtime API: docker.sock, containerd.sock, `\\.\pipe\containerd-containerd`.
    RuntimeSocket(&'static str),
    /// A directory with node credentials, configuration, devices or kernel interfaces.
    Sensitive(&'static str),
}

const RUNTIME_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
    "/run/podman/podman.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/containerd/containerd.sock.ttrpc",
];

const SENSITIVE_DIRS: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/root",
    "/home",
    "/boot",
    "/dev",
    "/var/run",
    "/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/etcd",
    "/var/lib/cni",
    "/var/log",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/opt/cni",
];

/// Read-only time zone data is a common, harmless host mount.
const HARMLESS: &[&str] = &["/etc/localtime", "/etc/timezone", "/usr/share/zoneinfo"];

fn classify(raw: &str) -> Option<HostPathClass> {
    let raw = raw.trim();
    let is_windows = raw.starts_with("\\\\") || raw.as_bytes().get(1) == Some(&b':');
    if is_windows {
        return classify_windows(&raw.to_ascii_lowercase().replace('/', "\\"));
    }
    if !raw.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let path = format!("/{}", parts.join("/"));
    if path == "/" {
        return Some(HostPathClass::Root);
    }
    let within = |dir: &str| {
        path == dir || path.starts_with(&format!("{dir}/")) || dir.starts_with(&format!("{path}/"))
    };
    if HARMLESS
        .iter()
        .any(|h| path == *h || path.starts_with(&format!("{h}/")))
    {
        return None;
    }
    if let Some(sock) = RUNTIME_SOCKETS.iter().find(|s| within(s)) {
        return Some(HostPathClass::RuntimeSocket(sock));
    }
    let file = parts.last().copied().unwrap_or("");
    if file.ends_with(".sock")
        && ["docker", "containerd", "crio", "podman", "cri-dockerd"]
            .iter()
            .any(|r| file.contains(r))
    {
        return Some(HostPathClass::RuntimeSocket("a container runtime socket"));
    }
    SENSITIVE_DIRS
        .iter()
        .find(|d| within(d))
        .map(|d| HostPathClass::Sensitive(d))
}

fn classify_windows(path: &str) -> Option<HostPathClass> {
    let trimmed = path.trim_end_matches('\\');
    if trimmed.len() == 2 && trimmed.ends_with(':') {
        return Some(HostPathClass::Root);
    }
    if let Some(pipe) = path.strip_prefix("\\\\.\\pipe\\") {
        if pipe.contains("containerd") || pipe.contains("docker") {
            return Some(HostPathClass::RuntimeSocket(
                "a Windows container runtime named pipe",
            ));
        }
        return Some(HostPathClass::Sensitive("a Windows named pipe"));
    }
    let rest = trimmed.get(2..).unwrap_or("");
    const WINDOWS_SENSITIVE: &[&str] = &[
        "\\windows",
        "\\programdata\\docker",
        "\\programdata\\containerd",
        "\\var\\lib\\kubelet",
        "\\etc\\kubernetes",
        "\\k",
    ];
    WINDOWS_SENSITIVE
        .iter()
        .find(|d| rest == **d || rest.starts_with(&format!("{d}\\")))
        .map(|_| HostPathClass::Sensitive("a Windows system directory"))
}

fn volumes(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    // Built on first need, so pods without host mounts pay nothing and many volumes stay linear.
    let mut mounts: Option<HashMap<&str, Vec<String>>> = None;
    for (i, volume) in array(pod.spec().get("volumes")).iter().enumerate() {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(empty_dir) = volume.get("emptyDir").filter(|v| v.is_object() || v.is_null())
            && empty_dir.get("sizeLimit").is_none()
        {
            let ptr = pod.template.spec_field(&format!("volumes/{i}/emptyDir"));
            let msg =
                format!("emptyDir volume {name:?} has no sizeLimit and can fill the node's disk or memory");
            out.push(pod.obj.finding(&EMPTY_DIR_SIZE_LIMIT, msg, &ptr));
        }
        let Some(path) = volume.pointer("/hostPath/path").and_then(Value::as_str) else {
            continue;
        };
        let Some(class) = classify(path) else { continue };
        let users = match mounts.get_or_insert_with(|| mounts_by_volume(pod)).get(name) {
            Some(users) => users.join(", "),
            None => "no container yet (declared but not mounted)".to_string(),
        };
        let ptr = pod.template.spec_field(&format!("volumes/{i}/hostPath/path"));
        let (rule, what) = match class {
            HostPathClass::Root => (&ESCAPE_HOST_ROOT, "the node's root filesystem".to_string()),
            HostPathClass::RuntimeSocket(s) => {
                (&ESCAPE_RUNTIME_SOCKET, format!("the container runtime API ({s})"))
            }
            HostPathClass::Sensitive(d) => (
                &SENSITIVE_HOST_PATH,
                format!("sensitive node path {path:?} (under {d})"),
            ),
        };
        let msg = format!("hostPath volume {name:?} exposes {what} to {users}");
        out.push(pod.obj.finding(rule, msg, &ptr));
    }
}

/// Volume name → `container "a" (read-write)` for every mount of it.
fn mounts_by_volume<'a>(pod: &Pod<'_, 'a>) -> HashMap<&'a str, Vec<String>> {
    let mut by_volume: HashMap<&'a str, Vec<String>> = HashMap::new();
    for c in &pod.containers {
        for m in array(c.value.get("volumeMounts")) {
            if let Some(name) = m.get("name").and_then(Value::as_str) {
                let mode = if is_true(m.get("readOnly")) {
                    "read-only"
                } else {
                    "read-write"
                };
                by_volume
                    .entry(name)
                    .or_default()
                    .push(format!("{} ({mode})", describe(c)));
            }
        }
    }
    by_volume
}

fn tiller(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    for c in &pod.containers {
        let Some(image) = c.image else { continue };
        if ImageRef::parse(image).repository_name() == "tiller" {
            let msg = format!(
                "{} runs Helm v2 Tiller ({image}), an unauthenticated cluster-admin API",
                describe(c)
            );
            out.push(pod.finding(&HELM_TILLER, c, msg, &c.field("image")));
        }
    }
}

/// Checks that apply to an object whatever its kind.
pub(crate) fn check_object(obj: &Object<'_>, out: &mut Vec<Finding>) {
    if obj.namespace() == Some("default")
        && NAMESPACED_APP_KINDS
            .iter()
            .chain(WORKLOAD_KINDS)
            .any(|k| *k == obj.kind())
    {
        let msg = format!("{} is placed in the default namespace", obj.kind());
        out.push(obj.finding(&DEFAULT_NAMESPACE, msg, "/metadata/namespace"));
    }
    if let Some((removed, replacement)) = deprecated(obj.api_version(), obj.kind()) {
        let msg = format!(
            "{} uses apiVersion {}, removed in Kubernetes {removed}; use {replacement}",
            obj.kind(),
            obj.api_version()
        );
        out.push(obj.finding(&DEPRECATED_API, msg, "/apiVersion"));
    }
    match obj.kind() {
        "ServiceAccount" if obj.name() == "default" => {
            let automount = obj.value.get("automountServiceAccountToken");
            if automount.and_then(Value::as_bool) != Some(false) {
                let ptr = if automount.is_some() {
                    "/automountServiceAccountToken"
                } else {
                    ""
                };
                let msg = "the default service account does not set automountServiceAccountToken: false";
                out.push(obj.finding(&DEFAULT_SA_AUTOMOUNT, msg, ptr));
            }
        }
        "Job" => job_deadline(obj, "/spec", out),
        "CronJob" => {
            job_deadline(obj, "/spec/jobTemplate/spec", out);
            let policy = obj.value.pointer("/spec/concurrencyPolicy");
            if policy.and_then(Value::as_str).is_none_or(|p| p == "Allow") {
                let ptr = if policy.is_some() {
                    "/spec/concurrencyPolicy".to_string()
                } else {
                    nearest(obj.value, "", &["spec"])
                };
                let msg =
                    "CronJob allows concurrent runs (concurrencyPolicy Allow): slow or hijacked runs pile up";
                out.push(obj.finding(&CRONJOB_CONCURRENCY, msg, &ptr));
            }
        }
        _ => {}
    }
}

const NAMESPACED_APP_KINDS: &[&str] = &[
    "Service",
    "Ingress",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "PersistentVolumeClaim",
    "HorizontalPodAutoscaler",
];

fn job_deadline(obj: &Object<'_>, job_spec: &str, out: &mut Vec<Finding>) {
    let has = |p: &str| {
        obj.value
            .pointer(&format!("{job_spec}{p}"))
            .is_some_and(Value::is_number)
    };
    if !has("/activeDeadlineSeconds") && !has("/template/spec/activeDeadlineSeconds") {
        let ptr = nearest(
            obj.value,
            "",
            &job_spec.trim_start_matches('/').split('/').collect::<Vec<_>>(),
        );
        let msg = format!(
            "{} {} has no activeDeadlineSeconds: a stuck or hijacked run never ends",
            obj.kind(),
            obj.name()
        );
        out.push(obj.finding(&JOB_DEADLINE, msg, &ptr));
    }
}

/// `(removed in, replacement)` for API versions that current clusters no longer serve.
fn deprecated(api_version: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match (api_version, kind) {
        ("extensions/v1beta1", "Ingress") => ("1.22", "networking.k8s.io/v1"),
        ("extensions/v1beta1", "NetworkPolicy") => ("1.16", "networking.k8s.io/v1"),
        ("extensions/v1beta1", "PodSecurityPolicy") => ("1.16", "Pod Security Admission"),
        ("extensions/v1beta1", _) | ("apps/v1beta1", _) | ("apps/v1beta2", _) => ("1.16", "apps/v1"),
        ("networking.k8s.io/v1beta1", _) => ("1.22", "networking.k8s.io/v1"),
        ("batch/v1beta1", _) | ("batch/v2alpha1", _) => ("1.25", "batch/v1"),
        ("policy/v1beta1", "PodSecurityPolicy") => ("1.25", "Pod Security Admission"),
        ("policy/v1beta1", _) => ("1.25", "policy/v1"),
        ("rbac.authorization.k8s.io/v1beta1", _) | ("rbac.authorization.k8s.io/v1alpha1", _) => {
            ("1.22", "rbac.authorization.k8s.io/v1")
        }
        ("admissionregistration.k8s.io/v1beta1", _) => ("1.22", "admissionregistration.k8s.io/v1"),
        ("apiextensions.k8s.io/v1beta1", _) => ("1.22", "apiextensions.k8s.io/v1"),
        ("autoscaling/v2beta1", _) => ("1.25", "autoscaling/v2"),
        ("autoscaling/v2beta2", _) => ("1.26", "autoscaling/v2"),
        ("scheduling.k8s.io/v1beta1", _) | ("scheduling.k8s.io/v1alpha1", _) => {
            ("1.22", "scheduling.k8s.io/v1")
        }
        ("certificates.k8s.io/v1beta1", _) => ("1.22", "certificates.k8s.io/v1"),
        ("coordination.k8s.io/v1beta1", _) => ("1.22", "coordination.k8s.io/v1"),
        ("storage.k8s.io/v1beta1", "CSIStorageCapacity") => ("1.27", "storage.k8s.io/v1"),
        ("storage.k8s.io/v1beta1", _) => ("1.22", "storage.k8s.io/v1"),
        ("discovery.k8s.io/v1beta1", _) => ("1.25", "discovery.k8s.io/v1"),
        ("events.k8s.io/v1beta1", _) => ("1.25", "events.k8s.io/v1"),
        ("node.k8s.io/v1beta1", _) => ("1.25", "node.k8s.io/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", _) => ("1.26", "flowcontrol.apiserver.k8s.io/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta2", _) => ("1.29", "flowcontrol.apiserver.k8s.io/v1"),
        ("flowcontrol.apiserver.k8s.io/v1beta3", _) => ("1.32", "flowcontrol.apiserver.k8s.io/v1"),
        _ => return None,
    })
}

const ESCAPE_FRAMEWORKS: &[palisade_core::FrameworkRef] = &[
    attack("T1611"),
    nist("4.4.3"),
    nist("4.5.5"),
    nsa("Pod security enforcement"),
];

const SA_FRAMEWORKS: &[palisade_core::FrameworkRef] = &[
    nsa("Protecting Pod service account tokens"),
    nist("4.3.1"),
    attack("T1528"),
    attack("T1552.007"),
];

pub const SA_TOKEN_AUTOMOUNT: RuleMeta = RuleMeta {
    id: "workload.sa-token-automount",
    title: "Service account token is mounted automatically",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A pod does not set `automountServiceAccountToken: false`, so its service account's API token is \
                  mounted into every container.",
    rationale: "Most applications never call the Kubernetes API. A mounted token is the first thing an intruder uses \
                to explore and attack the cluster from a compromised pod.",
    remediation: "Set `automountServiceAccountToken: false` on the pod (or its service account) and mount a \
                  projected token only where the API is really used.",
    frameworks: &[
        cis("5.1.6"),
        nsa("Protecting Pod service account tokens"),
        nist("4.3.1"),
        attack("T1528"),
        attack("T1552.007"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  serviceAccountName: app\n  automountServiceAccountToken: true\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
        ],
    },
};

pub const DEFAULT_SERVICE_ACCOUNT: RuleMeta = RuleMeta {
    id: "workload.default-service-account",
    title: "Pod uses the default service account",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A pod sets no serviceAccountName (or sets `default`).",
    rationale: "Every pod in a namespace shares the default service account: a permission granted to it for one \
                workload is granted to all, and a compromise of any pod inherits it.",
    remediation: "Create a dedicated ServiceAccount per workload with only the permissions it needs.",
    frameworks: &[
        cis("5.1.5"),
        nsa("Protecting Pod service account tokens"),
        nist("4.3.1"),
        attack("T1078.001"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!("      image: registry.example.com/app:1\n")],
    },
};

pub const DEFAULT_SA_AUTOMOUNT: RuleMeta = RuleMeta {
    id: "serviceaccount.default-automount",
    title: "Default service account mounts its token",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A ServiceAccount named `default` in the manifests does not set `automountServiceAccountToken: false`.",
    rationale: "Pods that do not choose a service account get the default one's token; disabling automount on it \
                removes that token from every pod that does not need one.",
    remediation: "Set `automountServiceAccountToken: false` on each namespace's default ServiceAccount.",
    frameworks: SA_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: shop\nautomountServiceAccountToken: false\n",
        ],
        fail: &["apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: shop\n"],
    },
};

pub const SHARE_PROCESS_NAMESPACE: RuleMeta = RuleMeta {
    id: "workload.share-process-namespace",
    title: "Containers share a process namespace",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A pod sets `shareProcessNamespace: true`.",
    rationale: "Every container can then see, signal and ptrace the others' processes and read their files and \
                environment through /proc, so a compromised sidecar reaches the application's secrets.",
    remediation: "Remove `shareProcessNamespace` unless a debugging or signalling sidecar really requires it.",
    frameworks: &[
        nist("4.4.3"),
        nsa("Pod security enforcement"),
        attack("T1552.001"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  shareProcessNamespace: true\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
        ],
    },
};

pub const HOST_ALIASES: RuleMeta = RuleMeta {
    id: "workload.host-aliases",
    title: "Pod overrides /etc/hosts with hostAliases",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A pod sets `hostAliases`, pinning names to addresses in its /etc/hosts.",
    rationale: "Hard-coded resolution bypasses DNS and its policies, survives address changes silently and is a way \
                to redirect traffic (adversary-in-the-middle) that reviews rarely notice.",
    remediation: "Use DNS (a Service or an ExternalName) instead of hostAliases.",
    frameworks: &[attack("T1557"), nist("4.4.3")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  hostAliases:\n    - ip: 10.0.0.9\n      hostnames: [login.example.com]\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
        ],
    },
};

pub const HOST_NETWORK_PORTS: RuleMeta = RuleMeta {
    id: "workload.host-network-ports",
    title: "Container listens on the node network",
    severity: Severity::High,
    category: Category::Network,
    description: "A pod uses `hostNetwork: true` and a container declares ports, so it serves directly on the node's \
                  interfaces.",
    rationale: "Such a port bypasses Services and NetworkPolicies, is reachable wherever the node is, and shares the \
                node's network identity.",
    remediation: "Drop hostNetwork and expose the port through a Service; if the node network is required, restrict \
                  it with host firewall rules.",
    frameworks: &[
        cis("5.2.5"),
        nsa("Network policies"),
        nist("4.4.2"),
        attack("T1133"),
        attack("T1190"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  hostNetwork: true\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n      ports:\n        - containerPort: 9100\n",
        ],
    },
};

pub const SENSITIVE_HOST_PATH: RuleMeta = RuleMeta {
    id: "workload.sensitive-host-path",
    title: "hostPath mounts a sensitive node directory",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A hostPath volume mounts (or contains) a sensitive node path: /etc, /proc, /sys, /root, /home, \
                  /boot, /dev, /run, /var/run, /var/lib/kubelet, /var/lib/docker, /var/lib/containerd, /var/log, \
                  /usr, /bin, /lib, or Windows system directories and named pipes. (The node root and runtime \
                  sockets have their own rules; time zone files are ignored.)",
    rationale: "These paths hold the kubelet's credentials, other pods' volumes and tokens, kernel interfaces and \
                binaries the node runs: reading them leaks secrets, writing them takes over the node (/var/log \
                symlink attacks included).",
    remediation: "Remove the hostPath volume; use a ConfigMap, Secret, emptyDir, a CSI driver or a downward API \
                  volume. If a node agent needs it, mount the narrowest path read-only in a dedicated namespace.",
    frameworks: &[
        cis("5.2.12"),
        nsa("Pod security enforcement"),
        nist("4.5.5"),
        attack("T1611"),
        attack("T1552.001"),
    ],
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n      volumeMounts:\n        - name: tz\n          mountPath: /etc/localtime\n          readOnly: true\n  volumes:\n    - name: tz\n      hostPath:\n        path: /etc/localtime\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n      volumeMounts:\n        - name: kubelet\n          mountPath: /host/kubelet\n  volumes:\n    - name: kubelet\n      hostPath:\n        path: /var/lib/kubelet/\n",
        ],
    },
};

pub const EMPTY_DIR_SIZE_LIMIT: RuleMeta = RuleMeta {
    id: "workload.empty-dir-size-limit",
    title: "emptyDir volume has no size limit",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "An emptyDir volume sets no `sizeLimit`.",
    rationale: "An unbounded emptyDir can fill the node's disk (or memory, for `medium: Memory`) and evict other \
                pods.",
    remediation: "Set `emptyDir.sizeLimit` to what the workload needs.",
    frameworks: &[nsa("Resource policies"), nist("4.4.3"), attack("T1499")],
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n  volumes:\n    - name: tmp\n      emptyDir:\n        sizeLimit: 64Mi\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n  volumes:\n    - name: tmp\n      emptyDir: {}\n",
        ],
    },
};

pub const TERMINATION_GRACE_PERIOD: RuleMeta = RuleMeta {
    id: "workload.termination-grace-period",
    title: "Excessive termination grace period",
    severity: Severity::Info,
    category: Category::Misconfiguration,
    description: "A pod sets terminationGracePeriodSeconds above 300.",
    rationale: "A deleted pod keeps running (and keeps its credentials) for the whole grace period, delaying incident \
                response and node drains.",
    remediation: "Keep the grace period to what a clean shutdown needs (the default is 30 seconds).",
    frameworks: &[nist("4.4.5")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  terminationGracePeriodSeconds: 86400\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
        ],
    },
};

pub const JOB_DEADLINE: RuleMeta = RuleMeta {
    id: "workload.job-deadline",
    title: "Job has no active deadline",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A Job (or a CronJob's job template) sets no `activeDeadlineSeconds`.",
    rationale: "A stuck, looping or hijacked job runs and consumes resources forever; a deadline bounds it.",
    remediation: "Set `activeDeadlineSeconds` (and a deliberate `backoffLimit`) on the Job spec.",
    frameworks: &[nsa("Resource policies"), attack("T1496"), attack("T1053.007")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  namespace: shop\nspec:\n  activeDeadlineSeconds: 600\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: once\n          image: registry.example.com/once:1\n",
        ],
        fail: &[
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  namespace: shop\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: once\n          image: registry.example.com/once:1\n",
        ],
    },
};

pub const CRONJOB_CONCURRENCY: RuleMeta = RuleMeta {
    id: "workload.cronjob-concurrency",
    title: "CronJob allows concurrent runs",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A CronJob leaves `concurrencyPolicy` at `Allow`.",
    rationale: "When runs are slow or never finish, new ones start on top of them until the namespace's resources are \
                exhausted; attackers abuse scheduled jobs for persistent mining the same way.",
    remediation: "Set `concurrencyPolicy: Forbid` (or `Replace`).",
    frameworks: &[nsa("Resource policies"), attack("T1053.007"), attack("T1496")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: shop\nspec:\n  schedule: \"0 3 * * *\"\n  concurrencyPolicy: Forbid\n  jobTemplate:\n    spec:\n      activeDeadlineSeconds: 600\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: job\n              image: registry.example.com/job:1\n",
        ],
        fail: &[
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: shop\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: job\n              image: registry.example.com/job:1\n",
        ],
    },
};

pub const DEFAULT_NAMESPACE: RuleMeta = RuleMeta {
    id: "workload.default-namespace",
    title: "Object placed in the default namespace",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A workload, Service, Ingress, ConfigMap, Secret, ServiceAccount, PVC or HPA sets \
                  `metadata.namespace: default`.",
    rationale: "The default namespace is where everything lands by accident: it rarely has policies, quotas or \
                tight RBAC, and it mixes unrelated workloads.",
    remediation: "Create a namespace per application or team, with its own policies, and move the object there.",
    frameworks: &[cis("5.7.4"), cis("5.7.1"), nsa("Namespaces"), nist("4.3.4")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: default\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n",
        ],
    },
};

pub const DEPRECATED_API: RuleMeta = RuleMeta {
    id: "api.deprecated-version",
    title: "Object uses a removed API version",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "An object uses an apiVersion that current Kubernetes releases no longer serve (extensions/v1beta1, \
                  apps/v1beta1, networking.k8s.io/v1beta1, batch/v1beta1, policy/v1beta1, ...).",
    rationale: "Manifests on removed APIs fail on current clusters, which keeps clusters on unsupported, unpatched \
                versions; old API groups also carry insecure defaults (PodSecurityPolicy, old Ingress semantics).",
    remediation: "Migrate the manifest to the replacement API version named in the finding.",
    frameworks: &[nsa("Upgrading and application security practices"), nist("4.3.5")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  backend:\n    serviceName: web\n    servicePort: 80\n",
        ],
    },
};

pub const HELM_TILLER: RuleMeta = RuleMeta {
    id: "workload.helm-tiller",
    title: "Helm v2 Tiller is deployed",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A workload runs the Helm v2 server component, Tiller.",
    rationale: "Tiller usually runs with cluster-admin rights and serves an unauthenticated gRPC API (port 44134) to \
                every pod: any compromised pod can deploy privileged workloads through it. Helm v2 is end of life.",
    remediation: "Migrate to Helm 3 (no in-cluster component) and delete the Tiller Deployment, Service and its \
                  service account bindings.",
    frameworks: &[
        attack("T1610"),
        attack("T1609"),
        nist("4.3.1"),
        nsa("Upgrading and application security practices"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tiller-deploy\n  namespace: kube-system\nspec:\n  selector:\n    matchLabels:\n      app: helm\n      name: tiller\n  template:\n    metadata:\n      labels:\n        app: helm\n        name: tiller\n    spec:\n      containers:\n        - name: tiller\n          image: gcr.io/kubernetes-helm/tiller:v2.16.12\n          ports:\n            - containerPort: 44134\n",
        ],
    },
};

pub const ESCAPE_HOST_PROCESS: RuleMeta = RuleMeta {
    id: "workload.container-escape-host-process",
    title: "Windows HostProcess container (escape to host)",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A pod or container sets `windowsOptions.hostProcess: true`.",
    rationale: "A HostProcess container is a process on the Windows node with the node's privileges and filesystem: \
                no isolation at all. Siloscape, the first malware targeting Windows containers, escaped to the node \
                to reach the kubelet's credentials; HostProcess gives that for free.",
    remediation: "Run Windows node agents only from a locked-down system namespace; never use hostProcess for \
                  application workloads.",
    frameworks: &[
        attack("T1611"),
        cis("5.2.11"),
        nist("4.4.3"),
        nsa("Pod security enforcement"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: win\n  namespace: shop\nspec:\n  os:\n    name: windows\n  hostNetwork: true\n  securityContext:\n    windowsOptions:\n      hostProcess: true\n      runAsUserName: \"NT AUTHORITY\\\\SYSTEM\"\n  containers:\n    - name: agent\n      image: registry.example.com/win-agent:1\n",
        ],
    },
};

pub const ESCAPE_PRIVILEGED: RuleMeta = RuleMeta {
    id: "workload.container-escape-privileged",
    title: "Privileged container (escape to host)",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A container sets `securityContext.privileged: true`.",
    rationale: "A privileged container has every capability, every device of the node and no seccomp or AppArmor \
                confinement: mounting the node's disk or loading a kernel module is enough to escape, as in the \
                Siloscape and many cryptojacking campaigns.",
    remediation: "Remove `privileged`; grant the single capability or device the workload needs, and keep node \
                  agents in a dedicated, restricted namespace.",
    frameworks: &[
        attack("T1611"),
        cis("5.2.2"),
        nist("4.4.3"),
        nsa("Pod security enforcement"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        privileged: true\n"
        )],
    },
};

pub const ESCAPE_HOST_ROOT: RuleMeta = RuleMeta {
    id: "workload.container-escape-host-root",
    title: "hostPath mounts the node's root filesystem (escape to host)",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A hostPath volume mounts `/` (or a Windows drive root such as `C:\\`).",
    rationale: "With the node's whole filesystem, a container can read the kubelet's credentials and every pod's \
                secrets, and write cron jobs, SSH keys or binaries to take over the node.",
    remediation: "Remove the volume; mount only the narrow, read-only path a node agent needs.",
    frameworks: ESCAPE_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: registry.example.com/app:1\n      volumeMounts:\n        - name: host\n          mountPath: /host\n  volumes:\n    - name: host\n      hostPath:\n        path: /\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: win\n  namespace: shop\nspec:\n  os:\n    name: windows\n  containers:\n    - name: app\n      image: registry.example.com/win:1\n      volumeMounts:\n        - name: c\n          mountPath: C:\\host\n  volumes:\n    - name: c\n      hostPath:\n        path: C:\\\n",
        ],
    },
};

pub const ESCAPE_RUNTIME_SOCKET: RuleMeta = RuleMeta {
    id: "workload.container-escape-runtime-socket",
    title: "Container runtime socket mounted (escape to host)",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A hostPath volume mounts a container runtime API: docker.sock, containerd.sock, crio.sock, \
                  cri-dockerd or podman sockets, a directory containing one, or the Windows named pipes \
                  `\\\\.\\pipe\\containerd-containerd` and `\\\\.\\pipe\\docker_engine`.",
    rationale: "Whoever talks to the runtime can start a privileged container with the node's filesystem: full node \
                control, bypassing Kubernetes admission entirely. Siloscape used the containerd named pipe this way.",
    remediation: "Remove the socket mount. Build images with rootless builders (BuildKit rootless, kaniko) and read \
                  runtime state through the Kubernetes API.",
    frameworks: &[
        attack("T1611"),
        attack("T1610"),
        attack("T1552.007"),
        nist("4.4.3"),
        nsa("Pod security enforcement"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ci\n  namespace: shop\nspec:\n  containers:\n    - name: builder\n      image: registry.example.com/docker:27\n      volumeMounts:\n        - name: docker\n          mountPath: /var/run/docker.sock\n  volumes:\n    - name: docker\n      hostPath:\n        path: /var/run/docker.sock\n        type: Socket\n",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: win\n  namespace: shop\nspec:\n  os:\n    name: windows\n  containers:\n    - name: app\n      image: registry.example.com/win:1\n      volumeMounts:\n        - name: pipe\n          mountPath: \\\\.\\pipe\\containerd-containerd\n  volumes:\n    - name: pipe\n      hostPath:\n        path: \\\\.\\pipe\\containerd-containerd\n",
        ],
    },
};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::{HostPathClass, classify};
    use serde_json::json;

    #[test]
    fn host_path_classes() {
        assert_eq!(classify("/"), Some(HostPathClass::Root));
        assert_eq!(classify("//./"), Some(HostPathClass::Root));
        assert_eq!(classify("/etc/../"), Some(HostPathClass::Root));
        assert!(matches!(
            classify("/var/run/docker.sock"),
            Some(HostPathClass::RuntimeSocket(_))
        ));
        assert!(matches!(
            classify("/run/containerd"),
            Some(HostPathClass::RuntimeSocket(_))
        ));
        assert!(matches!(classify("/var"), Some(HostPathClass::RuntimeSocket(_))));
        assert!(matches!(
            classify("/opt/k3s/docker.sock"),
            Some(HostPathClass::RuntimeSocket(_))
        ));
        assert!(matches!(
            classify("/etc/kubernetes/pki"),
            Some(HostPathClass::Sensitive("/etc"))
        ));
        assert!(matches!(
            classify("/var/log/pods"),
            Some(HostPathClass::Sensitive("/var/log"))
        ));
        assert!(matches!(classify("/var/lib"), Some(HostPathClass::Sensitive(_))));
        assert_eq!(classify("/etc/localtime"), None);
        assert_eq!(classify("/data/app"), None);
        assert_eq!(classify("/tmp"), None);
        assert_eq!(classify("/etcd-data"), None);
        assert_eq!(classify("relative/path"), None);
        assert_eq!(classify("C:\\"), Some(HostPathClass::Root));
        assert_eq!(classify("c:/"), Some(HostPathClass::Root));
        assert!(matches!(
            classify("\\\\.\\pipe\\containerd-containerd"),
            Some(HostPathClass::RuntimeSocket(_))
        ));
        assert!(matches!(
            classify("\\\\.\\pipe\\docker_engine"),
            Some(HostPathClass::RuntimeSocket(_))
        ));
        assert!(matches!(
            classify("C:\\Windows\\System32"),
            Some(HostPathClass::Sensitive(_))
        ));
        assert_eq!(classify("D:\\data"), None);
        assert_eq!(classify(""), None);
    }

    #[test]
    fn escapes_and_volumes() {
        let f = scan(&pod(json!({
            "securityContext": {"windowsOptions": {"hostProcess": true}},
            "containers": [{"name": "a", "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "root", "mountPath": "/host", "readOnly": true}]}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": null},
                {"name": "bad", "hostPath": "nope"}, "junk"]
        })));
        assert_eq!(with_rule(&f, "workload.container-escape-host-process").len(), 1);
        assert_eq!(with_rule(&f, "workload.container-escape-privileged").len(), 1);
        let root = with_rule(&f, "workload.container-escape-host-root");
        assert_eq!(root.len(), 1);
        assert_eq!(
            root[0].evidence.as_ref().unwrap().pointer,
            "/spec/volumes/0/hostPath/path"
        );
        assert!(root[0].message.contains("container \"a\" (read-only)"));
        assert_eq!(with_rule(&f, "workload.empty-dir-size-limit").len(), 1);
    }

    #[test]
    fn service_accounts_and_objects() {
        let f = scan(&pod(
            json!({"serviceAccount": "legacy", "automountServiceAccountToken": false, "containers": []}),
        ));
        assert!(!has(&f, "workload.default-service-account") && !has(&f, "workload.sa-token-automount"));
        let f = scan(&pod(json!({"serviceAccountName": "default", "containers": []})));
        let d = with_rule(&f, "workload.default-service-account");
        assert_eq!(
            d[0].evidence.as_ref().unwrap().pointer,
            "/spec/serviceAccountName"
        );
        let cj = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "default"},
            "spec": {"concurrencyPolicy": "Allow", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let f = scan(&cj);
        for id in [
            "workload.cronjob-concurrency",
            "workload.job-deadline",
            "workload.default-namespace",
            "api.deprecated-version",
        ] {
            assert!(has(&f, id), "{id}");
        }
        assert_eq!(
            with_rule(&f, "workload.job-deadline")[0]
                .evidence
                .as_ref()
                .unwrap()
                .pointer,
            "/spec/jobTemplate/spec"
        );
        let job = json!({"kind": "Job", "spec": {"template": {"spec": {"activeDeadlineSeconds": 5}}}});
        assert!(!has(&scan(&job), "workload.job-deadline"));
        assert!(has(
            &scan(&json!({"kind": "Job", "spec": 3})),
            "workload.job-deadline"
        ));
        let sa = json!({"kind": "ServiceAccount", "metadata": {"name": "default"}});
        assert_eq!(
            with_rule(&scan(&sa), "serviceaccount.default-automount")[0]
                .evidence
                .as_ref()
                .unwrap()
                .pointer,
            ""
        );
    }
}
