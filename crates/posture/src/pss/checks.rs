//! The check implementations, one function per upstream check, each choosing its versioned
//! behaviour from the policy minor version. Values of the wrong JSON type never panic: a field
//! compared against a forbidden value (`privileged: true`) is only forbidden when it is exactly that
//! value; a field that must hold an allowed value (`allowPrivilegeEscalation: false`, a seccomp type)
//! is only allowed when it is exactly one of them.

use super::{CheckId, Violation};
use crate::object::{Container, PodTemplate, escape_token};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

const CAPABILITIES_BASELINE_ALLOWED: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Safe sysctls, each with the policy minor version that first allows it.
const SYSCTLS_ALLOWED: &[(&str, u32)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

/// SELinux types a pod may ask for, each with the policy minor version that first allows it.
const SELINUX_TYPES_ALLOWED: &[(&str, u32)] = &[
    ("", 0),
    ("container_t", 0),
    ("container_init_t", 0),
    ("container_kvm_t", 0),
    ("container_engine_t", 31),
];

/// Volume sources the restricted level allows.
const RESTRICTED_VOLUMES_ALLOWED: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Volume sources the restricted level forbids by name; anything else is reported as "unknown".
const RESTRICTED_VOLUMES_FORBIDDEN: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// What every check looks at, extracted once per pod.
pub(super) struct Pod<'a> {
    template: PodTemplate<'a>,
    containers: Vec<Container<'a>>,
    /// Index of the first container with each name (annotations name containers).
    by_name: HashMap<&'a str, usize>,
    security_context: Option<&'a Map<String, Value>>,
    /// `spec.os.name: windows` (exempts some restricted checks from v1.25).
    windows: bool,
    /// `spec.hostUsers: false` (relaxes some checks from v1.35).
    user_namespace: bool,
}

impl<'a> Pod<'a> {
    pub(super) fn new(template: &PodTemplate<'a>) -> Pod<'a> {
        let spec = template.spec;
        let containers = template.containers();
        let mut by_name = HashMap::with_capacity(containers.len());
        for (i, c) in containers.iter().enumerate() {
            by_name.entry(c.name).or_insert(i);
        }
        Pod {
            template: *template,
            containers,
            by_name,
            security_context: template.pod_security_context().and_then(Value::as_object),
            windows: spec
                .get("os")
                .and_then(|os| os.get("name"))
                .and_then(Value::as_str)
                == Some("windows"),
            user_namespace: spec.get("hostUsers") == Some(&Value::Bool(false)),
        }
    }

    fn pod_context(&self, key: &str) -> Option<&'a Value> {
        set(self.security_context.and_then(|sc| sc.get(key)))
    }
}

/// Collects violations for one check run.
struct Sink<'p, 'a> {
    pod: &'p Pod<'a>,
    by: CheckId,
    out: &'p mut Vec<Violation<'a>>,
}

impl<'a> Sink<'_, 'a> {
    fn pod(&mut self, check: CheckId, pointer: String, message: String) {
        self.out.push(Violation {
            check,
            evaluated_by: self.by,
            container: None,
            pointer,
            message,
        });
    }

    fn container(&mut self, check: CheckId, c: &Container<'a>, pointer: String, message: String) {
        self.out.push(Violation {
            check,
            evaluated_by: self.by,
            container: Some(c.clone()),
            pointer,
            message,
        });
    }

    fn spec_pointer(&self, path: &str) -> String {
        self.pod.template.spec_field(path)
    }

    /// Pointer to `path` below the pod spec, or to its nearest existing ancestor.
    fn spec_nearest(&self, path: &[&str]) -> String {
        nearest(self.pod.template.spec, self.pod.template.spec_pointer, path)
    }
}

