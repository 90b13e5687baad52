//! Exceptions: a reviewed decision that a finding is accepted, with a reason and usually an expiry.
//! They come from an exceptions file or from an annotation on the object itself; an expired exception
//! stops applying and is itself reported, so accepted risk cannot silently become permanent.

use crate::glob::glob_match;
use crate::{Category, CoreError, Date, Finding, FindingStatus, Fixtures, FrameworkRef, RuleMeta, Severity};
use serde::{Deserialize, Serialize};

/// Annotation prefix for per-object exceptions: `exception.palisade.dev/<rule-id>: "reason; expires=YYYY-MM-DD"`.
pub const ANNOTATION_PREFIX: &str = "exception.palisade.dev/";

/// Reported once per expired exception so that it gets renewed or removed.
pub static EXPIRED_EXCEPTION_RULE: RuleMeta = RuleMeta {
    id: "exception.expired",
    title: "Exception has expired",
    severity: Severity::Low,
    category: Category::Misconfiguration,
    description: "An exception (from the exceptions file or an object annotation) is past its expiry date. \
                  It no longer suppresses findings.",
    rationale: "Accepted risk is accepted for a time. An expired exception means the decision is due for review; \
                the findings it covered are reported again until it is renewed or the cause is fixed.",
    remediation: "Fix the findings the exception covered, or review the decision and set a new expiry date.",
    frameworks: &[] as &[FrameworkRef],
    fixtures: Fixtures { pass: &[], fail: &[] },
};

/// Where an exception was written down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExceptionSource {
    /// From an exceptions file, with the 1-based index of the entry.
    File { path: String, entry: usize },
    /// From an annotation on the object the finding is about.
    Annotation { key: String },
}

impl ExceptionSource {
    pub fn describe(&self) -> String {
        match self {
            ExceptionSource::File { path, entry } => format!("{path} (entry {entry})"),
            ExceptionSource::Annotation { key } => format!("annotation {key}"),
        }
    }
}

/// One exception. Every selector is a glob; an absent selector matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exception {
    /// Rule ids or globs (`pss.*`). At least one, or a `vulnerability`, is required.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Shorthand for a single rule.
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// An advisory id or alias (`CVE-2021-44228`, `GHSA-*`), compared without regard to case;
    /// matches vulnerability findings only, whatever their rule when no rule is given.
    #[serde(default)]
    pub vulnerability: Option<String>,
    /// Package name (`log4j-core`, `org.apache.logging.log4j:log4j-core`) of a vulnerability finding.
    #[serde(default)]
    pub package: Option<String>,
    /// Package URL of a vulnerability finding (`pkg:maven/org.apache.logging.log4j/*`).
    #[serde(default)]
    pub purl: Option<String>,
    /// The file the finding is in (the package's manifest or lockfile for vulnerabilities).
    #[serde(default)]
    pub path: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub expires: Option<Date>,
    #[serde(skip)]
    pub source: Option<ExceptionSource>,
}

/// The top level of an exceptions file. Entries stay JSON values here so that each is read on its
/// own and an error can name its entry (and line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExceptionFile {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    /// `ignore:` reads better in an ignore file for image scans; it is the same list.
    #[serde(alias = "ignore")]
    exceptions: Vec<serde_json::Value>,
}

impl Exception {
    fn rule_patterns(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(String::as_str).chain(self.rule.as_deref())
    }

    fn validate(&self) -> Result<(), String> {
        if self.rule_patterns().next().is_none() && self.vulnerability.is_none() {
            return Err("an exception needs `rule`, `rules` or `vulnerability`".into());
        }
        if self.reason.trim().is_empty() {
            return Err("an exception needs a non-empty `reason`".into());
        }
        Ok(())
    }

