//! The Kubernetes Dashboard attack path (the door of the 2018 Tesla cryptojacking): a dashboard that
//! lets visitors skip login, and one reachable from outside through a NodePort or LoadBalancer Service
//! or an Ingress. Exposure needs several objects, so the collector keeps compact owned summaries and
//! reports in `finish`; it never keeps whole objects.

use super::image::ImageRef;
use super::{Pod, array, attack, nist, nsa};
use crate::object::{Container, Object};
use palisade_core::{Category, Evidence, Finding, Fixtures, ResourceRef, RuleMeta, Severity};
use serde_json::Value;

/// Why a dashboard admits visitors without (proper) login.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LoginWeakness {
    reason: String,
    /// True when anyone can use it without any credential (skip login), not just with weaker ones.
    no_login: bool,
    pointer: String,
}

fn is_dashboard(c: &Container<'_>) -> bool {
    let by_image = c.image.is_some_and(|i| {
        let r = ImageRef::parse(i);
        r.path.contains("kubernetesui/dashboard") || r.repository_name().starts_with("kubernetes-dashboard")
    });
    by_image
        || flags(c).any(|(_, name, _)| {
            matches!(
                name,
                "enable-skip-login" | "enable-insecure-login" | "authentication-mode"
            )
        })
}

/// `(pointer, name, value)` for every `--name[=value]` in command and args; a value in the next item is
/// picked up for `--authentication-mode basic`.
fn flags<'c>(c: &'c Container<'_>) -> impl Iterator<Item = (String, &'c str, Option<&'c str>)> + 'c {
    ["command", "args"].into_iter().flat_map(move |field| {
        let items = array(c.value.get(field));
        items.iter().enumerate().filter_map(move |(i, item)| {
            let text = item.as_str()?.trim();
            let flag = text.strip_prefix("--").or_else(|| text.strip_prefix('-'))?;
            let (name, value) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None if flag == "authentication-mode" => (flag, items.get(i + 1).and_then(Value::as_str)),
                None => (flag, None),
            };
            Some((c.field(&format!("{field}/{i}")), name, value))
        })
    })
}

fn flag_on(value: Option<&str>) -> bool {
    value.is_none_or(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "t"))
}

/// Dashboard v1.x before 1.10.1 offered "skip" on the login page by default (and had no login before 1.7).
fn old_default_skip(image: &str) -> bool {
    let Some(tag) = ImageRef::parse(image).tag else {
        return false;
    };
    let mut parts = tag
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    match (
        parts.next().flatten(),
        parts.next().flatten(),
        parts.next().flatten(),
    ) {
        (Some(1), Some(minor), patch) => minor < 10 || (minor == 10 && patch.unwrap_or(0) == 0),
        _ => false,
    }
}

fn weaknesses(c: &Container<'_>) -> Vec<LoginWeakness> {
    let mut out = Vec::new();
    for (pointer, name, value) in flags(c) {
        let weakness = match name {
            "enable-skip-login" if flag_on(value) => {
                Some(("--enable-skip-login lets visitors skip the login page", true))
            }
            "enable-insecure-login" if flag_on(value) => {
                Some(("--enable-insecure-login allows login over plain HTTP", false))
            }
            "disable-settings-authorizer" if flag_on(value) => Some((
                "--disable-settings-authorizer lets any visitor change dashboard settings",
                false,
            )),
            "authentication-mode" if value.is_some_and(|v| v.to_ascii_lowercase().contains("basic")) => {
                Some((
                    "--authentication-mode=basic accepts passwords instead of bearer tokens",
                    false,
                ))
            }
            _ => None,
        };
        if let Some((reason, no_login)) = weakness {
            out.push(LoginWeakness {
                reason: reason.to_string(),
                no_login,
                pointer,
            });
        }
    }
    if let Some(image) = c.image.filter(|i| old_default_skip(i)) {
        let explicitly_off = flags(c).any(|(_, n, v)| n == "enable-skip-login" && !flag_on(v));
        if !explicitly_off {
            out.push(LoginWeakness {
                reason: format!("dashboard version in {image} offers \"skip\" on the login page by default"),
                no_login: true,
                pointer: c.field("image"),
            });
        }
    }
    out
}

