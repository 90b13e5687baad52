use super::*;
use crate::object::Origin;
use serde_json::{Value, json};

const RESTRICTED: PssLevel = PssLevel::Restricted;
const BASELINE: PssLevel = PssLevel::Baseline;

fn v(minor: u32) -> PssVersion {
    PssVersion::Minor(minor)
}

/// A pod with one container `app`, restricted-compliant at `latest`, with `spec` merged over it.
fn pod(spec_patch: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}
            }}]
        }
    });
    merge(&mut pod["spec"], spec_patch);
    pod
}

/// JSON merge patch (RFC 7386): objects merge, null deletes, everything else replaces.
fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (k, p) in patch {
                if p.is_null() {
                    map.remove(&k);
                } else {
                    merge(map.entry(k).or_insert(Value::Null), p);
                }
            }
        }
        other => *target = other,
    }
}

fn violations(value: &Value, level: PssLevel, version: PssVersion) -> Vec<(CheckId, CheckId, String)> {
    let origin = Origin::default();
    let obj = Object::new(value, &origin);
    let template = obj.pod_template().expect("pod template");
    evaluate(&template, level, version)
        .into_iter()
        .map(|v| (v.check, v.evaluated_by, v.pointer))
        .collect()
}

fn checks(value: &Value, level: PssLevel, version: PssVersion) -> Vec<CheckId> {
    violations(value, level, version)
        .into_iter()
        .map(|(c, _, _)| c)
        .collect()
}

#[test]
fn compliant_pod_passes_every_version() {
    let p = pod(json!({}));
    for minor in 0..=40 {
        assert!(checks(&p, RESTRICTED, v(minor)).is_empty(), "v1.{minor}");
        assert!(checks(&p, BASELINE, v(minor)).is_empty(), "v1.{minor}");
    }
    assert!(checks(&p, RESTRICTED, PssVersion::Latest).is_empty());
}

#[test]
fn privileged_level_checks_nothing() {
    let p = pod(
        json!({"hostNetwork": true, "containers": [{"name": "x", "securityContext": {"privileged": true}}]}),
    );
    assert!(checks(&p, PssLevel::Privileged, PssVersion::Latest).is_empty());
    assert_eq!(
        checks(&p, BASELINE, PssVersion::Latest),
        vec![CheckId::HostNamespaces, CheckId::Privileged]
    );
}