    pub fn is_expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|e| e < today)
    }

    /// True when every selector of this exception matches the finding (expiry is not considered).
    pub fn matches(&self, finding: &Finding) -> bool {
        let r = &finding.resource;
        let opt = |pat: &Option<String>, value: Option<&str>| match pat {
            None => true,
            Some(p) => glob_match(p, value.unwrap_or("")),
        };
        let vuln = finding.vulnerability.as_ref();
        // Selectors about a vulnerability never match a finding that is not one.
        let about_vuln = |pat: &Option<String>, value: fn(&crate::VulnerabilityRef) -> &str| match pat {
            None => true,
            Some(p) => vuln.is_some_and(|v| glob_match(p, value(v))),
        };
        let rule_ok = if self.rule_patterns().next().is_none() {
            self.vulnerability.is_some()
        } else {
            self.rule_patterns().any(|p| glob_match(p, &finding.rule_id))
        };
        let id_ok = match &self.vulnerability {
            None => true,
            Some(p) => {
                let p = p.to_ascii_uppercase();
                vuln.is_some_and(|v| v.ids().any(|id| glob_match(&p, &id.to_ascii_uppercase())))
            }
        };
        rule_ok
            && id_ok
            && opt(&self.namespace, r.namespace.as_deref())
            && opt(&self.kind, Some(&r.kind))
            && opt(&self.name, Some(&r.name))
            && opt(&self.container, r.container.as_deref())
            && opt(&self.image, r.image.as_deref())
            && opt(&self.path, r.file.as_deref())
            && about_vuln(&self.package, |v| &v.package)
            && about_vuln(&self.purl, |v| &v.purl)
    }

    /// What the exception is about, for messages: its rules and vulnerability.
    fn subjects(&self) -> String {
        let mut parts: Vec<&str> = self.rule_patterns().collect();
        if let Some(v) = &self.vulnerability {
            parts.push(v);
        }
        parts.join(", ")
    }

    /// The `exception.expired` finding for this exception (from a file), so the decision is reviewed.
    pub fn expired_finding(&self) -> Finding {
        let source = self.source.as_ref().map(|s| s.describe()).unwrap_or_default();
        let (file, name) = match &self.source {
            Some(ExceptionSource::File { path, entry }) => (Some(path.clone()), format!("entry-{entry}")),
            _ => (None, source.clone()),
        };
        let resource = crate::ResourceRef {
            kind: "Exception".into(),
            name,
            file,
            ..Default::default()
        };
        let message = format!(
            "exception for {} in {source} expired on {}: {}",
            self.subjects(),
            self.expires.map(|d| d.to_string()).unwrap_or_default(),
            self.reason
        );
        Finding::from_rule(&EXPIRED_EXCEPTION_RULE, resource, message, None)
    }

    /// Parses one annotation `exception.palisade.dev/<rule>: "<reason>[; expires=YYYY-MM-DD]"`.
    /// Returns `None` for annotations that are not exceptions.
    pub fn from_annotation(key: &str, value: &str) -> Option<Result<Exception, CoreError>> {
        let rule = key.strip_prefix(ANNOTATION_PREFIX)?;
        let mut reason_parts = Vec::new();
        let mut expires = None;
        for part in value.split(';') {
            let part = part.trim();
            if let Some(date) = part.strip_prefix("expires=") {
                match Date::parse(date) {
                    Ok(d) => expires = Some(d),
                    Err(e) => return Some(Err(CoreError::InvalidException(format!("{key}: {e}")))),
                }
            } else if !part.is_empty() {
                reason_parts.push(part);
            }
        }
        let exception = Exception {
            rules: vec![rule.to_string()],
            reason: reason_parts.join("; "),
            expires,
            source: Some(ExceptionSource::Annotation { key: key.to_string() }),
            ..Default::default()
        };
        Some(
            exception
                .validate()
                .map(|_| exception.clone())
                .map_err(|e| CoreError::InvalidException(format!("{key}: {e}"))),
        )
    }
}

/// A set of exceptions applied to findings.
#[derive(Debug, Clone, Default)]
pub struct ExceptionSet {
    exceptions: Vec<Exception>,
}

/// What applying exceptions did to one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// No exception matched.
    None,
    /// A live exception matched; the finding is now excepted.
    Excepted,
    /// Only expired exceptions matched; the finding stays open. Holds the indexes of those exceptions.
    Expired(Vec<usize>),
}

