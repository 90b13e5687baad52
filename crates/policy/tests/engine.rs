//! Engine behaviour beyond the library suites: time budget against adversarial templates,
//! malformed input never panics, matching and enforcement actions reach the violations, and the
//! cost of one Pod review through all library templates.

use palisade_policy::{AdmissionRequest, EnforcementAction, PolicyError, PolicySet, RegoEngine};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::{constraint, template};

fn pod(ns: &str) -> AdmissionRequest {
    AdmissionRequest::from_object(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap()
}

#[test]
fn an_exponential_policy_ends_with_a_budget_error() {
    for engine in [RegoEngine::Auto, RegoEngine::Interpreter] {
        let mut set = PolicySet::new();
        set.set_rego_engine(engine);
        set.set_time_budget(Duration::from_millis(50));
        // 10^4 * 10^4 * 10^4 iterations, driven by the input so it cannot run at compile time.
        set.add_template(&template(
            "K8sSlow",
            r#"package k8sslow
n := numbers.range(1, count(input.review.object.metadata.name) * 10000)
violation[{"msg": "slow"}] {
  x := [1 | n[_]; n[_]; n[_]]
  count(x) > 0
}"#,
        ))
        .unwrap();
        assert_eq!(
            set.template_engines()[0].vm,
            engine == RegoEngine::Auto,
            "{engine:?}"
        );
        set.add_constraint(&constraint("K8sSlow", "slow", json!({})))
            .unwrap();
        // A spent budget depends on the load, not the review: never remembered.
        set.set_decision_cache(16);
        for _ in 0..2 {
            let start = Instant::now();
            let review = set.review(&pod("a"));
            let elapsed = start.elapsed();
            assert!(review.violations.is_empty());
            assert_eq!(
                (review.errors.len(), review.remembered),
                (1, 0),
                "{:?}",
                review.errors
            );
            let err = &review.errors[0];
            assert!(matches!(err, PolicyError::Budget { .. }), "{engine:?}: {err}");
            assert!(err.to_string().contains("K8sSlow/slow"), "{err}");
            assert!(elapsed < Duration::from_secs(2), "{engine:?} took {elapsed:?}");
        }
    }
}

/// The evaluators agree where OPA's defaults matter: a failing built-in makes its expression
/// undefined (no error), and `data.inventory` replaced after the template was added is read.
#[test]
fn the_vm_keeps_opa_defaults_and_reads_the_inventory() {
    let rego = r#"package k8sdefaults
violation[{"msg": "bad number"}] {
  n := to_number(input.review.object.metadata.name)
  n > 0
}
violation[{"msg": "undefined sprintf is undefined"}] {
  x := sprintf("%v", input.review.object.metadata.name)
  x == "never"
}
violation[{"msg": msg}] {
  other := data.inventory.namespace[ns]["v1"]["Pod"][name]
  other.metadata.labels.app == input.review.object.metadata.labels.app
  msg := sprintf("app label taken by %v/%v", [ns, name])
}"#;
    let labelled = |ns: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    };
    let mut results = Vec::new();
    for engine in [RegoEngine::Auto, RegoEngine::Interpreter] {
        let mut set = PolicySet::new();
        set.set_rego_engine(engine);
        set.add_template(&template("K8sDefaults", rego)).unwrap();
        assert_eq!(set.template_engines()[0].vm, engine == RegoEngine::Auto);
        set.add_constraint(&constraint("K8sDefaults", "d", json!({})))
            .unwrap();
        let request = AdmissionRequest::from_object(&labelled("a", "new")).unwrap();
        let before = set.review(&request);
        assert!(before.errors.is_empty(), "{engine:?}: {:?}", before.errors);
        assert!(before.violations.is_empty(), "{engine:?}");
        set.set_inventory(vec![labelled("b", "old")]).unwrap();
        let after = set.review(&request);
        assert!(after.errors.is_empty(), "{engine:?}: {:?}", after.errors);
        let messages: Vec<_> = after.violations.iter().map(|v| v.msg.clone()).collect();
        assert_eq!(messages, ["app label taken by b/old"], "{engine:?}");
        results.push(messages);
    }
    assert_eq!(results[0], results[1]);
}

