//! One rule per Pod Security Standards control, in the order of [`super::CheckId::ALL`]. Fixtures
//! are judged at level restricted, version latest: every pass fixture is a fully restricted pod,
//! every fail fixture is such a pod with one change.

use palisade_core::{Category, Fixtures, Framework, FrameworkRef, RuleMeta, Severity};

const fn pss(control: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::PodSecurityStandards, control)
}
const fn cis(id: &'static str) -> FrameworkRef {
    FrameworkRef::new(Framework::CisKubernetes, id)
}
const NSA_POD_SECURITY: FrameworkRef = FrameworkRef::new(Framework::NsaCisa, "Pod security");
const NIST_RUNTIME_CONFIG: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.4.3");
const NIST_NETWORK: FrameworkRef = FrameworkRef::new(Framework::Nist800190, "4.4.2");
const ATTACK_ESCAPE: FrameworkRef = FrameworkRef::new(Framework::MitreAttack, "T1611");
const ATTACK_ELEVATION: FrameworkRef = FrameworkRef::new(Framework::MitreAttack, "T1548");

/// A pod that meets every restricted control at `latest`.
const RESTRICTED_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      ports:
        - containerPort: 8080
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#;

/// The same, as a Deployment, with an init container and per-container settings.
const RESTRICTED_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/api:1.4.2
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: RuntimeDefault
      containers:
        - name: api
          image: registry.example.com/api:1.4.2
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: RuntimeDefault
"#;

