//! Service and Ingress exposure: node ports, load balancers, external IPs (CVE-2020-8554), sensitive
//! ports published outside the cluster, Ingresses without TLS and nginx snippet annotations.

use super::{array, attack, nist, nsa};
use crate::object::{Object, escape_token};
use palisade_core::{Category, Finding, Fixtures, RuleMeta, Severity};
use serde_json::Value;

pub(crate) fn check_object(obj: &Object<'_>, out: &mut Vec<Finding>) {
    match obj.kind() {
        "Service" => service(obj, out),
        "Ingress" => ingress(obj, out),
        _ => {}
    }
}

/// Annotations cloud providers use to keep a LoadBalancer on the private network.
const INTERNAL_LB: &[(&str, &str)] = &[
    ("service.beta.kubernetes.io/aws-load-balancer-internal", ""),
    ("service.beta.kubernetes.io/aws-load-balancer-scheme", "internal"),
    ("service.beta.kubernetes.io/azure-load-balancer-internal", "true"),
    ("networking.gke.io/load-balancer-type", "internal"),
    ("cloud.google.com/load-balancer-type", "internal"),
    ("service.beta.kubernetes.io/oci-load-balancer-internal", "true"),
    (
        "service.kubernetes.io/ibm-load-balancer-cloud-provider-ip-type",
        "private",
    ),
];

/// Ports of admin and data services that should never be published outside the cluster.
const SENSITIVE_PORTS: &[(i64, &str)] = &[
    (22, "SSH"),
    (23, "Telnet"),
    (2375, "Docker API (plain)"),
    (2376, "Docker API"),
    (2379, "etcd"),
    (2380, "etcd peer"),
    (3306, "MySQL"),
    (3389, "RDP"),
    (5432, "PostgreSQL"),
    (5900, "VNC"),
    (5984, "CouchDB"),
    (6379, "Redis"),
    (6443, "Kubernetes API"),
    (8443, "Kubernetes Dashboard / admin HTTPS"),
    (9200, "Elasticsearch"),
    (10250, "kubelet API"),
    (10255, "kubelet read-only API"),
    (11211, "memcached"),
    (27017, "MongoDB"),
    (44134, "Helm Tiller"),
];

fn is_internal_lb(obj: &Object<'_>) -> bool {
    INTERNAL_LB.iter().any(|(key, want)| {
        obj.annotation(key).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            if want.is_empty() {
                v == "true" || v.starts_with("0.0.0.0") || v == "internal"
            } else {
                v == *want
            }
        })
    })
}

fn service(obj: &Object<'_>, out: &mut Vec<Finding>) {
    let spec = obj.value.get("spec");
    let kind = spec
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let name = obj.name();
    let mut exposed = None;
    match kind {
        "NodePort" => {
            let msg = format!("Service {name} is of type NodePort: its ports open on every node's address");
            out.push(obj.finding(&NODE_PORT, msg, "/spec/type"));
            exposed = Some("NodePort");
        }
        "LoadBalancer" if !is_internal_lb(obj) => {
            let ranges = array(spec.and_then(|s| s.get("loadBalancerSourceRanges")));
            let restricted = !ranges.is_empty()
                && ranges.iter().all(|r| {
                    r.as_str()
                        .is_some_and(|r| !matches!(r.trim(), "0.0.0.0/0" | "::/0"))
                });
            if !restricted {
                let msg = format!(
                    "Service {name} is an external LoadBalancer without loadBalancerSourceRanges limiting who can reach it"
                );
                out.push(obj.finding(&LOAD_BALANCER, msg, "/spec/type"));
                exposed = Some("LoadBalancer");
            }
        }
        _ => {}
    }
    let external = array(spec.and_then(|s| s.get("externalIPs")));
    if !external.is_empty() {
        let msg = format!(
            "Service {name} sets externalIPs ({} address(es)): traffic to those addresses is captured cluster-wide \
             (CVE-2020-8554)",
            external.len()
        );
        out.push(obj.finding(&EXTERNAL_IPS, msg, "/spec/externalIPs"));
        exposed = exposed.or(Some("externalIPs"));
    }
    let Some(how) = exposed else { return };
    for (i, port) in array(spec.and_then(|s| s.get("ports"))).iter().enumerate() {
        for field in ["port", "targetPort"] {
            let Some(n) = port.get(field).and_then(Value::as_i64) else {
                continue;
            };
            if let Some((_, what)) = SENSITIVE_PORTS.iter().find(|(p, _)| *p == n) {
                let msg =
                    format!("Service {name} publishes port {n} ({what}) outside the cluster through {how}");
                out.push(obj.finding(&SENSITIVE_PORT_EXPOSED, msg, &format!("/spec/ports/{i}/{field}")));
                break;
            }
        }
    }
}

