//! Image reference checks: tags, digests, pull policy and registry. References follow the Docker
//! reference grammar: `[registry[:port]/]path[:tag][@digest]`.

use super::{Pod, attack, describe, nist, nsa};
use palisade_core::{Category, Finding, Fixtures, RuleMeta, Severity};
use serde_json::Value;

/// An image reference split into its parts. Never fails: odd input gives odd but safe parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef<'a> {
    /// `registry.example.com:5000`; `None` when Docker Hub is implied.
    pub registry: Option<&'a str>,
    /// `library/nginx`, `kubernetesui/dashboard`.
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    pub fn parse(image: &'a str) -> ImageRef<'a> {
        let image = image.trim();
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d).filter(|d| !d.is_empty())),
            None => (image, None),
        };
        let (registry, rest) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), rest),
            _ => (None, name),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]).filter(|t| !t.is_empty()))
            }
            None => (rest, None),
        };
        ImageRef {
            registry,
            path,
            tag,
            digest,
        }
    }

    /// The last path component: `dashboard` for `kubernetesui/dashboard`.
    pub fn repository_name(&self) -> &'a str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }

    /// `registry/path` with Docker Hub's implied parts filled in: `nginx` → `docker.io/library/nginx`.
    pub fn normalized(&self) -> String {
        let registry = match self.registry {
            None | Some("index.docker.io") | Some("registry-1.docker.io") => "docker.io",
            Some(r) => r,
        };
        if registry == "docker.io" && !self.path.contains('/') {
            format!("docker.io/library/{}", self.path)
        } else {
            format!("{registry}/{}", self.path)
        }
    }

    pub fn is_latest(&self) -> bool {
        self.tag.is_some_and(|t| t.eq_ignore_ascii_case("latest"))
    }
}

/// Templating placeholders (`{{ .Values.image }}`, `$(IMAGE)`) are not references yet.
pub(crate) fn is_templated(image: &str) -> bool {
    image.contains(['{', '$', ' '])
}

pub(crate) fn check(pod: &Pod<'_, '_>, out: &mut Vec<Finding>) {
    for c in &pod.containers {
        let Some(image) = c.image.filter(|i| !i.trim().is_empty() && !is_templated(i)) else {
            continue;
        };
        let r = ImageRef::parse(image);
        let image_ptr = c.field("image");
        let who = describe(c);
        if r.digest.is_none() {
            if r.tag.is_none() {
                let msg = format!(
                    "{who} uses image {image:?} without a tag or digest, so it runs whatever `latest` is"
                );
                out.push(pod.finding(&NO_TAG, c, msg, &image_ptr));
            } else if r.is_latest() {
                let msg = format!("{who} uses the mutable `latest` tag ({image:?})");
                out.push(pod.finding(&LATEST_TAG, c, msg, &image_ptr));
            } else {
                let msg = format!("{who} uses image {image:?} by tag only; pin it with @sha256 digest");
                out.push(pod.finding(&NO_DIGEST, c, msg, &image_ptr));
            }
            let explicit = c.value.get("imagePullPolicy").and_then(Value::as_str);
            let effective = explicit.unwrap_or(if r.tag.is_none() || r.is_latest() {
                "Always"
            } else {
                "IfNotPresent"
            });
            if effective != "Always" {
                let (ptr, how) = match explicit {
                    Some(_) => (c.field("imagePullPolicy"), "set to"),
                    None => (c.pointer.clone(), "defaulting to"),
                };
                let msg = format!(
                    "{who} uses mutable image {image:?} with imagePullPolicy {how} {effective}: nodes may run a stale or \
                     tampered cached copy"
                );
                out.push(pod.finding(&PULL_POLICY, c, msg, &ptr));
            }
        }
        if r.registry.is_none() {
            let msg = format!(
                "{who} pulls {image:?} from the implied registry docker.io; name the registry explicitly"
            );
            out.push(pod.finding(&IMPLICIT_REGISTRY, c, msg, &image_ptr));
        }
    }
}

#[cfg(test)]
const DIGEST: &str = "sha256:4c1e4f8e7f7a8e2c3b6d5a9f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5";

