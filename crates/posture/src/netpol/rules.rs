//! Rule definitions for NetworkPolicy coverage, with their fixtures.

use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};

const CIS_NETPOL: FrameworkRef = FrameworkRef::new(Framework::CisKubernetes, "5.3.2");
const NSA_NETWORK: FrameworkRef = FrameworkRef::new(Framework::NsaCisa, "Network separation and hardening");
const NIST_NETWORK: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.3.3");
const FRAMEWORKS: &[FrameworkRef] = &[CIS_NETPOL, NSA_NETWORK, NIST_NETWORK];

macro_rules! with_web {
    ($($doc:expr),* $(,)?) => {
        concat!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n",
            "  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n",
            "        app: web\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n",
            $("---\n", $doc),*
        )
    };
}

pub(super) const NO_DEFAULT_DENY_INGRESS: RuleMeta = RuleMeta {
    id: "netpol.no-default-deny-ingress",
    title: "Namespace has no default-deny ingress NetworkPolicy",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A namespace with workloads in the input has no NetworkPolicy that selects every pod \
        (empty podSelector), has Ingress among its policyTypes and admits nothing.",
    rationale: "Pods accept connections from anywhere in the cluster until a policy selects them. A \
        default deny makes every new workload closed unless someone allows its traffic, which limits \
        lateral movement after one pod is compromised.",
    remediation: "Add a NetworkPolicy with `podSelector: {}`, `policyTypes: [Ingress]` and no ingress rules \
        to the namespace, then allow the traffic each workload needs (`palisade netpol suggest`).",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
  namespace: shop
spec:
  podSelector: {}
  policyTypes:
    - Ingress
"
        )],
        fail: &[
            with_web!(),
            with_web!(
                "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress-only
  namespace: shop
spec:
  podSelector: {}
  policyTypes:
    - Egress
"
            ),
        ],
    },
};

pub(super) const NO_DEFAULT_DENY_EGRESS: RuleMeta = RuleMeta {
    id: "netpol.no-default-deny-egress",
    title: "Namespace has no default-deny egress NetworkPolicy",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A namespace with workloads in the input has no NetworkPolicy that selects every pod \
        (empty podSelector), has Egress among its policyTypes and allows no egress.",
    rationale: "Without an egress default deny, a compromised pod can reach every service in the cluster, \
        the cloud metadata endpoint and the internet: exfiltration, command and control and lateral \
        movement all start with outbound connections.",
    remediation: "Add a NetworkPolicy with `podSelector: {}`, `policyTypes: [Egress]` and no egress rules, \
        plus an egress allow for DNS and for the destinations each workload needs.",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
  namespace: shop
spec:
  podSelector: {}
  policyTypes:
    - Ingress
    - Egress
"
        )],
        fail: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
  namespace: shop
spec:
  podSelector: {}
"
        )],
    },
};

pub(super) const WORKLOAD_NOT_SELECTED: RuleMeta = RuleMeta {
    id: "netpol.workload-not-selected",
    title: "Workload is selected by no NetworkPolicy",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "No NetworkPolicy in the workload's namespace has a podSelector that matches the labels \
        of its pods, so none of its traffic is restricted.",
    rationale: "NetworkPolicies only isolate the pods they select; an unselected pod accepts and opens any \
        connection, whatever policies its neighbours have.",
    remediation: "Select the workload's pods with a NetworkPolicy (a namespace-wide default deny selects \
        every pod) and allow only the traffic it needs.",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  podSelector:
    matchExpressions:
      - key: app
        operator: In
        values: [web, api]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: frontend
"
        )],
        fail: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: api
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: web
"
        )],
    },
};

pub(super) const ALLOW_ALL_INGRESS: RuleMeta = RuleMeta {
    id: "netpol.allow-all-ingress",
    title: "NetworkPolicy admits all ingress",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "An ingress rule admits every source on every port: an empty rule (`- {}`), a rule without \
        `from`, an ipBlock of 0.0.0.0/0 or ::/0 without exceptions, or every pod of every namespace.",
    rationale: "Such a rule cancels the isolation of the pods the policy selects, including any default \
        deny in the namespace, while making it look as though a policy protects them.",
    remediation: "Name the sources (podSelector, namespaceSelector, narrow ipBlock) and the ports the \
        workload serves.",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &["apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-ingress
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: ingress-nginx
      ports:
        - port: 8080
"],
        fail: &[
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all
  namespace: shop
spec:
  podSelector: {}
  ingress:
    - {}
",
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-internet
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
    - from:
        - ipBlock:
            cidr: 0.0.0.0/0
",
        ],
    },
};

pub(super) const ALLOW_ALL_EGRESS: RuleMeta = RuleMeta {
    id: "netpol.allow-all-egress",
    title: "NetworkPolicy allows all egress",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "An egress rule allows every destination on every port: an empty rule, a rule without \
        `to`, an ipBlock of 0.0.0.0/0 or ::/0 without exceptions, or every pod of every namespace.",
    rationale: "Unrestricted egress lets a compromised pod reach the cloud metadata service, internal \
        databases and the internet, and cancels any egress default deny for the pods selected.",
    remediation: "Allow egress only to the destinations and ports the workload needs (DNS, its backing \
        services, specific external ranges), and exclude metadata endpoints from broad ipBlocks.",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &["apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-dns
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - protocol: UDP
          port: 53
"],
        fail: &["apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-egress-anywhere
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock:
            cidr: 0.0.0.0/0
"],
    },
};

pub(super) const SELECTS_NOTHING: RuleMeta = RuleMeta {
    id: "netpol.selects-nothing",
    title: "NetworkPolicy selects no workload",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "The policy's podSelector matches none of the workloads the input has in its namespace \
        (or cannot be understood). Only judged when the input has workloads in that namespace.",
    rationale: "A policy that selects nothing protects nothing; it usually means a label was renamed and \
        the workload it was written for is now unprotected.",
    remediation: "Fix the podSelector to match the labels of the pods the policy is meant for, or remove \
        the policy.",
    frameworks: FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Ingress]
"
        )],
        fail: &[with_web!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: database
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: database
  policyTypes: [Ingress]
"
        )],
    },
};

pub static RULES: &[RuleMeta] = &[
    NO_DEFAULT_DENY_INGRESS,
    NO_DEFAULT_DENY_EGRESS,
    WORKLOAD_NOT_SELECTED,
    ALLOW_ALL_INGRESS,
    ALLOW_ALL_EGRESS,
    SELECTS_NOTHING,
];