/// Runs one check at policy minor version `minor` (already clamped to the newest known).
pub(super) fn run<'a>(id: CheckId, minor: u32, pod: &Pod<'a>, out: &mut Vec<Violation<'a>>) {
    let mut sink = Sink { pod, by: id, out };
    match id {
        CheckId::HostNamespaces => host_namespaces(&mut sink),
        CheckId::Privileged => privileged(&mut sink),
        CheckId::CapabilitiesBaseline => capabilities_baseline(&mut sink),
        CheckId::HostPathVolumes => host_path_volumes(&mut sink),
        CheckId::HostPorts => host_ports(&mut sink),
        CheckId::AppArmorProfile => apparmor(&mut sink),
        CheckId::SeLinuxOptions => selinux(&mut sink, minor),
        CheckId::ProcMount => {
            if !(minor >= 35 && pod.user_namespace) {
                proc_mount(&mut sink, CheckId::ProcMount);
            }
        }
        CheckId::SeccompProfileBaseline => {
            if minor >= 19 {
                seccomp_baseline_fields(&mut sink);
            } else {
                seccomp_baseline_annotations(&mut sink);
            }
        }
        CheckId::Sysctls => sysctls(&mut sink, minor),
        CheckId::WindowsHostProcess => windows_host_process(&mut sink),
        CheckId::HostProbesAndHostLifecycle => host_probes_and_lifecycle(&mut sink),
        CheckId::RestrictedVolumes => restricted_volumes(&mut sink),
        CheckId::RunAsNonRoot => {
            if !(minor >= 35 && pod.user_namespace) {
                run_as_non_root(&mut sink);
            }
        }
        CheckId::AllowPrivilegeEscalation => {
            if !(minor >= 25 && pod.windows) {
                allow_privilege_escalation(&mut sink);
            }
        }
        CheckId::SeccompProfileRestricted => {
            if !(minor >= 25 && pod.windows) {
                seccomp_restricted(&mut sink);
            }
        }
        CheckId::CapabilitiesRestricted => {
            if !(minor >= 25 && pod.windows) {
                capabilities_restricted(&mut sink);
            }
        }
        CheckId::RunAsUser => {
            if !(minor >= 35 && pod.user_namespace) {
                run_as_user(&mut sink);
            }
        }
        CheckId::ProcMountRestricted => {
            // The same rule as baseline procMount before v1.35; an unmasked /proc outside a user
            // namespace is a baseline problem, so it is reported as one.
            let control = if pod.user_namespace {
                CheckId::ProcMountRestricted
            } else {
                CheckId::ProcMount
            };
            proc_mount(&mut sink, control);
        }
    }
}

fn host_namespaces(s: &mut Sink<'_, '_>) {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if s.pod.template.spec.get(key) == Some(&Value::Bool(true)) {
            let pointer = s.spec_pointer(key);
            s.pod(
                CheckId::HostNamespaces,
                pointer,
                format!("pod must not set {key}=true"),
            );
        }
    }
}

fn privileged(s: &mut Sink<'_, '_>) {
    for c in &s.pod.containers {
        if is_true(container_context(c, "privileged")) {
            s.container(
                CheckId::Privileged,
                c,
                c.field("securityContext/privileged"),
                format!(
                    "container {:?} must not set securityContext.privileged=true",
                    c.name
                ),
            );
        }
    }
}

fn capabilities_baseline(s: &mut Sink<'_, '_>) {
    for c in &s.pod.containers {
        let added = capabilities(c, "add");
        let forbidden: Vec<String> = added
            .iter()
            .filter(|cap| !is_one_of(cap, CAPABILITIES_BASELINE_ALLOWED))
            .map(show)
            .collect();
        if !forbidden.is_empty() {
            s.container(
                CheckId::CapabilitiesBaseline,
                c,
                c.field("securityContext/capabilities/add"),
                format!(
                    "container {:?} must not include {} in securityContext.capabilities.add (non-default capabilities)",
                    c.name,
                    forbidden.join(", ")
                ),
            );
        }
    }
}

fn host_path_volumes(s: &mut Sink<'_, '_>) {
    let Some(volumes) = s.pod.template.spec.get("volumes").and_then(Value::as_array) else {
        return;
    };
    for (i, volume) in volumes.iter().enumerate() {
        if set(volume.get("hostPath")).is_some() {
            let pointer = s.spec_pointer(&format!("volumes/{i}/hostPath"));
            s.pod(
                CheckId::HostPathVolumes,
                pointer,
                format!("volume {:?} must not use a hostPath volume", volume_name(volume)),
            );
        }
    }
}

