//! End-to-end: the real `palisade admission serve` with a self-signed certificate, real
//! AdmissionReview requests over HTTPS on loopback: allowed, denied, warned, mutated, malformed.

mod common;

use base64::Engine;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Webhook {
    child: Child,
    addr: String,
    ca_pem: Vec<u8>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(config: &str) -> Webhook {
    start_with(config, &[])
}

fn start_with(config: &str, extra: &[&str]) -> Webhook {
    let dir = std::env::temp_dir().join(format!(
        "palisade-webhook-{}-{}",
        std::process::id(),
        config.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("palisade.yaml");
    std::fs::write(&config_path, config).unwrap();
    let ca = dir.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "admission",
            "serve",
            "--self-signed",
            "--listen",
            "127.0.0.1:0",
            "--max-body-bytes",
            "200000",
        ])
        .arg("--ca-out")
        .arg(&ca)
        .arg("--config")
        .arg(&config_path)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = match line.strip_prefix("palisade admission: listening on https://") {
                Some(addr) => tx.send(Ok(addr.to_string())),
                None => tx.send(Err(line)),
            };
        }
    });
    let mut said = Vec::new();
    let addr = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(addr)) => break addr,
            Ok(Err(line)) => said.push(line),
            Err(e) => panic!("server did not start ({e}): {}", said.join("\n")),
        }
    };
    Webhook {
        child,
        addr,
        ca_pem: std::fs::read(&ca).unwrap(),
    }
}

/// One HTTP/1.1 request over TLS, verified against the webhook's CA; returns (status, body).
async fn call(w: &Webhook, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let text = common::https_exchange(&w.addr, &w.ca_pem, &request).await;
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn review(uid: &str, namespace: &str, object: Value, dry_run: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "name": object["metadata"]["name"], "namespace": namespace, "operation": "CREATE",
                    "userInfo": {"username": "alice"}, "dryRun": dry_run, "object": object}
    }))
    .unwrap()
}

/// POSTs a review of `object` in `namespace` to /validate and returns its `response`.
async fn validate(w: &Webhook, uid: &str, namespace: &str, object: Value) -> Value {
    let (_, body) = call(
        w,
        "POST",
        "/validate",
        "application/json",
        &review(uid, namespace, object, false),
    )
    .await;
    serde_json::from_str::<Value>(&body).unwrap()["response"].clone()
}

fn pod(name: &str, security_context: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0",
                                    "securityContext": security_context}]}})
}

