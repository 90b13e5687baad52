//! End to end: the real binary on the app test image (docker-archive), and `scan fs` on a directory.

use std::path::PathBuf;
use std::process::Command;

fn images_dir() -> Option<PathBuf> {
    match std::env::var_os("PALISADE_TEST_IMAGES").map(PathBuf::from) {
        Some(d) if d.join("app-vuln/docker-archive.tar").is_file() => Some(d),
        _ => {
            eprintln!(
                "\n*** SKIPPED: set PALISADE_TEST_IMAGES to the output folder of ../shared/tools/build-test-images.sh ***\n"
            );
            None
        }
    }
}

#[test]
fn scan_image_json_on_docker_archive() {
    let Some(dir) = images_dir() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image", "--platform", "linux/amd64", "--format", "json"])
        .arg(dir.join("app-vuln/docker-archive.tar"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["os"]["id"], "debian");
    assert_eq!(v["layers"].as_array().unwrap().len(), 4);
    let pkgs = v["packages"].as_array().unwrap();
    let log4j = pkgs
        .iter()
        .find(|p| p["name"] == "log4j-core")
        .expect("log4j-core");
    assert_eq!(
        log4j["purl"],
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    );
    assert_eq!(log4j["layer"], 2);
    assert!(log4j["layer_created_by"].as_str().unwrap().starts_with("layer 3"));
    assert!(pkgs.iter().any(|p| p["purl"] == "pkg:pypi/pyyaml@5.3"));
    assert!(pkgs.iter().any(|p| p["ecosystem"] == "deb" && p["layer"] == 0));

    let table = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image", "--sbom-only"])
        .arg(dir.join("app-vuln/oci"))
        .output()
        .unwrap();
    assert_eq!(table.status.code(), Some(0));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("OS: debian") && text.contains("lodash") && !text.contains("Layers:"),
        "{text}"
    );
}