/// `get_probe` of the library's host-probes template: a container with two probes gives two
/// outputs, which the interpreter reports as an error and the VM would make undefined. The
/// template stays on the interpreter, so the error (fail-closed) remains.
#[test]
fn a_conflicting_function_stays_on_the_interpreter_and_errors() {
    let mut set = PolicySet::new();
    set.add_template(&template(
        "K8sProbe",
        r#"package k8sprobe
get_probe(c) = p { p := c.livenessProbe }
get_probe(c) = p { p := c.readinessProbe }
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  probe := get_probe(c)
  msg := sprintf("probe %v", [probe])
}"#,
    ))
    .unwrap();
    let engines = set.template_engines();
    assert!(!engines[0].vm);
    let reason = engines[0].reason.as_deref().unwrap_or("");
    assert!(reason.contains("k8sprobe.get_probe"), "{reason}");
    set.add_constraint(&constraint("K8sProbe", "p", json!({})))
        .unwrap();
    let request = AdmissionRequest::from_object(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
        "spec": {"containers": [{"name": "c", "image": "nginx",
                                 "livenessProbe": {"httpGet": {"port": 1}},
                                 "readinessProbe": {"httpGet": {"port": 2}}}]}
    }))
    .unwrap();
    let review = set.review(&request);
    assert!(review.violations.is_empty());
    assert_eq!(review.errors.len(), 1, "{:?}", review.errors);
    let err = review.errors[0].to_string();
    assert!(err.contains("multiple outputs"), "{err}");
}

/// A policy set with one template of kind `kind`: the library's `get_suffix`, reduced to a one-
/// and a two-character suffix body, applied to `arg`: on `"😀k"` both succeed with different
/// outputs.
fn suffix_set(kind: &str, arg: &str) -> PolicySet {
    let mut set = PolicySet::new();
    set.add_template(&template(kind, &suffix_rego(&kind.to_ascii_lowercase(), arg)))
        .unwrap();
    set
}

fn suffix_rego(package: &str, arg: &str) -> String {
    format!(
        r#"package {package}
mem_multiple("k") = 1000 {{ true }}
mem_multiple("") = 1 {{ true }}
mem_multiple("Ki") = 1024 {{ true }}
get_suffix(mem) = suffix {{
  is_string(mem)
  count(mem) > 0
  suffix := substring(mem, count(mem) - 1, -1)
  mem_multiple(suffix)
}}
get_suffix(mem) = suffix {{
  is_string(mem)
  count(mem) > 1
  suffix := substring(mem, count(mem) - 2, -1)
  mem_multiple(suffix)
}}
violation[{{"msg": msg}}] {{
  msg := sprintf("suffix %v", [get_suffix({arg})])
}}"#
    )
}

/// Why the library's quantity templates run on the VM only for reviews within the BMP:
/// `get_suffix`'s one- and two-character bodies both succeed on a string with an astral
/// character (regorus' `count` counts UTF-16 units, `substring` characters), the interpreter
/// reports the conflict and the VM would not.
#[test]
fn the_quantity_suffix_conflict_is_real_and_goes_to_the_interpreter() {
    let mut set = suffix_set("K8sSuffix", "input.review.object.metadata.name");
    let engines = set.template_engines();
    assert!(engines[0].vm);
    assert!(
        engines[0]
            .condition
            .as_deref()
            .is_some_and(|c| c.contains("Basic Multilingual Plane")),
        "{engines:?}"
    );
    set.add_constraint(&constraint("K8sSuffix", "s", json!({})))
        .unwrap();
    let named = |name: &str| {
        AdmissionRequest::from_object(&json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "a"}
        }))
        .unwrap()
    };
    let plain = set.review(&named("1Ki"));
    assert!(plain.errors.is_empty(), "{:?}", plain.errors);
    assert_eq!(plain.violations[0].msg, "suffix Ki");
    let astral = set.review(&named("\u{1F600}k"));
    assert!(astral.violations.is_empty());
    assert_eq!(astral.errors.len(), 1, "{:?}", astral.errors);
    assert!(astral.errors[0].to_string().contains("multiple outputs"));
}

