//! Per-container checks: resources, root filesystem, user and group ids, capabilities, ports and
//! probes. PSS already reports privilege escalation, runAsNonRoot and `drop: [ALL]` in general terms;
//! these rules name the specific, more dangerous cases.

use super::{GOOD_DEPLOYMENT, Pod, array, attack, cis, describe, nearest, nist, nsa};
use crate::object::Container;
use palisade_core::{Category, Finding, Fixtures, RuleMeta, Severity};
use serde_json::Value;

pub(crate) fn check(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    let windows = pod.is_windows();
    for c in pod.long_lived() {
        resources(pod, c, out);
        if !windows {
            read_only_root(pod, c, out);
            ids(pod, c, out);
        }
    }
    for c in &pod.containers {
        capabilities(pod, c, windows, out);
        if !windows {
            privileged_ports(pod, c, out);
        }
    }
    if !pod.is_batch() {
        for c in pod.regular() {
            probes(pod, c, out);
        }
    }
    pod_groups(pod, out);
}

fn resources(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    let res = c.value.get("resources");
    let get = |section: &str, name: &str| res.and_then(|r| r.get(section)).and_then(|s| s.get(name));
    let present = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    let who = describe(c);
    for (name, request_rule, limit_rule) in [
        ("cpu", &CPU_REQUEST, &CPU_LIMIT),
        ("memory", &MEMORY_REQUEST, &MEMORY_LIMIT),
    ] {
        let has_limit = present(get("limits", name));
        // A missing request defaults to the limit, so only both missing leaves the request unset.
        if !present(get("requests", name)) && !has_limit {
            let ptr = nearest(pod.obj.value, &c.pointer, &["resources", "requests"]);
            out.push(pod.finding(request_rule, c, format!("{who} has no {name} request"), &ptr));
        }
        if !has_limit {
            let ptr = nearest(pod.obj.value, &c.pointer, &["resources", "limits"]);
            out.push(pod.finding(limit_rule, c, format!("{who} has no {name} limit"), &ptr));
        }
    }
}

fn read_only_root(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    let set = c
        .security_context()
        .and_then(|s| s.get("readOnlyRootFilesystem"))
        .and_then(Value::as_bool);
    if set != Some(true) {
        let ptr = nearest(
            pod.obj.value,
            &c.pointer,
            &["securityContext", "readOnlyRootFilesystem"],
        );
        let msg = format!(
            "{} has a writable root filesystem (readOnlyRootFilesystem is not true)",
            describe(c)
        );
        out.push(pod.finding(&READ_ONLY_ROOT_FS, c, msg, &ptr));
    }
}

/// The value of an id field and where it is set: the container's own, else the pod's.
fn effective_id(pod: &Pod<'_, '_>, c: &Container<'_>, field: &str) -> Option<(i64, String)> {
    if let Some(v) = c
        .security_context()
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
    {
        return Some((v, c.field(&format!("securityContext/{field}"))));
    }
    let v = pod
        .template
        .pod_security_context()
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)?;
    Some((v, pod.template.spec_field(&format!("securityContext/{field}"))))
}

fn ids(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    let who = describe(c);
    if let Some((uid, ptr)) = effective_id(pod, c, "runAsUser") {
        if uid == 0 {
            out.push(pod.finding(
                &RUN_AS_UID_0,
                c,
                format!("{who} is set to run as UID 0 (root)"),
                &ptr,
            ));
        } else if (1..10_000).contains(&uid) {
            let msg =
                format!("{who} runs as UID {uid}, which may collide with a privileged user on the node");
            out.push(pod.finding(&LOW_UID, c, msg, &ptr));
        }
    }
    if let Some((gid, ptr)) = effective_id(pod, c, "runAsGroup") {
        if gid == 0 {
            out.push(pod.finding(
                &ROOT_GROUP,
                c,
                format!("{who} runs with primary GID 0 (root group)"),
                &ptr,
            ));
        } else if (1..10_000).contains(&gid) {
            let msg =
                format!("{who} runs as GID {gid}, which may collide with a privileged group on the node");
            out.push(pod.finding(&LOW_GID, c, msg, &ptr));
        }
    }
}

