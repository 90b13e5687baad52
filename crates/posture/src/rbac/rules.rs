//! Rule definitions for RBAC, with their fixtures.

use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};

const fn cis(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::CisKubernetes, id)
}
const fn attack(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::MitreAttack, id)
}
const NSA_AUTHZ: FrameworkRef = FrameworkRef::new(Framework::NsaCisa, "Authentication and authorization");
const NIST_ADMIN: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.3.1");
const NIST_UNAUTHORIZED: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.3.2");

/// A ClusterRole named `name` with one rule, as a YAML document.
macro_rules! cluster_role {
    ($name:literal, $rule:literal) => {
        concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ",
            $name,
            "\nrules:\n",
            $rule
        )
    };
}

/// A namespaced Role named `name` in `ci` with one rule, as a YAML document.
macro_rules! role {
    ($name:literal, $rule:literal) => {
        concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: ",
            $name,
            "\n  namespace: ci\nrules:\n",
            $rule
        )
    };
}

/// A ClusterRoleBinding `name` of ClusterRole `role` to the subjects (a YAML list), as a document.
macro_rules! cluster_binding {
    ($name:literal, $role:literal, $subjects:literal) => {
        concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ",
            $name,
            "\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: ",
            $role,
            "\nsubjects:\n",
            $subjects
        )
    };
}

/// A RoleBinding `name` in `ci` of a role (`kind`, `name`) to the subjects, as a document.
macro_rules! binding {
    ($name:literal, $role_kind:literal, $role:literal, $subjects:literal) => {
        concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: ",
            $name,
            "\n  namespace: ci\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ",
            $role_kind,
            "\n  name: ",
            $role,
            "\nsubjects:\n",
            $subjects
        )
    };
}

const READ_PODS: &str = role!(
    "pod-reader",
    "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get, list]\n"
);

pub(super) const WILDCARD_VERBS: RuleMeta = RuleMeta {
    id: "rbac.wildcard-verbs",
    title: "Role grants every verb (`*`)",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule of a Role or ClusterRole lists `*` among its verbs.",
    rationale: "A wildcard grants every current and future verb, including escalate, bind, impersonate, \
        delete and deletecollection, far beyond what a workload or person needs.",
    remediation: "List the verbs the subject needs (for example get, list, watch).",
    frameworks: &[cis("5.1.3"), NSA_AUTHZ, NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[role!(
            "pod-admin",
            "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [\"*\"]\n"
        )],
    },
};

pub(super) const WILDCARD_RESOURCES: RuleMeta = RuleMeta {
    id: "rbac.wildcard-resources",
    title: "Role grants access to every resource (`*`)",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule of a Role or ClusterRole lists `*` among its resources (or non-resource URLs). \
        Such rules are reported here rather than once per dangerous resource they cover.",
    rationale: "A resource wildcard covers secrets, pods/exec, roles and every custom resource added later; \
        with any write verb it is close to cluster-admin within its scope.",
    remediation: "List the resources the subject needs.",
    frameworks: &[cis("5.1.3"), NSA_AUTHZ, NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[cluster_role!(
            "everything-reader",
            "  - apiGroups: [\"\"]\n    resources: [\"*\"]\n    verbs: [get]\n"
        )],
    },
};

pub(super) const WILDCARD_API_GROUPS: RuleMeta = RuleMeta {
    id: "rbac.wildcard-api-groups",
    title: "Role grants access in every API group (`*`)",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A rule lists `*` among its apiGroups (with named resources; a wildcard on resources is \
        reported by rbac.wildcard-resources).",
    rationale: "Resource names are not unique across API groups: a wildcard group extends the grant to \
        same-named resources of every current and future API, including custom resources.",
    remediation: "Name the API groups of the resources (\"\" for the core group, apps, batch...).",
    frameworks: &[cis("5.1.3"), NSA_AUTHZ],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[role!(
            "any-group",
            "  - apiGroups: [\"*\"]\n    resources: [deployments]\n    verbs: [get]\n"
        )],
    },
};

