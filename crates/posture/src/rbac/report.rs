//! `--rbac-report`: per subject, every permission it holds, through which binding and role, with the
//! dangerous ones flagged by the rule ids that describe them. Grants that cannot be resolved are
//! listed as not evaluated, never left out.

use super::{Collector, Resolution, Subject, dangers};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

/// A binding or role named in the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Where a permission applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Scope {
    Cluster,
    Namespace { namespace: String },
}

impl Scope {
    fn display(&self) -> String {
        match self {
            Scope::Cluster => "cluster-wide".into(),
            Scope::Namespace { namespace } => format!("namespace {namespace}"),
        }
    }
}

/// One rule of a role, as granted to a subject by one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    pub scope: Scope,
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
    pub binding: ObjectRef,
    pub role: ObjectRef,
    /// The group through which a service account holds this (`system:serviceaccounts`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_group: Option<String>,
    /// Ids of the RBAC rules this permission triggers; empty when it is not dangerous.
    pub dangerous: Vec<&'static str>,
}

/// A binding whose role could not be resolved: its permissions are unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotEvaluatedGrant {
    pub scope: Scope,
    pub binding: ObjectRef,
    pub role: ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_group: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectPermissions {
    pub subject: Subject,
    pub permissions: Vec<Permission>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<NotEvaluatedGrant>,
}

impl SubjectPermissions {
    pub fn is_dangerous(&self) -> bool {
        self.permissions.iter().any(|p| !p.dangerous.is_empty())
    }
}

/// The groups every service account of `namespace` belongs to.
fn service_account_groups(namespace: &str) -> [String; 3] {
    [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_string(),
    ]
}

impl Collector {
    /// Every subject of the input's bindings, plus the service accounts workloads use or the input
    /// defines (with what they inherit through their groups), sorted by kind, namespace and name.
    pub fn report(&self) -> Vec<SubjectPermissions> {
        let aggregated = self.aggregated();
        let resolutions: Vec<Resolution<'_>> = self
            .bindings
            .iter()
            .map(|b| self.resolve(b, &aggregated))
            .collect();
        let mut subjects: BTreeSet<Subject> = BTreeSet::new();
        // Subject → bindings naming it (in input order), also used for groups' inherited grants.
        let mut bound: HashMap<&Subject, Vec<usize>> = HashMap::new();
        for (i, binding) in self.bindings.iter().enumerate() {
            for subject in &binding.subjects {
                subjects.insert(subject.clone());
                let list = bound.entry(subject).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        for workload in &self.workloads {
            subjects.insert(Subject::service_account(
                &workload.namespace,
                &workload.service_account,
            ));
        }
        for (namespace, name) in self.service_accounts.keys() {
            subjects.insert(Subject::service_account(namespace, name));
        }

        let mut out = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let mut entry = SubjectPermissions {
                subject,
                permissions: Vec::new(),
                not_evaluated: Vec::new(),
            };
            let mut grants: Vec<(usize, Option<String>)> = bound
                .get(&entry.subject)
                .into_iter()
                .flatten()
                .map(|&i| (i, None))
                .collect();
            if let (true, Some(namespace)) =
                (entry.subject.kind == "ServiceAccount", &entry.subject.namespace)
            {
                for group in service_account_groups(namespace) {
                    for &i in bound.get(&Subject::group(group.as_str())).into_iter().flatten() {
                        grants.push((i, Some(group.clone())));
                    }
                }
            }
            for (i, via_group) in grants {
                let binding = &self.bindings[i];
                match &resolutions[i] {
                    Resolution::Rules { role, rules } => {
                        for rule in rules {
                            entry.permissions.push(Permission {
                                scope: binding.scope(),
                                verbs: rule.verbs.clone(),
                                api_groups: rule.api_groups.clone(),
                                resources: rule.resources.clone(),
                                resource_names: rule.resource_names.clone(),
                                non_resource_urls: rule.non_resource_urls.clone(),
                                binding: binding.object_ref(),
                                role: role.clone(),
                                via_group: via_group.clone(),
                                dangerous: dangers(rule),
                            });
                        }
                    }
                    Resolution::NotEvaluated { role, reason } => {
                        entry.not_evaluated.push(NotEvaluatedGrant {
                            scope: binding.scope(),
                            binding: binding.object_ref(),
                            role: role.clone(),
                            via_group,
                            reason: reason.clone(),
                        })
                    }
                }
            }
            // Stable: rules keep their order within one binding.
            entry.permissions.sort_by(|a, b| {
                (&a.scope, &a.binding, &a.role, &a.via_group).cmp(&(
                    &b.scope,
                    &b.binding,
                    &b.role,
                    &b.via_group,
                ))
            });
            entry
                .not_evaluated
                .sort_by(|a, b| (&a.scope, &a.binding).cmp(&(&b.scope, &b.binding)));
            out.push(entry);
        }
        out
    }
}

fn join_or(list: &[String], empty: &str) -> String {
    if list.is_empty() {
        empty.to_string()
    } else {
        list.join(",")
    }
}

/// The report as plain text for a terminal: one block per subject, one line per permission,
/// dangerous lines marked with `!` and the rule ids.
pub fn render_report_text(report: &[SubjectPermissions]) -> String {
    let mut out = String::new();
    for entry in report {
        let marker = if entry.is_dangerous() { " [dangerous]" } else { "" };
        let _ = writeln!(out, "{}{marker}", entry.subject.display());
        if entry.permissions.is_empty() && entry.not_evaluated.is_empty() {
            let _ = writeln!(out, "    (no permissions in the input)");
        }
        for p in &entry.permissions {
            let flag = if p.dangerous.is_empty() { ' ' } else { '!' };
            let what = if p.non_resource_urls.is_empty() {
                let groups: Vec<String> = p
                    .api_groups
                    .iter()
                    .map(|g| {
                        if g.is_empty() {
                            "core".to_string()
                        } else {
                            g.clone()
                        }
                    })
                    .collect();
                format!("{} [{}]", join_or(&p.resources, "-"), join_or(&groups, "-"))
            } else {
                format!("urls {}", p.non_resource_urls.join(","))
            };
            let names = if p.resource_names.is_empty() {
                String::new()
            } else {
                format!(" names={}", p.resource_names.join(","))
            };
            let via = p
                .via_group
                .as_ref()
                .map(|g| format!(" (as {g})"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "  {flag} {:<24} {} {what}{names}  via {} -> {}{via}",
                p.scope.display(),
                join_or(&p.verbs, "-"),
                p.binding.display(),
                p.role.display()
            );
            if !p.dangerous.is_empty() {
                let _ = write!(out, "  [{}]", p.dangerous.join(", "));
            }
            out.push('\n');
        }
        for n in &entry.not_evaluated {
            let via = n
                .via_group
                .as_ref()
                .map(|g| format!(" (as {g})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  ? {:<24} not evaluated: {} -> {}{via}: {}",
                n.scope.display(),
                n.binding.display(),
                n.role.display(),
                n.reason
            );
        }
    }
    out
}