/// fsGroup and supplementalGroups apply to the whole pod; reported once on the pod.
fn pod_groups(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    let Some(sc) = pod.template.pod_security_context() else {
        return;
    };
    if sc.get("fsGroup").and_then(Value::as_i64) == Some(0) {
        let msg = "pod volumes are owned by GID 0 (fsGroup: 0)";
        out.push(pod.obj.finding(
            &ROOT_GROUP,
            msg,
            &pod.template.spec_field("securityContext/fsGroup"),
        ));
    }
    for (i, g) in array(sc.get("supplementalGroups")).iter().enumerate() {
        if g.as_i64() == Some(0) {
            let ptr = pod
                .template
                .spec_field(&format!("securityContext/supplementalGroups/{i}"));
            out.push(
                pod.obj
                    .finding(&ROOT_GROUP, "pod processes get supplemental group 0 (root)", &ptr),
            );
        }
    }
}

/// `cap_sys_admin`, ` SYS_ADMIN` → `SYS_ADMIN`.
fn normalize_cap(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim().to_ascii_uppercase();
    Some(s.strip_prefix("CAP_").map(str::to_string).unwrap_or(s))
}

/// Capabilities that give a container a path to the host kernel, other processes or the node's network.
const DANGEROUS: &[(&str, &str)] = &[
    ("ALL", "every capability, including SYS_ADMIN"),
    ("SYS_PTRACE", "tracing and injecting code into other processes"),
    ("SYS_MODULE", "loading kernel modules (direct escape to the host)"),
    ("NET_ADMIN", "reconfiguring interfaces, routes and firewall rules"),
    ("BPF", "loading eBPF programs into the kernel"),
    (
        "PERFMON",
        "kernel performance monitoring, a common eBPF companion",
    ),
    ("SYS_RAWIO", "raw I/O to devices and memory"),
    (
        "DAC_READ_SEARCH",
        "bypassing file read permissions (open_by_handle_at escapes)",
    ),
    ("SYS_BOOT", "rebooting the node"),
    ("SYS_TIME", "changing the node clock"),
    ("MAC_ADMIN", "changing the mandatory access control policy"),
    ("MAC_OVERRIDE", "overriding mandatory access control"),
    ("SYSLOG", "reading the kernel log and kernel addresses"),
    ("LINUX_IMMUTABLE", "changing immutable file attributes"),
    ("SYS_RESOURCE", "overriding resource limits"),
];

fn capabilities(pod: &Pod<'_, '_>, c: &Container<'_>, windows: bool, out: &mut Vec<Finding>) {
    let caps = c.security_context().and_then(|s| s.get("capabilities"));
    let add = array(caps.and_then(|c| c.get("add")));
    let drop = array(caps.and_then(|c| c.get("drop")));
    let who = describe(c);
    let mut net_raw_added = false;
    for (i, cap) in add.iter().enumerate() {
        let Some(cap) = normalize_cap(cap) else { continue };
        let ptr = c.field(&format!("securityContext/capabilities/add/{i}"));
        if cap == "SYS_ADMIN" {
            let msg = format!("{who} adds CAP_SYS_ADMIN, which is close to full root on the node");
            out.push(pod.finding(&SYS_ADMIN, c, msg, &ptr));
        } else if let Some((_, what)) = DANGEROUS.iter().find(|(name, _)| *name == cap) {
            let msg = format!("{who} adds capability {cap}: {what}");
            out.push(pod.finding(&DANGEROUS_CAPABILITIES, c, msg, &ptr));
        }
        if (cap == "NET_RAW" || cap == "ALL") && !windows && !net_raw_added {
            net_raw_added = true;
            let msg = format!("{who} adds {cap}, allowing raw sockets (packet spoofing, ARP/DNS poisoning)");
            out.push(pod.finding(&NET_RAW, c, msg, &ptr));
        }
    }
    if !windows && !net_raw_added {
        let dropped = drop
            .iter()
            .filter_map(normalize_cap)
            .any(|c| c == "NET_RAW" || c == "ALL");
        if !dropped {
            let ptr = nearest(
                pod.obj.value,
                &c.pointer,
                &["securityContext", "capabilities", "drop"],
            );
            let msg = format!("{who} does not drop NET_RAW (or ALL), so it can open raw sockets");
            out.push(pod.finding(&NET_RAW, c, msg, &ptr));
        }
    }
}

