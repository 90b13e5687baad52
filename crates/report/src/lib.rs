//! Output formats for scan results: a terminal table, versioned JSON, SARIF 2.1.0 for code-scanning
//! tools and JUnit XML for CI systems. Pure rendering: a [`Report`] in, a `String` out; writing it to
//! a file or a terminal is the caller's business.

mod json;
mod junit;
mod sarif;
mod table;

use palisade_core::{Finding, RuleMeta, Severity};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;

pub use json::JSON_SCHEMA_VERSION;

/// Errors from rendering.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown format {0:?}: expected table, json, sarif or junit")]
    UnknownFormat(String),
    #[error("cannot serialise the report: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Junit,
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            "junit" => Ok(Format::Junit),
            _ => Err(ReportError::UnknownFormat(s.to_string())),
        }
    }
}

/// Something about the input that is not a finding: a document that did not parse, one that was
/// skipped. Reports show notes so nothing is silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `parse-error`, `not-kubernetes`, `input-error`, `invalid-exception`.
    pub kind: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub message: String,
}

/// Counts of what the scan looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub files: usize,
    pub documents: usize,
    pub objects: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// What every report starts with.
#[derive(Debug, Clone)]
pub struct Header {
    pub tool_version: String,
    /// What was scanned: `k8s`, later `image`, `fs`.
    pub scan_kind: String,
    pub inputs: Vec<String>,
    /// Metadata of every rule that could have fired, for SARIF's rule table.
    pub rules: Vec<&'static RuleMeta>,
}

/// Counts of the findings written, kept by the writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Open findings per severity, in [`Severity::ALL`] order (most severe first).
    pub open: [usize; 5],
    pub excepted: usize,
    pub not_evaluated: usize,
}

impl Totals {
    fn add(&mut self, f: &Finding) {
        match f.status {
            palisade_core::FindingStatus::Open => {
                if let Some(i) = Severity::ALL.iter().position(|s| *s == f.severity) {
                    self.open[i] += 1;
                }
            }
            palisade_core::FindingStatus::Excepted { .. } => self.excepted += 1,
            palisade_core::FindingStatus::NotEvaluated { .. } => self.not_evaluated += 1,
        }
    }

    pub fn open_total(&self) -> usize {
        self.open.iter().sum()
    }

    /// Open findings per severity, most severe first.
    pub fn severity_counts(&self) -> Vec<(Severity, usize)> {
        Severity::ALL.iter().copied().zip(self.open).collect()
    }
}

/// Rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// ANSI colours in the table format.
    pub color: bool,
}

enum State {
    Json {
        first: bool,
    },
    Sarif {
        first: bool,
        rule_index: HashMap<&'static str, usize>,
    },
    Table(table::TableState),
    /// JUnit groups by rule and puts counts before the cases, so it keeps the findings.
    Junit(Vec<Finding>),
}

/// Writes a report as findings arrive, so a scan's memory does not grow with its findings (except
/// for JUnit, whose layout needs them all before the first case).
pub struct ReportWriter<W: Write> {
    out: W,
    header: Header,
    options: RenderOptions,
    totals: Totals,
    state: State,
}

impl<W: Write> ReportWriter<W> {
    pub fn begin(
        format: Format,
        options: RenderOptions,
        header: Header,
        mut out: W,
    ) -> Result<Self, ReportError> {
        let state = match format {
            Format::Json => {
                json::begin(&mut out, &header)?;
                State::Json { first: true }
            }
            Format::Sarif => {
                sarif::begin(&mut out, &header)?;
                let rule_index = header.rules.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
                State::Sarif {
                    first: true,
                    rule_index,
                }
            }
            Format::Table => State::Table(table::TableState::new(&header)),
            Format::Junit => State::Junit(Vec::new()),
        };
        Ok(ReportWriter {
            out,
            header,
            options,
            totals: Totals::default(),
            state,
        })
    }

    pub fn finding(&mut self, f: &Finding) -> Result<(), ReportError> {
        self.totals.add(f);
        match &mut self.state {
            State::Json { first } => json::finding(&mut self.out, f, std::mem::take(first)),
            State::Sarif { first, rule_index } => {
                let index = rule_index.get(f.rule_id.as_str()).copied();
                sarif::finding(&mut self.out, f, index, std::mem::take(first))
            }
            State::Table(state) => Ok(state.finding(&mut self.out, f, self.options)?),
            State::Junit(buffer) => {
                buffer.push(f.clone());
                Ok(())
            }
        }
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Writes the end of the report (notes, stats, summary) and returns the writer and the totals.
    pub fn finish(mut self, notes: &[Note], stats: &Stats) -> Result<(W, Totals), ReportError> {
        match &mut self.state {
            State::Json { .. } => json::finish(&mut self.out, notes, stats, &self.totals)?,
            State::Sarif { .. } => sarif::finish(&mut self.out, &self.header, notes)?,
            State::Table(state) => state.finish(&mut self.out, notes, stats, &self.totals, self.options)?,
            State::Junit(buffer) => {
                let text = junit::render(&self.header, buffer, stats, &self.totals);
                self.out.write_all(text.as_bytes())?;
            }
        }
        self.out.flush()?;
        Ok((self.out, self.totals))
    }
}

/// A whole report in memory: convenient for small results and tests.
#[derive(Debug, Clone)]
pub struct Report {
    pub header: Header,
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub stats: Stats,
}

impl Report {
    /// Sorts findings into source order: by file, object line, field line, then most severe first.
    pub fn sort(&mut self) {
        sort_findings(&mut self.findings);
    }

