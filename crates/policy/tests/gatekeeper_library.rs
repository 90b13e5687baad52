//! Acceptance: every suite of the Gatekeeper library (../shared/data/gatekeeper-library) passes,
//! 270 of 270 cases, with `gator verify` semantics, and every case gives the same result on the
//! register VM (for the templates that use it) as on the interpreter.

use palisade_policy::suite::{RunOptions, SuiteFiles, is_suite, run_suite};
use palisade_policy::{AdmissionRequest, PolicySet, RegoEngine};
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

/// Every file called `name` under `dir`, in path order.
fn find_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            find_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

/// The templates the static check puts on the VM. A change here is a change in which code
/// evaluates a policy: review it (docs/design-notes.md says why the others are refused).
const ON_THE_VM: [&str; 38] = [
    "k8sallowedrepos",
    "k8sallowedreposv2",
    "k8sblockendpointeditdefaultrole",
    "k8sblockloadbalancer",
    "k8sblocknodeport",
    "k8sblockwildcardingress",
    "k8scontainerephemeralstoragelimit",
    "k8scontainerlimits",
    "k8scontainerratios",
    "k8scontainerrequests",
    "k8sdisallowanonymous",
    "k8sdisallowedrepos",
    "k8sdisallowedtags",
    "k8sdisallowinteractivetty",
    "k8sexternalips",
    "k8shttpsonly",
    "k8simagedigests",
    "k8spoddisruptionbudget",
    "k8spspallowprivilegeescalationcontainer",
    "k8spspautomountserviceaccounttokenpod",
    "k8spspcapabilities",
    "k8spspflexvolumes",
    "k8spspfsgroup",
    "k8spsphostnamespace",
    "k8spsphostnetworkingports",
    "k8spsphostprocess",
    "k8spspprivilegedcontainer",
    "k8spspreadonlyrootfilesystem",
    "k8spspselinuxv2",
    "k8spspvolumetypes",
    "k8sreplicalimits",
    "k8srequiredannotations",
    "k8srequiredresources",
    "k8sstorageclass",
    "k8suniqueingresshost",
    "k8suniqueserviceselector",
    "noupdateserviceaccount",
    "verifydeprecatedapi",
];

#[test]
fn the_vm_runs_the_templates_it_cannot_disagree_on() {
    let library = shared_dir().join("data/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!("\n\n*** SKIPPED: Gatekeeper library not found ***\n\n");
        return;
    }
    let mut templates = Vec::new();
    find_named(&library, "template.yaml", &mut templates);
    let mut set = PolicySet::new();
    for path in &templates {
        let text = std::fs::read_to_string(path).unwrap();
        set.add_template(&palisade_k8s::parse_documents(&text).unwrap()[0])
            .unwrap();
    }
    let engines = set.template_engines();
    assert_eq!(engines.len(), 49);
    for t in engines.iter().filter(|t| !t.vm) {
        eprintln!("interpreter: {}: {}", t.name, t.reason.as_deref().unwrap_or(""));
    }
    let mut on_vm: Vec<&str> = engines.iter().filter(|t| t.vm).map(|t| t.name.as_str()).collect();
    on_vm.sort_unstable();
    assert_eq!(on_vm, ON_THE_VM);
    // The get_probe conflict (two probes on one container) is real: that template must stay.
    assert!(!on_vm.contains(&"k8spsphostprobeslifecycle"));
    // The quantity templates run on the VM only for reviews without astral characters.
    let conditional: Vec<&str> = engines
        .iter()
        .filter(|t| t.condition.is_some())
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        conditional,
        [
            "k8scontainerephemeralstoragelimit",
            "k8scontainerlimits",
            "k8scontainerratios",
            "k8scontainerrequests",
        ]
    );

    set.set_rego_engine(RegoEngine::Interpreter);
    assert!(set.template_engines().iter().all(|t| !t.vm && t.reason.is_none()));
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
    find_named(&library, "suite.yaml", &mut suites);
    assert_eq!(suites.len(), 49, "expected the 49 library suites");
    let options = RunOptions {
        compare_engines: true,
        ..RunOptions::default()
    };
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