fn privileged_ports(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    for (i, port) in array(c.value.get("ports")).iter().enumerate() {
        let Some(n) = port.get("containerPort").and_then(Value::as_i64) else {
            continue;
        };
        if (1..1024).contains(&n) {
            let ptr = c.field(&format!("ports/{i}/containerPort"));
            let msg = format!(
                "{} listens on privileged port {n}, which needs root or NET_BIND_SERVICE",
                describe(c)
            );
            out.push(pod.finding(&PRIVILEGED_PORT, c, msg, &ptr));
        }
    }
}

fn probes(pod: &Pod<'_, '_>, c: &Container<'_>, out: &mut Vec<Finding>) {
    for (field, rule) in [
        ("livenessProbe", &LIVENESS_PROBE),
        ("readinessProbe", &READINESS_PROBE),
    ] {
        if c.value.get(field).is_none_or(|p| !p.is_object()) {
            out.push(pod.finding(rule, c, format!("{} has no {field}", describe(c)), &c.pointer));
        }
    }
}

const RESOURCE_FRAMEWORKS: &[palisade_core::FrameworkRef] = &[
    nsa("Resource policies"),
    nist("4.4.3"),
    nist("4.3.4"),
    attack("T1496"),
    attack("T1499"),
];

pub const CPU_REQUEST: RuleMeta = RuleMeta {
    id: "workload.cpu-request",
    title: "Container has no CPU request",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container sets neither `resources.requests.cpu` nor `resources.limits.cpu`.",
    rationale: "Without a request the scheduler cannot place the pod sensibly and the container gets the lowest CPU \
                share under contention; noisy or hijacked neighbours starve it.",
    remediation: "Set `resources.requests.cpu` from observed usage.",
    frameworks: RESOURCE_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      resources:\n        limits:\n          cpu: 500m\n"
            ),
        ],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      resources:\n        requests:\n          memory: 64Mi\n"
        )],
    },
};

pub const CPU_LIMIT: RuleMeta = RuleMeta {
    id: "workload.cpu-limit",
    title: "Container has no CPU limit",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container does not set `resources.limits.cpu`.",
    rationale: "An unlimited container can take every core of its node: a cryptominer planted in it (resource \
                hijacking) or a runaway loop degrades every other workload there.",
    remediation: "Set `resources.limits.cpu`, or enforce a default with a LimitRange in the namespace.",
    frameworks: RESOURCE_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      resources:\n        limits:\n          memory: 64Mi\n"
        )],
    },
};

pub const MEMORY_REQUEST: RuleMeta = RuleMeta {
    id: "workload.memory-request",
    title: "Container has no memory request",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container sets neither `resources.requests.memory` nor `resources.limits.memory`.",
    rationale: "Pods without memory requests are the first evicted under node pressure and let the scheduler \
                overcommit nodes.",
    remediation: "Set `resources.requests.memory` from observed usage.",
    frameworks: RESOURCE_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!("      image: registry.example.com/app:1\n")],
    },
};

pub const MEMORY_LIMIT: RuleMeta = RuleMeta {
    id: "workload.memory-limit",
    title: "Container has no memory limit",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A container does not set `resources.limits.memory`.",
    rationale: "An unlimited container can exhaust its node's memory and trigger the kernel OOM killer against \
                other pods and system daemons: a denial of service from one compromised or buggy pod.",
    remediation: "Set `resources.limits.memory`, or enforce a default with a LimitRange in the namespace.",
    frameworks: RESOURCE_FRAMEWORKS,
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      resources:\n        requests:\n          memory: 64Mi\n"
        )],
    },
};