pub static RULES: &[RuleMeta] = &[
    RuleMeta {
        id: "pss.host-namespaces",
        title: "Pod shares the host's network, PID or IPC namespace",
        severity: Severity::High,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: spec.hostNetwork, spec.hostPID and spec.hostIPC must be unset or false.",
        rationale: "A pod in the host's PID namespace sees and can signal every process on the node; in the host's IPC namespace it can read shared memory of other workloads; in the host's network namespace it can reach services bound to the node's loopback interface, sniff node traffic and bypass NetworkPolicy.",
        remediation: "Remove hostNetwork, hostPID and hostIPC from the pod spec (or set them to false). Run node-level agents that really need them in a dedicated namespace with the privileged level.",
        frameworks: &[
            pss("Host Namespaces"),
            cis("5.2.3"),
            cis("5.2.4"),
            cis("5.2.5"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            NIST_NETWORK,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[
                r#"apiVersion: v1
kind: Pod
metadata:
  name: host-network
spec:
  hostNetwork: true
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: debug-tools
spec:
  selector:
    matchLabels:
      app: debug-tools
  template:
    metadata:
      labels:
        app: debug-tools
    spec:
      hostPID: true
      hostIPC: true
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: tools
          image: busybox:1.36
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
"#,
            ],
        },
    },
    RuleMeta {
        id: "pss.privileged",
        title: "Container runs privileged",
        severity: Severity::Critical,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: securityContext.privileged must be unset or false for every init, regular and ephemeral container.",
        rationale: "A privileged container has all capabilities, every host device and no seccomp, AppArmor or SELinux confinement; escaping to the node is a matter of mounting its disk or loading a kernel module.",
        remediation: "Remove securityContext.privileged (or set it to false) and grant only the specific capabilities or devices the workload needs.",
        frameworks: &[
            pss("Privileged Containers"),
            cis("5.2.2"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: privileged
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        privileged: true
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.capabilities-baseline",
        title: "Container adds capabilities beyond the default set",
        severity: Severity::High,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: securityContext.capabilities.add may only contain AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and SYS_CHROOT.",
        rationale: "Capabilities such as SYS_ADMIN, SYS_PTRACE, SYS_MODULE, NET_ADMIN or NET_RAW give a container powers over the kernel, other processes or the network that are common steps in container escapes and lateral movement.",
        remediation: "Remove the extra capabilities from securityContext.capabilities.add; prefer dropping ALL and adding back only NET_BIND_SERVICE if the process binds a low port.",
        frameworks: &[
            pss("Capabilities"),
            cis("5.2.8"),
            cis("5.2.9"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: low-port
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
          add: ["NET_BIND_SERVICE"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: sys-admin
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
          add: ["SYS_ADMIN", "NET_RAW"]
"#],
        },
    },
    RuleMeta {
        id: "pss.host-path-volumes",
        title: "Pod mounts a hostPath volume",
        severity: Severity::High,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: spec.volumes[*].hostPath must be absent.",
        rationale: "A hostPath volume exposes the node's filesystem to the container: the kubelet's credentials, the container runtime socket, other pods' data, and with write access a way to take over the node.",
        remediation: "Replace the hostPath volume with an emptyDir, a ConfigMap or Secret, or a PersistentVolumeClaim. Node agents that must read host paths belong in a namespace with the privileged level.",
        frameworks: &[
            pss("HostPath Volumes"),
            cis("5.2.12"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: scratch
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  volumes:
    - name: scratch
      emptyDir: {}
  containers:
    - name: app
      image: nginx:1.27
      volumeMounts:
        - name: scratch
          mountPath: /tmp
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: docker-socket
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  volumes:
    - name: docker
      hostPath:
        path: /var/run/docker.sock
  containers:
    - name: app
      image: nginx:1.27
      volumeMounts:
        - name: docker
          mountPath: /var/run/docker.sock
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.host-ports",
        title: "Container binds a port on the host",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: ports[*].hostPort must be unset or 0 for every container.",
        rationale: "A hostPort publishes the container directly on the node's network interfaces, bypassing Services and often NetworkPolicy, and ties the pod to nodes where the port is free.",
        remediation: "Remove hostPort and expose the container through a Service (ClusterIP, NodePort or LoadBalancer) or an Ingress.",
        frameworks: &[pss("Host Ports"), cis("5.2.13"), NSA_POD_SECURITY, NIST_NETWORK],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: host-port
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      ports:
        - containerPort: 8080
          hostPort: 8080
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.apparmor",
        title: "AppArmor profile is disabled or overridden",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: securityContext.appArmorProfile.type (pod or container) must be RuntimeDefault or Localhost, and container.apparmor.security.beta.kubernetes.io/* annotations must be runtime/default, localhost/* or empty.",
        rationale: "The runtime's default AppArmor profile blocks mounts, raw kernel interfaces and writes to sensitive /proc and /sys paths; running Unconfined removes that layer of defence against a compromised process.",
        remediation: "Remove the Unconfined setting: set appArmorProfile.type to RuntimeDefault (or Localhost with a vetted profile), or delete the AppArmor annotation.",
        frameworks: &[
            pss("AppArmor"),
            cis("5.7.3"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: apparmor-default
  annotations:
    container.apparmor.security.beta.kubernetes.io/app: localhost/k8s-nginx
spec:
  securityContext:
    runAsNonRoot: true
    appArmorProfile:
      type: RuntimeDefault
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[
                r#"apiVersion: v1
kind: Pod
metadata:
  name: apparmor-unconfined
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        appArmorProfile:
          type: Unconfined
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: apparmor-annotation
  annotations:
    container.apparmor.security.beta.kubernetes.io/app: unconfined
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
        },
    },
    RuleMeta {
        id: "pss.selinux",
        title: "Custom SELinux type, user or role",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: seLinuxOptions.type (pod or container) must be empty, container_t, container_init_t, container_kvm_t or (from v1.31) container_engine_t; seLinuxOptions.user and .role must be empty.",
        rationale: "SELinux types such as spc_t (super-privileged container) or unconfined_t lift the mandatory access control that keeps a container from the host's files and processes.",
        remediation: "Remove seLinuxOptions.user and .role and use one of the allowed container types, or leave seLinuxOptions unset so the runtime assigns container_t.",
        frameworks: &[
            pss("SELinux"),
            cis("5.7.3"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: selinux-level
spec:
  securityContext:
    runAsNonRoot: true
    seLinuxOptions:
      type: container_t
      level: "s0:c123,c456"
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: selinux-spc
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        seLinuxOptions:
          type: spc_t
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.proc-mount",
        title: "Container unmasks /proc",
        severity: Severity::High,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: securityContext.procMount must be unset or Default. From policy v1.35 the baseline level allows other values in pods with spec.hostUsers: false.",
        rationale: "The default /proc mount masks and makes read-only the paths (/proc/sys, /proc/sysrq-trigger, /proc/kcore...) through which a container could read kernel memory or change node-wide settings; Unmasked removes that protection.",
        remediation: "Remove securityContext.procMount or set it to Default.",
        frameworks: &[
            pss("/proc Mount Type"),
            cis("5.7.3"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: unmasked-proc
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        procMount: Unmasked
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.seccomp-baseline",
        title: "Seccomp is explicitly disabled",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: a seccompProfile.type (pod or container) that is set must be RuntimeDefault or Localhost; before policy v1.19 the seccomp.security.alpha.kubernetes.io annotations must be runtime/default, docker/default or localhost/*.",
        rationale: "Seccomp filters the system calls a container may make; the runtime's default profile blocks dozens of rarely needed calls that kernel exploits and escapes rely on. Unconfined turns that off.",
        remediation: "Set seccompProfile.type to RuntimeDefault (or Localhost with a vetted profile) instead of Unconfined.",
        frameworks: &[
            pss("Seccomp"),
            cis("5.7.2"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: seccomp-localhost
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: Localhost
      localhostProfile: profiles/nginx.json
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: seccomp-unconfined
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: Unconfined
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.sysctls",
        title: "Pod sets an unsafe sysctl",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: spec.securityContext.sysctls may only name the safe, namespaced sysctls of the policy version (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start, and later additions such as net.ipv4.tcp_keepalive_time).",
        rationale: "Other sysctls are not isolated per pod or can weaken kernel protections, letting one workload change behaviour for the whole node or its neighbours.",
        remediation: "Remove the sysctl from the pod, or configure it on the node if it is truly needed.",
        frameworks: &[
            pss("Sysctls"),
            cis("5.7.3"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: safe-sysctls
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
    sysctls:
      - name: net.ipv4.ip_local_port_range
        value: "1024 65000"
      - name: net.ipv4.tcp_keepalive_time
        value: "600"
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: unsafe-sysctl
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
    sysctls:
      - name: kernel.msgmax
        value: "65536"
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.windows-host-process",
        title: "Windows HostProcess container",
        severity: Severity::Critical,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline: securityContext.windowsOptions.hostProcess (pod or container) must be unset or false.",
        rationale: "A Windows HostProcess container runs directly on the node as a host process with access to the host's network, filesystem and processes: it is the Windows equivalent of a fully privileged container.",
        remediation: "Remove windowsOptions.hostProcess (or set it to false). Node management tooling that needs it belongs in a namespace with the privileged level.",
        frameworks: &[
            pss("HostProcess"),
            cis("5.2.11"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ESCAPE,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: windows-app
spec:
  os:
    name: windows
  securityContext:
    runAsNonRoot: true
    windowsOptions:
      runAsUserName: ContainerUser
  containers:
    - name: app
      image: mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: windows-host-process
spec:
  os:
    name: windows
  securityContext:
    runAsNonRoot: true
    windowsOptions:
      hostProcess: true
      runAsUserName: "NT AUTHORITY\\SYSTEM"
  containers:
    - name: app
      image: mcr.microsoft.com/windows/nanoserver:ltsc2022
"#],
        },
    },
    RuleMeta {
        id: "pss.host-probes-lifecycle",
        title: "Probe or lifecycle hook targets another host",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards baseline (v1.34+): the host field of httpGet and tcpSocket handlers in liveness, readiness and startup probes and in postStart/preStop hooks must be empty.",
        rationale: "The kubelet performs probes and lifecycle requests from the node; a host field lets a pod make the kubelet connect to arbitrary addresses (cloud metadata services, node-local APIs), a server-side request forgery through the node.",
        remediation: "Remove the host field so the kubelet targets the pod's own IP.",
        frameworks: &[
            pss("Host Probes / Lifecycle Hooks"),
            NSA_POD_SECURITY,
            NIST_NETWORK,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: probes
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      livenessProbe:
        httpGet:
          path: /healthz
          port: 8080
      readinessProbe:
        tcpSocket:
          port: 8080
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: probe-host
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      livenessProbe:
        httpGet:
          host: 169.254.169.254
          path: /latest/meta-data/
          port: 80
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.restricted-volumes",
        title: "Pod uses a volume type outside the restricted set",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted: every volume must be configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected or secret. (hostPath volumes are reported as pss.host-path-volumes.)",
        rationale: "Inline network and cloud volume sources (nfs, iscsi, rbd, gitRepo, cloud disks...) let a pod attach storage outside the cluster's storage policies, sometimes with node-level credentials; gitRepo has run arbitrary commands on the node.",
        remediation: "Use a PersistentVolumeClaim (backed by a PersistentVolume or a StorageClass) instead of the inline volume source.",
        frameworks: &[pss("Volume Types"), NSA_POD_SECURITY, NIST_RUNTIME_CONFIG],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: volumes
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  volumes:
    - name: config
      configMap:
        name: web-config
    - name: data
      persistentVolumeClaim:
        claimName: web-data
    - name: token
      projected:
        sources:
          - serviceAccountToken:
              path: token
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: nfs
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  volumes:
    - name: shared
      nfs:
        server: nfs.example.com
        path: /exports/shared
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.run-as-non-root",
        title: "Containers are not required to run as non-root",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted: securityContext.runAsNonRoot must be true on every container, set on the container or inherited from the pod; false is forbidden anywhere. From policy v1.35 pods with spec.hostUsers: false are exempt.",
        rationale: "Root in a container is root on the node's kernel unless user namespaces are in use; together with any other weakness (a writable host mount, a kernel bug, an added capability) it turns a compromised process into a node compromise.",
        remediation: "Set spec.securityContext.runAsNonRoot: true (and a non-zero runAsUser if the image's user is root), and build images that run as an unprivileged user.",
        frameworks: &[
            pss("Running as Non-root"),
            cis("5.2.7"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: maybe-root
spec:
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.allow-privilege-escalation",
        title: "Container allows privilege escalation",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted (v1.8+): securityContext.allowPrivilegeEscalation must be explicitly false on every container. From policy v1.25 Windows pods (spec.os.name: windows) are exempt.",
        rationale: "Unless no_new_privs is set, a process can gain privileges through set-user-ID or set-group-ID binaries or file capabilities, undoing the effect of running as a non-root user.",
        remediation: "Set securityContext.allowPrivilegeEscalation: false on every container, init container and ephemeral container.",
        frameworks: &[
            pss("Privilege Escalation"),
            cis("5.2.6"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
            ATTACK_ELEVATION,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: setuid-allowed
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.seccomp-restricted",
        title: "No seccomp profile is required",
        severity: Severity::Low,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted (v1.19+): seccompProfile.type must be RuntimeDefault or Localhost, set on every container or inherited from the pod. From policy v1.25 Windows pods are exempt. (An explicit Unconfined is reported as pss.seccomp-baseline.)",
        rationale: "Without an explicit profile many runtimes and clusters run containers Unconfined, with the whole system call surface of the kernel available to an attacker.",
        remediation: "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or on each container).",
        frameworks: &[
            pss("Seccomp"),
            cis("5.7.2"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: no-seccomp
spec:
  securityContext:
    runAsNonRoot: true
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.capabilities-restricted",
        title: "Container does not drop all capabilities",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted (v1.22+): securityContext.capabilities.drop must include ALL and capabilities.add may only contain NET_BIND_SERVICE. From policy v1.25 Windows pods are exempt. (Added capabilities beyond the baseline set are reported as pss.capabilities-baseline.)",
        rationale: "The runtime's default capability set still includes powers such as NET_RAW (packet spoofing), CHOWN, DAC_OVERRIDE and SETUID that few applications need; dropping them all limits what a compromised process can do.",
        remediation: "Set securityContext.capabilities.drop: [\"ALL\"] on every container and add back only NET_BIND_SERVICE if needed.",
        frameworks: &[
            pss("Capabilities"),
            cis("5.2.8"),
            cis("5.2.9"),
            cis("5.2.10"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[
                r#"apiVersion: v1
kind: Pod
metadata:
  name: default-capabilities
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
"#,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: add-chown
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
          add: ["CHOWN"]
"#,
            ],
        },
    },
    RuleMeta {
        id: "pss.run-as-user",
        title: "Container runs as user 0",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted (v1.23+): securityContext.runAsUser (pod or container) must not be 0. From policy v1.35 pods with spec.hostUsers: false are exempt.",
        rationale: "runAsUser: 0 runs the process as root, overriding the image's user and defeating runAsNonRoot intentions; root in the container is root on the node's kernel without user namespaces.",
        remediation: "Set runAsUser to a non-zero UID (for example 10001) or remove it and let the image's non-root user apply.",
        frameworks: &[
            pss("Running as Non-root user"),
            cis("5.2.7"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[RESTRICTED_POD, RESTRICTED_DEPLOYMENT],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: uid-zero
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        runAsUser: 0
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
    RuleMeta {
        id: "pss.proc-mount-restricted",
        title: "Container unmasks /proc in a user-namespaced pod",
        severity: Severity::Low,
        category: Category::Misconfiguration,
        description: "Pod Security Standards restricted (v1.35+): securityContext.procMount must be unset or Default even in pods with spec.hostUsers: false, which the baseline level relaxes. (Outside a user namespace an unmasked /proc is reported as pss.proc-mount.)",
        rationale: "A user namespace limits what root in the container can do to the node, but an unmasked /proc still exposes kernel interfaces the restricted level keeps hidden.",
        remediation: "Remove securityContext.procMount or set it to Default.",
        frameworks: &[
            pss("/proc Mount Type"),
            cis("5.7.3"),
            NSA_POD_SECURITY,
            NIST_RUNTIME_CONFIG,
        ],
        fixtures: Fixtures {
            pass: &[
                RESTRICTED_POD,
                r#"apiVersion: v1
kind: Pod
metadata:
  name: userns
spec:
  hostUsers: false
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        procMount: Default
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#,
            ],
            fail: &[r#"apiVersion: v1
kind: Pod
metadata:
  name: userns-unmasked
spec:
  hostUsers: false
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: app
      image: nginx:1.27
      securityContext:
        procMount: Unmasked
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
"#],
        },
    },
];