/// Values of every type, to put in place of a node of a test object.
fn replacements() -> Vec<Value> {
    vec![
        serde_json::json!(false),
        serde_json::json!("\u{1F600}k"),
        serde_json::json!(-1),
        serde_json::json!([]),
        serde_json::json!({}),
        Value::Null,
        serde_json::json!("100m"),
        serde_json::json!(true),
    ]
}

/// Every node of `v` under `spec` and `metadata` (JSON pointers), at most `limit`.
fn node_paths(v: &Value, at: String, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if at.is_empty() && k != "spec" && k != "metadata" {
                    continue;
                }
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                node_paths(child, p, out, limit);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                node_paths(child, p, out, limit);
            }
        }
        _ => {}
    }
}

/// One case of a library suite: its test's template and constraint, and its object.
struct LibraryCase {
    template: Value,
    constraint: Value,
    /// `<suite dir> <object file>`, for messages.
    name: String,
    object: Value,
}

/// Every case of every library suite whose test names a template and a constraint, grouped by
/// test (the template's name and constraint's position stay the same within a group).
fn library_tests() -> Option<Vec<Vec<LibraryCase>>> {
    let library = shared_dir().join("data/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!("\n\n*** SKIPPED: Gatekeeper library not found ***\n\n");
        return None;
    }
    let mut suites = Vec::new();
    find_named(&library, "suite.yaml", &mut suites);
    let mut tests = Vec::new();
    for path in &suites {
        let dir = path.parent().unwrap();
        let read = |p: &str| -> Vec<Value> {
            let text = std::fs::read_to_string(dir.join(p)).unwrap();
            palisade_k8s::parse_documents(&text).unwrap()
        };
        let text = std::fs::read_to_string(path).unwrap();
        let suite = palisade_k8s::parse_documents(&text)
            .unwrap()
            .into_iter()
            .find(is_suite)
            .unwrap();
        for test in suite["tests"].as_array().into_iter().flatten() {
            let (Some(template), Some(constraint)) = (test["template"].as_str(), test["constraint"].as_str())
            else {
                continue;
            };
            let (template, constraint) = (read(template).remove(0), read(constraint).remove(0));
            let cases = test["cases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|case| case["object"].as_str())
                .map(|object| LibraryCase {
                    template: template.clone(),
                    constraint: constraint.clone(),
                    name: format!("{} {object}", dir.display()),
                    object: read(object).remove(0),
                })
                .collect();
            tests.push(cases);
        }
    }
    Some(tests)
}

/// The case's object with one node at a time (its `spec` and `metadata`, and `extra` pointers
/// into the whole document) replaced by each of `replacements`, as requests, with a label.
fn mutated_requests<'a>(
    original: &'a Value,
    extra: &'a [&'a str],
    replacements: &'a [Value],
) -> impl Iterator<Item = (String, AdmissionRequest)> + 'a {
    let review_root = original["kind"] == "AdmissionReview";
    let target = if review_root {
        original
            .pointer("/request/object")
            .cloned()
            .unwrap_or(Value::Null)
    } else {
        original.clone()
    };
    let mut paths = Vec::new();
    node_paths(&target, String::new(), &mut paths, 80);
    let mut pointers: Vec<String> = paths
        .into_iter()
        .map(|p| {
            if review_root {
                format!("/request/object{p}")
            } else {
                p
            }
        })
        .collect();
    if review_root {
        pointers.extend(extra.iter().map(|p| p.to_string()));
    }
    pointers.into_iter().flat_map(move |p| {
        replacements.iter().filter_map(move |r| {
            let mut mutated = original.clone();
            *mutated.pointer_mut(&p)? = r.clone();
            let request = if review_root {
                AdmissionRequest::from_admission_review(&mutated)
            } else {
                AdmissionRequest::from_object(&mutated)
            };
            Some((format!("{p} = {r}"), request.ok()?))
        })
    })
}

fn request_of(object: &Value) -> Option<AdmissionRequest> {
    if object["kind"] == "AdmissionReview" {
        AdmissionRequest::from_admission_review(object).ok()
    } else {
        AdmissionRequest::from_object(object).ok()
    }
}