const CONFIG: &str = "admission:\n  roleAssignment:\n    allowedSubjects: ['Group:platform-admins']\n  actions:\n  - rules: [pss.seccomp-restricted, pss.allow-privilege-escalation, pss.capabilities-restricted]\n    action: mutate\n  - rules: ['image.*']\n    namespaces: ['dev-*']\n    action: off\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_over_https() {
    let w = start(CONFIG);

    let (status, body) = call(&w, "GET", "/healthz", "text/plain", b"").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Denied: every enforced rule is listed.
    let privileged = pod("bad", json!({"privileged": true}));
    let (status, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("u-deny", "shop", privileged, true),
    )
    .await;
    assert_eq!(status, 200);
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["uid"], "u-deny");
    assert_eq!(resp["response"]["allowed"], false);
    let message = resp["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("[pss.privileged]"), "{message}");
    assert_eq!(resp["response"]["auditAnnotations"]["decision"], "deny");
    assert_eq!(resp["response"]["auditAnnotations"]["dry-run"], "true");

    // Allowed with warnings (medium findings warn by default).
    let plain = pod("ok", json!({}));
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("u-warn", "shop", plain.clone(), false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["allowed"], true, "{body}");
    let warnings = resp["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().starts_with("[")),
        "{warnings:?}"
    );

    // Mutated: a JSONPatch with the secure defaults; applying it and asking again gives no patch.
    let (_, body) = call(
        &w,
        "POST",
        "/mutate",
        "application/json",
        &review("u-mut", "shop", plain.clone(), false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["patchType"], "JSONPatch", "{body}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(resp["response"]["patch"].as_str().unwrap())
        .unwrap();
    let ops: Vec<Value> = serde_json::from_slice(&patch).unwrap();
    let mut mutated = plain.clone();
    palisade_admission::mutate::apply_adds(&mut mutated, &ops).unwrap();
    assert_eq!(
        mutated["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        mutated["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let (_, body) = call(
        &w,
        "POST",
        "/mutate",
        "application/json",
        &review("u-mut2", "shop", mutated, false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert!(
        resp["response"].get("patch").is_none(),
        "second pass must not patch: {body}"
    );

    // Role assignment: cluster-admin only for allowed subjects.
    let binding = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-rbac", "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRoleBinding"},
                    "name": "ci-admin", "operation": "CREATE", "userInfo": {"username": "ci"},
                    "object": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ci-admin"},
                               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                               "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}}
    }))
    .unwrap();
    let (_, body) = call(&w, "POST", "/validate", "application/json", &binding).await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["allowed"], false, "{body}");
    let message = resp["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("[admission.dangerous-role-binding]") && message.contains("ServiceAccount:tools:ci"),
        "{message}"
    );

    // Malformed, wrong version, wrong content type, oversized, unknown path.
    let (status, body) = call(&w, "POST", "/validate", "application/json", b"{nope").await;
    assert_eq!(status, 400, "{body}");
    let v1beta1 = serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}),
    )
    .unwrap();
    let (status, body) = call(&w, "POST", "/validate", "application/json", &v1beta1).await;
    assert_eq!(status, 400);
    assert!(body.contains("admission.k8s.io/v1"), "{body}");
    let (status, _) = call(&w, "POST", "/validate", "text/plain", b"{}").await;
    assert_eq!(status, 415);
    let huge = review(
        "u-big",
        "shop",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "annotations": {"a": "x".repeat(300_000)}}}),
        false,
    );
    let (status, _) = call(&w, "POST", "/validate", "application/json", &huge).await;
    assert_eq!(status, 413);
    let (status, _) = call(&w, "GET", "/validate", "application/json", b"").await;
    assert_eq!(status, 405);
    let (status, _) = call(&w, "GET", "/nowhere", "text/plain", b"").await;
    assert_eq!(status, 404);

    // The server is still healthy and counted everything.
    let (status, metrics) = call(&w, "GET", "/metrics", "text/plain", b"").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("palisade_admission_requests_total{endpoint=\"validate\",result=\"denied\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("result=\"bad_request\""), "{metrics}");
    assert!(
        metrics.contains("palisade_admission_policy_evaluation_seconds_count{policy=\"posture-catalogue\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully() {
    let mut w = start("admission: {}\n");
    let (status, _) = call(&w, "GET", "/readyz", "text/plain", b"").await;
    assert_eq!(status, 200);
    let pid = w.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    loop {
        if let Some(status) = w.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pushes a minimal image and returns its manifest digest.
fn push_image(
    client: &palisade_registry::Client,
    reference: &palisade_registry::Reference,
    marker: &str,
) -> String {
    use palisade_registry::MediaTypes;
    let config =
        format!(r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"m":"{marker}"}}}}}}"#)
            .into_bytes();
    let config_digest = client.put_blob(reference, &config).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": []
    }))
    .unwrap();
    client
        .put_manifest(reference, &manifest, MediaTypes::OCI_MANIFEST)
        .unwrap()
}