pub const READ_ONLY_ROOT_FS: RuleMeta = RuleMeta {
    id: "workload.read-only-root-fs",
    title: "Container root filesystem is writable",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A Linux container does not set `securityContext.readOnlyRootFilesystem: true`.",
    rationale: "A writable root filesystem lets an intruder drop tools, modify binaries and persist inside the \
                container; an immutable one forces writes into explicit, reviewable volumes.",
    remediation: "Set `readOnlyRootFilesystem: true` and mount emptyDir volumes for the paths the program writes \
                  (`/tmp`, caches).",
    frameworks: &[
        nsa("Immutable container file systems"),
        cis("5.7.3"),
        nist("4.4.3"),
        attack("T1105"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        readOnlyRootFilesystem: false\n"
        )],
    },
};

pub const RUN_AS_UID_0: RuleMeta = RuleMeta {
    id: "workload.run-as-uid-0",
    title: "Container explicitly runs as UID 0",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "`runAsUser: 0` is set for a container, directly or through the pod security context.",
    rationale: "Root in a container is root on the node's kernel: any kernel or runtime escape becomes full node \
                compromise, and files on mounted volumes are written as root.",
    remediation: "Build the image with a non-root user and set `runAsUser` to a UID of 10000 or more with \
                  `runAsNonRoot: true`.",
    frameworks: &[
        cis("5.2.7"),
        nsa("Non-root containers and rootless container engines"),
        nist("4.4.3"),
        attack("T1611"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        runAsUser: 0\n"
        )],
    },
};

pub const LOW_UID: RuleMeta = RuleMeta {
    id: "workload.low-uid",
    title: "Container runs with a low UID",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container runs as a UID between 1 and 9999.",
    rationale: "Low UIDs belong to system accounts on the node. Without user namespaces a container escape or a \
                shared hostPath then acts as that node user.",
    remediation: "Run as a dedicated UID of 10000 or more.",
    frameworks: &[
        nsa("Non-root containers and rootless container engines"),
        nist("4.5.4"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        runAsUser: 1000\n"
        )],
    },
};

pub const ROOT_GROUP: RuleMeta = RuleMeta {
    id: "workload.root-group",
    title: "Pod or container uses GID 0",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "`runAsGroup`, `fsGroup` or `supplementalGroups` is 0 (the root group).",
    rationale: "Group 0 owns many files on the node and in images; processes in it can read or write what root's \
                group can, including on mounted host paths.",
    remediation: "Use a dedicated GID of 10000 or more for runAsGroup and fsGroup.",
    frameworks: &[
        nsa("Non-root containers and rootless container engines"),
        nist("4.5.4"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        runAsGroup: 0\n"
        )],
    },
};

pub const LOW_GID: RuleMeta = RuleMeta {
    id: "workload.low-gid",
    title: "Container runs with a low GID",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container runs with a primary GID between 1 and 9999.",
    rationale: "Low GIDs map to system groups on the node (disk, docker, adm); a shared volume or an escape then \
                carries that group's rights.",
    remediation: "Use a dedicated GID of 10000 or more.",
    frameworks: &[
        nsa("Non-root containers and rootless container engines"),
        nist("4.5.4"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        runAsGroup: 999\n"
        )],
    },
};

pub const NET_RAW: RuleMeta = RuleMeta {
    id: "workload.net-raw",
    title: "NET_RAW capability is not dropped",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A Linux container keeps CAP_NET_RAW: it neither drops NET_RAW nor ALL, or adds it back.",
    rationale: "NET_RAW lets a process craft packets: ARP and DNS spoofing against other pods on the node, and it is \
                needed by several kernel exploits.",
    remediation: "Add `NET_RAW` (or `ALL`) to `securityContext.capabilities.drop`; use unprivileged ICMP sockets for \
                  ping.",
    frameworks: &[
        cis("5.2.8"),
        nsa("Pod security enforcement"),
        nist("4.4.3"),
        attack("T1557"),
    ],
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      securityContext:\n        capabilities:\n          drop: [cap_net_raw]\n"
            ),
        ],
        fail: &[
            pod_with!("      image: registry.example.com/app:1\n"),
            pod_with!(
                "      image: registry.example.com/app:1\n      securityContext:\n        capabilities:\n          drop: [ALL]\n          add: [NET_RAW]\n"
            ),
        ],
    },
};