/// Snippet annotations of ingress-nginx that inject raw configuration into the controller.
const SNIPPETS: &[&str] = &[
    "nginx.ingress.kubernetes.io/configuration-snippet",
    "nginx.ingress.kubernetes.io/server-snippet",
    "nginx.ingress.kubernetes.io/auth-snippet",
    "nginx.ingress.kubernetes.io/stream-snippet",
    "nginx.ingress.kubernetes.io/modsecurity-snippet",
    "nginx.org/server-snippets",
    "nginx.org/location-snippets",
];

fn ingress(obj: &Object<'_>, out: &mut Vec<Finding>) {
    let name = obj.name();
    let spec = obj.value.get("spec");
    let tls = array(spec.and_then(|s| s.get("tls")));
    if tls.is_empty() {
        let ptr = if spec.is_some() { "/spec" } else { "" };
        let msg = format!("Ingress {name} serves plain HTTP: it has no tls section");
        out.push(obj.finding(&INGRESS_NO_TLS, msg, ptr));
    } else {
        let covered: Vec<&str> = tls
            .iter()
            .flat_map(|t| array(t.get("hosts")))
            .filter_map(Value::as_str)
            .collect();
        for (i, rule) in array(spec.and_then(|s| s.get("rules"))).iter().enumerate() {
            let Some(host) = rule.get("host").and_then(Value::as_str) else {
                continue;
            };
            if !covered.iter().any(|c| host_matches(c, host)) {
                let msg = format!("Ingress {name} serves host {host} without TLS (no tls entry covers it)");
                out.push(obj.finding(&INGRESS_NO_TLS, msg, &format!("/spec/rules/{i}/host")));
            }
        }
    }
    if let Some(annotations) = obj.annotations() {
        for (key, _) in annotations.iter().filter(|(k, _)| SNIPPETS.contains(&k.as_str())) {
            let msg = format!("Ingress {name} injects raw controller configuration through annotation {key}");
            let ptr = format!("/metadata/annotations/{}", escape_token(key));
            out.push(obj.finding(&INGRESS_SNIPPETS, msg, &ptr));
        }
    }
}

/// TLS host `*.example.com` covers one label: `a.example.com`, not `example.com` or `a.b.example.com`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

const WEB_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: 8080\n";

pub const NODE_PORT: RuleMeta = RuleMeta {
    id: "service.node-port",
    title: "Service exposed through NodePort",
    severity: Severity::Medium,
    category: Category::Network,
    description: "A Service has `type: NodePort`.",
    rationale: "A NodePort opens the port on every node's addresses, around any Ingress, WAF or load balancer \
                policy; nodes are often reachable from wider networks than intended.",
    remediation: "Use a ClusterIP Service behind an Ingress or an internal load balancer; if a NodePort is required, \
                  firewall the node port range.",
    frameworks: &[
        nsa("Network separation and hardening"),
        nist("4.4.2"),
        nist("4.3.3"),
        attack("T1133"),
        attack("T1190"),
    ],
    fixtures: Fixtures {
        pass: &[WEB_SERVICE],
        fail: &[
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  type: NodePort\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: 8080\n      nodePort: 30080\n",
        ],
    },
};