    pub fn render(&self, format: Format, options: RenderOptions) -> Result<String, ReportError> {
        let mut writer = ReportWriter::begin(format, options, self.header.clone(), Vec::new())?;
        for f in &self.findings {
            writer.finding(f)?;
        }
        let (bytes, _) = writer.finish(&self.notes, &self.stats)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The order reports show findings in: file, object line, field line, most severe first, rule.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.resource.file.clone().unwrap_or_default(),
                f.resource.line.unwrap_or(0),
                f.evidence.as_ref().and_then(|e| e.line).unwrap_or(0),
                std::cmp::Reverse(f.severity),
                f.rule_id.clone(),
                f.fingerprint.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// The line a finding points at: the evidence field's line, else the resource's.
pub(crate) fn finding_line(f: &Finding) -> Option<u32> {
    f.evidence.as_ref().and_then(|e| e.line).or(f.resource.line)
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::*;
    use palisade_core::{
        Category, Date, Evidence, Exception, ExceptionSet, Fixtures, Framework, FrameworkRef, ResourceRef,
    };

    pub static PRIVILEGED: RuleMeta = RuleMeta {
        id: "pss.privileged",
        title: "Privileged container",
        severity: Severity::Critical,
        category: Category::Misconfiguration,
        description: "Privileged containers can do almost anything the host can.",
        rationale: "A privileged container disables most isolation.",
        remediation: "Remove securityContext.privileged or set it to false.",
        frameworks: &[
            FrameworkRef::new(Framework::CisKubernetes, "5.2.2"),
            FrameworkRef::new(Framework::MitreAttack, "T1611"),
        ],
        fixtures: Fixtures { pass: &[], fail: &[] },
    };
    pub static LIMITS: RuleMeta = RuleMeta {
        id: "workload.memory-limit",
        title: "Container without a memory limit",
        severity: Severity::Medium,
        category: Category::Misconfiguration,
        description: "No memory limit.",
        rationale: "One container can starve the node.",
        remediation: "Set resources.limits.memory.",
        frameworks: &[FrameworkRef::new(Framework::NsaCisa, "Pod security")],
        fixtures: Fixtures { pass: &[], fail: &[] },
    };

    /// A small, fixed report used by the golden tests of every format.
    pub fn report() -> Report {
        let resource = |name: &str, line: u32| ResourceRef {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: name.into(),
            container: Some("app".into()),
            image: Some("nginx:1.27".into()),
            file: Some("deploy/web.yaml".into()),
            line: Some(line),
            ..Default::default()
        };
        let evidence = |pointer: &str, line: u32| Evidence {
            pointer: pointer.into(),
            value: Some(serde_json::json!(true)),
            line: Some(line),
            column: Some(11),
        };
        let mut excepted = Finding::from_rule(
            &LIMITS,
            resource("batch", 40),
            "container \"app\" has no memory limit",
            Some(Evidence {
                pointer: "/spec/template/spec/containers/0".into(),
                value: None,
                line: Some(52),
                column: Some(7),
            }),
        );
        let mut exceptions = ExceptionSet::new();
        exceptions.push(Exception {
            rules: vec!["workload.*".into()],
            name: Some("batch".into()),
            reason: "sized by the VPA <auto>".into(),
            expires: Some(Date::parse("2027-01-31").unwrap()),
            source: Some(palisade_core::ExceptionSource::File {
                path: "exceptions.yaml".into(),
                entry: 1,
            }),
            ..Default::default()
        });
        exceptions.apply(&mut excepted, Date::parse("2026-11-29").unwrap());
        let findings = vec![
            Finding::from_rule(
                &PRIVILEGED,
                resource("web", 1),
                "container \"app\" must not set securityContext.privileged=true",
                Some(evidence(
                    "/spec/template/spec/containers/0/securityContext/privileged",
                    23,
                )),
            ),
            Finding::from_rule(
                &LIMITS,
                resource("web", 1),
                "container \"app\" has no memory limit & no request",
                Some(Evidence {
                    pointer: "/spec/template/spec/containers/0".into(),
                    value: None,
                    line: Some(18),
                    column: Some(7),
                }),
            ),
            excepted,
        ];
        Report {
            header: Header {
                tool_version: "0.1.0".into(),
                scan_kind: "k8s".into(),
                inputs: vec!["deploy".into()],
                rules: vec![&PRIVILEGED, &LIMITS],
            },
            findings,
            notes: vec![Note {
                kind: "parse-error".into(),
                file: "deploy/broken.yaml".into(),
                line: Some(3),
                message: "did not find expected node content".into(),
            }],
            stats: Stats {
                files: 2,
                documents: 3,
                objects: 2,
                skipped: 0,
                errors: 1,
            },
        }
    }

    /// Compares with a checked-in golden file; `PALISADE_BLESS=1` rewrites it.
    pub fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("PALISADE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "missing golden file {}; run with PALISADE_BLESS=1",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "output differs from {}; review and rerun with PALISADE_BLESS=1",
            path.display()
        );
    }
}