/// The BMP screen covers the constraint's parameters too: an astral character there sends the
/// review to the interpreter, which reports the conflict the VM would hide.
#[test]
fn an_astral_parameter_sends_the_quantity_check_to_the_interpreter() {
    let mut set = suffix_set("K8sSuffixParam", "input.parameters.q");
    assert!(set.template_engines()[0].condition.is_some());
    set.add_constraint(&constraint(
        "K8sSuffixParam",
        "plain",
        json!({"parameters": {"q": "1Ki"}}),
    ))
    .unwrap();
    set.add_constraint(&constraint(
        "K8sSuffixParam",
        "astral",
        json!({"parameters": {"q": "\u{1F600}k"}}),
    ))
    .unwrap();
    let review = set.review(&pod("a"));
    let msgs: Vec<_> = review
        .violations
        .iter()
        .map(|v| (v.constraint_name.as_str(), v.msg.as_str()))
        .collect();
    assert_eq!(msgs, [("plain", "suffix Ki")]);
    assert_eq!(review.errors.len(), 1, "{:?}", review.errors);
    let err = review.errors[0].to_string();
    assert!(
        err.contains("astral") && err.contains("multiple outputs"),
        "{err}"
    );
}

#[test]
fn rego_errors_name_the_template_and_line() {
    let mut set = PolicySet::new();
    let err = set
        .add_template(&template(
            "K8sBroken",
            "package k8sbroken\nviolation[{\"msg\": m}] {\n  m := \n}\n",
        ))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PolicyError::Rego { .. }), "{text}");
    assert!(text.contains("k8sbroken/rego:"), "{text}");
    let err = set
        .add_template(&template("K8sNoViolation", "package x\ndeny[m] { m := 1 }\n"))
        .unwrap_err();
    assert!(err.to_string().contains("violation"), "{err}");
}

#[test]
fn malformed_documents_are_errors_not_panics() {
    let mut set = PolicySet::new();
    for doc in [
        json!(null),
        json!("x"),
        json!({"kind": "ConstraintTemplate"}),
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "a"}}),
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k"},
               "spec": {"crd": {"spec": {"names": {"kind": "K"}}}, "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": 5}]}}),
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k"},
               "spec": {"crd": {"spec": {"names": {"kind": "K"}}}, "targets": [{"target": "admission.k8s.gatekeeper.sh",
               "code": [{"engine": "K8sNativeValidation", "source": {}}]}]}}),
        template(
            "K8sBad",
            "package k8sbad\nviolation[{\"msg\": m}] { m := \"unterminated }\n",
        ),
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k8slib"},
               "spec": {"crd": {"spec": {"names": {"kind": "K8sLib"}}}, "targets": [{"target": "admission.k8s.gatekeeper.sh",
               "rego": "package k8slib\nviolation[{\"msg\": \"x\"}] { true }\n", "libs": ["package inventory\nx := 1\n"]}]}}),
    ] {
        assert!(set.add_template(&doc).is_err(), "{doc}");
    }
    assert!(
        set.add_constraint(&constraint("Unknown", "c", json!({})))
            .is_err()
    );
    assert!(AdmissionRequest::from_object(&json!([1])).is_err());
    assert!(AdmissionRequest::from_object(&json!({"kind": "Pod"})).is_err());
    assert!(set.set_inventory(vec![json!(1)]).is_err());
}