pub const SYS_ADMIN: RuleMeta = RuleMeta {
    id: "workload.cap-sys-admin",
    title: "Container adds CAP_SYS_ADMIN",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A container adds the SYS_ADMIN capability.",
    rationale: "SYS_ADMIN allows mounting filesystems, cgroup manipulation and many other kernel operations; with it, \
                known techniques (cgroup release_agent, mounting the host disk) escape to the node.",
    remediation: "Remove SYS_ADMIN from `capabilities.add`; grant the narrow capability the program really needs, or \
                  move the privileged work to a reviewed node component.",
    frameworks: &[
        cis("5.2.9"),
        nsa("Pod security enforcement"),
        nist("4.4.3"),
        attack("T1611"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        capabilities:\n          add: [\"CAP_SYS_ADMIN\"]\n"
        )],
    },
};

pub const DANGEROUS_CAPABILITIES: RuleMeta = RuleMeta {
    id: "workload.dangerous-capabilities",
    title: "Container adds a dangerous capability",
    severity: Severity::High,
    category: Category::Misconfiguration,
    description: "A container adds ALL or one of SYS_PTRACE, SYS_MODULE, NET_ADMIN, BPF, PERFMON, SYS_RAWIO, \
                  DAC_READ_SEARCH, SYS_BOOT, SYS_TIME, MAC_ADMIN, MAC_OVERRIDE, SYSLOG, LINUX_IMMUTABLE, SYS_RESOURCE \
                  (SYS_ADMIN and NET_RAW have their own rules).",
    rationale: "Each of these reaches past the container boundary: into other processes, the kernel, the node's \
                network or its devices.",
    remediation: "Remove the capability; if a node agent truly needs it, run it in a dedicated, audited namespace.",
    frameworks: &[
        cis("5.2.9"),
        nsa("Pod security enforcement"),
        nist("4.4.3"),
        attack("T1611"),
        attack("T1068"),
    ],
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com/app:1\n      securityContext:\n        capabilities:\n          add: [NET_BIND_SERVICE]\n"
            ),
        ],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      securityContext:\n        capabilities:\n          add: [SYS_PTRACE]\n"
        )],
    },
};

pub const PRIVILEGED_PORT: RuleMeta = RuleMeta {
    id: "workload.privileged-port",
    title: "Container listens on a privileged port",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A Linux container declares a containerPort below 1024.",
    rationale: "Binding below 1024 needs root or NET_BIND_SERVICE, so the container is likely built to run with more \
                privilege than it needs.",
    remediation: "Listen on a port of 1024 or more and map the Service port to it.",
    frameworks: &[
        nsa("Non-root containers and rootless container engines"),
        nist("4.4.3"),
    ],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      ports:\n        - containerPort: 80\n"
        )],
    },
};

pub const LIVENESS_PROBE: RuleMeta = RuleMeta {
    id: "workload.liveness-probe",
    title: "Container has no liveness probe",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A long-running container (not a Job or a pod with restartPolicy Never/OnFailure) has no \
                  livenessProbe.",
    rationale: "Without a liveness probe a hung or degraded process keeps its pod: availability suffers and a wedged \
                service is never restarted into a known state.",
    remediation: "Add a `livenessProbe` that checks the process is making progress.",
    frameworks: &[nist("4.4.4")],
    fixtures: Fixtures {
        pass: &[
            GOOD_DEPLOYMENT,
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  namespace: shop\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: once\n          image: registry.example.com/once:1\n",
        ],
        fail: &[pod_with!("      image: registry.example.com/app:1\n")],
    },
};