#[test]
fn scan_errors_exit_2() {
    let dir = std::env::temp_dir().join(format!("palisade-not-an-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a docker-archive"));
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image", "--platform", "linux"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scan_fs_reads_lockfiles_without_following_symlinks() {
    let dir = std::env::temp_dir().join(format!("palisade-scan-fs-{}", std::process::id()));
    let outside = std::env::temp_dir().join(format!("palisade-scan-fs-outside-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(dir.join("app/requirements.txt"), "flask==0.12\n").unwrap();
    std::fs::write(outside.join("requirements.txt"), "django==1.0\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("escape")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "fs", "-f", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["flask"]);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn scan_image_matches_vulnerabilities_with_layer_attribution() {
    let Some(dir) = images_dir() else { return };
    let db = import_osv_subset("palisade-scan-vulns");
    let scan = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "scan",
                "image",
                "--platform",
                "linux/amd64",
                "--format",
                "json",
                "--db",
            ])
            .arg(&db)
            .args(extra)
            .arg(dir.join("app-vuln/docker-archive.tar"))
            .output()
            .unwrap()
    };
    let out = scan(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["vulnerabilities"]["status"], "evaluated");
    let matches = v["vulnerabilities"]["matches"].as_array().unwrap();
    let log4shell = matches
        .iter()
        .find(|m| {
            m["advisory"]["aliases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "CVE-2021-44228")
        })
        .expect("Log4Shell found");
    assert_eq!(log4shell["advisory"]["severity"], "critical");
    assert!(log4shell["layer_digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(log4shell["layer_created_by"].as_str().is_some());
    for package in ["PyYAML", "lodash", "minimist", "smallvec", "golang.org/x/text"] {
        assert!(
            matches
                .iter()
                .any(|m| m["package"].as_str().unwrap().ends_with(package)),
            "{package}"
        );
    }
    assert_eq!(scan(&["--fail-on", "critical"]).status.code(), Some(1));
    // The app image runs as root, exposes 22 and carries secrets in ENV (see build-test-images.sh).
    let rules: Vec<&str> = v["misconfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    for rule in [
        "image.runs-as-root",
        "image.ssh-port-exposed",
        "image.secret-in-env",
    ] {
        assert!(rules.contains(&rule), "{rule} in {rules:?}");
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("app-vuln/expected.json")).unwrap()).unwrap();
    for secret in expected
        .to_string()
        .split('"')
        .filter(|s| s.len() > 12 && s.starts_with("AKIA"))
    {
        assert!(!text.contains(secret), "ENV secrets must be redacted");
    }

    // Without a database the result says so instead of looking clean.
    let none = std::env::temp_dir().join("palisade-no-such-db.redb");
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image", "--format", "json", "--db"])
        .arg(&none)
        .arg(dir.join("app-vuln/docker-archive.tar"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["vulnerabilities"]["status"]
            .as_str()
            .unwrap()
            .starts_with("not evaluated")
    );
    let _ = std::fs::remove_file(&db);
}

#[test]
fn scan_image_pulls_from_a_registry() {
    let Some(dir) = images_dir() else { return };
    let Some(registry) = palisade_registry::testing::LocalRegistry::start() else {
        return;
    };
    let client = palisade_registry::Client::new(Default::default()).unwrap();
    let reference =
        palisade_registry::Reference::parse(&format!("{}/test/app-vuln:1.0", registry.addr)).unwrap();
    palisade_registry::testing::push_layout(&dir.join("app-vuln/oci"), &client, &reference).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "scan",
            "image",
            "--format",
            "json",
            "--platform",
            "linux/amd64",
            &reference.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkgs = v["packages"].as_array().unwrap();
    assert!(
        pkgs.iter().any(|p| p["name"] == "log4j-core"),
        "pulled image has the planted jar"
    );
    assert!(
        pkgs.iter().filter(|p| p["layer"] == 0).count() > 50,
        "dpkg packages of the base layer"
    );
    assert_eq!(v["layers"].as_array().unwrap().len(), 4);

    let missing = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["scan", "image", &format!("{}/test/nothing:1.0", registry.addr)])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn scan_image_sarif_and_junit() {
    let Some(dir) = images_dir() else { return };
    let db = import_osv_subset("palisade-scan-sarif");
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "scan",
                "image",
                "--platform",
                "linux/amd64",
                "--format",
                format,
                "--db",
            ])
            .arg(&db)
            .arg(dir.join("app-vuln/docker-archive.tar"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let sarif: serde_json::Value = serde_json::from_str(&run("sarif")).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let log4shell = results
        .iter()
        .find(|r| r["message"]["text"].as_str().unwrap().contains("CVE-2021-44228"))
        .expect("Log4Shell in SARIF");
    assert_eq!(log4shell["ruleId"], "image.vulnerable-package");
    assert_eq!(log4shell["level"], "error");
    assert!(results.iter().any(|r| r["ruleId"] == "image.runs-as-root"));
    let junit = run("junit");
    assert!(junit.contains("<testsuite name=\"image.vulnerable-package\""));
    let _ = std::fs::remove_file(&db);
}

/// Imports the shared OSV subset into a fresh database file for one test.
fn import_osv_subset(name: &str) -> PathBuf {
    let shared = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let db = std::env::temp_dir().join(format!("{name}-{}.redb", std::process::id()));
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
    db
}

/// Validates an SBOM file with the independent validators in `scripts/validate-sbom.py` (the
/// CycloneDX 1.6 schema from cyclonedx-python-lib, spdx-tools for SPDX 2.3), run by the Python that
/// `scripts/test.sh` prepares; without PALISADE_VALIDATOR_PYTHON it says so loudly and skips.
fn validate_sbom(kind: &str, file: &std::path::Path) {
    let Some(python) = std::env::var_os("PALISADE_VALIDATOR_PYTHON") else {
        eprintln!(
            "!!! SKIPPED {kind} validation: PALISADE_VALIDATOR_PYTHON is not set (scripts/test.sh sets it) !!!"
        );
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/validate-sbom.py");
    let check = Command::new(python)
        .arg(&script)
        .arg(kind)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{kind} {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The purls of the packages planted in the app image (expected.json of build-test-images.sh).
fn planted_purls(dir: &std::path::Path) -> Vec<String> {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("app-vuln/expected.json")).unwrap()).unwrap();
    let mut purls = Vec::new();
    let list = |key: &str| expected[key].as_array().cloned().unwrap_or_default();
    for p in list("pypi") {
        let name = p["name"].as_str().unwrap().to_lowercase().replace('_', "-");
        purls.push(format!("pkg:pypi/{name}@{}", p["version"].as_str().unwrap()));
    }
    for p in list("npm") {
        purls.push(format!(
            "pkg:npm/{}@{}",
            p["name"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        ));
    }
    for p in expected["cargo_lock"]["vulnerable"].as_array().unwrap() {
        purls.push(format!(
            "pkg:cargo/{}@{}",
            p["name"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        ));
    }
    for p in expected["go"]["go_sum_modules"].as_array().unwrap() {
        purls.push(format!(
            "pkg:golang/{}@{}",
            p["name"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        ));
    }
    for p in list("maven") {
        purls.push(format!(
            "pkg:maven/{}/{}@{}",
            p["groupId"].as_str().unwrap(),
            p["artifactId"].as_str().unwrap(),
            p["version"].as_str().unwrap()
        ));
    }
    assert!(purls.len() >= 14, "{purls:?}");
    purls
}

#[test]
fn scan_image_sbom_cyclonedx_and_spdx_validate() {
    let Some(dir) = images_dir() else { return };
    let db = import_osv_subset("palisade-scan-sbom");
    let planted = planted_purls(&dir);
    let out_dir = tempfile::tempdir().unwrap();
    for (layout, input) in [
        ("docker-archive", dir.join("app-vuln/docker-archive.tar")),
        ("oci", dir.join("app-vuln/oci")),
    ] {
        for format in ["cyclonedx", "spdx"] {
            let file = out_dir.path().join(format!("{layout}.{format}.json"));
            let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
                .args([
                    "scan",
                    "image",
                    "--platform",
                    "linux/amd64",
                    "--format",
                    format,
                    "--db",
                ])
                .arg(&db)
                .arg("-o")
                .arg(&file)
                .arg(&input)
                .env("SOURCE_DATE_EPOCH", "1795910400")
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            validate_sbom(format, &file);
            let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let purls: Vec<String> = if format == "cyclonedx" {
                assert_eq!(doc["specVersion"], "1.6");
                assert_eq!(doc["metadata"]["timestamp"], "2026-11-29T00:00:00Z");
                assert_eq!(doc["metadata"]["component"]["type"], "container");
                if layout == "oci" {
                    assert!(
                        doc["metadata"]["component"]["purl"]
                            .as_str()
                            .unwrap()
                            .starts_with("pkg:oci/"),
                        "{}",
                        doc["metadata"]["component"]
                    );
                }
                let log4shell = doc["vulnerabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["references"].to_string().contains("CVE-2021-44228"))
                    .expect("Log4Shell in the CycloneDX vulnerabilities");
                assert_eq!(log4shell["ratings"][0]["severity"], "critical");
                let affected = log4shell["affects"][0]["ref"].as_str().unwrap();
                assert!(affected.starts_with("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"));
                doc["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c["purl"].as_str().map(str::to_string))
                    .collect()
            } else {
                assert_eq!(doc["spdxVersion"], "SPDX-2.3");
                doc["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
                    .filter_map(|r| r["referenceLocator"].as_str().map(str::to_string))
                    .collect()
            };
            for want in &planted {
                assert!(purls.contains(want), "{layout} {format}: {want} missing");
            }
            assert!(
                purls.iter().filter(|p| p.starts_with("pkg:deb/debian/")).count() > 50,
                "{layout} {format}: dpkg packages"
            );
        }
    }
    let _ = std::fs::remove_file(&db);
}

#[test]
fn scan_fs_sbom_of_a_lockfile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.lock"),
        "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
    )
    .unwrap();
    for format in ["cyclonedx", "spdx"] {
        let file = dir.path().join(format!("sbom.{format}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["scan", "fs", "--sbom-only", "--format", format, "-o"])
            .arg(&file)
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        validate_sbom(format, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"pkg:cargo/smallvec@1.6.0\""), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        if format == "cyclonedx" {
            assert_eq!(doc["metadata"]["component"]["type"], "application");
            assert!(
                doc.get("vulnerabilities").is_none(),
                "--sbom-only has no vulnerabilities"
            );
        }
    }
}

#[test]
fn scan_image_ignore_file_suppresses_with_reason_and_expiry() {
    let Some(dir) = images_dir() else { return };
    let db = import_osv_subset("palisade-scan-ignore");
    let work = tempfile::tempdir().unwrap();
    // Every critical advisory of the app image, each selected another way (alias, id with package,
    // id with path glob), and one configuration rule.
    let ignore = |log4j_expires: &str| {
        let file = work.path().join(format!("ignore-{log4j_expires}.yaml"));
        std::fs::write(
            &file,
            format!(
                "ignore:\n\
                 - vulnerability: CVE-2021-44228\n  reason: JNDI lookups disabled (LOG4J_FORMAT_MSG_NO_LOOKUPS)\n  expires: {log4j_expires}\n\
                 - vulnerability: GHSA-xvch-5gv4-984h\n  package: minimist\n  reason: build-time only\n\
                 - vulnerability: RUSTSEC-2021-0003\n  path: /app/rust-svc/*\n  reason: not reachable\n\
                 - rule: image.runs-as-root\n  reason: drops privileges in the entrypoint\n"
            ),
        )
        .unwrap();
        file
    };
    let scan = |extra: &[&str], ignore: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
        // Vulnerabilities and configuration only: the planted secrets are critical too.
        cmd.args([
            "scan",
            "image",
            "--platform",
            "linux/amd64",
            "--scanners",
            "vuln,config",
            "--db",
        ])
        .arg(&db)
        .args(extra);
        if let Some(f) = ignore {
            cmd.arg("--ignore-file").arg(f);
        }
        cmd.arg(dir.join("app-vuln/docker-archive.tar")).output().unwrap()
    };
    let is_log4shell = |m: &serde_json::Value| m.to_string().contains("CVE-2021-44228");

    assert_eq!(scan(&["--fail-on", "critical"], None).status.code(), Some(1));
    let live = ignore("2099-12-31");
    assert_eq!(
        scan(&["--fail-on", "critical"], Some(&live)).status.code(),
        Some(0),
        "every critical advisory is suppressed"
    );
    assert_eq!(scan(&["--fail-on", "high"], Some(&live)).status.code(), Some(1));

    let out = scan(&["--format", "json"], Some(&live));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let matches = v["vulnerabilities"]["matches"].as_array().unwrap();
    assert!(!matches.iter().any(is_log4shell));
    assert!(!matches.iter().any(|m| m["advisory"]["severity"] == "critical"));
    let suppressed = v["suppressed"].as_array().unwrap();
    let log4shell = suppressed
        .iter()
        .find(|f| is_log4shell(f))
        .expect("suppressed Log4Shell");
    assert_eq!(log4shell["status"]["state"], "excepted");
    assert_eq!(
        log4shell["status"]["reason"],
        "JNDI lookups disabled (LOG4J_FORMAT_MSG_NO_LOOKUPS)"
    );
    assert_eq!(log4shell["vulnerability"]["id"], "GHSA-jfh8-c2jp-5v3q");
    assert!(suppressed.iter().any(|f| f["rule_id"] == "image.runs-as-root"));
    assert!(
        !v["misconfigurations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "image.runs-as-root")
    );

    let table = String::from_utf8(scan(&[], Some(&live)).stdout).unwrap();
    let (findings, suppressed_section) = table.split_once("\nSuppressed: ").expect("suppressed section");
    assert!(!findings.contains("CVE-2021-44228"), "{findings}");
    assert!(
        suppressed_section.contains("GHSA-jfh8-c2jp-5v3q")
            && suppressed_section.contains("JNDI lookups disabled")
    );

    let sarif: serde_json::Value =
        serde_json::from_slice(&scan(&["--format", "sarif"], Some(&live)).stdout).unwrap();
    let result = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["message"]["text"].as_str().unwrap().contains("CVE-2021-44228"))
        .expect("Log4Shell stays in SARIF, as suppressed");
    assert_eq!(result["suppressions"][0]["kind"], "external");

    // An expired entry suppresses nothing and is itself reported.
    let expired = ignore("2020-01-01");
    assert_eq!(
        scan(&["--fail-on", "critical"], Some(&expired)).status.code(),
        Some(1)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&scan(&["--format", "json"], Some(&expired)).stdout).unwrap();
    assert!(
        v["vulnerabilities"]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(is_log4shell)
    );
    let note = v["misconfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "exception.expired")
        .expect("expired exception reported");
    assert!(
        note["message"].as_str().unwrap().contains("CVE-2021-44228"),
        "{note}"
    );

    // A malformed file is a usage error that names the file and the line.
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "ignore:\n  - vulnerability: CVE-1\n    reason: ok\n  - vulnerability: CVE-2\n    expires: 2027-01-01\n").unwrap();
    let out = scan(&[], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:4: entry 2") && err.contains("reason"),
        "{err}"
    );
    std::fs::write(&bad, "ignore:\n  - vulnerability: [CVE-1\n").unwrap();
    let out = scan(&[], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.yaml:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&db);
}

#[test]
fn scan_fs_ignore_file_reports_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "flask==0.12\n").unwrap();
    let ignore = dir.path().join("ignore.yaml");
    std::fs::write(
        &ignore,
        "exceptions:\n- vulnerability: PYSEC-*\n  path: /requirements.txt\n  reason: pinned by the base image\n  expires: 2021-06-30\n",
    )
    .unwrap();
    let none = dir.path().join("no-db.redb");
    let scan = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["scan", "fs", "--db"])
            .arg(&none)
            .arg("--ignore-file")
            .arg(&ignore)
            .args(extra)
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = scan(&["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expired = &v["misconfigurations"][0];
    assert_eq!(expired["rule_id"], "exception.expired");
    assert!(
        expired["message"].as_str().unwrap().contains("PYSEC-* in "),
        "{expired}"
    );
    assert_eq!(v["suppressed"], serde_json::json!([]));
    assert_eq!(scan(&["--fail-on", "low"]).status.code(), Some(1));
}

#[test]
fn scan_fs_ignore_file_suppresses_secret_findings_by_rule_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let token = ["ghp_", "0123456789abcdefghij", "ABCDEFGHIJklmnop"].concat();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/fixture.env"),
        format!("GITHUB_TOKEN={token}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("deploy.env"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    let ignore = dir.path().join("ignore.yaml");
    std::fs::write(
        &ignore,
        "ignore:\n- rule: secret.*\n  path: /tests/*\n  reason: test fixture, revoked\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "scan",
            "fs",
            "--scanners",
            "secret",
            "-f",
            "json",
            "--ignore-file",
        ])
        .arg(&ignore)
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let open: Vec<&str> = v["secrets"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"].as_str().unwrap())
        .collect();
    assert!(open.iter().all(|l| l.starts_with("/deploy.env")), "{open:?}");
    assert!(!open.is_empty());
    let suppressed = v["suppressed"].as_array().unwrap();
    assert!(!suppressed.is_empty());
    assert!(
        suppressed
            .iter()
            .all(|f| f["rule_id"].as_str().unwrap().starts_with("secret."))
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&token),
        "secrets stay redacted"
    );
}

fn palisade(args: &[&str], target: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .arg(target)
        .output()
        .unwrap()
}

/// The body lines of the planted PEM key, read out of the image itself, so the test can check that
/// no output repeats them (expected.json only has the key's hash).
fn planted_key_lines(image: &std::path::Path) -> Vec<String> {
    let limits = palisade_image::Limits::default();
    let source = palisade_image::open_image(image, None, &limits).unwrap();
    let report = palisade_image::scan::scan_source(&source, &limits, &mut []).unwrap();
    let files = palisade_image::scan::read_final_files(
        &source,
        &report.filesystem,
        &["/app/config/tls.yaml"],
        &limits,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&files["/app/config/tls.yaml"]).to_string();
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 40 && !l.contains(' ') && !l.starts_with("-----"))
        .map(String::from)
        .collect();
    assert!(lines.len() > 5, "tls.yaml holds a PEM body");
    lines
}

#[test]
fn scan_image_finds_planted_secrets_with_layer_attribution_and_never_prints_them() {
    let Some(dir) = images_dir() else { return };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("app-vuln/expected.json")).unwrap()).unwrap();
    let layer_index = |name: &str| {
        expected["layers"]
            .as_array()
            .unwrap()
            .iter()
            .position(|l| l["name"] == name)
            .unwrap()
    };
    let diff_id = |i: usize| expected["layers"][i]["diff_id"].as_str().unwrap().to_string();
    let mut raw_values: Vec<String> = Vec::new();
    for s in expected["secrets_present"]
        .as_array()
        .unwrap()
        .iter()
        .chain(expected["secrets_deleted_in_later_layer"].as_array().unwrap())
    {
        if let Some(v) = s["value"].as_str() {
            raw_values.push(v.to_string());
        }
    }
    raw_values.extend(planted_key_lines(&dir.join("app-vuln/docker-archive.tar")));

    for image in ["app-vuln/docker-archive.tar", "app-vuln/oci"] {
        let target = dir.join(image);
        let out = palisade(
            &["scan", "image", "--scanners", "secret,config", "-f", "json"],
            &target,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let findings = v["secrets"]["findings"].as_array().unwrap();
        let by_value = |location: &str, value: &str| {
            let fp = palisade_secrets::fingerprint(value.as_bytes());
            findings
                .iter()
                .find(|f| f["location"] == location && f["fingerprint"] == fp.as_str())
                .unwrap_or_else(|| panic!("{image}: {location} secret not found in {findings:#?}"))
        };
        let app_layer = layer_index("l3-app");
        for s in expected["secrets_present"].as_array().unwrap() {
            let path = s["path"].as_str().unwrap();
            if path == "image config Env" {
                let env = s["env"].as_str().unwrap();
                let f = by_value(&format!("Env {env}"), s["value"].as_str().unwrap());
                assert_eq!(f["source"], "env");
                continue;
            }
            let f = match s["value"].as_str() {
                Some(value) => by_value(path, value),
                None => findings
                    .iter()
                    .find(|f| f["location"] == path && f["rule_id"] == "secret.private-key")
                    .unwrap_or_else(|| panic!("{image}: private key in {path}")),
            };
            assert_eq!(f["state"], "present", "{f}");
            assert_eq!(f["layer"], app_layer, "{f}");
            assert_eq!(f["layer_digest"], diff_id(app_layer).as_str(), "{f}");
            assert!(f["created_by"].as_str().unwrap().starts_with("layer 3"), "{f}");
            assert!(f["line"].as_u64().unwrap() >= 1);
        }
        for s in expected["secrets_deleted_in_later_layer"].as_array().unwrap() {
            let f = by_value(s["path"].as_str().unwrap(), s["value"].as_str().unwrap());
            let added = layer_index(s["added_in"].as_str().unwrap());
            let removed = layer_index(s["whiteout_in"].as_str().unwrap());
            assert_eq!(f["state"], "removed", "{f}");
            assert_eq!(f["layer"], added);
            assert_eq!(f["layer_digest"], diff_id(added).as_str());
            assert_eq!(f["removed_by_layer"], removed);
            assert_eq!(f["removed_by_digest"], diff_id(removed).as_str());
            assert_eq!(f["removed_how"], "whiteout");
            assert!(f["removed_by_created_by"].as_str().unwrap().contains("whiteout"));
        }
        // Only the planted secrets: no noise from the packages in the image.
        assert_eq!(findings.len(), 8, "{findings:#?}");

        let mut outputs = vec![String::from_utf8(out.stdout).unwrap()];
        // Default scanners here: every section of every format must be free of the values.
        for format in ["table", "sarif", "junit"] {
            let out = palisade(&["scan", "image", "-f", format], &target);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            outputs.push(String::from_utf8(out.stdout).unwrap());
        }
        for (format, text) in ["json", "table", "sarif", "junit"].iter().zip(&outputs) {
            for raw in &raw_values {
                assert!(
                    !text.contains(raw.as_str()),
                    "{image} {format} output contains a planted secret"
                );
            }
        }
        let table = &outputs[1];
        assert!(table.contains("Secrets: 8"), "{table}");
        assert!(table.contains("REMOVED by layer 3"), "{table}");
        let sarif: serde_json::Value = serde_json::from_str(&outputs[2]).unwrap();
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        for rule in [
            "secret.aws-access-key-id",
            "secret.aws-secret-access-key",
            "secret.github-pat",
            "secret.private-key",
            "secret.generic-password",
            "secret.generic-secret",
            "image.secret-in-env",
        ] {
            assert!(results.iter().any(|r| r["ruleId"] == rule), "{rule} in SARIF");
        }
        let removed = results
            .iter()
            .find(|r| {
                r["message"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("/app/tmp/old-credentials.txt")
            })
            .unwrap();
        assert!(
            removed["message"]["text"]
                .as_str()
                .unwrap()
                .contains("removed by layer 3")
        );
        assert!(outputs[3].contains("secret.private-key"));
    }

    let archive = dir.join("app-vuln/docker-archive.tar");
    let fail = palisade(
        &["scan", "image", "--scanners", "secret", "--fail-on", "critical"],
        &archive,
    );
    assert_eq!(fail.status.code(), Some(1));
    let only_vuln = palisade(&["scan", "image", "--scanners", "config", "-f", "json"], &archive);
    let v: serde_json::Value = serde_json::from_slice(&only_vuln.stdout).unwrap();
    assert!(v.get("secrets").is_none() && v.get("vulnerabilities").is_none());
    let bad = palisade(&["scan", "image", "--scanners", "virus"], &archive);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn scan_image_debian_base_has_no_secret_findings() {
    let Some(dir) = images_dir() else { return };
    for image in ["debian-base/docker-archive.tar", "debian-base/oci"] {
        let out = palisade(
            &[
                "scan",
                "image",
                "--scanners",
                "secret",
                "-f",
                "json",
                "--fail-on",
                "info",
            ],
            &dir.join(image),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let findings = v["secrets"]["findings"].as_array().unwrap();
        assert!(v["secrets"]["files_scanned"].as_u64().unwrap() > 1000);
        assert!(findings.is_empty(), "{image}: false positives {findings:#?}");
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn scan_fs_finds_a_planted_key_and_registry_token() {
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join("home/ci/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACB9njTDiUHTNALSPP7LTNWPOMLn6pO0lbTIxKQD/8LjmQAAAJgR2eNMPOJQ\n";
    let key = format!(
        "-----BEGIN OPENSSH {}-----\n{body}-----END OPENSSH PRIVATE KEY-----\n",
        "PRIVATE KEY"
    );
    std::fs::write(ssh.join("id_ed25519"), &key).unwrap();
    let token = format!("np{}", "m_KwtgHwIoALtLinxN1Ekia7ZpTjCgeOj3QYrz");
    std::fs::write(
        dir.path().join("home/ci/.npmrc"),
        format!("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={token}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "password = changeme\n").unwrap();
    for format in ["json", "table", "sarif"] {
        let out = palisade(&["scan", "fs", "-f", format, "--fail-on", "high"], dir.path());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(&token) && !text.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"));
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let found: Vec<(String, String, u64)> = v["secrets"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["rule_id"].as_str().unwrap().to_string(),
                        f["location"].as_str().unwrap().to_string(),
                        f["line"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                found,
                vec![
                    ("secret.npm-token".into(), "/home/ci/.npmrc".into(), 2),
                    (
                        "secret.openssh-private-key".into(),
                        "/home/ci/.ssh/id_ed25519".into(),
                        1
                    ),
                ]
            );
        }
    }
}

#[test]
fn rules_list_and_explain_show_the_secret_detectors() {
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rules", "list", "--prefix", "secret.", "-f", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rules.as_array().unwrap().len() >= 40);
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rules", "explain", "secret.private-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PEM private key") && text.contains("NIST SP 800-190: 4.1.4"),
        "{text}"
    );
}