fn host_ports(s: &mut Sink<'_, '_>) {
    for c in &s.pod.containers {
        let Some(ports) = c.value.get("ports").and_then(Value::as_array) else {
            continue;
        };
        for (j, port) in ports.iter().enumerate() {
            let host_port = port.get("hostPort");
            if is_nonzero_number(host_port) {
                s.container(
                    CheckId::HostPorts,
                    c,
                    c.field(&format!("ports/{j}/hostPort")),
                    format!(
                        "container {:?} must not use hostPort {}",
                        c.name,
                        show_opt(host_port)
                    ),
                );
            }
        }
    }
}

fn apparmor(s: &mut Sink<'_, '_>) {
    let allowed_type = |v: &Value| is_one_of(v, &["RuntimeDefault", "Localhost"]);
    if let Some(profile) = s.pod.pod_context("appArmorProfile") {
        let ty = profile.get("type");
        if !ty.is_some_and(allowed_type) {
            let pointer = s.spec_nearest(&["securityContext", "appArmorProfile", "type"]);
            s.pod(
                CheckId::AppArmorProfile,
                pointer,
                format!(
                    "pod must not set securityContext.appArmorProfile.type to {}",
                    show_type(ty)
                ),
            );
        }
    }
    for c in &s.pod.containers {
        if let Some(profile) = container_context(c, "appArmorProfile") {
            let ty = profile.get("type");
            if !ty.is_some_and(allowed_type) {
                s.container(
                    CheckId::AppArmorProfile,
                    c,
                    nearest(
                        c.value,
                        &c.pointer,
                        &["securityContext", "appArmorProfile", "type"],
                    ),
                    format!(
                        "container {:?} must not set securityContext.appArmorProfile.type to {}",
                        c.name,
                        show_type(ty)
                    ),
                );
            }
        }
    }
    let Some(annotations) = s.pod.template.annotations() else {
        return;
    };
    for (key, value) in annotations {
        let Some(container_name) = key.strip_prefix(APPARMOR_ANNOTATION_PREFIX) else {
            continue;
        };
        let allowed = match annotation_text(value) {
            Some(text) => text.is_empty() || text == "runtime/default" || text.starts_with("localhost/"),
            None => false,
        };
        if allowed {
            continue;
        }
        let pointer = format!(
            "{}/annotations/{}",
            s.pod.template.metadata_pointer,
            escape_token(key)
        );
        let message = format!(
            "annotation {key}={} selects a forbidden AppArmor profile",
            show(value)
        );
        match s
            .pod
            .by_name
            .get(container_name)
            .and_then(|&i| s.pod.containers.get(i))
        {
            Some(c) => s.container(CheckId::AppArmorProfile, c, pointer, message),
            None => s.pod(CheckId::AppArmorProfile, pointer, message),
        }
    }
}

fn selinux(s: &mut Sink<'_, '_>, minor: u32) {
    let problems = |options: &Map<String, Value>| -> Option<(String, String)> {
        let mut details = Vec::new();
        let mut first_field = None;
        let ty = options.get("type");
        let type_ok = match ty {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => SELINUX_TYPES_ALLOWED
                .iter()
                .any(|(name, since)| name == t && *since <= minor),
            Some(_) => false,
        };
        if !type_ok {
            details.push(format!("type {} is not allowed", show_opt(ty)));
            first_field.get_or_insert("type");
        }
        for key in ["user", "role"] {
            if is_nonempty(options.get(key)) {
                details.push(format!("{key} may not be set"));
                first_field.get_or_insert(key);
            }
        }
        first_field.map(|f| (f.to_string(), details.join("; ")))
    };
    if let Some(options) = s.pod.pod_context("seLinuxOptions").and_then(Value::as_object)
        && let Some((field, detail)) = problems(options)
    {
        let pointer = s.spec_pointer(&format!("securityContext/seLinuxOptions/{field}"));
        s.pod(
            CheckId::SeLinuxOptions,
            pointer,
            format!("pod must not set forbidden securityContext.seLinuxOptions: {detail}"),
        );
    }
    for c in &s.pod.containers {
        if let Some(options) = container_context(c, "seLinuxOptions").and_then(Value::as_object)
            && let Some((field, detail)) = problems(options)
        {
            s.container(
                CheckId::SeLinuxOptions,
                c,
                c.field(&format!("securityContext/seLinuxOptions/{field}")),
                format!(
                    "container {:?} must not set forbidden securityContext.seLinuxOptions: {detail}",
                    c.name
                ),
            );
        }
    }
}