pub(super) const SECRETS_READ: RuleMeta = RuleMeta {
    id: "rbac.secrets-read",
    title: "Role can read Secrets",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A rule grants get, list or watch on secrets without restricting resourceNames.",
    rationale: "Secrets hold service account tokens, registry credentials and application passwords; \
        list and watch return every secret's content in the scope, which is how attackers move from \
        one foothold to the rest of the cluster.",
    remediation: "Remove the access, or grant `get` on the named secrets the subject needs \
        (resourceNames); prefer mounting secrets into the workload over reading them through the API.",
    frameworks: &[cis("5.1.2"), NSA_AUTHZ, attack("T1552.007"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[role!(
            "one-secret",
            "  - apiGroups: [\"\"]\n    resources: [secrets]\n    resourceNames: [app-config]\n    verbs: [get]\n"
        )],
        fail: &[role!(
            "secret-reader",
            "  - apiGroups: [\"\"]\n    resources: [secrets]\n    verbs: [get, list]\n"
        )],
    },
};

pub(super) const PODS_EXEC: RuleMeta = RuleMeta {
    id: "rbac.pods-exec",
    title: "Role can exec or attach into pods",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants create or get on pods/exec or pods/attach.",
    rationale: "Exec and attach run commands inside containers: the subject gets each container's \
        filesystem, secrets, service account token and network position.",
    remediation: "Remove exec and attach from roles used by workloads and automation; grant them to people \
        only for break-glass access, ideally through a time-limited binding.",
    frameworks: &[NSA_AUTHZ, attack("T1609"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[role!(
            "debugger",
            "  - apiGroups: [\"\"]\n    resources: [pods/exec]\n    verbs: [create]\n"
        )],
    },
};

pub(super) const CREATE_PODS: RuleMeta = RuleMeta {
    id: "rbac.create-pods",
    title: "Role can create pods or workload controllers",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants create on pods, or create, update or patch on Deployments, ReplicaSets, \
        StatefulSets, DaemonSets, Jobs, CronJobs or ReplicationControllers.",
    rationale: "Whoever can create a pod can run it as any service account of the namespace, mount its \
        secrets and, unless admission forbids it, run it privileged on any node: a path to cluster admin.",
    remediation: "Grant workload creation only to deployment pipelines and operators that need it, scoped \
        to their namespace, and enforce Pod Security admission where they deploy.",
    frameworks: &[cis("5.1.4"), NSA_AUTHZ, attack("T1610"), NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[
            role!(
                "pod-maker",
                "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [create]\n"
            ),
            cluster_role!(
                "deployer",
                "  - apiGroups: [apps]\n    resources: [deployments]\n    verbs: [get, update, patch]\n"
            ),
        ],
    },
};

pub(super) const ESCALATE_BIND_IMPERSONATE: RuleMeta = RuleMeta {
    id: "rbac.escalate-bind-impersonate",
    title: "Role can escalate, bind or impersonate",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants escalate or bind on roles or clusterroles, or impersonate on users, \
        groups, service accounts or uids.",
    rationale: "These verbs bypass RBAC's own escalation protection: escalate edits a role to add \
        permissions the subject lacks, bind grants roles it does not hold, impersonate acts as another \
        identity (system:masters included).",
    remediation: "Remove these verbs; keep them for cluster administrators only.",
    frameworks: &[cis("5.1.8"), NSA_AUTHZ, attack("T1098.006"), NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[cluster_role!(
            "role-viewer",
            "  - apiGroups: [rbac.authorization.k8s.io]\n    resources: [roles, clusterroles]\n    verbs: [get, list]\n"
        )],
        fail: &[
            cluster_role!(
                "role-escalator",
                "  - apiGroups: [rbac.authorization.k8s.io]\n    resources: [clusterroles]\n    verbs: [escalate]\n"
            ),
            cluster_role!(
                "impersonator",
                "  - apiGroups: [\"\"]\n    resources: [users, groups]\n    verbs: [impersonate]\n"
            ),
        ],
    },
};

pub(super) const NODES_PROXY: RuleMeta = RuleMeta {
    id: "rbac.nodes-proxy",
    title: "Role can use the nodes/proxy subresource",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants any verb on nodes/proxy.",
    rationale: "nodes/proxy reaches the kubelet API of every node through the API server: running \
        commands in any pod on the node, without the audit trail or admission checks of pods/exec.",
    remediation: "Remove nodes/proxy; monitoring agents need nodes/metrics or nodes/stats instead.",
    frameworks: &[cis("5.1.10"), NSA_AUTHZ, attack("T1609"), NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[cluster_role!(
            "metrics",
            "  - apiGroups: [\"\"]\n    resources: [nodes/metrics, nodes/stats]\n    verbs: [get]\n"
        )],
        fail: &[cluster_role!(
            "node-proxy",
            "  - apiGroups: [\"\"]\n    resources: [nodes/proxy]\n    verbs: [get]\n"
        )],
    },
};

pub(super) const CSR_APPROVAL: RuleMeta = RuleMeta {
    id: "rbac.csr-approval",
    title: "Role can approve certificate signing requests",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants update or patch on certificatesigningrequests/approval, or approve on \
        signers.",
    rationale: "Approving a CSR issues a client certificate the cluster trusts; with a kubelet or \
        system:masters subject that certificate is a new identity with its privileges.",
    remediation: "Keep CSR approval with the controller manager and cluster administrators.",
    frameworks: &[cis("5.1.11"), NSA_AUTHZ, attack("T1078"), NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[cluster_role!(
            "csr-viewer",
            "  - apiGroups: [certificates.k8s.io]\n    resources: [certificatesigningrequests]\n    verbs: [get, list]\n"
        )],
        fail: &[cluster_role!(
            "csr-approver",
            "  - apiGroups: [certificates.k8s.io]\n    resources: [certificatesigningrequests/approval]\n    verbs: [update]\n"
        )],
    },
};

pub(super) const WEBHOOK_CONFIG: RuleMeta = RuleMeta {
    id: "rbac.webhook-config",
    title: "Role can modify admission webhook configurations",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants create, update, patch or delete on validatingwebhookconfigurations or \
        mutatingwebhookconfigurations.",
    rationale: "Whoever controls admission webhooks can switch off policy enforcement, or mutate every \
        pod created in the cluster to inject containers and steal secrets.",
    remediation: "Grant webhook configuration changes only to the operators that own those webhooks.",
    frameworks: &[cis("5.1.12"), NSA_AUTHZ, NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[cluster_role!(
            "webhook-viewer",
            "  - apiGroups: [admissionregistration.k8s.io]\n    resources: [mutatingwebhookconfigurations]\n    verbs: [get, list]\n"
        )],
        fail: &[cluster_role!(
            "webhook-editor",
            "  - apiGroups: [admissionregistration.k8s.io]\n    resources: [mutatingwebhookconfigurations]\n    verbs: [patch]\n"
        )],
    },
};

pub(super) const SERVICEACCOUNT_TOKEN_CREATE: RuleMeta = RuleMeta {
    id: "rbac.serviceaccount-token-create",
    title: "Role can create service account tokens",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A rule grants create on serviceaccounts/token.",
    rationale: "TokenRequest issues a token for any service account in scope: the subject can act as the \
        most privileged service account there.",
    remediation: "Remove the permission; workloads get their own token through projected volumes.",
    frameworks: &[cis("5.1.13"), NSA_AUTHZ, attack("T1528"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[READ_PODS],
        fail: &[role!(
            "token-maker",
            "  - apiGroups: [\"\"]\n    resources: [serviceaccounts/token]\n    verbs: [create]\n"
        )],
    },
};

pub(super) const CLUSTER_ADMIN_BINDING: RuleMeta = RuleMeta {
    id: "rbac.cluster-admin-binding",
    title: "Binding grants cluster-admin",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A ClusterRoleBinding or RoleBinding refers to the cluster-admin ClusterRole (subjects \
        other than the built-in system:masters group).",
    rationale: "cluster-admin is every permission on every resource; a compromised subject holding it \
        compromises the cluster. Even through a RoleBinding it is full control of the namespace.",
    remediation: "Bind a role with the permissions the subject needs; keep cluster-admin for break-glass \
        access.",
    frameworks: &[cis("5.1.1"), NSA_AUTHZ, attack("T1078"), NIST_ADMIN],
    fixtures: Fixtures {
        pass: &[concat!(cluster_binding!(
            "masters",
            "cluster-admin",
            "  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: system:masters\n"
        ),)],
        fail: &[cluster_binding!(
            "ci-admin",
            "cluster-admin",
            "  - kind: ServiceAccount\n    name: ci\n    namespace: ci\n"
        )],
    },
};

pub(super) const ANONYMOUS_BINDING: RuleMeta = RuleMeta {
    id: "rbac.anonymous-binding",
    title: "Binding grants permissions to anonymous users",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A binding has system:anonymous (user) or system:unauthenticated (group) among its \
        subjects, other than the built-in binding to system:public-info-viewer.",
    rationale: "Anyone who can reach the API server gets these permissions without credentials.",
    remediation: "Remove the anonymous subjects; give the access to authenticated identities that need it.",
    frameworks: &[NSA_AUTHZ, attack("T1078.001"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[cluster_binding!(
            "public-info",
            "system:public-info-viewer",
            "  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: system:unauthenticated\n"
        )],
        fail: &[cluster_binding!(
            "anonymous-view",
            "view",
            "  - apiGroup: rbac.authorization.k8s.io\n    kind: User\n    name: system:anonymous\n"
        )],
    },
};

pub(super) const AUTHENTICATED_BINDING: RuleMeta = RuleMeta {
    id: "rbac.authenticated-binding",
    title: "Binding grants permissions to every authenticated identity",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A binding has the group system:authenticated or system:serviceaccounts among its \
        subjects, for a role other than the built-in discovery roles (system:basic-user, \
        system:discovery, system:public-info-viewer, system:service-account-issuer-discovery).",
    rationale: "Every user and every service account of every namespace gets the role: one leaked \
        token of any pod is enough to use it.",
    remediation: "Bind the role to the users, groups or service accounts that need it.",
    frameworks: &[NSA_AUTHZ, attack("T1078"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[cluster_binding!(
            "discovery",
            "system:discovery",
            "  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: system:authenticated\n"
        )],
        fail: &[cluster_binding!(
            "everyone-views",
            "view",
            "  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: system:authenticated\n"
        )],
    },
};

pub(super) const DEFAULT_SERVICE_ACCOUNT_BINDING: RuleMeta = RuleMeta {
    id: "rbac.default-service-account-binding",
    title: "Binding grants permissions to a default service account",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A binding has a service account named `default` among its subjects.",
    rationale: "Every pod that names no service account runs as `default`: permissions bound to it \
        reach every such pod of the namespace, including ones added later.",
    remediation: "Create a dedicated service account for the workload that needs the permissions, bind \
        the role to it and set serviceAccountName.",
    frameworks: &[cis("5.1.5"), NSA_AUTHZ, NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: pod-reader\n  namespace: ci\n",
            "rules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get]\n---\n",
            binding!(
                "read-pods",
                "Role",
                "pod-reader",
                "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
            )
        )],
        fail: &[concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: pod-reader\n  namespace: ci\n",
            "rules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get]\n---\n",
            binding!(
                "read-pods",
                "Role",
                "pod-reader",
                "  - kind: ServiceAccount\n    name: default\n    namespace: ci\n"
            )
        )],
    },
};

pub(super) const SECRETS_CLUSTER_WIDE: RuleMeta = RuleMeta {
    id: "rbac.secrets-cluster-wide",
    title: "Binding lets subjects list or watch Secrets cluster-wide",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A ClusterRoleBinding grants a role (from the input) that allows list or watch on \
        secrets in every namespace. Bindings to cluster-admin are reported by rbac.cluster-admin-binding.",
    rationale: "Listing secrets everywhere returns every service account token and credential of the \
        cluster: one compromised subject becomes all of them.",
    remediation: "Bind the role with RoleBindings in the namespaces where the access is needed, and \
        restrict it to named secrets.",
    frameworks: &[cis("5.1.2"), NSA_AUTHZ, attack("T1552.007"), NIST_UNAUTHORIZED],
    fixtures: Fixtures {
        pass: &[concat!(
            cluster_role!(
                "secret-lister",
                "  - apiGroups: [\"\"]\n    resources: [secrets]\n    verbs: [list]\n"
            ),
            "---\n",
            binding!(
                "list-ci-secrets",
                "ClusterRole",
                "secret-lister",
                "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
            )
        )],
        fail: &[concat!(
            cluster_role!(
                "secret-lister",
                "  - apiGroups: [\"\"]\n    resources: [secrets]\n    verbs: [list]\n"
            ),
            "---\n",
            cluster_binding!(
                "list-all-secrets",
                "secret-lister",
                "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
            )
        )],
    },
};

/// A Deployment in `ci` running as service account `builder`, preceded by the RBAC documents.
macro_rules! with_builder_deployment {
    ($rbac:expr) => {
        concat!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\n  namespace: ci\n---\n",
            $rbac,
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: builder\n  namespace: ci\nspec:\n",
            "  selector:\n    matchLabels:\n      app: builder\n  template:\n    metadata:\n      labels:\n",
            "        app: builder\n    spec:\n      serviceAccountName: builder\n      containers:\n",
            "        - name: builder\n          image: registry.example/builder:1.0\n"
        )
    };
}

pub(super) const WORKLOAD_SA_CLUSTER_ACCESS: RuleMeta = RuleMeta {
    id: "rbac.workload-sa-cluster-access",
    title: "Workload runs as a service account that can create pods or read secrets cluster-wide",
    severity: Severity::Critical,
    category: Category::Misconfiguration,
    description: "A workload's service account (serviceAccountName, `default` when absent), whose token \
        is mounted, is granted by a ClusterRoleBinding in the input (directly, or through the groups \
        system:serviceaccounts, system:serviceaccounts:<namespace> or system:authenticated) the right to \
        create pods or workload controllers, or to read secrets, in every namespace.",
    rationale: "This is the escape path Siloscape looked for: code running in the pod uses the mounted \
        token to deploy privileged containers on any node or to collect every credential of the cluster.",
    remediation: "Give the workload a service account with only the permissions it needs, bound in its own \
        namespace; set automountServiceAccountToken: false when it needs none.",
    frameworks: &[
        cis("5.1.4"),
        cis("5.1.2"),
        cis("5.1.6"),
        NSA_AUTHZ,
        attack("T1610"),
        attack("T1552.007"),
        attack("T1611"),
        NIST_ADMIN,
    ],
    fixtures: Fixtures {
        pass: &[with_builder_deployment!(concat!(
            cluster_role!(
                "pod-maker",
                "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [create]\n"
            ),
            "---\n",
            binding!(
                "make-pods-in-ci",
                "ClusterRole",
                "pod-maker",
                "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
            )
        ))],
        fail: &[
            with_builder_deployment!(concat!(
                cluster_role!(
                    "pod-maker",
                    "  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [create]\n"
                ),
                "---\n",
                cluster_binding!(
                    "make-pods-everywhere",
                    "pod-maker",
                    "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
                )
            )),
            with_builder_deployment!(cluster_binding!(
                "builder-admin",
                "cluster-admin",
                "  - kind: ServiceAccount\n    name: builder\n    namespace: ci\n"
            )),
        ],
    },
};

pub(super) const ROLE_NOT_IN_INPUT: RuleMeta = RuleMeta {
    id: "rbac.role-not-in-input",
    title: "Binding refers to a role that is not in the input (not evaluated)",
    severity: Severity::Info,
    category: Category::Misconfiguration,
    description: "The binding's roleRef names a Role or ClusterRole the input does not define (built-in \
        roles other than cluster-admin included). Its permissions are not evaluated; the finding has the \
        status not_evaluated.",
    rationale: "Palisade does not guess what a role grants. The subjects of this binding may hold \
        permissions the other RBAC checks and the report cannot see.",
    remediation: "Scan the role together with the binding (for a live cluster, export both), or accept \
        the gap knowingly.",
    frameworks: &[NSA_AUTHZ],
    fixtures: Fixtures {
        pass: &[concat!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: pod-reader\n  namespace: ci\n",
            "rules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get]\n---\n",
            binding!(
                "read-pods",
                "Role",
                "pod-reader",
                "  - kind: User\n    name: alice\n"
            )
        )],
        fail: &[binding!(
            "edit-ci",
            "ClusterRole",
            "edit",
            "  - kind: User\n    name: alice\n"
        )],
    },
};

pub static RULES: &[RuleMeta] = &[
    WILDCARD_VERBS,
    WILDCARD_RESOURCES,
    WILDCARD_API_GROUPS,
    SECRETS_READ,
    PODS_EXEC,
    CREATE_PODS,
    ESCALATE_BIND_IMPERSONATE,
    NODES_PROXY,
    CSR_APPROVAL,
    WEBHOOK_CONFIG,
    SERVICEACCOUNT_TOKEN_CREATE,
    CLUSTER_ADMIN_BINDING,
    ANONYMOUS_BINDING,
    AUTHENTICATED_BINDING,
    DEFAULT_SERVICE_ACCOUNT_BINDING,
    SECRETS_CLUSTER_WIDE,
    WORKLOAD_SA_CLUSTER_ACCESS,
    ROLE_NOT_IN_INPUT,
];