pub const NO_TAG: RuleMeta = RuleMeta {
    id: "image.no-tag",
    title: "Image has neither tag nor digest",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A container image is referenced without a tag and without a digest.",
    rationale: "An untagged reference means `latest`: what runs changes whenever someone pushes, deployments are not \
                reproducible, and a poisoned push reaches the cluster on the next pull.",
    remediation: "Reference a specific version tag and pin it by digest (`app:1.4.2@sha256:...`).",
    frameworks: &[
        nist("4.1.5"),
        nist("4.2.2"),
        nsa("Building secure container images"),
        attack("T1525"),
    ],
    fixtures: Fixtures {
        pass: &[
            super::GOOD_DEPLOYMENT,
            pod_with!(
                "      image: registry.example.com:5000/app@sha256:4c1e4f8e7f7a8e2c3b6d5a9f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5\n"
            ),
        ],
        fail: &[pod_with!("      image: registry.example.com:5000/app\n")],
    },
};

pub const LATEST_TAG: RuleMeta = RuleMeta {
    id: "image.latest-tag",
    title: "Image uses the latest tag",
    severity: Severity::Medium,
    category: Category::Misconfiguration,
    description: "A container image is referenced by the mutable `latest` tag without a digest.",
    rationale: "`latest` points at a different image after every push: rollbacks do not roll back, nodes run \
                different code, and vulnerability scans describe an image that may no longer be the one running.",
    remediation: "Use an immutable version tag and pin the digest.",
    frameworks: &[
        nist("4.1.5"),
        nist("4.2.2"),
        nsa("Building secure container images"),
        attack("T1525"),
    ],
    fixtures: Fixtures {
        pass: &[
            super::GOOD_DEPLOYMENT,
            pod_with!(
                "      image: nginx:latest@sha256:4c1e4f8e7f7a8e2c3b6d5a9f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5\n"
            ),
        ],
        fail: &[pod_with!("      image: docker.io/library/nginx:latest\n")],
    },
};

pub const NO_DIGEST: RuleMeta = RuleMeta {
    id: "image.no-digest",
    title: "Image is not pinned by digest",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container image has a version tag but no `@sha256:` digest. (Untagged and `latest` images are \
                  reported by image.no-tag and image.latest-tag instead.)",
    rationale: "Tags are mutable: a registry compromise or a careless re-push changes what a tag means. Only a digest \
                names exactly the image that was built, scanned and approved.",
    remediation: "Append the digest of the approved image (`app:1.4.2@sha256:...`); let a bot such as Renovate keep \
                  it current.",
    frameworks: &[
        nist("4.1.5"),
        nist("4.2.2"),
        nsa("Building secure container images"),
        attack("T1525"),
    ],
    fixtures: Fixtures {
        pass: &[super::GOOD_DEPLOYMENT],
        fail: &[pod_with!("      image: registry.example.com/shop/app:1.4.2\n")],
    },
};

pub const PULL_POLICY: RuleMeta = RuleMeta {
    id: "image.pull-policy",
    title: "Mutable image not pulled with imagePullPolicy Always",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "A container image is not pinned by digest and its effective imagePullPolicy (explicit, or the \
                  default `IfNotPresent` for tagged images) is not `Always`.",
    rationale: "With a mutable reference and a cached copy, different nodes run different images, and a pod can use \
                an image its service account is not authorized to pull because another pod pulled it before.",
    remediation: "Pin images by digest, or set `imagePullPolicy: Always` (and enable the AlwaysPullImages admission \
                  plugin on multi-tenant clusters).",
    frameworks: &[nist("4.2.2"), nist("4.1.5"), attack("T1525")],
    fixtures: Fixtures {
        pass: &[
            super::GOOD_DEPLOYMENT,
            pod_with!("      image: registry.example.com/app:2.0\n      imagePullPolicy: Always\n"),
        ],
        fail: &[
            pod_with!("      image: registry.example.com/app:latest\n      imagePullPolicy: IfNotPresent\n"),
            pod_with!("      image: registry.example.com/app:2.0\n"),
        ],
    },
};