/// How two reviews of one request differ in what a caller sees: violations, and errors by kind.
fn disagreement(a: &palisade_policy::Review, b: &palisade_policy::Review) -> Option<String> {
    let kinds = |r: &palisade_policy::Review| r.errors.iter().map(std::mem::discriminant).collect::<Vec<_>>();
    if a.violations == b.violations && kinds(a) == kinds(b) {
        return None;
    }
    let show = |r: &palisade_policy::Review| {
        format!(
            "{:?} {:?}",
            r.violations.iter().map(|v| &v.msg).collect::<Vec<_>>(),
            r.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        )
    };
    Some(format!("{} / {}", show(a), show(b)))
}

/// Beyond the suites: every case object of every test whose template runs on the VM, with one
/// node at a time replaced by a value of another type (`false`, an astral-character string, a
/// negative number, empty collections, null), reviewed on both evaluators. Inputs like these are
/// where the two could part (a `false` field, a string where a number was); they must not.
#[test]
fn mutated_library_objects_get_the_same_answer_on_both_evaluators() {
    let Some(tests) = library_tests() else { return };
    let replacements = replacements();
    let (mut reviews, mut differences) = (0, Vec::new());
    for cases in &tests {
        let Some(first) = cases.first() else { continue };
        let mut auto = PolicySet::new();
        if auto.add_template(&first.template).is_err()
            || auto.add_constraint(&first.constraint).is_err()
            || !auto.template_engines()[0].vm
        {
            continue;
        }
        let mut interpreter = auto.clone();
        interpreter.set_rego_engine(RegoEngine::Interpreter);
        for case in cases {
            for (label, request) in mutated_requests(&case.object, &[], &replacements) {
                reviews += 1;
                if let Some(d) = disagreement(&auto.review(&request), &interpreter.review(&request)) {
                    differences.push(format!("{} {label}: vm / interpreter {d}", case.name));
                }
            }
        }
    }
    for d in &differences {
        eprintln!("DIFF {d}");
    }
    eprintln!("{reviews} mutated reviews on both evaluators");
    assert!(reviews > 10_000, "{reviews}");
    assert!(differences.is_empty(), "{} differences", differences.len());
}

/// Remembered decisions (design note 28) against fresh ones: every case object of every library
/// test, then each with one node at a time replaced (as above, plus another string and another
/// number, and the request's operation, user and old object when the case is an AdmissionReview),
/// reviewed by a set that remembers decisions across all of them and by one that remembers
/// none. A path a template reads but its footprint leaves out shows up here as a remembered
/// verdict that a fresh evaluation contradicts.
#[test]
fn remembered_decisions_agree_with_fresh_ones_on_mutated_library_objects() {
    let Some(tests) = library_tests() else { return };
    let mut replacements = replacements();
    replacements.extend([serde_json::json!("another"), serde_json::json!(7)]);
    let extra = [
        "/request/operation",
        "/request/userInfo/username",
        "/request/oldObject",
        "/request/name",
    ];
    let (mut reviews, mut remembered, mut differences) = (0, 0, Vec::new());
    for cases in &tests {
        let Some(first) = cases.first() else { continue };
        let mut fresh = PolicySet::new();
        if fresh.add_template(&first.template).is_err() || fresh.add_constraint(&first.constraint).is_err() {
            continue;
        }
        let mut cached = fresh.clone();
        cached.set_decision_cache(1 << 16);
        for case in cases {
            let Some(original) = request_of(&case.object) else {
                continue;
            };
            // The original first and last: a decision remembered from a mutation must not
            // answer for it either.
            let variants = std::iter::once(("original".to_string(), original.clone()))
                .chain(mutated_requests(&case.object, &extra, &replacements))
                .chain(std::iter::once(("original again".to_string(), original)));
            for (label, request) in variants {
                let a = cached.review(&request);
                reviews += 1;
                remembered += a.remembered;
                if let Some(d) = disagreement(&a, &fresh.review(&request)) {
                    differences.push(format!("{} {label}: remembered / fresh {d}", case.name));
                }
            }
        }
    }
    for d in differences.iter().take(50) {
        eprintln!("DIFF {d}");
    }
    eprintln!("{reviews} reviews, {remembered} decisions answered from the cache");
    assert!(reviews > 20_000, "{reviews}");
    // Most mutations touch something the template does not read: the cache must have answered.
    assert!(remembered > reviews / 4, "{remembered} of {reviews}");
    assert!(differences.is_empty(), "{} differences", differences.len());
}