/// Per-object: dashboards configured to let visitors in without (proper) login.
pub(crate) fn check(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    for c in pod.containers.iter().filter(|c| is_dashboard(c)) {
        for w in weaknesses(c) {
            let msg = format!("Kubernetes Dashboard container \"{}\": {}", c.name, w.reason);
            out.push(pod.finding(&DASHBOARD_LOGIN_DISABLED, c, msg, &w.pointer));
        }
    }
}

/// Cap on each kind of summary kept, so adversarial input cannot grow memory without bound.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
struct DashboardSeen {
    resource: ResourceRef,
    namespace: Option<String>,
    labels: Vec<(String, String)>,
    labels_pointer: String,
    /// The first reason it admits visitors without any login, if it does.
    no_login: Option<String>,
}

#[derive(Debug)]
struct ServiceSeen {
    namespace: Option<String>,
    name: String,
    selector: Vec<(String, String)>,
    /// `NodePort`, `LoadBalancer`, `externalIPs` when the Service itself is reachable from outside.
    exposure: Option<&'static str>,
}

#[derive(Debug)]
struct IngressSeen {
    namespace: Option<String>,
    name: String,
    backends: Vec<String>,
}

/// Keeps what the exposure checks need across objects (dashboards, Services, Ingresses).
#[derive(Debug, Default)]
pub struct ExposureCollector {
    dashboards: Vec<DashboardSeen>,
    services: Vec<ServiceSeen>,
    ingresses: Vec<IngressSeen>,
    /// Objects not tracked because a cap was reached.
    dropped: usize,
}

