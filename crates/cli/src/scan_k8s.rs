//! `palisade scan k8s`: reads manifests, streams every object through the posture scanner, applies
//! exceptions, renders the report and picks the exit code.

use crate::config::{self, Config};
use crate::{EXIT_ERROR, EXIT_FINDINGS, OutputArgs, use_color, write_output};
use anyhow::{Context, Result};
use clap::Args;
use palisade_core::exception::{ANNOTATION_PREFIX, Applied, EXPIRED_EXCEPTION_RULE};
use palisade_core::{Date, Exception, ExceptionSet, Finding, ResourceRef, Severity};
use palisade_k8s::{InputFile, K8sObject, Limits, Loaded, Note as LoadNote};
use palisade_posture::{Origin, PssLevel, PssSettings, PssVersion, ScanConfig, Scanner, catalogue, manifest};
use palisade_report::{Format, Header, Note, RenderOptions, ReportWriter, Stats, sort_findings};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ScanK8sArgs {
    /// Manifest files, directories (walked recursively for .yaml, .yml, .json) or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Pod Security Standards level for pods whose namespace does not set one [default: restricted].
    #[arg(long, value_parser = ["privileged", "baseline", "restricted"])]
    pub pss_level: Option<String>,
    /// Pod Security Standards policy version: v1.0 to v1.37 or latest [default: latest].
    #[arg(long)]
    pub pss_version: Option<String>,
    /// Exit with code 1 when an open finding reaches this severity.
    #[arg(long, value_parser = ["critical", "high", "medium", "low", "info"])]
    pub fail_on: Option<String>,
    /// Configuration file (palisade.yaml): PSS defaults, label/annotation/toleration policy, exceptions.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Exceptions file.
    #[arg(long)]
    pub exceptions: Option<PathBuf>,
    /// Print, per RBAC subject, what it can do and through which binding, instead of the findings.
    #[arg(long)]
    pub rbac_report: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn today() -> Date {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Date::from_unix_seconds(secs)
}

/// A cheap test for "this text may hold a Namespace object", so the namespace pre-pass parses only
/// the files that can matter.
fn may_hold_namespace(text: &str) -> bool {
    text.contains("Namespace")
        && text.lines().any(|l| {
            let t = l.trim_start_matches([' ', '-', '\t']);
            t.strip_prefix("kind:")
                .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == "Namespace")
                || t.contains("\"kind\":\"Namespace\"")
                || t.contains("\"kind\": \"Namespace\"")
        })
}

/// Exceptions written as annotations on one object.
fn annotation_exceptions(
    value: &serde_json::Value,
    notes: &mut Vec<Note>,
    file: &str,
    line: u32,
) -> Vec<Exception> {
    let Some(annotations) = value.pointer("/metadata/annotations").and_then(|a| a.as_object()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in annotations {
        if !key.starts_with(ANNOTATION_PREFIX) {
            continue;
        }
        let text = v.as_str().unwrap_or("");
        match Exception::from_annotation(key, text) {
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) => notes.push(Note {
                kind: "invalid-exception".into(),
                file: file.to_string(),
                line: Some(line),
                message: e.to_string(),
            }),
            None => {}
        }
    }
    out
}

fn identity(r: &ResourceRef) -> (String, String, String) {
    (
        r.kind.clone(),
        r.namespace.clone().unwrap_or_default(),
        r.name.clone(),
    )
}

pub struct Run {
    today: Date,
    file_exceptions: ExceptionSet,
    /// Annotation exceptions by object identity, for findings produced after the object was seen.
    object_exceptions: HashMap<(String, String, String), ExceptionSet>,
    expired_reported: BTreeSet<String>,
    /// Findings of the object being scanned, not yet handed to the sink.
    batch: Vec<Finding>,
    pub notes: Vec<Note>,
    pub stats: Stats,
}

impl Run {
    /// Hands the batch to the sink in report order, so nothing accumulates between objects.
    fn flush(&mut self, sink: &mut dyn FnMut(Finding) -> Result<()>) -> Result<()> {
        sort_findings(&mut self.batch);
        for finding in self.batch.drain(..) {
            sink(finding)?;
        }
        Ok(())
    }

    fn apply_exceptions(&mut self, mut finding: Finding) {
        let mut expired_sources = Vec::new();
        let mut applied = Applied::None;
        if let Some(set) = self.object_exceptions.get(&identity(&finding.resource)) {
            applied = set.apply(&mut finding, self.today);
            if let Applied::Expired(list) = &applied {
                for &i in list {
                    if let Some(e) = set.get(i) {
                        expired_sources.push((e.clone(), finding.resource.clone()));
                    }
                }
            }
        }
        if applied != Applied::Excepted {
            self.file_exceptions.apply(&mut finding, self.today);
        }
        for (exception, resource) in expired_sources {
            self.report_expired_annotation(&exception, resource);
        }
        self.batch.push(finding);
    }