/// Signs `digest` the way cosign does (simple signing payload, ECDSA P-256, tag sha256-X.sig).
fn cosign_sign(
    client: &palisade_registry::Client,
    reference: &palisade_registry::Reference,
    digest: &str,
    key: &p256::ecdsa::SigningKey,
) {
    use p256::ecdsa::signature::Signer;
    use palisade_registry::MediaTypes;
    let payload = serde_json::to_vec(&json!({"critical": {
        "identity": {"docker-reference": format!("{}/{}", reference.registry, reference.repository)},
        "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"}, "optional": null}))
    .unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&payload);
    let payload_digest = client.put_blob(reference, &payload).unwrap();
    let config = b"{}".to_vec();
    let config_digest = client.put_blob(reference, &config).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MediaTypes::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload_digest, "size": payload.len(),
                    "annotations": {"dev.cosignproject.cosign/signature": base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())}}]
    }))
    .unwrap();
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let sig_ref = palisade_registry::Reference {
        tag: Some(tag),
        digest: None,
        ..reference.clone()
    };
    client
        .put_manifest(&sig_ref, &manifest, MediaTypes::OCI_MANIFEST)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_signatures_from_a_real_registry() {
    use p256::pkcs8::EncodePublicKey;
    let Some(registry) = palisade_registry::testing::LocalRegistry::start() else {
        return;
    };
    let client = palisade_registry::Client::new(Default::default()).unwrap();
    let trusted = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
    let stranger = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let signed = palisade_registry::Reference::parse(&format!("{}/team/app:1.0", registry.addr)).unwrap();
    let foreign =
        palisade_registry::Reference::parse(&format!("{}/team/foreign:1.0", registry.addr)).unwrap();
    let unsigned =
        palisade_registry::Reference::parse(&format!("{}/team/unsigned:1.0", registry.addr)).unwrap();
    let digest = push_image(&client, &signed, "a");
    cosign_sign(&client, &signed, &digest, &trusted);
    let foreign_digest = push_image(&client, &foreign, "b");
    cosign_sign(&client, &foreign, &foreign_digest, &stranger);
    push_image(&client, &unsigned, "c");

    let pem = trusted
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let indented: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    let config = format!(
        "admission:\n  defaults: {{critical: enforce, high: audit, medium: audit, low: audit, info: audit}}\n  images:\n    verify:\n    - images: ['127.0.0.1:*/team/*']\n      publicKey: |\n{indented}"
    );
    let w = start(&config);
    let verdict = |image: String| {
        let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                            "spec": {"containers": [{"name": "app", "image": image}]}});
        review("u-img", "shop", object, false)
    };
    let w = &w;
    let ask = |body: Vec<u8>| async move { call(w, "POST", "/validate", "application/json", &body).await.1 };
    let body = ask(verdict(format!("{}/team/app:1.0", registry.addr))).await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["allowed"], true, "signed image: {body}");
    let body = ask(verdict(format!("{}/team/app@{digest}", registry.addr))).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response"]["allowed"],
        true,
        "by digest: {body}"
    );
    for image in [
        format!("{}/team/unsigned:1.0", registry.addr),
        format!("{}/team/foreign:1.0", registry.addr),
    ] {
        let body = ask(verdict(image.clone())).await;
        let resp: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(resp["response"]["allowed"], false, "{image}: {body}");
        assert!(
            resp["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("[admission.image-signature]"),
            "{body}"
        );
    }
    // Images no entry names are not checked.
    let body = ask(verdict("docker.io/library/nginx:1.27".into())).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response"]["allowed"],
        true,
        "{body}"
    );
}