fn string_pairs(map: Option<&serde_json::Map<String, Value>>) -> Vec<(String, String)> {
    map.into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

fn same_namespace(a: &Option<String>, b: &Option<String>) -> bool {
    // A manifest without a namespace is applied into whatever namespace is current, usually its peers'.
    a.is_none() || b.is_none() || a == b
}

impl ExposureCollector {
    pub fn observe(&mut self, obj: &Object<'_>) {
        match obj.kind() {
            "Service" => self.observe_service(obj),
            "Ingress" => self.observe_ingress(obj),
            _ => self.observe_workload(obj),
        }
    }

    /// How many objects were not tracked because a cap was reached (their exposure is not evaluated).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    fn push<T>(list: &mut Vec<T>, dropped: &mut usize, item: T) {
        if list.len() < MAX_TRACKED {
            list.push(item);
        } else {
            *dropped += 1;
        }
    }

    fn observe_workload(&mut self, obj: &Object<'_>) {
        let Some(template) = obj.pod_template() else {
            return;
        };
        let containers = template.containers();
        let dashboards: Vec<&Container<'_>> = containers.iter().filter(|c| is_dashboard(c)).collect();
        if dashboards.is_empty() {
            return;
        }
        let no_login = dashboards
            .iter()
            .flat_map(|c| weaknesses(c))
            .find(|w| w.no_login)
            .map(|w| w.reason);
        let seen = DashboardSeen {
            resource: obj.resource(),
            namespace: obj.namespace().map(str::to_string),
            labels: string_pairs(template.labels()),
            labels_pointer: format!("{}/labels", template.metadata_pointer),
            no_login,
        };
        Self::push(&mut self.dashboards, &mut self.dropped, seen);
    }

    fn observe_service(&mut self, obj: &Object<'_>) {
        let spec = obj.value.get("spec");
        let selector = string_pairs(spec.and_then(|s| s.get("selector")).and_then(Value::as_object));
        if selector.is_empty() {
            return;
        }
        let exposure = match spec.and_then(|s| s.get("type")).and_then(Value::as_str) {
            Some("NodePort") => Some("NodePort"),
            Some("LoadBalancer") => Some("LoadBalancer"),
            _ if !array(spec.and_then(|s| s.get("externalIPs"))).is_empty() => Some("externalIPs"),
            _ => None,
        };
        let seen = ServiceSeen {
            namespace: obj.namespace().map(str::to_string),
            name: obj.name().to_string(),
            selector,
            exposure,
        };
        Self::push(&mut self.services, &mut self.dropped, seen);
    }

    fn observe_ingress(&mut self, obj: &Object<'_>) {
        let spec = obj.value.get("spec");
        let mut backends = Vec::new();
        let mut add = |backend: Option<&Value>| {
            let Some(b) = backend else { return };
            let name = b
                .pointer("/service/name")
                .or_else(|| b.get("serviceName"))
                .and_then(Value::as_str);
            if let Some(name) = name {
                backends.push(name.to_string());
            }
        };
        add(spec.and_then(|s| s.get("defaultBackend")));
        add(spec.and_then(|s| s.get("backend")));
        for rule in array(spec.and_then(|s| s.get("rules"))) {
            for path in array(rule.pointer("/http/paths")) {
                add(path.get("backend"));
            }
        }
        if backends.is_empty() {
            return;
        }
        let seen = IngressSeen {
            namespace: obj.namespace().map(str::to_string),
            name: obj.name().to_string(),
            backends,
        };
        Self::push(&mut self.ingresses, &mut self.dropped, seen);
    }

    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        for d in &self.dashboards {
            let mut paths = Vec::new();
            let selecting = self.services.iter().filter(|s| {
                same_namespace(&s.namespace, &d.namespace)
                    && s.selector.iter().all(|pair| d.labels.contains(pair))
            });
            for s in selecting {
                if let Some(how) = s.exposure {
                    paths.push(format!("{how} Service {}", s.name));
                }
                for i in self
                    .ingresses
                    .iter()
                    .filter(|i| same_namespace(&i.namespace, &s.namespace))
                {
                    if i.backends.contains(&s.name) {
                        paths.push(format!("Ingress {} (to Service {})", i.name, s.name));
                    }
                }
            }
            if paths.is_empty() {
                continue;
            }
            paths.sort();
            paths.dedup();
            let through = paths.join(", ");
            let (rule, msg) = match &d.no_login {
                Some(reason) => (
                    &DASHBOARD_EXPOSED_WITHOUT_LOGIN,
                    format!(
                        "Kubernetes Dashboard {} is reachable from outside through {through} and {reason}",
                        d.resource.display_name()
                    ),
                ),
                None => (
                    &DASHBOARD_EXPOSED,
                    format!(
                        "Kubernetes Dashboard {} is reachable from outside through {through}",
                        d.resource.display_name()
                    ),
                ),
            };
            let evidence = Evidence {
                pointer: d.labels_pointer.clone(),
                value: None,
                line: None,
                column: None,
            };
            out.push(Finding::from_rule(rule, d.resource.clone(), msg, Some(evidence)));
        }
    }
}

const DASHBOARD_FRAMEWORKS: &[palisade_core::FrameworkRef] = &[
    attack("T1133"),
    attack("T1190"),
    attack("T1496"),
    attack("T1610"),
    nsa("Authentication"),
    nist("4.3.2"),
];

const DASHBOARD_2: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: kubernetesui/dashboard:v2.7.0\n          args:\n            - --auto-generate-certificates\n            - --namespace=kubernetes-dashboard\n";

const DASHBOARD_SKIP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: kubernetesui/dashboard:v2.7.0\n          args:\n            - --auto-generate-certificates\n            - --enable-skip-login\n";

