//! A Rego memory bomb ends in an evaluation error at the process's memory limit, not in an
//! out-of-memory kill. Its own test binary: the limit is process-wide.

use palisade_policy::{AdmissionRequest, PolicyError, PolicySet};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_memory_bomb_stops_at_the_limit() {
    palisade_policy::set_memory_limit(Some(256 << 20));
    let mut set = PolicySet::new();
    // Plenty of time: the memory limit, not the clock, must stop it.
    set.set_time_budget(Duration::from_secs(60));
    // 4,000 x 4,000 pairs of arrays, about a gigabyte, driven by the input so it cannot run at
    // compile time.
    set.add_template(&json!({
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
        "metadata": {"name": "k8sbomb"},
        "spec": {"crd": {"spec": {"names": {"kind": "K8sBomb"}}},
                 "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": r#"package k8sbomb
n := numbers.range(1, count(input.review.object.metadata.name) * 4000)
violation[{"msg": "big"}] {
  x := [[i, j, "some padding to make each pair weigh more"] | n[i]; n[j]]
  count(x) > 0
}"#}]}
    }))
    .unwrap();
    // Proved safe for the register VM, so this checks the VM's evaluation stops at the limit.
    assert!(set.template_engines()[0].vm);
    set.add_constraint(
        &json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBomb",
                               "metadata": {"name": "bomb"}, "spec": {}}),
    )
    .unwrap();
    let pod = AdmissionRequest::from_object(&json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    let review = set.review(&pod);
    assert!(review.violations.is_empty());
    assert_eq!(review.errors.len(), 1, "{:?}", review.errors);
    let err = &review.errors[0];
    assert!(
        matches!(err, PolicyError::Memory { limit, .. } if *limit == 256 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("K8sBomb/bomb"), "{err}");

    // The memory is given back and evaluation goes on normally under the limit.
    let mut small = PolicySet::new();
    small
        .add_template(&json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8sname"},
            "spec": {"crd": {"spec": {"names": {"kind": "K8sName"}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh",
                                  "rego": "package k8sname\nviolation[{\"msg\": \"named p\"}] { input.review.object.metadata.name == \"p\" }"}]}
        }))
        .unwrap();
    small
        .add_constraint(
            &json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sName",
                                "metadata": {"name": "n"}, "spec": {}}),
        )
        .unwrap();
    let review = small.review(&pod);
    assert!(review.errors.is_empty(), "{:?}", review.errors);
    assert_eq!(review.violations.len(), 1);
}