const SLOW_TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sslow
spec:
  crd:
    spec:
      names:
        kind: K8sSlow
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sslow
      n := numbers.range(1, count(input.review.object.metadata.name) * 10000)
      violation[{"msg": "slow"}] {
        x := [1 | n[_]; n[_]; n[_]]
        count(x) > 0
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sSlow
metadata:
  name: slow
spec:
  match:
    namespaces: ["slow"]
"#;

fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("PALISADE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_constraints_in_the_webhook() {
    let library = shared_dir().join("data/gatekeeper-library/library/general/allowedrepos");
    if !library.exists() {
        eprintln!(
            "!!! SKIPPED: {} is missing (set PALISADE_SHARED) !!!",
            library.display()
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("palisade-gk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("slow.yaml"), SLOW_TEMPLATE).unwrap();
    for failure_policy in ["Fail", "Ignore"] {
        let config = format!(
            "admission:\n  failurePolicy: {failure_policy}\n  defaults: {{critical: audit, high: audit, medium: audit, low: audit, info: audit}}\n  gatekeeper:\n    timeBudgetMs: 50\n    paths: ['{}', '{}']\n",
            library.join("template.yaml").display(),
            dir.join("slow.yaml").display()
        );
        // The library's sample constraint allows only openpolicyagent/ images in "default".
        let constraint = library.join("samples/repo-must-be-openpolicyagent/constraint.yaml");
        let config = config.replace("paths: [", &format!("paths: ['{}', ", constraint.display()));
        let w = start(&config);
        let pod = |image: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"containers": [{"name": "c", "image": image}]}})
        };
        let (_, body) = call(
            &w,
            "POST",
            "/validate",
            "application/json",
            &review("gk1", "default", pod("nginx:1.27"), false),
        )
        .await;
        let resp: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(resp["response"]["allowed"], false, "{body}");
        assert!(
            resp["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("[K8sAllowedRepos:repo-is-openpolicyagent]"),
            "{body}"
        );
        let resp = validate(&w, "gk2", "default", pod("openpolicyagent/opa:0.9.2")).await;
        assert_eq!(resp["allowed"], true, "{resp}");
        // The same Pods under another name, as a ReplicaSet makes them: answered from the
        // remembered decisions (the template reads the containers, not the name), same verdicts.
        let renamed = |image: &str| {
            let mut p = pod(image);
            p["metadata"]["name"] = json!("p-2");
            p
        };
        let resp = validate(&w, "gk2b", "default", renamed("openpolicyagent/opa:0.9.2")).await;
        assert_eq!(resp["allowed"], true, "{resp}");
        let resp = validate(&w, "gk1b", "default", renamed("nginx:1.27")).await;
        assert_eq!(resp["allowed"], false, "{resp}");
        assert!(
            resp["status"]["message"]
                .as_str()
                .unwrap()
                .contains("[K8sAllowedRepos:repo-is-openpolicyagent]"),
            "{resp}"
        );

        // A policy that would run for hours is stopped by its budget; the failure policy decides.
        let started = Instant::now();
        let (_, body) = call(
            &w,
            "POST",
            "/validate",
            "application/json",
            &review("gk3", "slow", pod("openpolicyagent/opa:0.9.2"), false),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(5), "budget not enforced");
        let resp: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            resp["response"]["allowed"],
            failure_policy == "Ignore",
            "{failure_policy}: {body}"
        );
        assert!(
            resp["response"]["auditAnnotations"]["gatekeeper-errors"]
                .as_str()
                .unwrap()
                .contains("K8sSlow/slow"),
            "{body}"
        );
        let (_, metrics) = call(&w, "GET", "/metrics", "text/plain", b"").await;
        assert!(
            metrics.contains("policy=\"gatekeeper/k8sallowedrepos\""),
            "{metrics}"
        );
        assert!(
            metrics.contains("palisade_admission_gatekeeper_decisions_total{source=\"remembered\"} 2"),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_gate_from_cache_and_on_demand() {
    let images = match std::env::var_os("PALISADE_TEST_IMAGES").map(std::path::PathBuf::from) {
        Some(d) if d.join("app-vuln/oci/index.json").is_file() => d,
        _ => {
            eprintln!("!!! SKIPPED: set PALISADE_TEST_IMAGES (scripts/test.sh builds the images) !!!");
            return;
        }
    };
    let Some(registry) = palisade_registry::testing::LocalRegistry::start() else {
        return;
    };
    let client = palisade_registry::Client::new(Default::default()).unwrap();
    let app = palisade_registry::Reference::parse(&format!("{}/test/app-vuln:1.0", registry.addr)).unwrap();
    let base =
        palisade_registry::Reference::parse(&format!("{}/test/debian-base:1.0", registry.addr)).unwrap();
    palisade_registry::testing::push_layout(&images.join("app-vuln/oci"), &client, &app).unwrap();
    palisade_registry::testing::push_layout(&images.join("debian-base/oci"), &client, &base).unwrap();

    let dir = std::env::temp_dir().join(format!("palisade-scan-gate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("vulndb.redb");
    let shared = shared_dir();
    let import = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["db", "import"])
        .arg(shared.join("data/osv"))
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    // The cache filled by the scanner (as CI would).
    let cache = dir.join("cache");
    let scan = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "scan",
            "image",
            "--platform",
            "linux/amd64",
            &app.to_string(),
            "--cache-dir",
        ])
        .arg(&cache)
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(scan.status.success(), "{}", String::from_utf8_lossy(&scan.stderr));

    let pod = |image: String| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                     "spec": {"containers": [{"name": "c", "image": image}]}})
    };
    let quiet = "  defaults: {critical: audit, high: audit, medium: audit, low: audit, info: audit}\n  evaluationTimeoutMs: 30000\n";
    let cached = format!(
        "admission:\n{quiet}  images:\n    scan:\n      failOn: critical\n      cacheDir: '{}'\n      onDemand: false\n",
        cache.display()
    );
    let w = start(&cached);
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("s1", "shop", pod(app.to_string()), false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["allowed"], false, "{body}");
    assert!(
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[admission.image-scan]"),
        "{body}"
    );
    assert!(
        resp["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("worst critical"),
        "{body}"
    );
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("s2", "shop", pod(base.to_string()), false),
    )
    .await;
    assert!(body.contains("has not been scanned"), "{body}");
    drop(w);

    // On demand: an empty cache, the webhook scans the base image itself and fills the cache.
    let fresh = dir.join("fresh");
    let on_demand = format!(
        "admission:\n{quiet}  images:\n    scan:\n      failOn: critical\n      cacheDir: '{}'\n      db: '{}'\n",
        fresh.display(),
        db.display()
    );
    let w = start(&on_demand);
    // A dryRun request is judged by an on-demand scan too, but leaves the cache untouched.
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("s3-dry", "shop", pod(app.to_string()), true),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response"]["allowed"],
        false,
        "{body}"
    );
    assert_eq!(
        std::fs::read_dir(&fresh).map(|d| d.count()).unwrap_or(0),
        0,
        "a dryRun request wrote the scan cache"
    );
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("s3", "shop", pod(base.to_string()), false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        resp["response"]["allowed"], true,
        "the base image has nothing critical: {body}"
    );
    assert!(
        std::fs::read_dir(&fresh).unwrap().count() >= 1,
        "on-demand scan filled the cache"
    );
    let resp = validate(&w, "s4", "shop", pod(app.to_string())).await;
    assert_eq!(resp["allowed"], false, "{resp}");
}