#[test]
fn pod_level_run_as_non_root_and_seccomp_are_inherited() {
    // The base pod sets both at pod level only: containers inherit them.
    let p = pod(json!({"initContainers": [{"name": "init", "securityContext": {
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}));
    assert!(checks(&p, RESTRICTED, PssVersion::Latest).is_empty());

    // Without pod-level values every container must set them itself.
    let p = pod(json!({"securityContext": null}));
    let found = violations(&p, RESTRICTED, PssVersion::Latest);
    assert_eq!(
        found,
        vec![
            (
                CheckId::RunAsNonRoot,
                CheckId::RunAsNonRoot,
                "/spec/containers/0/securityContext".to_string()
            ),
            (
                CheckId::SeccompProfileRestricted,
                CheckId::SeccompProfileRestricted,
                "/spec/containers/0/securityContext".to_string()
            ),
        ]
    );

    // A container-level value satisfies the check too.
    let p = pod(
        json!({"securityContext": null, "containers": [{"name": "app", "securityContext": {
        "runAsNonRoot": true, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    assert!(checks(&p, RESTRICTED, PssVersion::Latest).is_empty());

    // An explicit false on the container fails even when the pod says true.
    let p = pod(
        json!({"containers": [{"name": "app", "securityContext": {"runAsNonRoot": false,
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    assert_eq!(
        violations(&p, RESTRICTED, PssVersion::Latest),
        vec![(
            CheckId::RunAsNonRoot,
            CheckId::RunAsNonRoot,
            "/spec/containers/0/securityContext/runAsNonRoot".into()
        )]
    );

    // A bad pod-level value is reported once, not again for each inheriting container.
    let p =
        pod(json!({"securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}}}));
    assert_eq!(
        violations(&p, RESTRICTED, PssVersion::Latest),
        vec![
            (
                CheckId::RunAsNonRoot,
                CheckId::RunAsNonRoot,
                "/spec/securityContext/runAsNonRoot".into()
            ),
            (
                CheckId::SeccompProfileBaseline,
                CheckId::SeccompProfileRestricted,
                "/spec/securityContext/seccompProfile/type".into()
            ),
        ]
    );
}

#[test]
fn ephemeral_containers_are_checked() {
    let p = pod(
        json!({"ephemeralContainers": [{"name": "debug", "image": "busybox",
        "securityContext": {"privileged": true}}]}),
    );
    let found = violations(&p, BASELINE, PssVersion::Latest);
    assert_eq!(
        found,
        vec![(
            CheckId::Privileged,
            CheckId::Privileged,
            "/spec/ephemeralContainers/0/securityContext/privileged".into()
        )]
    );
}

#[test]
fn windows_pods_are_exempt_from_three_restricted_checks_from_v1_25() {
    let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"}, "spec": {
        "os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "app", "image": "iis"}]}});
    assert!(checks(&p, RESTRICTED, v(25)).is_empty());
    assert!(checks(&p, RESTRICTED, PssVersion::Latest).is_empty());
    assert_eq!(
        checks(&p, RESTRICTED, v(24)),
        vec![
            CheckId::AllowPrivilegeEscalation,
            CheckId::CapabilitiesRestricted,
            CheckId::SeccompProfileRestricted
        ]
    );
    // The exemption does not cover baseline checks or runAsNonRoot.
    let mut q = p.clone();
    q["spec"]["securityContext"] = json!({"windowsOptions": {"hostProcess": true}});
    assert_eq!(
        checks(&q, RESTRICTED, v(25)),
        vec![CheckId::WindowsHostProcess, CheckId::RunAsNonRoot]
    );
    // Only the exact value "windows" counts.
    q["spec"]["os"]["name"] = json!("Windows");
    assert!(checks(&q, RESTRICTED, v(25)).contains(&CheckId::AllowPrivilegeEscalation));
}

#[test]
fn host_users_false_relaxes_from_v1_35() {
    let p = pod(
        json!({"hostUsers": false, "securityContext": {"runAsNonRoot": null, "runAsUser": 0},
        "containers": [{"name": "app", "securityContext": {"procMount": "Unmasked",
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    assert!(checks(&p, BASELINE, v(35)).is_empty());
    assert_eq!(checks(&p, BASELINE, v(34)), vec![CheckId::ProcMount]);
    // Restricted still forbids the unmasked /proc, through procMount_restricted.
    assert_eq!(checks(&p, RESTRICTED, v(35)), vec![CheckId::ProcMountRestricted]);
    assert_eq!(
        checks(&p, RESTRICTED, v(34)),
        vec![CheckId::ProcMount, CheckId::RunAsNonRoot, CheckId::RunAsUser]
    );
    // hostUsers: true (or a non-bool) relaxes nothing; the unmasked /proc is a baseline problem.
    let mut q = p.clone();
    q["spec"]["hostUsers"] = json!(true);
    let found = violations(&q, RESTRICTED, PssVersion::Latest);
    assert_eq!(found[0].0, CheckId::ProcMount);
    assert_eq!(found[0].1, CheckId::ProcMountRestricted);
    q["spec"]["hostUsers"] = json!("false");
    assert_eq!(checks(&q, BASELINE, PssVersion::Latest), vec![CheckId::ProcMount]);
}

#[test]
fn version_thresholds() {
    let no_ape =
        pod(json!({"containers": [{"name": "app", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]}));
    assert!(checks(&no_ape, RESTRICTED, v(7)).is_empty());
    assert_eq!(
        checks(&no_ape, RESTRICTED, v(8)),
        vec![CheckId::AllowPrivilegeEscalation]
    );

    let root = pod(json!({"securityContext": {"runAsUser": 0}}));
    assert_eq!(checks(&root, RESTRICTED, v(22)), vec![]);
    assert_eq!(checks(&root, RESTRICTED, v(23)), vec![CheckId::RunAsUser]);

    // Before v1.22 restricted has no drop-ALL rule, only the baseline allow-list.
    let keep_caps = pod(json!({"containers": [{"name": "app", "securityContext": {
        "allowPrivilegeEscalation": false, "capabilities": {"add": ["CHOWN"]}}}]}));
    assert!(checks(&keep_caps, RESTRICTED, v(21)).is_empty());
    assert_eq!(
        checks(&keep_caps, RESTRICTED, v(22)),
        vec![CheckId::CapabilitiesRestricted, CheckId::CapabilitiesRestricted]
    );

    let sysctl = |name: &str| pod(json!({"securityContext": {"sysctls": [{"name": name, "value": "1"}]}}));
    for (name, since) in [
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ] {
        assert_eq!(
            checks(&sysctl(name), BASELINE, v(since - 1)),
            vec![CheckId::Sysctls],
            "{name}"
        );
        assert!(checks(&sysctl(name), BASELINE, v(since)).is_empty(), "{name}");
    }
    assert_eq!(
        checks(&sysctl("kernel.msgmax"), BASELINE, PssVersion::Latest),
        vec![CheckId::Sysctls]
    );

    let engine = pod(json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}));
    assert_eq!(checks(&engine, BASELINE, v(30)), vec![CheckId::SeLinuxOptions]);
    assert!(checks(&engine, BASELINE, v(31)).is_empty());

    let probe = pod(
        json!({"containers": [{"name": "app", "readinessProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 80}},
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    assert!(checks(&probe, BASELINE, v(33)).is_empty());
    assert_eq!(
        violations(&probe, BASELINE, v(34)),
        vec![(
            CheckId::HostProbesAndHostLifecycle,
            CheckId::HostProbesAndHostLifecycle,
            "/spec/containers/0/readinessProbe/tcpSocket/host".into()
        )]
    );

    // Versions beyond the newest known one behave as latest.
    assert_eq!(
        checks(&sysctl("net.ipv4.tcp_notsent_lowat"), BASELINE, v(99)),
        vec![]
    );
    assert_eq!(PssVersion::Minor(1000).effective_minor(), LATEST_MINOR);
}

#[test]
fn seccomp_annotations_before_v1_19_fields_after() {
    let annotated = |key: &str, value: &str| {
        let mut p = pod(json!({"securityContext": {"seccompProfile": null}}));
        p["metadata"]["annotations"] = json!({ key: value });
        p
    };
    let bad = annotated("seccomp.security.alpha.kubernetes.io/pod", "unconfined");
    assert_eq!(
        checks(&bad, BASELINE, v(18)),
        vec![CheckId::SeccompProfileBaseline]
    );
    assert_eq!(
        checks(&bad, RESTRICTED, v(18)),
        vec![CheckId::SeccompProfileBaseline]
    );
    assert!(checks(&bad, BASELINE, v(19)).is_empty());
    let ok = annotated(
        "container.seccomp.security.alpha.kubernetes.io/app",
        "docker/default",
    );
    assert!(checks(&ok, BASELINE, v(0)).is_empty());
    let bad = annotated("container.seccomp.security.alpha.kubernetes.io/app", "unconfined");
    let found = violations(&bad, BASELINE, v(0));
    assert_eq!(
        found[0].2,
        "/metadata/annotations/container.seccomp.security.alpha.kubernetes.io~1app"
    );

    let unconfined = pod(
        json!({"containers": [{"name": "app", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}),
    );
    assert!(checks(&unconfined, BASELINE, v(18)).is_empty());
    assert_eq!(
        checks(&unconfined, BASELINE, v(19)),
        vec![CheckId::SeccompProfileBaseline]
    );
    // A profile without a type is not a valid profile.
    let empty = pod(json!({"securityContext": {"seccompProfile": {"type": null}}}));
    assert_eq!(
        checks(&empty, BASELINE, v(19)),
        vec![CheckId::SeccompProfileBaseline]
    );
}

#[test]
fn apparmor_annotations_and_fields() {
    let mut p = pod(json!({}));
    p["metadata"]["annotations"] = json!({
        "container.apparmor.security.beta.kubernetes.io/app": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/other": "",
    });
    assert!(checks(&p, BASELINE, v(0)).is_empty());
    p["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/app"] = json!("unconfined");
    assert_eq!(checks(&p, BASELINE, v(0)), vec![CheckId::AppArmorProfile]);

    let field = pod(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}));
    assert_eq!(
        violations(&field, BASELINE, v(0)),
        vec![(
            CheckId::AppArmorProfile,
            CheckId::AppArmorProfile,
            "/spec/securityContext/appArmorProfile/type".into()
        )]
    );
}

#[test]
fn restricted_checks_that_replace_baseline_ones_report_the_baseline_control() {
    let p = pod(
        json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "s", "path": "/"}},
        {"name": "c", "configMap": {"name": "c"}}, {"name": "u", "someFutureSource": {}}]}),
    );
    assert_eq!(
        violations(&p, RESTRICTED, PssVersion::Latest),
        vec![
            (
                CheckId::HostPathVolumes,
                CheckId::RestrictedVolumes,
                "/spec/volumes/0/hostPath".into()
            ),
            (
                CheckId::RestrictedVolumes,
                CheckId::RestrictedVolumes,
                "/spec/volumes/1/nfs".into()
            ),
            (
                CheckId::RestrictedVolumes,
                CheckId::RestrictedVolumes,
                "/spec/volumes/3".into()
            ),
        ]
    );
    assert_eq!(
        checks(&p, BASELINE, PssVersion::Latest),
        vec![CheckId::HostPathVolumes]
    );

    let caps = pod(
        json!({"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
        "capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_BIND_SERVICE"]}}}]}),
    );
    let found = violations(&caps, RESTRICTED, PssVersion::Latest);
    let ids: Vec<_> = found.iter().map(|(c, by, _)| (*c, *by)).collect();
    assert_eq!(
        ids,
        vec![
            (CheckId::CapabilitiesRestricted, CheckId::CapabilitiesRestricted),
            (CheckId::CapabilitiesBaseline, CheckId::CapabilitiesRestricted),
            (CheckId::CapabilitiesRestricted, CheckId::CapabilitiesRestricted),
        ]
    );
    assert_eq!(found[0].2, "/spec/containers/0/securityContext/capabilities");
}

#[test]
fn wrong_types_do_not_panic_and_follow_exact_values() {
    let p = pod(json!({
        "hostNetwork": "true", "hostPID": 1, "volumes": "nope",
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}, "sysctls": [7, {"name": null}], "runAsUser": "0"},
        "containers": [
            {"name": 5, "securityContext": {"privileged": "true", "allowPrivilegeEscalation": "false",
                "capabilities": {"drop": "ALL", "add": [1, "NET_BIND_SERVICE"]}, "runAsNonRoot": 1, "procMount": 3},
             "ports": [{"hostPort": "80"}, 3, {"hostPort": 0}], "livenessProbe": "x", "lifecycle": {"preStop": {"httpGet": {"host": 3}}}},
            "not an object",
            {"name": "b", "securityContext": "not an object"}
        ],
        "initContainers": {"name": "map instead of list"}
    }));
    let found = checks(&p, RESTRICTED, PssVersion::Latest);
    // Not true is not true; not false is not false; non-strings are outside every allow-list.
    assert!(!found.contains(&CheckId::HostNamespaces));
    assert!(!found.contains(&CheckId::Privileged));
    assert!(!found.contains(&CheckId::HostPorts));
    assert!(!found.contains(&CheckId::RunAsUser));
    assert!(found.contains(&CheckId::AllowPrivilegeEscalation));
    assert!(found.contains(&CheckId::CapabilitiesRestricted));
    assert!(found.contains(&CheckId::CapabilitiesBaseline));
    assert!(found.contains(&CheckId::Sysctls));
    assert!(found.contains(&CheckId::RunAsNonRoot));
    assert!(found.contains(&CheckId::ProcMount));
    assert!(found.contains(&CheckId::HostProbesAndHostLifecycle));

    // Garbage at every level of the object.
    for garbage in [
        json!(null),
        json!(1),
        json!("s"),
        json!([]),
        json!({"spec": []}),
        json!({"kind": "Pod", "spec": 3}),
    ] {
        let origin = Origin::default();
        let mut out = Vec::new();
        check(
            &Object::new(&garbage, &origin),
            PssSettings {
                level: RESTRICTED,
                version: PssVersion::Latest,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
    let empty = json!({"kind": "Pod", "spec": {}});
    assert!(checks(&empty, RESTRICTED, PssVersion::Latest).is_empty());
}

#[test]
fn findings_carry_rule_container_and_pointer() {
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "web", "image": "nginx:1",
            "securityContext": {"privileged": true}}]}}}});
    let origin = Origin {
        file: Some("d.yaml".into()),
        line: Some(1),
    };
    let mut out = Vec::new();
    check(
        &Object::new(&d, &origin),
        PssSettings {
            level: BASELINE,
            version: PssVersion::Latest,
        },
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(f.rule_id, "pss.privileged");
    assert_eq!(f.resource.container.as_deref(), Some("web"));
    assert_eq!(f.resource.image.as_deref(), Some("nginx:1"));
    let evidence = f.evidence.as_ref().unwrap();
    assert_eq!(
        evidence.pointer,
        "/spec/template/spec/containers/0/securityContext/privileged"
    );
    assert_eq!(evidence.value, Some(json!(true)));
    assert_eq!(
        f.message,
        "container \"web\" must not set securityContext.privileged=true"
    );
}

#[test]
fn namespace_labels() {
    let ns = |labels: Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": labels}});
    let default = PssSettings {
        level: BASELINE,
        version: v(20),
    };
    let read = |value: &Value| {
        let origin = Origin::default();
        settings_from_namespace(&Object::new(value, &origin), default)
    };
    assert_eq!(read(&ns(json!({}))), None);
    assert_eq!(
        read(&ns(
            json!({"pod-security.kubernetes.io/enforce-version": "v1.25"})
        )),
        None
    );
    assert_eq!(
        read(&ns(json!({"pod-security.kubernetes.io/enforce": "restricted"}))),
        Some(PssSettings {
            level: RESTRICTED,
            version: PssVersion::Latest
        })
    );
    assert_eq!(
        read(&ns(
            json!({"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/enforce-version": "v1.25"})
        )),
        Some(PssSettings {
            level: PssLevel::Privileged,
            version: v(25)
        })
    );
    // Unknown levels fail closed to restricted; unparsable versions mean latest (as upstream).
    for (level, version, expected) in [
        ("Baseline", "v1.25", v(25)),
        ("", "v01.2", PssVersion::Latest),
        ("strict", "v1.025", PssVersion::Latest),
        ("baseline ", "1.25", PssVersion::Latest),
    ] {
        let got = read(&ns(
            json!({"pod-security.kubernetes.io/enforce": level, "pod-security.kubernetes.io/enforce-version": version}),
        ));
        assert_eq!(
            got,
            Some(PssSettings {
                level: RESTRICTED,
                version: expected
            }),
            "{level} {version}"
        );
    }
    let got = read(&ns(
        json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.99999999999"}),
    ));
    assert_eq!(
        got,
        Some(PssSettings {
            level: BASELINE,
            version: PssVersion::Latest
        })
    );
}

#[test]
fn versions_parse_and_clamp() {
    assert_eq!("latest".parse::<PssVersion>().unwrap(), PssVersion::Latest);
    assert_eq!("v1.0".parse::<PssVersion>().unwrap(), v(0));
    assert_eq!("v1.37".parse::<PssVersion>().unwrap(), v(37));
    for bad in ["", "1.2", "v2.0", "v1.", "v1.x", "latest "] {
        assert!(bad.parse::<PssVersion>().is_err(), "{bad}");
    }
    assert_eq!(v(38).effective_minor(), LATEST_MINOR);
    assert_eq!(v(12).effective_minor(), 12);
}

#[test]
fn check_sets_follow_upstream_registry() {
    assert_eq!(checks_at(PssLevel::Privileged, PssVersion::Latest), vec![]);
    let ids = |level, minor| {
        checks_at(level, v(minor))
            .into_iter()
            .map(CheckId::as_str)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(BASELINE, 0).len(), 11);
    assert_eq!(ids(BASELINE, 34).len(), 12);
    assert_eq!(
        ids(RESTRICTED, 0),
        vec![
            "appArmorProfile",
            "capabilities_baseline",
            "hostNamespaces",
            "hostPorts",
            "privileged",
            "procMount",
            "seLinuxOptions",
            "seccompProfile_baseline",
            "sysctls",
            "windowsHostProcess",
            "restrictedVolumes",
            "runAsNonRoot",
        ]
    );
    let latest = ids(RESTRICTED, 37);
    for gone in [
        "hostPathVolumes",
        "seccompProfile_baseline",
        "capabilities_baseline",
        "procMount",
    ] {
        assert!(!latest.contains(&gone), "{gone}");
    }
    assert_eq!(latest.len(), 8 + 7);
}

#[test]
fn rules_line_up_with_checks() {
    assert_eq!(RULES.len(), CheckId::ALL.len());
    for (i, id) in CheckId::ALL.iter().enumerate() {
        assert_eq!(*id as usize, i);
        assert_eq!(CheckId::from_upstream(id.as_str()), Some(*id));
        let rule = id.rule();
        assert!(rule.id.starts_with("pss."));
        assert!(
            !rule.fixtures.pass.is_empty() && !rule.fixtures.fail.is_empty(),
            "{}",
            rule.id
        );
        assert!(
            rule.frameworks
                .iter()
                .any(|f| f.framework == palisade_core::Framework::PodSecurityStandards)
        );
        assert!(!rule.description.is_empty() && !rule.rationale.is_empty() && !rule.remediation.is_empty());
    }
    let expected = [
        "pss.host-namespaces",
        "pss.privileged",
        "pss.capabilities-baseline",
        "pss.host-path-volumes",
        "pss.host-ports",
        "pss.apparmor",
        "pss.selinux",
        "pss.proc-mount",
        "pss.seccomp-baseline",
        "pss.sysctls",
        "pss.windows-host-process",
        "pss.host-probes-lifecycle",
        "pss.restricted-volumes",
        "pss.run-as-non-root",
        "pss.allow-privilege-escalation",
        "pss.seccomp-restricted",
        "pss.capabilities-restricted",
        "pss.run-as-user",
        "pss.proc-mount-restricted",
    ];
    assert_eq!(RULES.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
}

#[test]
fn many_containers_and_annotations_stay_linear() {
    let n = 20_000;
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": "x", "securityContext": {"privileged": true}}))
        .collect();
    let annotations: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            (
                format!("container.apparmor.security.beta.kubernetes.io/c{i}"),
                json!("unconfined"),
            )
        })
        .collect();
    let p = json!({"kind": "Pod", "metadata": {"name": "big", "annotations": annotations},
        "spec": {"containers": containers}});
    let started = std::time::Instant::now();
    let found = checks(&p, BASELINE, PssVersion::Latest);
    assert_eq!(found.len(), 2 * n);
    // Generous bound: a per-annotation scan of the containers would be 400 million comparisons.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