#[test]
fn matching_enforcement_and_namespace_selector() {
    let mut set = PolicySet::new();
    set.add_template(&template(
        "K8sDeny",
        "package k8sdeny\nviolation[{\"msg\": msg, \"details\": {\"p\": object.get(input.parameters, \"p\", 0)}}] { msg := sprintf(\"%v in %v\", [input.review.name, input.review.namespace]) }\n",
    ))
    .unwrap();
    set.add_constraint(&constraint(
        "K8sDeny",
        "warn-prod",
        json!({"enforcementAction": "warn", "parameters": {"p": 1},
               "match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}], "namespaces": ["prod-*"]}}),
    ))
    .unwrap();
    set.add_constraint(&constraint(
        "K8sDeny",
        "by-label",
        json!({"match": {"namespaceSelector": {"matchLabels": {"tier": "gold"}}}}),
    ))
    .unwrap();

    let review = set.review(&pod("prod-1"));
    assert_eq!(review.violations.len(), 1);
    assert_eq!(review.violations[0].msg, "p in prod-1");
    assert_eq!(review.violations[0].details, json!({"p": 1}));
    assert_eq!(review.violations[0].enforcement_action, EnforcementAction::Warn);
    // Without the Namespace the selector cannot be decided: reported, never a pass.
    assert_eq!(review.not_evaluated.len(), 1);
    assert_eq!(review.not_evaluated[0].constraint_name, "by-label");

    set.set_inventory(vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod-1", "labels": {"tier": "gold"}}})])
        .unwrap();
    let review = set.review(&pod("prod-1"));
    assert!(review.not_evaluated.is_empty());
    assert_eq!(review.violations.len(), 2);
    let review = set.review(&pod("dev"));
    assert_eq!(review.violations.len(), 0);
    assert_eq!(review.not_evaluated.len(), 1);
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("PALISADE_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn collect(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, name, out);
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(name))
        {
            out.push(p);
        }
    }
}

/// One Pod review through all 49 library templates, each with one of its sample constraints.
/// Prints the figure; asserts only a generous bound (debug builds, a shared machine).
#[test]
fn cost_of_one_pod_review_through_the_library() {
    let library = shared_dir().join("data/gatekeeper-library/library");
    if !library.is_dir() {
        eprintln!(
            "\n\n*** SKIPPED: Gatekeeper library not found at {} ***\n\n",
            library.display()
        );
        return;
    }
    let load = |p: &Path| palisade_k8s::parse_documents(&std::fs::read_to_string(p).unwrap()).unwrap();
    let mut templates = Vec::new();
    collect(&library, "template.yaml", &mut templates);
    let mut set = PolicySet::new();
    let start = Instant::now();
    for t in &templates {
        set.add_template(&load(t)[0]).unwrap();
    }
    let compile = start.elapsed();
    for t in &templates {
        let mut constraints = Vec::new();
        collect(
            &t.parent().unwrap().join("samples"),
            "constraint",
            &mut constraints,
        );
        // One constraint per template: the first sample's, matched to Pods where it can be.
        if let Some(c) = constraints.first() {
            let mut doc = load(c).remove(0);
            if let Some(m) = doc.pointer_mut("/spec/match") {
                m["kinds"] = json!([{"apiGroups": ["*"], "kinds": ["*"]}]);
                if let Some(m) = m.as_object_mut() {
                    m.remove("namespaces");
                    m.remove("excludedNamespaces");
                }
            }
            set.add_constraint(&doc).unwrap();
        }
    }
    assert_eq!(set.templates().count(), 49);
    assert_eq!(set.constraints().count(), 49);
    let request = pod("default");
    let runs = 50;
    let start = Instant::now();
    let mut violations = 0;
    for _ in 0..runs {
        let review = set.review(&request);
        assert!(review.errors.is_empty(), "{:?}", review.errors);
        violations = review.violations.len();
    }
    let per_review = start.elapsed() / runs;
    eprintln!(
        "compiled {} templates in {compile:?}; one Pod review through {} constraints: {per_review:?} ({violations} violations)",
        templates.len(),
        set.constraints().count()
    );
    assert!(per_review < Duration::from_millis(500), "{per_review:?}");
}

fn pod_with(name: &str, spec: serde_json::Value) -> AdmissionRequest {
    AdmissionRequest::from_object(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "a"}, "spec": spec
    }))
    .unwrap()
}