fn proc_mount(s: &mut Sink<'_, '_>, control: CheckId) {
    for c in &s.pod.containers {
        let value = container_context(c, "procMount");
        if value.is_some_and(|v| v.as_str() != Some("Default")) {
            s.container(
                control,
                c,
                c.field("securityContext/procMount"),
                format!(
                    "container {:?} must not set securityContext.procMount to {}",
                    c.name,
                    show_opt(value)
                ),
            );
        }
    }
}

fn valid_seccomp_type(ty: Option<&Value>) -> bool {
    ty.is_some_and(|t| is_one_of(t, &["RuntimeDefault", "Localhost"]))
}

/// Policy v1.0 to v1.18: the alpha seccomp annotations.
fn seccomp_baseline_annotations(s: &mut Sink<'_, '_>) {
    let Some(annotations) = s.pod.template.annotations() else {
        return;
    };
    let valid = |value: &Value| match annotation_text(value) {
        Some(text) => text == "runtime/default" || text == "docker/default" || text.starts_with("localhost/"),
        None => false,
    };
    let pointer_of = |key: &str| {
        format!(
            "{}/annotations/{}",
            s.pod.template.metadata_pointer,
            escape_token(key)
        )
    };
    if let Some(value) = annotations.get(SECCOMP_POD_ANNOTATION)
        && !valid(value)
    {
        let pointer = pointer_of(SECCOMP_POD_ANNOTATION);
        s.pod(
            CheckId::SeccompProfileBaseline,
            pointer,
            format!("forbidden annotation {SECCOMP_POD_ANNOTATION}={}", show(value)),
        );
    }
    let mut seen = HashSet::new();
    for c in &s.pod.containers {
        if !seen.insert(c.name) {
            continue;
        }
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if let Some(value) = annotations.get(&key)
            && !valid(value)
        {
            let pointer = pointer_of(&key);
            s.container(
                CheckId::SeccompProfileBaseline,
                c,
                pointer,
                format!("forbidden annotation {key}={}", show(value)),
            );
        }
    }
}

/// Policy v1.19 on: `seccompProfile.type`, which baseline does not require to be set.
fn seccomp_baseline_fields(s: &mut Sink<'_, '_>) {
    if let Some(profile) = s.pod.pod_context("seccompProfile") {
        let ty = profile.get("type");
        if !valid_seccomp_type(ty) {
            let pointer = s.spec_nearest(&["securityContext", "seccompProfile", "type"]);
            s.pod(
                CheckId::SeccompProfileBaseline,
                pointer,
                format!(
                    "pod must not set securityContext.seccompProfile.type to {}",
                    show_type(ty)
                ),
            );
        }
    }
    for c in &s.pod.containers {
        if let Some(profile) = container_context(c, "seccompProfile") {
            let ty = profile.get("type");
            if !valid_seccomp_type(ty) {
                s.container(
                    CheckId::SeccompProfileBaseline,
                    c,
                    nearest(
                        c.value,
                        &c.pointer,
                        &["securityContext", "seccompProfile", "type"],
                    ),
                    format!(
                        "container {:?} must not set securityContext.seccompProfile.type to {}",
                        c.name,
                        show_type(ty)
                    ),
                );
            }
        }
    }
}

fn sysctls(s: &mut Sink<'_, '_>, minor: u32) {
    let Some(list) = s.pod.pod_context("sysctls").and_then(Value::as_array) else {
        return;
    };
    for (i, sysctl) in list.iter().enumerate() {
        let name = sysctl.get("name");
        let allowed = name.and_then(Value::as_str).is_some_and(|n| {
            SYSCTLS_ALLOWED
                .iter()
                .any(|(safe, since)| *safe == n && *since <= minor)
        });
        if !allowed {
            let pointer = s.spec_nearest(&["securityContext", "sysctls", &i.to_string(), "name"]);
            s.pod(
                CheckId::Sysctls,
                pointer,
                format!("pod must not set forbidden sysctl {}", show_opt(name)),
            );
        }
    }
}