const BOMB_TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sbomb
spec:
  crd:
    spec:
      names:
        kind: K8sBomb
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sbomb
      n := numbers.range(1, count(input.review.object.metadata.name) * 4000)
      violation[{"msg": "big"}] {
        x := [[i, j, "padding that makes each pair weigh more"] | n[i]; n[j]]
        count(x) > 0
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sBomb
metadata:
  name: bomb
spec: {}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rego_memory_bomb_stops_at_the_memory_limit() {
    let dir = std::env::temp_dir().join(format!("palisade-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bomb.yaml"), BOMB_TEMPLATE).unwrap();
    let config = format!(
        "admission:\n  failurePolicy: Fail\n  defaults: {{critical: audit, high: audit, medium: audit, low: audit, info: audit}}\n  gatekeeper:\n    timeBudgetMs: 60000\n    paths: ['{}']\n",
        dir.join("bomb.yaml").display()
    );
    let mut w = start_with(
        &config,
        &["--rego-memory-limit", "200", "--evaluation-timeout-ms", "60000"],
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let (_, body) = call(
        &w,
        "POST",
        "/validate",
        "application/json",
        &review("bomb1", "default", pod, false),
    )
    .await;
    let resp: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["response"]["allowed"], false, "fail closed: {body}");
    let errors = resp["response"]["auditAnnotations"]["gatekeeper-errors"]
        .as_str()
        .unwrap_or("");
    assert!(
        errors.contains("K8sBomb/bomb") && errors.contains("memory limit"),
        "{body}"
    );
    // The webhook lives on and answers.
    let (status, _) = call(&w, "GET", "/healthz", "text/plain", b"").await;
    assert_eq!(status, 200);
    assert!(w.child.try_wait().unwrap().is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

const SYNC_POLICIES: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdenyall
spec:
  crd:
    spec:
      names:
        kind: K8sDenyAll
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sdenyall
      violation[{"msg": "no pods in team namespaces"}] { true }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDenyAll
metadata:
  name: team-namespaces
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
    namespaceSelector:
      matchLabels: {team: payments}
---
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snamenotanamespace
spec:
  crd:
    spec:
      names:
        kind: K8sNameNotANamespace
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8snamenotanamespace
      violation[{"msg": msg}] {
        name := input.review.object.metadata.name
        data.inventory.cluster["v1"]["Namespace"][name]
        msg := sprintf("a namespace is named %v", [name])
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNameNotANamespace
metadata:
  name: names
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
"#;

/// A Kubernetes API server that lists two Namespaces to a client with the right token.
fn fake_api_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let authorized = head.to_ascii_lowercase().contains("authorization: bearer sekret");
            let (status, body) = if !authorized {
                ("401 Unauthorized", r#"{"kind":"Status","code":401}"#.to_string())
            } else if head.starts_with("GET /api/v1/namespaces ") {
                ("200 OK", json!({"kind": "NamespaceList", "apiVersion": "v1", "items": [
                    {"metadata": {"name": "payments", "labels": {"team": "payments"}}},
                    {"metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}}
                ]}).to_string())
            } else {
                ("404 Not Found", "{}".to_string())
            };
            let _ = std::io::Write::write_all(
                &mut stream,
                format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_sync_fills_the_inventory_and_namespace_selectors() {
    let dir = std::env::temp_dir().join(format!("palisade-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("policies.yaml"), SYNC_POLICIES).unwrap();
    std::fs::write(dir.join("token"), "sekret\n").unwrap();
    let api = fake_api_server();
    let config = format!(
        "admission:\n  failurePolicy: Fail\n  defaults: {{critical: audit, high: audit, medium: audit, low: audit, info: audit}}\n  gatekeeper:\n    paths: ['{}']\n    sync: [v1/namespaces]\n",
        dir.join("policies.yaml").display()
    );
    let token = dir.join("token");
    let w = start_with(
        &config,
        &[
            "--kube-api",
            &format!("http://{api}"),
            "--kube-token-file",
            token.to_str().unwrap(),
        ],
    );
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    };
    // namespaceSelector: the synced Namespace's labels decide.
    let resp = validate(&w, "s1", "payments", pod("web")).await;
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        resp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[K8sDenyAll:team-namespaces]"),
        "{resp}"
    );
    assert_eq!(validate(&w, "s2", "default", pod("web")).await["allowed"], true);
    // data.inventory: a Pod named like a synced Namespace.
    let resp = validate(&w, "s3", "default", pod("payments")).await;
    assert_eq!(resp["allowed"], false, "{resp}");
    assert!(
        resp["status"]["message"]
            .as_str()
            .unwrap()
            .contains("a namespace is named payments"),
        "{resp}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A wrong token: the sync fails, the start does not, and namespaceSelector is "not evaluated".
    let dir2 = std::env::temp_dir().join(format!("palisade-sync2-{}", std::process::id()));
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("policies.yaml"), SYNC_POLICIES).unwrap();
    std::fs::write(dir2.join("token"), "wrong").unwrap();
    let config = config.replace(
        &dir.join("policies.yaml").display().to_string(),
        &dir2.join("policies.yaml").display().to_string(),
    );
    let token = dir2.join("token");
    let w = start_with(
        &config,
        &[
            "--kube-api",
            &format!("http://{api}"),
            "--kube-token-file",
            token.to_str().unwrap(),
        ],
    );
    let resp = validate(&w, "s4", "payments", pod("web")).await;
    assert_eq!(resp["allowed"], true, "{resp}");
    let _ = std::fs::remove_dir_all(&dir2);
}