pub const IMPLICIT_REGISTRY: RuleMeta = RuleMeta {
    id: "image.implicit-registry",
    title: "Image registry is implied (docker.io)",
    severity: Severity::Info,
    category: Category::Misconfiguration,
    description: "A container image reference names no registry, so the runtime pulls it from Docker Hub.",
    rationale: "Images from a public registry bypass an organisation's trusted registry, its scanning and its \
                signature checks; a short name can also resolve differently under runtime mirror settings.",
    remediation: "Mirror the image into a trusted registry and reference it by its full name \
                  (`registry.example.com/team/app:1.2@sha256:...`).",
    frameworks: &[
        nist("4.1.5"),
        nsa("Building secure container images"),
        attack("T1525"),
    ],
    fixtures: Fixtures {
        pass: &[super::GOOD_DEPLOYMENT],
        fail: &[pod_with!("      image: nginx:1.27.0\n")],
    },
};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("reg:5000/app");
        assert_eq!(
            (r.registry, r.path, r.tag, r.digest),
            (Some("reg:5000"), "app", None, None)
        );
        let r = ImageRef::parse("reg:5000/team/app:1.0");
        assert_eq!(
            (r.registry, r.path, r.tag),
            (Some("reg:5000"), "team/app", Some("1.0"))
        );
        let r = ImageRef::parse("nginx@sha256:abc");
        assert_eq!(
            (r.registry, r.path, r.tag, r.digest),
            (None, "nginx", None, Some("sha256:abc"))
        );
        let r = ImageRef::parse("ghcr.io/o/app:v1@sha256:abc");
        assert_eq!(
            (r.registry, r.tag, r.digest),
            (Some("ghcr.io"), Some("v1"), Some("sha256:abc"))
        );
        let r = ImageRef::parse("localhost/app:LATEST");
        assert!(r.is_latest() && r.registry == Some("localhost"));
        let r = ImageRef::parse("kubernetesui/dashboard:v2.7.0");
        assert_eq!((r.registry, r.repository_name()), (None, "dashboard"));
        for odd in ["", ":", "@", "/", "a:", "::::", "@@", "a/b/c:d:e@f@g"] {
            let _ = ImageRef::parse(odd);
        }
    }

    fn one(image: Value, extra: Value) -> Vec<Finding> {
        let mut c = json!({"name": "c", "image": image});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        scan(&pod(json!({"containers": [c]})))
    }

    #[test]
    fn tag_digest_and_policy() {
        let f = one(json!("reg:5000/app"), json!({}));
        assert!(
            has(&f, "image.no-tag") && !has(&f, "image.pull-policy") && !has(&f, "image.implicit-registry")
        );
        let f = one(json!("app:latest"), json!({"imagePullPolicy": "IfNotPresent"}));
        assert!(has(&f, "image.latest-tag") && has(&f, "image.pull-policy"));
        assert_eq!(
            with_rule(&f, "image.pull-policy")[0]
                .evidence
                .as_ref()
                .unwrap()
                .pointer,
            "/spec/containers/0/imagePullPolicy"
        );
        let f = one(json!("ghcr.io/o/app:1.0"), json!({}));
        assert!(has(&f, "image.no-digest") && has(&f, "image.pull-policy") && !has(&f, "image.latest-tag"));
        let f = one(
            json!(format!("ghcr.io/o/app:1.0@{DIGEST}")),
            json!({"imagePullPolicy": "IfNotPresent"}),
        );
        assert!(f.iter().all(|f| !f.rule_id.starts_with("image.")), "{f:?}");
        let f = one(json!(format!("app@{DIGEST}")), json!({}));
        assert!(!has(&f, "image.no-tag") && has(&f, "image.implicit-registry"));
        // Wrong types and templates are ignored, not reported or panicked on.
        assert!(!has(&one(json!(42), json!({})), "image.no-tag"));
        assert!(!has(
            &one(json!("{{ .Values.image }}"), json!({})),
            "image.no-tag"
        ));
        assert!(!has(
            &one(json!("app"), json!({"imagePullPolicy": 7})),
            "image.pull-policy"
        ));
    }
}