fn windows_host_process(s: &mut Sink<'_, '_>) {
    let host_process = |sc: Option<&Value>| is_true(sc.and_then(|o| o.get("hostProcess")));
    if host_process(s.pod.pod_context("windowsOptions")) {
        let pointer = s.spec_pointer("securityContext/windowsOptions/hostProcess");
        s.pod(
            CheckId::WindowsHostProcess,
            pointer,
            "pod must not set securityContext.windowsOptions.hostProcess=true".to_string(),
        );
    }
    for c in &s.pod.containers {
        if host_process(container_context(c, "windowsOptions")) {
            s.container(
                CheckId::WindowsHostProcess,
                c,
                c.field("securityContext/windowsOptions/hostProcess"),
                format!(
                    "container {:?} must not set securityContext.windowsOptions.hostProcess=true",
                    c.name
                ),
            );
        }
    }
}

fn host_probes_and_lifecycle(s: &mut Sink<'_, '_>) {
    const HANDLERS: [&str; 2] = ["httpGet", "tcpSocket"];
    for c in &s.pod.containers {
        let mut places: Vec<(String, &Value)> = Vec::new();
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(p) = c.value.get(probe) {
                places.push((probe.to_string(), p));
            }
        }
        if let Some(lifecycle) = c.value.get("lifecycle") {
            for hook in ["postStart", "preStop"] {
                if let Some(h) = lifecycle.get(hook) {
                    places.push((format!("lifecycle/{hook}"), h));
                }
            }
        }
        for (path, handler_owner) in places {
            for handler in HANDLERS {
                let host = handler_owner.get(handler).and_then(|h| h.get("host"));
                if is_nonempty(host) {
                    let field = format!("{path}/{handler}/host");
                    s.container(
                        CheckId::HostProbesAndHostLifecycle,
                        c,
                        c.field(&field),
                        format!(
                            "container {:?} must not set {} (probe or lifecycle host {})",
                            c.name,
                            field.replace('/', "."),
                            show_opt(host)
                        ),
                    );
                }
            }
        }
    }
}

fn restricted_volumes(s: &mut Sink<'_, '_>) {
    let Some(volumes) = s.pod.template.spec.get("volumes").and_then(Value::as_array) else {
        return;
    };
    for (i, volume) in volumes.iter().enumerate() {
        let allowed = RESTRICTED_VOLUMES_ALLOWED
            .iter()
            .any(|k| volume.get(*k).is_some_and(Value::is_object));
        // The API server defaults a volume without any source to an emptyDir.
        let implicit_empty_dir = volume
            .as_object()
            .is_some_and(|v| v.iter().all(|(key, value)| key == "name" || value.is_null()));
        if allowed || implicit_empty_dir {
            continue;
        }
        let source = RESTRICTED_VOLUMES_FORBIDDEN
            .iter()
            .find(|k| set(volume.get(**k)).is_some());
        let name = volume_name(volume);
        let (control, pointer, message) = match source {
            Some(&"hostPath") => (
                CheckId::HostPathVolumes,
                s.spec_pointer(&format!("volumes/{i}/hostPath")),
                format!("volume {name:?} must not use a hostPath volume"),
            ),
            Some(source) => (
                CheckId::RestrictedVolumes,
                s.spec_pointer(&format!("volumes/{i}/{source}")),
                format!("volume {name:?} uses restricted volume type {source:?}"),
            ),
            None => (
                CheckId::RestrictedVolumes,
                s.spec_pointer(&format!("volumes/{i}")),
                format!("volume {name:?} uses restricted volume type \"unknown\""),
            ),
        };
        s.pod(control, pointer, message);
    }
}