pub const LOAD_BALANCER: RuleMeta = RuleMeta {
    id: "service.load-balancer",
    title: "Service exposed through an unrestricted LoadBalancer",
    severity: Severity::Medium,
    category: Category::Network,
    description: "A Service has `type: LoadBalancer`, is not marked internal for its cloud provider, and does not \
                  restrict clients with `loadBalancerSourceRanges`.",
    rationale: "An external load balancer publishes the workload to the internet; anything behind it is attacked \
                within minutes of creation.",
    remediation: "Put the workload behind an Ingress with TLS and a WAF, use an internal load balancer annotation, or \
                  restrict `loadBalancerSourceRanges` to known networks.",
    frameworks: &[
        nsa("Network separation and hardening"),
        nist("4.4.2"),
        attack("T1133"),
        attack("T1190"),
    ],
    fixtures: Fixtures {
        pass: &[
            WEB_SERVICE,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  type: LoadBalancer\n  loadBalancerSourceRanges: [203.0.113.0/24]\n  selector:\n    app: web\n  ports:\n    - port: 443\n      targetPort: 8443\n",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    networking.gke.io/load-balancer-type: Internal\nspec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n    - port: 80\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  type: LoadBalancer\n  selector:\n    app: web\n  ports:\n    - port: 80\n      targetPort: 8080\n",
        ],
    },
};

pub const EXTERNAL_IPS: RuleMeta = RuleMeta {
    id: "service.external-ips",
    title: "Service sets externalIPs (CVE-2020-8554)",
    severity: Severity::High,
    category: Category::Network,
    description: "A Service sets `spec.externalIPs`.",
    rationale: "kube-proxy routes traffic for any externalIP to the Service, cluster-wide: a user who may create \
                Services can intercept traffic meant for other addresses (CVE-2020-8554, unpatchable by design).",
    remediation: "Do not use externalIPs; use a LoadBalancer or Ingress. Block the field cluster-wide with the \
                  DenyServiceExternalIPs admission plugin or a policy.",
    frameworks: &[
        attack("T1557"),
        nist("4.3.3"),
        nsa("Network separation and hardening"),
    ],
    fixtures: Fixtures {
        pass: &[WEB_SERVICE],
        fail: &[
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  selector:\n    app: web\n  externalIPs:\n    - 23.185.0.3\n  ports:\n    - port: 80\n",
        ],
    },
};

pub const SENSITIVE_PORT_EXPOSED: RuleMeta = RuleMeta {
    id: "service.sensitive-port-exposed",
    title: "Admin or data port published outside the cluster",
    severity: Severity::High,
    category: Category::Network,
    description: "A NodePort, external LoadBalancer or externalIPs Service publishes a port of an administrative or \
                  data service (SSH, RDP, Docker API, etcd, kubelet, Kubernetes API, databases, Redis, Elasticsearch, \
                  Tiller, ...).",
    rationale: "These services are the targets of automated internet scans: exposed Docker APIs, Redis and \
                Elasticsearch are routinely taken over for cryptomining and data theft.",
    remediation: "Keep the Service ClusterIP-only and reach it through a VPN, bastion or port-forward.",
    frameworks: &[
        attack("T1133"),
        attack("T1190"),
        attack("T1496"),
        nist("4.4.2"),
        nsa("Network separation and hardening"),
    ],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis\n  namespace: shop\nspec:\n  selector:\n    app: redis\n  ports:\n    - port: 6379\n",
        ],
        fail: &[
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: redis\n  namespace: shop\nspec:\n  type: LoadBalancer\n  selector:\n    app: redis\n  ports:\n    - port: 6379\n",
        ],
    },
};