pub const DASHBOARD_LOGIN_DISABLED: RuleMeta = RuleMeta {
    id: "dashboard.login-disabled",
    title: "Kubernetes Dashboard allows access without proper login",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A Kubernetes Dashboard container runs with `--enable-skip-login`, `--enable-insecure-login`, \
                  `--authentication-mode=basic` or `--disable-settings-authorizer`, or is a v1 release before 1.10.1 \
                  whose login page offers \"skip\" by default.",
    rationale: "With skip-login anyone who reaches the dashboard acts with its service account, often highly \
                privileged: the 2018 Tesla cryptojacking started from such a dashboard. The other flags weaken \
                login to passwords or plain HTTP.",
    remediation: "Remove these flags, upgrade the dashboard, require bearer-token login, and give its service \
                  account minimal rights.",
    frameworks: DASHBOARD_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[DASHBOARD_2],
        fail: &[
            DASHBOARD_SKIP,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kube-system\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: k8s.gcr.io/kubernetes-dashboard-amd64:v1.8.3\n",
        ],
    },
};

pub const DASHBOARD_EXPOSED: RuleMeta = RuleMeta {
    id: "dashboard.exposed",
    title: "Kubernetes Dashboard exposed outside the cluster",
    severity: Severity::High,
    category: Category::Network,
    description: "A Kubernetes Dashboard that still requires login is selected by a NodePort, LoadBalancer or \
                  externalIPs Service, or routed to by an Ingress. (Without login, dashboard.exposed-without-login \
                  reports it instead.)",
    rationale: "The dashboard is a cluster administration console: published, it is found by internet scans within \
                hours and attacked with stolen or leaked tokens and dashboard vulnerabilities.",
    remediation: "Keep the dashboard ClusterIP-only and reach it with `kubectl proxy` or port-forward, or behind an \
                  authenticating proxy with SSO and network restrictions.",
    frameworks: DASHBOARD_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[concat!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: kubernetesui/dashboard:v2.7.0\n",
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    k8s-app: kubernetes-dashboard\n  ports:\n    - port: 443\n      targetPort: 8443\n"
        )],
        fail: &[concat!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: kubernetesui/dashboard:v2.7.0\n",
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  type: NodePort\n  selector:\n    k8s-app: kubernetes-dashboard\n  ports:\n    - port: 443\n      targetPort: 8443\n      nodePort: 30443\n"
        )],
    },
};