impl ExceptionSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads an exceptions file's content, already parsed into a JSON value by the caller.
    pub fn from_value(value: serde_json::Value, path: &str) -> Result<ExceptionSet, CoreError> {
        Self::from_value_located(value, path, &|_| None)
    }

    /// As [`ExceptionSet::from_value`], with `line_of(i)` giving the source line of entry `i`
    /// (0-based) so that errors point at it.
    pub fn from_value_located(
        value: serde_json::Value,
        path: &str,
        line_of: &dyn Fn(usize) -> Option<u32>,
    ) -> Result<ExceptionSet, CoreError> {
        let file: ExceptionFile =
            serde_json::from_value(value).map_err(|e| CoreError::InvalidException(format!("{path}: {e}")))?;
        let mut set = ExceptionSet::new();
        for (i, entry) in file.exceptions.into_iter().enumerate() {
            let at = |e: String| {
                let place = match line_of(i) {
                    Some(line) => format!("{path}:{line}"),
                    None => path.to_string(),
                };
                CoreError::InvalidException(format!("{place}: entry {}: {e}", i + 1))
            };
            let mut exception: Exception = serde_json::from_value(entry).map_err(|e| at(e.to_string()))?;
            exception.validate().map_err(at)?;
            exception.source = Some(ExceptionSource::File {
                path: path.to_string(),
                entry: i + 1,
            });
            set.exceptions.push(exception);
        }
        Ok(set)
    }

    pub fn push(&mut self, exception: Exception) {
        self.exceptions.push(exception);
    }

    pub fn len(&self) -> usize {
        self.exceptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exceptions.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Exception> {
        self.exceptions.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Exception> {
        self.exceptions.iter()
    }

    /// Marks the finding excepted when a live exception matches it.
    pub fn apply(&self, finding: &mut Finding, today: Date) -> Applied {
        if !finding.status.is_open() {
            return Applied::None;
        }
        let mut expired = Vec::new();
        for (i, exception) in self.exceptions.iter().enumerate() {
            if !exception.matches(finding) {
                continue;
            }
            if exception.is_expired(today) {
                expired.push(i);
                continue;
            }
            finding.status = FindingStatus::Excepted {
                reason: exception.reason.clone(),
                expires: exception.expires,
                source: exception
                    .source
                    .as_ref()
                    .map(ExceptionSource::describe)
                    .unwrap_or_default(),
            };
            return Applied::Excepted;
        }
        if expired.is_empty() {
            Applied::None
        } else {
            Applied::Expired(expired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResourceRef;

    static RULE: RuleMeta = RuleMeta {
        id: "pss.privileged",
        title: "Privileged container",
        severity: Severity::High,
        category: Category::Misconfiguration,
        description: "",
        rationale: "",
        remediation: "",
        frameworks: &[],
        fixtures: Fixtures { pass: &[], fail: &[] },
    };

    fn finding(ns: &str, name: &str) -> Finding {
        let res = ResourceRef {
            kind: "DaemonSet".into(),
            namespace: Some(ns.into()),
            name: name.into(),
            ..Default::default()
        };
        Finding::from_rule(&RULE, res, "m", None)
    }

    #[test]
    fn file_exceptions_apply_and_expire() {
        let value = serde_json::json!({
            "exceptions": [
                {"rules": ["pss.*"], "namespace": "kube-*", "kind": "DaemonSet", "reason": "CNI agent", "expires": "2027-01-01"},
                {"rule": "pss.privileged", "name": "old-*", "reason": "legacy", "expires": "2020-01-01"}
            ]
        });
        let set = ExceptionSet::from_value(value, "exceptions.yaml").unwrap();
        let today = Date::parse("2026-11-29").unwrap();

        let mut f = finding("kube-system", "calico-node");
        assert_eq!(set.apply(&mut f, today), Applied::Excepted);
        assert!(
            matches!(f.status, FindingStatus::Excepted { ref source, .. } if source == "exceptions.yaml (entry 1)")
        );

        let mut f = finding("prod", "old-agent");
        assert_eq!(set.apply(&mut f, today), Applied::Expired(vec![1]));
        assert!(f.status.is_open());

        let mut f = finding("prod", "web");
        assert_eq!(set.apply(&mut f, today), Applied::None);
    }

    fn vulnerable(id: &str, alias: &str, package: &str, purl: &str, file: &str) -> Finding {
        let res = ResourceRef {
            kind: "Image".into(),
            name: "app.tar".into(),
            file: Some(file.into()),
            ..Default::default()
        };
        let mut f = Finding::from_rule(&RULE, res, "m", None);
        f.rule_id = "image.vulnerable-package".into();
        f.vulnerability = Some(crate::VulnerabilityRef {
            id: id.into(),
            aliases: vec![alias.into()],
            package: package.into(),
            version: "1".into(),
            purl: purl.into(),
        });
        f
    }

    #[test]
    fn vulnerability_exceptions_match_ids_aliases_and_packages() {
        let value = serde_json::json!({
            "ignore": [
                {"vulnerability": "cve-2021-44228", "package": "*log4j-core", "reason": "JNDI lookups disabled"},
                {"vulnerability": "GHSA-*", "path": "/app/web/*", "purl": "pkg:npm/*", "reason": "dev only"},
                {"rule": "image.runs-as-root", "reason": "init image", "expires": "2020-01-01"}
            ]
        });
        let set = ExceptionSet::from_value(value, "ignore.yaml").unwrap();
        let today = Date::parse("2026-11-29").unwrap();
        let log4j = || {
            vulnerable(
                "GHSA-jfh8-c2jp-5v3q",
                "CVE-2021-44228",
                "org.apache.logging.log4j:log4j-core",
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                "/app/lib/log4j-core-2.14.1.jar",
            )
        };
        let mut f = log4j();
        assert_eq!(set.apply(&mut f, today), Applied::Excepted, "by alias, any case");
        let mut f = vulnerable(
            "GHSA-x",
            "CVE-1",
            "lodash",
            "pkg:npm/lodash@4",
            "/app/web/node_modules/lodash",
        );
        assert_eq!(
            set.apply(&mut f, today),
            Applied::Excepted,
            "by id glob, path and purl"
        );
        let mut f = vulnerable(
            "GHSA-x",
            "CVE-1",
            "lodash",
            "pkg:npm/lodash@4",
            "/srv/node_modules/lodash",
        );
        assert_eq!(set.apply(&mut f, today), Applied::None, "path narrows");
        // A vulnerability selector never matches a finding that is not about a vulnerability.
        let mut f = finding("prod", "web");
        f.resource.file = Some("/app/web/x".into());
        assert_eq!(set.apply(&mut f, today), Applied::None);
        let mut f = finding("prod", "web");
        f.rule_id = "image.runs-as-root".into();
        assert_eq!(set.apply(&mut f, today), Applied::Expired(vec![2]));
        let expired = set.get(2).unwrap().expired_finding();
        assert_eq!(expired.rule_id, "exception.expired");
        assert_eq!(
            expired.message,
            "exception for image.runs-as-root in ignore.yaml (entry 3) expired on 2020-01-01: init image"
        );
    }

    #[test]
    fn errors_name_the_entry_and_line() {
        let value = serde_json::json!({"exceptions": [
            {"rule": "x", "reason": "ok"},
            {"vulnerability": "CVE-1", "reason": "r", "pakage": "typo"}
        ]});
        let e =
            ExceptionSet::from_value_located(value, "ignore.yaml", &|i| Some(10 * i as u32 + 2)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("ignore.yaml:12: entry 2: unknown field `pakage`"),
            "{text}"
        );
    }

    #[test]
    fn bad_files_are_errors() {
        for bad in [
            serde_json::json!({"exceptions": [{"reason": "no rule"}]}),
            serde_json::json!({"exceptions": [{"rule": "x", "reason": " "}]}),
            serde_json::json!({"exceptions": [{"rule": "x", "reason": "r", "expires": "tomorrow"}]}),
            serde_json::json!({"exceptions": [{"rule": "x", "reason": "r", "namespce": "typo"}]}),
            serde_json::json!({"exception": []}),
        ] {
            assert!(ExceptionSet::from_value(bad.clone(), "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn annotations() {
        let e = Exception::from_annotation(
            "exception.palisade.dev/pss.privileged",
            "needs raw sockets; expires=2027-03-01",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.reason, "needs raw sockets");
        assert_eq!(e.expires, Some(Date::parse("2027-03-01").unwrap()));
        assert!(Exception::from_annotation("app.kubernetes.io/name", "x").is_none());
        assert!(
            Exception::from_annotation("exception.palisade.dev/pss.privileged", "")
                .unwrap()
                .is_err()
        );
        assert!(
            Exception::from_annotation("exception.palisade.dev/x", "r; expires=soon")
                .unwrap()
                .is_err()
        );
    }
}