    fn report_expired_annotation(&mut self, exception: &Exception, mut resource: ResourceRef) {
        let key = exception
            .source
            .as_ref()
            .map(|s| s.describe())
            .unwrap_or_default();
        resource.container = None;
        resource.image = None;
        if !self
            .expired_reported
            .insert(format!("{}|{key}", resource.display_name()))
        {
            return;
        }
        let message = format!(
            "exception {key} expired on {}: {}",
            exception.expires.map(|d| d.to_string()).unwrap_or_default(),
            exception.reason
        );
        self.batch.push(Finding::from_rule(
            &EXPIRED_EXCEPTION_RULE,
            resource,
            message,
            None,
        ));
    }

    fn report_expired_file_exceptions(&mut self) {
        let today = self.today;
        let expired: Vec<Finding> = self
            .file_exceptions
            .iter()
            .filter(|e| e.is_expired(today))
            .map(Exception::expired_finding)
            .collect();
        self.batch.extend(expired);
    }
}

/// Points a finding's evidence at its line and column in the source.
fn locate(finding: &mut Finding, obj: &K8sObject) {
    if let Some(evidence) = finding.evidence.as_mut()
        && evidence.line.is_none()
        && let Some(pos) = obj.locate(&evidence.pointer)
    {
        evidence.line = Some(pos.line);
        evidence.column = Some(pos.column);
    }
}

pub fn run(args: ScanK8sArgs) -> Result<u8> {
    let config = match &args.config {
        Some(path) => config::load_config(path)?,
        None => Config::default(),
    };
    let level = match &args.pss_level {
        Some(l) => l.parse()?,
        None => config.pss_level.unwrap_or(PssLevel::Restricted),
    };
    let version = match &args.pss_version {
        Some(v) => v.parse().with_context(|| "--pss-version")?,
        None => config.pss_version.unwrap_or(PssVersion::Latest),
    };
    let mut file_exceptions = config.exceptions;
    if let Some(path) = &args.exceptions {
        for e in config::load_exceptions(path)?.iter() {
            file_exceptions.push(e.clone());
        }
    }
    let fail_on: Option<Severity> = args.fail_on.as_deref().map(str::parse).transpose()?;
    let format: Format = args.output.format.parse()?;
    let scan_config = ScanConfig {
        pss: PssSettings { level, version },
        policy: config.policy,
    };
    let header = Header {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        scan_kind: "k8s".into(),
        inputs: args.paths.clone(),
        rules: catalogue::rules(),
    };
    let color = use_color(&args.output.color, args.output.output.is_some());
    let out: Box<dyn Write> = match &args.output.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BrokenPipeIsFine(std::io::BufWriter::with_capacity(1 << 16, out));
    // With --rbac-report the findings only decide the exit code; the report is the RBAC view.
    let mut writer = if args.rbac_report {
        if !matches!(format, Format::Json | Format::Table) {
            anyhow::bail!("--rbac-report supports --format table or json");
        }
        None
    } else {
        Some(ReportWriter::begin(format, RenderOptions { color }, header, out)?)
    };
    let mut failed = false;
    let Outcome {
        scanner,
        notes,
        stats,
    } = scan_paths(&args.paths, scan_config, file_exceptions, &mut |f| {
        failed |= fail_on.is_some_and(|limit| f.status.is_open() && f.severity >= limit);
        if let Some(w) = writer.as_mut() {
            w.finding(&f)?;
        }
        Ok(())
    })?;
    match writer {
        Some(w) => {
            w.finish(&notes, &stats)?;
        }
        None => {
            let report = scanner.rbac().report();
            let text = match format {
                Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
                _ => palisade_posture::rbac::render_report_text(&report),
            };
            write_output(args.output.output.as_deref(), &text)?;
        }
    }

    Ok(if stats.errors > 0 {
        EXIT_ERROR
    } else if failed {
        EXIT_FINDINGS
    } else {
        0
    })
}

/// Standard output closed early (`| head`) ends the output quietly rather than as an error.
struct BrokenPipeIsFine<W: Write>(W);

impl<W: Write> Write for BrokenPipeIsFine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// What a scan of the inputs left: the scanner (for RBAC and NetworkPolicy views) and the results.
pub struct Outcome {
    pub scanner: Scanner,
    pub notes: Vec<Note>,
    pub stats: Stats,
}

