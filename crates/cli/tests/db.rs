//! End-to-end: the real `palisade` binary runs `db import` and `db status`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-e2e-db-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn palisade(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shared_osv() -> Option<PathBuf> {
    let shared = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let osv = shared.join("data/osv");
    if osv.is_dir() {
        Some(osv)
    } else {
        eprintln!(
            "\n*** SKIPPED: {} not found (set PALISADE_SHARED) ***\n",
            osv.display()
        );
        None
    }
}

#[test]
fn import_then_status_with_the_shared_subset() {
    let Some(osv) = shared_osv() else { return };
    let dir = scratch("subset");
    let db = dir.join("vulndb.redb");
    let db_arg = db.to_str().unwrap();
    let out = palisade(&["db", "import", osv.to_str().unwrap(), "--db", db_arg], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("imported 246 advisories"), "{stdout}");
    assert!(stdout.contains("Go") && stdout.contains("203"), "{stdout}");

    let out = palisade(&["db", "status", "--db", db_arg, "--verify"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "schema      1",
        "advisories  246",
        "verified    yes",
        "checksum    sha256:",
        "crates.io",
    ] {
        assert!(stdout.contains(needle), "{needle} missing in\n{stdout}");
    }

    let out = palisade(&["db", "status", "--db", db_arg, "--format", "json"], &[]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["advisories"], 246);
    assert_eq!(status["per_ecosystem"]["PyPI"], 28);
    assert_eq!(status["checksum"].as_str().unwrap().len(), 64);
    assert!(status["age_seconds"].as_u64().unwrap() < 600);
}

#[test]
fn default_location_bad_files_and_errors() {
    let dir = scratch("default");
    let src = dir.join("osv");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("GHSA-x.json"),
        r#"{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(src.join("broken.json"), "{").unwrap();
    let data = dir.join("data");
    let out = palisade(
        &["db", "import", src.to_str().unwrap()],
        &[("XDG_DATA_HOME", &data)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("skipped") && stderr.contains("broken.json"),
        "{stderr}"
    );
    assert!(data.join("palisade/vulndb.redb").is_file());
    let out = palisade(&["db", "status", "--format", "json"], &[("XDG_DATA_HOME", &data)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Missing database, nothing importable, and a corrupt file: exit 2 with a clear message.
    let missing = dir.join("none.redb");
    let out = palisade(&["db", "status", "--db", missing.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("palisade db import"),
        "{}",
        text(&out.stderr)
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = palisade(
        &[
            "db",
            "import",
            empty.to_str().unwrap(),
            "--db",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nothing to import"),
        "{}",
        text(&out.stderr)
    );
    let corrupt = dir.join("corrupt.redb");
    std::fs::write(&corrupt, b"definitely not redb").unwrap();
    let out = palisade(&["db", "status", "--db", corrupt.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a readable palisade vulnerability database"),
        "{}",
        text(&out.stderr)
    );
}
