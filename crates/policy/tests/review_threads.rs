//! A review spread over threads. In a file of its own: a review spreads only while it is the
//! only one in progress in the process, and the test harness runs one file's tests together.

use palisade_policy::{AdmissionRequest, PolicySet};
use serde_json::json;

mod common;
use common::{constraint, template};

/// Spreading a review over threads changes nothing in its outcome: the same violations and
/// errors in the same order as on one thread.
#[test]
fn a_review_over_several_threads_gives_the_one_thread_answer() {
    let mut set = PolicySet::new();
    set.add_template(&template(
        "K8sNeedsLabel",
        r#"package k8sneedslabel
violation[{"msg": msg}] {
  not input.review.object.metadata.labels[input.parameters.label]
  # Work enough that the other threads take constraints before this one is done.
  count([x | x := numbers.range(1, 3000)[_]]) > 0
  msg := sprintf("missing label %v", [input.parameters.label])
}"#,
    ))
    .unwrap();
    set.add_template(&template(
        "K8sTwoOutputs",
        "package k8stwooutputs\nf(x) = 1 { x.a }\nf(x) = 2 { x.b }\nviolation[{\"msg\": m}] { m := sprintf(\"%v\", [f({\"a\": 1, \"b\": 1})]) }",
    ))
    .unwrap();
    for i in 0..12 {
        set.add_constraint(&constraint(
            "K8sNeedsLabel",
            &format!("c{i:02}"),
            json!({"parameters": {"label": format!("l{}", i % 5)}}),
        ))
        .unwrap();
    }
    set.add_constraint(&constraint("K8sTwoOutputs", "e", json!({})))
        .unwrap();
    let request = AdmissionRequest::from_object(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "a", "labels": {"l1": "x", "l3": "y"}}
    }))
    .unwrap();
    let one = set.review(&request);
    assert_eq!(one.violations.len(), 7, "{:?}", one.violations);
    assert_eq!(one.errors.len(), 1, "{:?}", one.errors);
    let names = |r: &palisade_policy::Review| {
        r.violations
            .iter()
            .map(|v| (v.constraint_name.clone(), v.msg.clone()))
            .collect::<Vec<_>>()
    };
    set.set_review_threads(4);
    for _ in 0..20 {
        let many = set.review(&request);
        assert_eq!(names(&many), names(&one));
        assert_eq!(
            many.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            one.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        let order = |r: &palisade_policy::Review| r.timings.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
        assert_eq!(order(&many), order(&one));
    }
}
