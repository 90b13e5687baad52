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