/// Remembered decisions (design note 28): a Pod that differs only where the template does not
/// read is answered from memory; a difference where it reads, the kind of an aliased value, a
/// replaced template, constraint or inventory, or an error are never answered from memory.
#[test]
fn remembered_decisions_answer_only_for_what_the_template_reads() {
    let mut set = PolicySet::new();
    set.set_decision_cache(64);
    set.add_template(&template(
        "K8sNoX",
        r#"package k8snox
violation[{"msg": msg}] {
  spec := input.review.object.spec
  not spec.x
  msg := sprintf("no x (%v)", [input.parameters.note])
}"#,
    ))
    .unwrap();
    set.add_constraint(&constraint("K8sNoX", "c", json!({"parameters": {"note": "one"}})))
        .unwrap();
    let msgs = |set: &PolicySet, req: &AdmissionRequest| {
        let r = set.review(req);
        (
            r.violations.into_iter().map(|v| v.msg).collect::<Vec<_>>(),
            r.remembered,
        )
    };
    assert_eq!(
        msgs(&set, &pod_with("p1", json!({}))),
        (vec!["no x (one)".to_string()], 0)
    );
    // Another name: remembered.
    assert_eq!(
        msgs(&set, &pod_with("p2", json!({}))),
        (vec!["no x (one)".to_string()], 1)
    );
    // A value the template reads.
    assert_eq!(msgs(&set, &pod_with("p3", json!({"x": true}))), (vec![], 0));
    assert_eq!(msgs(&set, &pod_with("p4", json!({"x": true}))), (vec![], 1));
    // A spec that is not an object: `spec.x` is as absent as in `{}`, but the kind of the
    // aliased value is in the key.
    let mut fresh = set.clone();
    fresh.set_decision_cache(0);
    for spec in [json!(null), json!("s"), json!([])] {
        let req = pod_with("p5", spec);
        assert_eq!(msgs(&set, &req), (msgs(&fresh, &req).0, 0));
    }
    // A new constraint (other parameters) and a new template are decided afresh.
    set.add_constraint(&constraint("K8sNoX", "c", json!({"parameters": {"note": "two"}})))
        .unwrap();
    assert_eq!(
        msgs(&set, &pod_with("p6", json!({}))),
        (vec!["no x (two)".to_string()], 0)
    );
    set.set_inventory(vec![]).unwrap();
    assert_eq!(
        msgs(&set, &pod_with("p7", json!({}))),
        (vec!["no x (two)".to_string()], 0)
    );
    assert_eq!(
        msgs(&set, &pod_with("p8", json!({}))),
        (vec!["no x (two)".to_string()], 1)
    );
    // An evaluation error is as much a function of the review as a verdict: remembered.
    set.add_template(&template(
        "K8sNoX",
        r#"package k8snox
violation[{"msg": "bad"}] { x := input.review.object.spec.n + 1; x > 0 }
violation[{"msg": m}] { m := f(1) }
f(a) = 1 { a == 1 }
f(a) = 2 { a == 1 }"#,
    ))
    .unwrap();
    set.set_rego_engine(RegoEngine::Interpreter);
    for (name, remembered) in [("e1", 0), ("e2", 1)] {
        let r = set.review(&pod_with(name, json!({"n": 1})));
        assert_eq!((r.errors.len(), r.remembered), (1, remembered), "{:?}", r.errors);
        assert!(
            matches!(r.errors[0], PolicyError::Evaluation { .. }),
            "{}",
            r.errors[0]
        );
        assert!(r.errors[0].to_string().contains("K8sNoX/c"), "{}", r.errors[0]);
    }
    let (hits, misses) = set.decision_cache_counts();
    assert_eq!((hits, misses), (4, 8));
}