pub const INGRESS_NO_TLS: RuleMeta = RuleMeta {
    id: "ingress.no-tls",
    title: "Ingress without TLS",
    severity: Severity::Medium,
    category: Category::Network,
    description: "An Ingress has no `tls` section, or serves a host that no `tls` entry covers.",
    rationale: "Plain HTTP exposes credentials, session cookies and data to anyone on the path, and lets them alter \
                responses.",
    remediation: "Add a `tls` entry for every host with a certificate Secret (cert-manager can issue them) and \
                  redirect HTTP to HTTPS.",
    frameworks: &[nsa("Encryption"), nist("4.3.3"), attack("T1557"), attack("T1040")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  tls:\n    - hosts: [\"*.example.com\"]\n      secretName: web-tls\n  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: web\n                port:\n                  number: 80\n",
        ],
        fail: &[
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: web\n                port:\n                  number: 80\n",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  tls:\n    - hosts: [shop.example.com]\n      secretName: web-tls\n  rules:\n    - host: admin.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: admin\n                port:\n                  number: 80\n",
        ],
    },
};

pub const INGRESS_SNIPPETS: RuleMeta = RuleMeta {
    id: "ingress.snippet-annotation",
    title: "Ingress injects raw controller configuration",
    severity: Severity::High,
    category: Category::Network,
    description: "An Ingress uses an NGINX snippet annotation (`configuration-snippet`, `server-snippet`, \
                  `auth-snippet`, ...).",
    rationale: "Snippets are pasted into the shared controller's configuration: whoever may edit an Ingress can read \
                the controller's service account token and every TLS key it serves (CVE-2021-25742), or bypass \
                authentication for other tenants.",
    remediation: "Replace snippets with dedicated annotations or controller-level configuration, and run \
                  ingress-nginx with `allow-snippet-annotations: false`.",
    frameworks: &[attack("T1190"), attack("T1552.007"), nist("4.3.2")],
    fixtures: Fixtures {
        pass: &[
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/ssl-redirect: \"true\"\nspec:\n  tls:\n    - hosts: [shop.example.com]\n      secretName: web-tls\n  rules:\n    - host: shop.example.com\n",
        ],
        fail: &[
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      more_set_headers \"X-Frame-Options: DENY\";\nspec:\n  tls:\n    - hosts: [shop.example.com]\n      secretName: web-tls\n  rules:\n    - host: shop.example.com\n",
        ],
    },
};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::host_matches;
    use serde_json::json;

    #[test]
    fn services() {
        let svc = |spec: serde_json::Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec});
        let f = scan(&svc(
            json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": 2375}, {"port": "x"}]}),
        ));
        assert!(has(&f, "service.node-port"));
        let sens = with_rule(&f, "service.sensitive-port-exposed");
        assert_eq!(
            sens[0].evidence.as_ref().unwrap().pointer,
            "/spec/ports/0/targetPort"
        );
        let f = scan(&svc(
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["0.0.0.0/0"]}),
        ));
        assert!(has(&f, "service.load-balancer"));
        let f = scan(&svc(json!({"externalIPs": ["1.2.3.4"], "ports": [{"port": 22}]})));
        assert!(has(&f, "service.external-ips") && has(&f, "service.sensitive-port-exposed"));
        let f = scan(&svc(json!({"ports": [{"port": 22}]})));
        assert!(f.is_empty(), "{f:?}");
        assert!(scan(&json!({"kind": "Service", "spec": "weird"})).is_empty());
    }

    #[test]
    fn ingresses() {
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        let f = scan(
            &json!({"kind": "Ingress", "metadata": {"name": "i", "annotations": {
            "nginx.ingress.kubernetes.io/server-snippet": "x"}}, "spec": {"tls": [{"hosts": ["a.example.com"]}],
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {"http": {}}]}}),
        );
        let tls = with_rule(&f, "ingress.no-tls");
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].evidence.as_ref().unwrap().pointer, "/spec/rules/1/host");
        assert_eq!(
            with_rule(&f, "ingress.snippet-annotation")[0]
                .evidence
                .as_ref()
                .unwrap()
                .pointer,
            "/metadata/annotations/nginx.ingress.kubernetes.io~1server-snippet"
        );
        assert!(has(&scan(&json!({"kind": "Ingress"})), "ingress.no-tls"));
    }
}
