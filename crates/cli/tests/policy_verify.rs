//! End-to-end: the real `palisade policy verify` on the Gatekeeper library and on broken suites.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn palisade(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn verifies_the_whole_gatekeeper_library() {
    let library = shared_dir().join("data/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!(
            "\n\n*** SKIPPED: Gatekeeper library not found at {} (set PALISADE_SHARED) ***\n\n",
            library.display()
        );
        return;
    }
    let out = palisade(&["policy", "verify", library.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("PASS\n270 passed, 0 failed\n"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok\t")).count(),
        49,
        "{stdout}"
    );
}

#[test]
fn failures_exit_1_and_usage_errors_exit_2() {
    let dir = std::env::temp_dir().join(format!("palisade-policy-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("template.yaml"),
        r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenyall}
spec:
  crd: {spec: {names: {kind: K8sDenyAll}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sdenyall
      violation[{"msg": "denied"}] { true }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("constraint.yaml"),
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDenyAll\nmetadata: {name: all}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        r#"kind: Suite
apiVersion: test.gatekeeper.sh/v1alpha1
tests:
- name: deny-all
  template: template.yaml
  constraint: constraint.yaml
  cases:
  - name: denied
    object: pod.yaml
    assertions: [{violations: yes, message: "^denied$"}]
  - name: wrongly-expected-allowed
    object: pod.yaml
    assertions: [{violations: no}]
  - name: missing-file
    object: nothing.yaml
    assertions: [{violations: 1}]
"#,
    )
    .unwrap();
    let out = palisade(&["policy", "verify", "-v", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("    --- PASS: denied"), "{stdout}");
    assert!(
        stdout.contains("    --- FAIL: wrongly-expected-allowed"),
        "{stdout}"
    );
    assert!(stdout.contains("got 1 violations but want none"), "{stdout}");
    assert!(stdout.contains("    --- FAIL: missing-file"), "{stdout}");
    assert!(stdout.contains("--- FAIL: deny-all"), "{stdout}");
    assert!(stdout.ends_with("FAIL\n1 passed, 2 failed\n"), "{stdout}");

    let out = palisade(&["policy", "verify", dir.join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = palisade(&["policy", "verify", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no suite.yaml"));
    let out = palisade(&["policy", "verify", dir.join("pod.yaml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = palisade(&["policy", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