fn run_as_non_root(s: &mut Sink<'_, '_>) {
    let pod_value = s.pod.pod_context("runAsNonRoot");
    let pod_ok = is_true(pod_value);
    let pod_bad = pod_value.is_some() && !pod_ok;
    if pod_bad {
        let pointer = s.spec_pointer("securityContext/runAsNonRoot");
        s.pod(
            CheckId::RunAsNonRoot,
            pointer,
            "pod must not set securityContext.runAsNonRoot=false".to_string(),
        );
    }
    for c in &s.pod.containers {
        match container_context(c, "runAsNonRoot") {
            Some(v) if !is_true(Some(v)) => s.container(
                CheckId::RunAsNonRoot,
                c,
                c.field("securityContext/runAsNonRoot"),
                format!(
                    "container {:?} must not set securityContext.runAsNonRoot=false",
                    c.name
                ),
            ),
            Some(_) => {}
            // The pod-level finding already covers containers that inherit a bad pod value.
            None if !pod_ok && !pod_bad => s.container(
                CheckId::RunAsNonRoot,
                c,
                nearest(c.value, &c.pointer, &["securityContext", "runAsNonRoot"]),
                format!(
                    "pod or container {:?} must set securityContext.runAsNonRoot=true",
                    c.name
                ),
            ),
            None => {}
        }
    }
}

fn allow_privilege_escalation(s: &mut Sink<'_, '_>) {
    for c in &s.pod.containers {
        let value = container_context(c, "allowPrivilegeEscalation");
        if value != Some(&Value::Bool(false)) {
            s.container(
                CheckId::AllowPrivilegeEscalation,
                c,
                nearest(
                    c.value,
                    &c.pointer,
                    &["securityContext", "allowPrivilegeEscalation"],
                ),
                format!(
                    "container {:?} must set securityContext.allowPrivilegeEscalation=false",
                    c.name
                ),
            );
        }
    }
}

fn seccomp_restricted(s: &mut Sink<'_, '_>) {
    // An explicitly invalid profile is also forbidden by the baseline check this one replaces, so
    // it is reported as the baseline control; only a missing profile is restricted-specific.
    let pod_profile = s.pod.pod_context("seccompProfile");
    let pod_type = pod_profile.map(|p| p.get("type"));
    let pod_ok = pod_type.is_some_and(valid_seccomp_type);
    let pod_bad = pod_profile.is_some() && !pod_ok;
    if pod_bad {
        let ty = pod_type.flatten();
        let pointer = s.spec_nearest(&["securityContext", "seccompProfile", "type"]);
        s.pod(
            CheckId::SeccompProfileBaseline,
            pointer,
            format!(
                "pod must not set securityContext.seccompProfile.type to {}",
                show_type(ty)
            ),
        );
    }
    for c in &s.pod.containers {
        match container_context(c, "seccompProfile") {
            Some(profile) => {
                let ty = profile.get("type");
                if !valid_seccomp_type(ty) {
                    s.container(
                        CheckId::SeccompProfileBaseline,
                        c,
                        nearest(c.value, &c.pointer, &["securityContext", "seccompProfile", "type"]),
                        format!(
                            "container {:?} must not set securityContext.seccompProfile.type to {}",
                            c.name,
                            show_type(ty)
                        ),
                    );
                }
            }
            None if !pod_ok && !pod_bad => s.container(
                CheckId::SeccompProfileRestricted,
                c,
                nearest(c.value, &c.pointer, &["securityContext", "seccompProfile"]),
                format!(
                    "pod or container {:?} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                    c.name
                ),
            ),
            None => {}
        }
    }
}