pub const DASHBOARD_EXPOSED_WITHOUT_LOGIN: RuleMeta = RuleMeta {
    id: "dashboard.exposed-without-login",
    title: "Kubernetes Dashboard exposed without login (Tesla cryptojacking path)",
    severity: Severity::Critical,
    category: Category::Network,
    description: "A Kubernetes Dashboard that lets visitors skip login is reachable from outside the cluster through a \
                  NodePort, LoadBalancer or externalIPs Service, or an Ingress.",
    rationale: "This is the exact path of the Tesla cryptojacking: an internet-facing dashboard without a password \
                gave attackers the cluster, its cloud credentials and its compute for mining.",
    remediation: "Take the dashboard off the network now (ClusterIP only), remove skip-login, rotate any credentials \
                  its service account could read, and look for unknown workloads.",
    frameworks: DASHBOARD_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[DASHBOARD_SKIP, DASHBOARD_2],
        fail: &[concat!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    matchLabels:\n      k8s-app: kubernetes-dashboard\n  template:\n    metadata:\n      labels:\n        k8s-app: kubernetes-dashboard\n    spec:\n      containers:\n        - name: kubernetes-dashboard\n          image: kubernetesui/dashboard:v2.7.0\n          args:\n            - --auto-generate-certificates\n            - --enable-skip-login\n",
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: kubernetes-dashboard\n  namespace: kubernetes-dashboard\nspec:\n  selector:\n    k8s-app: kubernetes-dashboard\n  ports:\n    - port: 443\n      targetPort: 8443\n",
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: dashboard\n  namespace: kubernetes-dashboard\nspec:\n  rules:\n    - host: k8s.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: kubernetes-dashboard\n                port:\n                  number: 443\n"
        )],
    },
};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::old_default_skip;
    use serde_json::{Value, json};

    fn dashboard(args: Value, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dash", "namespace": "kd"},
            "spec": {"template": {"metadata": {"labels": {"k8s-app": "dash", "tier": "ui"}},
            "spec": {"containers": [{"name": "d", "image": image, "args": args}]}}}})
    }

    fn service(kind: &str, ns: Option<&str>) -> Value {
        let mut v = json!({"kind": "Service", "metadata": {"name": "dash-svc"}, "spec": {"type": kind, "selector": {"k8s-app": "dash"}}});
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn versions() {
        assert!(old_default_skip("k8s.gcr.io/kubernetes-dashboard-amd64:v1.8.3"));
        assert!(old_default_skip("kubernetes-dashboard-amd64:v1.10.0"));
        assert!(!old_default_skip("kubernetes-dashboard-amd64:v1.10.1"));
        assert!(!old_default_skip("kubernetesui/dashboard:v2.0.0"));
        assert!(!old_default_skip("kubernetesui/dashboard"));
    }

    #[test]
    fn login_flags() {
        let f = scan(&dashboard(
            json!(["--enable-skip-login=false", "--authentication-mode", "basic"]),
            "kubernetesui/dashboard:v2.7.0",
        ));
        let hits = with_rule(&f, "dashboard.login-disabled");
        assert_eq!(hits.len(), 1);
        assert_eq!(
            hits[0].evidence.as_ref().unwrap().pointer,
            "/spec/template/spec/containers/0/args/1"
        );
        let f = scan(&dashboard(
            json!(["--enable-skip-login=false"]),
            "k8s.gcr.io/kubernetes-dashboard-amd64:v1.8.3",
        ));
        assert!(!has(&f, "dashboard.login-disabled"));
        // Flags alone identify a dashboard built from a private image.
        let f = scan(&dashboard(
            json!(["--enable-skip-login"]),
            "registry.example.com/ui:3",
        ));
        assert!(has(&f, "dashboard.login-disabled"));
        let f = scan(&dashboard(
            json!("--enable-skip-login"),
            "registry.example.com/ui:3",
        ));
        assert!(!has(&f, "dashboard.login-disabled"));
    }

    #[test]
    fn exposure_paths() {
        let skip = dashboard(json!(["--enable-skip-login"]), "kubernetesui/dashboard:v2.7.0");
        let f = scan_all(&[service("NodePort", Some("kd")), skip.clone()]);
        let hits = with_rule(&f, "dashboard.exposed-without-login");
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].message.contains("NodePort Service dash-svc"),
            "{}",
            hits[0].message
        );
        assert!(!has(&f, "dashboard.exposed"));
        // Other namespace: not the same Service.
        assert!(!has(
            &scan_all(&[service("NodePort", Some("other")), skip.clone()]),
            "dashboard.exposed-without-login"
        ));
        // ClusterIP only: not exposed; through an Ingress: exposed.
        assert!(!has(
            &scan_all(&[service("ClusterIP", None), skip.clone()]),
            "dashboard.exposed-without-login"
        ));
        let ingress = json!({"kind": "Ingress", "metadata": {"name": "i", "namespace": "kd"},
            "spec": {"rules": [{"http": {"paths": [{"backend": {"serviceName": "dash-svc"}}, "junk"]}}, 7]}});
        assert!(has(
            &scan_all(&[ingress.clone(), service("ClusterIP", None), skip]),
            "dashboard.exposed-without-login"
        ));
        let login = dashboard(json!([]), "kubernetesui/dashboard:v2.7.0");
        let f = scan_all(&[ingress, service("LoadBalancer", None), login]);
        let hits = with_rule(&f, "dashboard.exposed");
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].message.contains("LoadBalancer Service dash-svc")
                && hits[0].message.contains("Ingress i")
        );
        // A selector the dashboard's labels do not satisfy.
        let mut other = service("NodePort", None);
        other["spec"]["selector"]["tier"] = json!("api");
        assert!(!has(
            &scan_all(&[other, dashboard(json!([]), "kubernetesui/dashboard:v2.7.0")]),
            "dashboard.exposed"
        ));
    }
}