pub const READINESS_PROBE: RuleMeta = RuleMeta {
    id: "workload.readiness-probe",
    title: "Container has no readiness probe",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A long-running container has no readinessProbe.",
    rationale: "Without a readiness probe Services send traffic to pods that are still starting or failing.",
    remediation: "Add a `readinessProbe` that checks the container can serve.",
    frameworks: &[nist("4.4.4")],
    fixtures: Fixtures {
        pass: &[GOOD_DEPLOYMENT],
        fail: &[pod_with!(
            "      image: registry.example.com/app:1\n      livenessProbe:\n        tcpSocket:\n          port: 8080\n"
        )],
    },
};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use serde_json::json;

    #[test]
    fn resources_defaults_and_pointers() {
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "image": "x:1", "resources": {"limits": {"cpu": 1}}}]}),
        ));
        assert!(!has(&f, "workload.cpu-request") && !has(&f, "workload.cpu-limit"));
        let mem = with_rule(&f, "workload.memory-limit");
        assert_eq!(
            mem[0].evidence.as_ref().unwrap().pointer,
            "/spec/containers/0/resources/limits"
        );
        assert_eq!(mem[0].resource.container.as_deref(), Some("a"));
        let req = with_rule(&f, "workload.memory-request");
        assert_eq!(
            req[0].evidence.as_ref().unwrap().pointer,
            "/spec/containers/0/resources"
        );
        // Wrong types: resources as a string.
        let f = scan(&pod(json!({"containers": [{"name": "a", "resources": "lots"}]})));
        assert_eq!(with_rule(&f, "workload.cpu-limit").len(), 1);
        // Ephemeral containers cannot carry resources.
        let f = scan(&pod(json!({"ephemeralContainers": [{"name": "dbg"}]})));
        assert!(!has(&f, "workload.cpu-limit"));
    }

    #[test]
    fn uids_gids_and_windows() {
        let f = scan(&pod(
            json!({"securityContext": {"runAsUser": 0, "fsGroup": 0, "supplementalGroups": [5, 0]},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 20000, "runAsGroup": 50}}]}),
        ));
        let root = with_rule(&f, "workload.run-as-uid-0");
        assert_eq!(root.len(), 1);
        assert_eq!(
            root[0].evidence.as_ref().unwrap().pointer,
            "/spec/securityContext/runAsUser"
        );
        assert_eq!(with_rule(&f, "workload.low-gid").len(), 1);
        assert_eq!(with_rule(&f, "workload.root-group").len(), 2);
        assert!(!has(&f, "workload.low-uid"));
        let f = scan(&pod(
            json!({"securityContext": {"runAsUser": "0"}, "containers": [{"name": "a"}]}),
        ));
        assert!(!has(&f, "workload.run-as-uid-0"));
        let f = scan(&pod(
            json!({"os": {"name": "windows"}, "securityContext": {"runAsUser": 0},
            "containers": [{"name": "a"}]}),
        ));
        assert!(!has(&f, "workload.run-as-uid-0") && !has(&f, "workload.net-raw"));
        assert!(!has(&f, "workload.read-only-root-fs"));
    }

    #[test]
    fn capabilities() {
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "securityContext": {"capabilities": {
            "drop": ["ALL"], "add": ["cap_sys_admin", "SYS_PTRACE", "NET_BIND_SERVICE", 3, "bpf"]}}}]}),
        ));
        let sys = with_rule(&f, "workload.cap-sys-admin");
        assert_eq!(
            sys[0].evidence.as_ref().unwrap().pointer,
            "/spec/containers/0/securityContext/capabilities/add/0"
        );
        assert_eq!(with_rule(&f, "workload.dangerous-capabilities").len(), 2);
        assert!(!has(&f, "workload.net-raw"));
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["ALL"]}}}]}),
        ));
        assert_eq!(with_rule(&f, "workload.net-raw").len(), 1);
        assert_eq!(with_rule(&f, "workload.dangerous-capabilities").len(), 1);
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "securityContext": {"capabilities": {"drop": "ALL"}}}]}),
        ));
        let raw = with_rule(&f, "workload.net-raw");
        assert_eq!(
            raw[0].evidence.as_ref().unwrap().pointer,
            "/spec/containers/0/securityContext/capabilities/drop"
        );
    }

    #[test]
    fn probes_ports_and_batch() {
        let f = scan(&pod(
            json!({"containers": [{"name": "a", "ports": [{"containerPort": 443}, {"containerPort": "80"}]}],
            "initContainers": [{"name": "i"}]}),
        ));
        assert_eq!(with_rule(&f, "workload.privileged-port").len(), 1);
        assert_eq!(with_rule(&f, "workload.liveness-probe").len(), 1);
        let f = scan(&pod(
            json!({"restartPolicy": "Never", "containers": [{"name": "a"}]}),
        ));
        assert!(!has(&f, "workload.liveness-probe") && !has(&f, "workload.readiness-probe"));
    }
}