fn capabilities_restricted(s: &mut Sink<'_, '_>) {
    for c in &s.pod.containers {
        let drops_all = capabilities(c, "drop").iter().any(|v| v.as_str() == Some("ALL"));
        if !drops_all {
            s.container(
                CheckId::CapabilitiesRestricted,
                c,
                nearest(c.value, &c.pointer, &["securityContext", "capabilities", "drop"]),
                format!(
                    "container {:?} must set securityContext.capabilities.drop=[\"ALL\"]",
                    c.name
                ),
            );
        }
        let added = capabilities(c, "add");
        let not_allowed = added.iter().filter(|v| v.as_str() != Some("NET_BIND_SERVICE"));
        // Capabilities beyond the baseline set are a baseline problem, reported as one.
        let (beyond_baseline, beyond_restricted): (Vec<&Value>, Vec<&Value>) =
            not_allowed.partition(|v| !is_one_of(v, CAPABILITIES_BASELINE_ALLOWED));
        let pointer = c.field("securityContext/capabilities/add");
        if !beyond_baseline.is_empty() {
            s.container(
                CheckId::CapabilitiesBaseline,
                c,
                pointer.clone(),
                format!(
                    "container {:?} must not include {} in securityContext.capabilities.add (non-default capabilities)",
                    c.name,
                    show_list(&beyond_baseline)
                ),
            );
        }
        if !beyond_restricted.is_empty() {
            s.container(
                CheckId::CapabilitiesRestricted,
                c,
                pointer,
                format!(
                    "container {:?} must not include {} in securityContext.capabilities.add (only NET_BIND_SERVICE may be added)",
                    c.name,
                    show_list(&beyond_restricted)
                ),
            );
        }
    }
}

fn run_as_user(s: &mut Sink<'_, '_>) {
    if is_zero(s.pod.pod_context("runAsUser")) {
        let pointer = s.spec_pointer("securityContext/runAsUser");
        s.pod(
            CheckId::RunAsUser,
            pointer,
            "pod must not set securityContext.runAsUser=0".to_string(),
        );
    }
    for c in &s.pod.containers {
        if is_zero(container_context(c, "runAsUser")) {
            s.container(
                CheckId::RunAsUser,
                c,
                c.field("securityContext/runAsUser"),
                format!("container {:?} must not set securityContext.runAsUser=0", c.name),
            );
        }
    }
}

// ---- JSON helpers: total over any input, never panicking ----

/// A present, non-null value (JSON `null` means unset, as it does for the API server).
fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// A field of a container's `securityContext`, if set.
fn container_context<'a>(c: &Container<'a>, key: &str) -> Option<&'a Value> {
    set(c
        .security_context()
        .and_then(Value::as_object)
        .and_then(|sc| sc.get(key)))
}

/// The items of `securityContext.capabilities.<list>`; a non-list counts as empty.
fn capabilities<'a>(c: &Container<'a>, list: &str) -> &'a [Value] {
    container_context(c, "capabilities")
        .and_then(|caps| caps.get(list))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_true(v: Option<&Value>) -> bool {
    v == Some(&Value::Bool(true))
}

fn is_zero(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64) == Some(0.0)
}

fn is_nonzero_number(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64).is_some_and(|n| n != 0.0)
}

/// A non-empty string, or any other non-null value (which cannot be the empty string).
fn is_nonempty(v: Option<&Value>) -> bool {
    match set(v) {
        None => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn is_one_of(v: &Value, allowed: &[&str]) -> bool {
    v.as_str().is_some_and(|s| allowed.contains(&s))
}

/// An annotation's text: `null` reads as empty (as it decodes upstream); other non-strings have none.
fn annotation_text(v: &Value) -> Option<&str> {
    match v {
        Value::Null => Some(""),
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn volume_name(volume: &Value) -> &str {
    volume.get("name").and_then(Value::as_str).unwrap_or("")
}

/// A value as it should appear in a message: strings quoted, everything else as JSON.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn show_opt(v: Option<&Value>) -> String {
    v.map(show).unwrap_or_else(|| "\"\"".to_string())
}

/// A profile type for a message; a missing type reads as the empty string, as upstream reports it.
fn show_type(v: Option<&Value>) -> String {
    show_opt(set(v))
}

fn show_list(values: &[&Value]) -> String {
    values.iter().map(|v| show(v)).collect::<Vec<_>>().join(", ")
}

/// The pointer to `path` below `base` (whose pointer is `base_pointer`), cut at the first segment
/// that does not exist, so a missing required field points at its nearest existing parent.
fn nearest(base: &Value, base_pointer: &str, path: &[&str]) -> String {
    let mut pointer = base_pointer.to_string();
    let mut current = base;
    for segment in path {
        let next = match current {
            Value::Object(map) => map.get(*segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) if !v.is_null() => {
                pointer.push('/');
                pointer.push_str(&escape_token(segment));
                current = v;
            }
            _ => break,
        }
    }
    pointer
}
