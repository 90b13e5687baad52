//! Measures the CPU cost of one Pod review through every Gatekeeper library template, each with
//! the constraint of its first sample (the same policy set as `scripts/bench/admission.sh`).
//! Reports mean CPU µs per review and the ten most expensive templates.
//!
//! ```sh
//! cargo run --release -p palisade-policy --example review_bench [ITERATIONS] [auto|interpreter]
//! ```
//!
//! The second argument picks the Rego evaluator (default `auto`: the register VM for the
//! templates the static check admits).
//!
//! `CACHE=N` remembers up to N decisions (the webhook's `--decision-cache`), and `VARY` says how
//! the reviews differ from each other: `none` (default: one review, repeated), `name` (each Pod
//! a new name and request uid, as a ReplicaSet's Pods are) or `spec` (also a new image tag for
//! each, so no remembered decision about the containers applies). `FOOTPRINT=1` lists what each
//! template's decisions are keyed by.
//!
//! CPU time comes from the thread's scheduler statistics, so other load on the machine inflates
//! wall time but not the figure. Linux only.

use palisade_policy::{AdmissionRequest, PolicySet, RegoEngine};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The AdmissionReview of `scripts/bench/admission.sh`: two containers, resources, probes and a
/// securityContext, in a namespace the sample constraints select.
const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"bench","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "name":"web-7d9f8","namespace":"default","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts"]},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d9f8","namespace":"default","labels":{"app":"web","owner":"shop"}},
  "spec":{"serviceAccountName":"web","securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
   "containers":[
    {"name":"app","image":"openpolicyagent/opa:0.9.2","ports":[{"containerPort":8080}],
     "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"256Mi"}},
     "securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}},
     "livenessProbe":{"httpGet":{"path":"/healthz","port":8080}},"readinessProbe":{"httpGet":{"path":"/ready","port":8080}}},
    {"name":"proxy","image":"openpolicyagent/envoy:1.30","resources":{"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"cpu":"200m","memory":"128Mi"}},
     "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}"#;

const WARMUP: usize = 50;
const BATCHES: usize = 10;

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ITERATIONS must be a number"))
        .unwrap_or(500);
    let engine: RegoEngine = std::env::args()
        .nth(2)
        .map(|e| e.parse().expect("ENGINE must be auto or interpreter"))
        .unwrap_or_default();
    let shared = std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let library = shared.join("data/gatekeeper-library/library");
    let mut templates = Vec::new();
    find(&library, "template.yaml", &mut templates);
    sort_like_shell(&mut templates);
    assert!(!templates.is_empty(), "no templates under {}", library.display());

    let mut set = PolicySet::new();
    set.set_rego_engine(engine);
    // THREADS=N spreads each review over N threads (the webhook's --review-threads).
    if let Some(n) = std::env::var("THREADS").ok().and_then(|n| n.parse().ok()) {
        set.set_review_threads(n);
    }
    if let Some(n) = std::env::var("CACHE").ok().and_then(|n| n.parse().ok()) {
        set.set_decision_cache(n);
    }
    let mut constraints = 0;
    let only = std::env::var("ONLY").ok();
    for path in &templates {
        if let Some(only) = &only
            && !path.to_string_lossy().contains(only.as_str())
        {
            continue;
        }
        let template = &documents(path)[0];
        if let Err(e) = set.add_template(template) {
            eprintln!("skipped {}: {e}", path.display());
            continue;
        }
        let mut samples = Vec::new();
        find(
            &path.parent().unwrap().join("samples"),
            "constraint",
            &mut samples,
        );
        sort_like_shell(&mut samples);
        if let Some(sample) = samples.first() {
            set.add_constraint(&documents(sample)[0]).unwrap();
            constraints += 1;
        }
    }

    let vary = std::env::var("VARY").unwrap_or_else(|_| "none".into());
    let batch = iterations.div_ceil(BATCHES);
    // Made before the clock starts: one request per review when they vary.
    let requests: Vec<AdmissionRequest> = (0..if vary == "none" {
        1
    } else {
        WARMUP + 1 + batch * BATCHES
    })
        .map(|i| {
            let mut review: Value = serde_json::from_str(REVIEW).unwrap();
            let r = &mut review["request"];
            match vary.as_str() {
                "none" => {}
                "name" | "spec" => {
                    let name = format!("web-7d9f8-{i:05}");
                    r["uid"] = format!("bench-{i}").into();
                    r["name"] = name.clone().into();
                    r["object"]["metadata"]["name"] = name.into();
                    if vary == "spec" {
                        r["object"]["spec"]["containers"][0]["image"] =
                            format!("openpolicyagent/opa:0.9.{i}").into();
                    }
                }
                other => panic!("VARY must be none, name or spec, not {other:?}"),
            }
            AdmissionRequest::from_admission_review(&review).unwrap()
        })
        .collect();
    let mut next = requests.iter().cycle();
    for _ in 0..WARMUP {
        std::hint::black_box(set.review(next.next().unwrap()));
    }
    let first = set.review(next.next().unwrap());
    for e in &first.errors {
        eprintln!("evaluation error: {e}");
    }
    let mut per_template: BTreeMap<String, Duration> = BTreeMap::new();
    // Ten batches: the mean over all of them, and the cheapest batch, which is the steadier figure
    // when other processes compete for the cores (caches, frequency).
    let mut batches = Vec::new();
    for _ in 0..BATCHES {
        let started = thread_cpu();
        for _ in 0..batch {
            let review = set.review(next.next().unwrap());
            for (template, spent) in review.timings {
                *per_template.entry(template).or_default() += spent;
            }
        }
        batches.push(thread_cpu() - started);
    }
    let iterations = batch * BATCHES;
    let spent: Duration = batches.iter().sum();
    let best = batches.iter().min().copied().unwrap_or_default();

    let on_vm = set.template_engines().iter().filter(|t| t.vm).count();
    println!("engine {engine:?}: {on_vm} templates on the VM");
    let (hits, misses) = set.decision_cache_counts();
    if hits + misses > 0 {
        println!(
            "decision cache (VARY={vary}): {hits} answered, {misses} evaluated ({:.1}% answered)",
            hits as f64 * 100.0 / (hits + misses) as f64
        );
    }
    if std::env::var_os("FOOTPRINT").is_some() {
        for t in set.template_engines() {
            println!("  {:<40} {}", t.name, t.remembered_by);
        }
    }
    if std::env::var_os("WHY").is_some() {
        for t in set.template_engines().iter().filter(|t| !t.vm) {
            println!("  interpreter: {}: {}", t.name, t.reason.as_deref().unwrap_or(""));
        }
    }
    println!(
        "{} templates, {constraints} constraints; {} evaluated, {} violations, {} not evaluated, {} errors",
        templates.len(),
        first.timings.len(),
        first.violations.len(),
        first.not_evaluated.len(),
        first.errors.len()
    );
    println!(
        "{iterations} reviews: {:.0} µs CPU per review (mean), {:.0} µs in the cheapest of {BATCHES} batches",
        spent.as_secs_f64() * 1e6 / iterations as f64,
        best.as_secs_f64() * 1e6 / batch as f64
    );
    // The templates `auto` puts on the VM, whichever engine this run uses.
    set.set_rego_engine(RegoEngine::Auto);
    let vm_names: Vec<String> = set
        .template_engines()
        .into_iter()
        .filter(|t| t.vm)
        .map(|t| t.name)
        .collect();
    set.set_rego_engine(engine);
    let on_vm_total: Duration = per_template
        .iter()
        .filter(|(name, _)| vm_names.contains(name))
        .map(|(_, spent)| *spent)
        .sum();
    println!(
        "the {} templates `auto` runs on the VM: {:.0} µs per review together (wall)",
        vm_names.len(),
        on_vm_total.as_secs_f64() * 1e6 / iterations as f64
    );
    let mut ranked: Vec<_> = per_template.into_iter().collect();
    ranked.sort_by_key(|(_, spent)| std::cmp::Reverse(*spent));
    println!("top 10 templates (wall µs per review, includes measurement overhead):");
    for (template, total) in ranked.iter().take(10) {
        println!(
            "  {template:<40} {:>7.1}",
            total.as_secs_f64() * 1e6 / iterations as f64
        );
    }
}

/// Files under `dir` whose name starts with `prefix` and ends in `.yaml`.
fn find(dir: &Path, prefix: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for p in entries.map(|e| e.unwrap().path()) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            find(&p, prefix, out);
        } else if name.starts_with(prefix) && name.ends_with(".yaml") {
            out.push(p);
        }
    }
}

/// `find | sort` order (byte order of the whole path, so `a-b/` sorts before `a/`), which picks
/// the same templates and first samples as the admission bench script.
fn sort_like_shell(paths: &mut [PathBuf]) {
    paths.sort_by_key(|p| p.to_string_lossy().into_owned());
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    palisade_k8s::parse_documents(&text).unwrap()
}

/// CPU time this thread has run (the first field of /proc/thread-self/schedstat, in ns).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    let ns: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}
