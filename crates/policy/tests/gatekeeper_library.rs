//! Acceptance: every suite of the Gatekeeper library (../shared/data/gatekeeper-library) passes,
//! 270 of 270 cases, with `gator verify` semantics.

use palisade_policy::suite::{RunOptions, SuiteFiles, is_suite, run_suite};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn shared_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Reads suite files relative to the suite's directory with the project's YAML loader.
struct DirFiles {
    dir: PathBuf,
}

impl SuiteFiles for DirFiles {
    fn read_documents(&self, path: &str) -> Result<Vec<Value>, String> {
        let full = self.dir.join(path);
        let text = std::fs::read_to_string(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        palisade_k8s::parse_documents(&text).map_err(|e| format!("{}: {e}", full.display()))
    }
}

fn find_suites(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            find_suites(&p, out);
        } else if p.file_name().is_some_and(|n| n == "suite.yaml") {
            out.push(p);
        }
    }
}

#[test]
fn gatekeeper_library_suites_all_pass() {
    let library = shared_dir().join("data/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!(
            "\n\n*** SKIPPED: Gatekeeper library not found at {} (set PALISADE_SHARED) ***\n\n",
            library.display()
        );
        return;
    }
    let mut suites = Vec::new();
    find_suites(&library, &mut suites);
    assert_eq!(suites.len(), 49, "expected the 49 library suites");
    let options = RunOptions::default();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for path in &suites {
        let text = std::fs::read_to_string(path).unwrap();
        let docs = palisade_k8s::parse_documents(&text).unwrap();
        let doc = docs.into_iter().find(is_suite).expect("a Suite document");
        let files = DirFiles {
            dir: path.parent().unwrap().to_path_buf(),
        };
        let result = run_suite(&doc, &files, &options);
        let counts = result.counts();
        passed += counts.passed;
        failed += counts.failed;
        skipped += counts.skipped;
        let rel = path.strip_prefix(&library).unwrap().display().to_string();
        if let Some(e) = &result.error {
            failures.push(format!("{rel}: {e}"));
        }
        for t in &result.tests {
            if let Some(e) = &t.error {
                failures.push(format!("{rel} / {}: {e}", t.name));
            }
            for c in &t.cases {
                if let Some(e) = &c.error {
                    failures.push(format!("{rel} / {} / {}: {e}", t.name, c.name));
                }
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!("{passed} passed, {failed} failed, {skipped} skipped");
    assert!(failures.is_empty(), "{} failures (see above)", failures.len());
    assert_eq!((passed, failed, skipped), (270, 0, 0));
}