/// Reads every input and runs every posture check over it, with exceptions applied.
pub fn scan_paths(
    paths: &[String],
    scan_config: ScanConfig,
    file_exceptions: ExceptionSet,
    sink: &mut dyn FnMut(Finding) -> Result<()>,
) -> Result<Outcome> {
    let limits = Limits::default();
    let inputs =
        palisade_k8s::discover(paths, &limits).map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    if inputs.is_empty() {
        anyhow::bail!(
            "no manifest files (.yaml, .yml, .json) found in {}",
            paths.join(", ")
        );
    }
    if inputs.iter().filter(|i| **i == InputFile::Stdin).count() > 1 {
        anyhow::bail!("`-` (standard input) can be given only once");
    }

    let mut scanner = Scanner::new(scan_config);
    let mut run = Run {
        today: today(),
        file_exceptions,
        object_exceptions: HashMap::new(),
        expired_reported: BTreeSet::new(),
        batch: Vec::new(),
        notes: Vec::new(),
        stats: Stats::default(),
    };

    // Standard input can be read only once: keep its text for both passes.
    let mut stdin_text: Option<String> = None;
    let mut read = |input: &InputFile, run: &mut Run| -> Option<String> {
        if *input == InputFile::Stdin
            && let Some(text) = &stdin_text
        {
            return Some(text.clone());
        }
        match palisade_k8s::read_input(input, &limits) {
            Ok(text) => {
                if *input == InputFile::Stdin {
                    stdin_text = Some(text.clone());
                }
                Some(text)
            }
            Err(e) => {
                run.stats.errors += 1;
                run.notes.push(Note {
                    kind: "input-error".into(),
                    file: input.display_name(),
                    line: None,
                    message: e.to_string(),
                });
                None
            }
        }
    };

    // Pass 1: Namespace objects set the Pod Security level of the pods in them, wherever they are.
    let mut unreadable = BTreeSet::new();
    for input in &inputs {
        let Some(text) = read(input, &mut run) else {
            unreadable.insert(input.display_name());
            continue;
        };
        if may_hold_namespace(&text) {
            palisade_k8s::load_str(&text, &input.display_name(), |loaded| {
                if let Loaded::Object(obj) = loaded
                    && obj.kind() == "Namespace"
                {
                    scanner.observe_namespace(&obj.value);
                }
            });
        }
    }

    // Pass 2: every object through every check, one document at a time.
    for input in &inputs {
        let name = input.display_name();
        if unreadable.contains(&name) {
            continue;
        }
        let Some(text) = read(input, &mut run) else {
            continue;
        };
        run.stats.files += 1;
        let mut documents = BTreeSet::new();
        let mut sink_error = None;
        palisade_k8s::load_str(&text, &name, |loaded| {
            match loaded {
                Loaded::Object(obj) => {
                    documents.insert(obj.document);
                    run.stats.objects += 1;
                    let origin = Origin {
                        file: Some(name.clone()),
                        line: Some(obj.line),
                    };
                    let exceptions = annotation_exceptions(&obj.value, &mut run.notes, &name, obj.line);
                    if !exceptions.is_empty() {
                        let mut set = ExceptionSet::new();
                        for e in exceptions {
                            set.push(e);
                        }
                        let resource = palisade_posture::Object::new(&obj.value, &origin).resource();

                        run.object_exceptions.insert(identity(&resource), set);
                    }
                    let view = palisade_posture::Object::new(&obj.value, &origin);
                    let duplicates = obj.duplicate_keys.iter().map(|d| {
                        manifest::duplicate_key_finding(&view, &d.pointer, d.first.line, d.second.line)
                    });
                    let findings: Vec<Finding> =
                        duplicates.chain(scanner.scan(&obj.value, &origin)).collect();
                    for mut finding in findings {
                        locate(&mut finding, &obj);
                        run.apply_exceptions(finding);
                    }
                }
                Loaded::Note(LoadNote::DuplicateKey {
                    pointer,
                    first_line,
                    line,
                    ..
                }) => {
                    run.apply_exceptions(manifest::duplicate_key_in_file(&name, &pointer, first_line, line));
                }
                Loaded::Note(LoadNote::NotKubernetes { file, document, line }) => {
                    documents.insert(document);
                    run.stats.skipped += 1;
                    run.notes.push(Note {
                        kind: "not-kubernetes".into(),
                        file,
                        line: Some(line),
                        message: "not a Kubernetes object (no apiVersion and kind): skipped".into(),
                    });
                }
                Loaded::Note(LoadNote::ParseError {
                    file,
                    document,
                    line,
                    message,
                    column,
                }) => {
                    documents.insert(document);
                    run.stats.errors += 1;
                    run.notes.push(Note {
                        kind: "parse-error".into(),
                        file,
                        line: Some(line),
                        message: format!(
                            "document {} does not parse (column {column}): {message}",
                            document + 1
                        ),
                    });
                }
            }
            if sink_error.is_none()
                && let Err(e) = run.flush(sink)
            {
                sink_error = Some(e);
            }
        });
        if let Some(e) = sink_error {
            return Err(e);
        }
        run.stats.documents += documents.len();
    }
    for finding in scanner.finish() {
        run.apply_exceptions(finding);
    }
    run.report_expired_file_exceptions();
    run.flush(sink)?;
    Ok(Outcome {
        scanner,
        notes: run.notes,
        stats: run.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::may_hold_namespace;

    #[test]
    fn namespace_prefilter() {
        assert!(may_hold_namespace("apiVersion: v1\nkind: Namespace\n"));
        assert!(may_hold_namespace("- kind: \"Namespace\"\n"));
        assert!(may_hold_namespace("{\"kind\":\"Namespace\"}"));
        assert!(!may_hold_namespace(
            "kind: Pod\nspec:\n  shareProcessNamespace: true\n"
        ));
    }
}
