//! ConstraintTemplates: reading the document, finding the Rego for Gatekeeper's admission target
//! and compiling it once into a prepared regorus engine that evaluations clone, and, when
//! [`crate::vm_check`] proves it gives the same answers, into a program for regorus' register VM.
//! Nothing here evaluates a policy against an object.

use crate::decision_cache::next_generation;
use crate::error::{PolicyError, Result};
use crate::footprint::Footprint;
use crate::rewrite::for_regorus;
use crate::util::{describe, str_at};
use crate::vm_check::VmCondition;
use regorus::Engine;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::Value;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Gatekeeper's Kubernetes validation target, the only one we evaluate.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

const TEMPLATE_API_VERSIONS: [&str; 3] = [
    "templates.gatekeeper.sh/v1",
    "templates.gatekeeper.sh/v1beta1",
    "templates.gatekeeper.sh/v1alpha1",
];

/// How often (in interpreter work units) the execution timer reads the clock. Checking every
/// unit costs measurable time on cheap policies; a few hundred units are microseconds.
const TIMER_CHECK_INTERVAL: u32 = 256;

/// A template compiled for evaluation.
#[derive(Clone)]
pub(crate) struct CompiledTemplate {
    pub name: String,
    pub kind: String,
    /// `spec.crd.spec.validation.openAPIV3Schema`: the shape of a constraint's `spec.parameters`.
    pub parameters_schema: Option<Value>,
    /// Prepared engine (policies analysed, data loaded); cloned for each evaluation.
    pub engine: Engine,
    /// `data.<package>.violation`.
    pub rule: String,
    /// The same policy compiled for the register VM, or why it must stay on the interpreter.
    pub vm: std::result::Result<VmProgram, String>,
    /// What of the review the policy reads: the key of its remembered decisions.
    pub footprint: Footprint,
    /// Changes whenever what the policy decides may change (compiled, new data): remembered
    /// decisions of another generation are not used (`decision_cache`).
    pub generation: u64,
}

/// A template's program for regorus' register VM and the data document it reads.
#[derive(Clone)]
pub(crate) struct VmProgram {
    program: Arc<Program>,
    data: regorus::Value,
    /// For which inputs the VM gives the interpreter's answer.
    pub condition: VmCondition,
    /// Whether every string in `data` is within the BMP (see [`VmCondition::BmpStrings`]).
    data_bmp: bool,
}

impl VmProgram {
    /// Compiles the prepared engine's policy; `Err` says why the VM cannot be used.
    fn compile(engine: &mut Engine, rule: &str, data: &regorus::Value) -> std::result::Result<Self, String> {
        let condition = crate::vm_check::vm_eligible(engine.get_modules())?;
        let policy = engine
            .compile_with_entrypoint(&rule.into())
            .map_err(|e| format!("not compiled for the VM: {e}"))?;
        let program = Compiler::compile_from_policy(&policy, &[rule])
            .map_err(|e| format!("not compiled for the VM: {e}"))?;
        let vm = Self {
            program,
            data: data.clone(),
            condition,
            data_bmp: value_is_bmp(data),
        };
        // Rules and data must not overlap; checked once here rather than on every evaluation.
        vm.machine(data.clone(), Duration::from_secs(1))
            .map_err(|e| format!("data conflicts with the VM program: {e}"))?;
        Ok(vm)
    }

    /// A machine ready to evaluate: the program loaded with the data, time budget, no
    /// instruction limit (the budget is the bound, as for the interpreter) and OPA's default of
    /// a failing built-in making its expression undefined.
    fn machine(&self, data: regorus::Value, budget: Duration) -> std::result::Result<RegoVM, String> {
        let mut vm = RegoVM::new();
        vm.load_program(self.program.clone());
        vm.set_data(data).map_err(|e| e.to_string())?;
        vm.set_execution_timer_config(Some(timer_config(budget)));
        vm.set_max_instructions(usize::MAX);
        vm.set_strict_builtin_errors(false);
        Ok(vm)
    }

    /// Whether the VM may evaluate a review whose strings, and the constraint's parameters',
    /// are (`true`) or may not be within the BMP.
    pub(crate) fn applies(&self, review_and_parameters_bmp: impl FnOnce() -> bool) -> bool {
        match self.condition {
            VmCondition::Always => true,
            VmCondition::BmpStrings => self.data_bmp && review_and_parameters_bmp(),
        }
    }

    /// Evaluates the template's `violation` rule against `input`.
    pub(crate) fn evaluate(
        &self,
        input: regorus::Value,
        budget: Duration,
    ) -> std::result::Result<regorus::Value, VmFailure> {
        let mut vm = self
            .machine(self.data.clone(), budget)
            .map_err(VmFailure::Other)?;
        vm.set_input(input);
        vm.execute().map_err(|e| match e {
            regorus::rvm::vm::VmError::TimeLimitExceeded { .. } => VmFailure::Budget,
            regorus::rvm::vm::VmError::MemoryLimitExceeded { usage, limit, .. } => {
                VmFailure::Memory { usage, limit }
            }
            other => VmFailure::Other(other.to_string()),
        })
    }
}

/// Whether every string in `v`, object keys included, is within the BMP.
pub(crate) fn value_is_bmp(v: &regorus::Value) -> bool {
    match v {
        regorus::Value::String(s) => crate::vm_check::is_bmp(s),
        regorus::Value::Array(items) => items.iter().all(value_is_bmp),
        regorus::Value::Set(items) => items.iter().all(value_is_bmp),
        regorus::Value::Object(fields) => fields.iter().all(|(k, v)| value_is_bmp(k) && value_is_bmp(v)),
        _ => true,
    }
}

/// How a VM evaluation failed, for the caller to turn into a [`PolicyError`].
pub(crate) enum VmFailure {
    Budget,
    Memory { usage: u64, limit: u64 },
    Other(String),
}

/// The Rego for the admission target, as written in the template.
struct RegoSource {
    rego: String,
    libs: Vec<String>,
    v1: bool,
}

impl CompiledTemplate {
    /// Reads and compiles a ConstraintTemplate document.
    pub(crate) fn compile(doc: &Value, budget: Duration, data: &regorus::Value) -> Result<Self> {
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_string();
        let label = if name.is_empty() {
            "<unnamed>".to_string()
        } else {
            name.clone()
        };
        let invalid = |message: String| PolicyError::InvalidTemplate {
            template: label.clone(),
            message,
        };
        if !doc.is_object() {
            return Err(invalid(format!("expected a mapping, found {}", describe(doc))));
        }
        let api_version = str_at(doc, &["apiVersion"]).unwrap_or("");
        let kind = str_at(doc, &["kind"]).unwrap_or("");
        if kind != "ConstraintTemplate" || !TEMPLATE_API_VERSIONS.contains(&api_version) {
            return Err(invalid(format!(
                "expected kind ConstraintTemplate with apiVersion templates.gatekeeper.sh/v1 (or v1beta1), found {kind:?} {api_version:?}"
            )));
        }
        if name.is_empty() {
            return Err(invalid("metadata.name is missing".into()));
        }
        let crd_kind = str_at(doc, &["spec", "crd", "spec", "names", "kind"])
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid("spec.crd.spec.names.kind (the constraint kind) is missing".into()))?
            .to_string();
        if crd_kind.to_lowercase() != name {
            return Err(invalid(format!(
                "metadata.name must be the lowercase of spec.crd.spec.names.kind ({:?}), as Gatekeeper requires",
                crd_kind.to_lowercase()
            )));
        }
        let parameters_schema = doc
            .pointer("/spec/crd/spec/validation/openAPIV3Schema")
            .filter(|s| !s.is_null())
            .cloned();
        let source = rego_source(doc, &label)?;
        let (mut engine, rule) = compile_rego(&label, &source, budget, data)?;
        let vm = VmProgram::compile(&mut engine, &rule, data);
        let footprint = Footprint::of(engine.get_modules());
        Ok(Self {
            name,
            kind: crd_kind,
            parameters_schema,
            engine,
            rule,
            vm,
            footprint,
            generation: next_generation(),
        })
    }

    /// Replaces the engine's data document (`data.inventory`) and prepares it again.
    pub(crate) fn set_data(&mut self, data: &regorus::Value) -> Result<()> {
        self.engine.clear_data();
        self.engine
            .add_data(data.clone())
            .map_err(|e| PolicyError::InvalidInventory(e.to_string()))?;
        prepare(&mut self.engine, &self.rule, &self.name)?;
        self.generation = next_generation();
        if let Ok(vm) = &mut self.vm {
            match vm.machine(data.clone(), Duration::from_secs(1)) {
                Ok(_) => {
                    vm.data = data.clone();
                    vm.data_bmp = value_is_bmp(data);
                }
                Err(e) => self.vm = Err(format!("data conflicts with the VM program: {e}")),
            }
        }
        Ok(())
    }
}

fn rego_source(doc: &Value, template: &str) -> Result<RegoSource> {
    let invalid = |message: String| PolicyError::InvalidTemplate {
        template: template.to_string(),
        message,
    };
    let targets = doc
        .pointer("/spec/targets")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("spec.targets must be a non-empty list".into()))?;
    if targets.len() != 1 {
        return Err(invalid(format!(
            "spec.targets must hold exactly one target, found {}",
            targets.len()
        )));
    }
    let target = &targets[0];
    let target_name = str_at(target, &["target"]).unwrap_or("");
    if target_name != ADMISSION_TARGET {
        return Err(PolicyError::UnsupportedTemplate {
            template: template.to_string(),
            message: format!("target {target_name:?} is not supported, only {ADMISSION_TARGET:?}"),
        });
    }
    let strings = |value: Option<&Value>, field: &str| -> Result<Vec<String>> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(format!("{field}[{i}] must be a string, found {}", describe(item)))
                    })
                })
                .collect(),
            Some(other) => Err(invalid(format!(
                "{field} must be a list of strings, found {}",
                describe(other)
            ))),
        }
    };
    // templates.gatekeeper.sh/v1 can carry several engines under `code`; the Rego one wins over
    // the legacy `rego` field, as in Gatekeeper.
    if let Some(code) = target.get("code").filter(|c| !c.is_null()) {
        let entries = code.as_array().ok_or_else(|| {
            invalid(format!(
                "spec.targets[0].code must be a list, found {}",
                describe(code)
            ))
        })?;
        if let Some(entry) = entries.iter().find(|e| str_at(e, &["engine"]) == Some("Rego")) {
            let source = entry.get("source").unwrap_or(&Value::Null);
            let rego = str_at(source, &["rego"]).ok_or_else(|| {
                invalid("spec.targets[0].code[engine=Rego].source.rego must be a string".into())
            })?;
            let version = str_at(source, &["version"]).unwrap_or("v0");
            return Ok(RegoSource {
                rego: rego.to_string(),
                libs: strings(
                    source.get("libs"),
                    "spec.targets[0].code[engine=Rego].source.libs",
                )?,
                v1: version == "v1",
            });
        }
    }
    match target.get("rego") {
        Some(Value::String(rego)) => Ok(RegoSource {
            rego: rego.clone(),
            libs: strings(target.get("libs"), "spec.targets[0].libs")?,
            v1: false,
        }),
        None | Some(Value::Null) => Err(PolicyError::UnsupportedTemplate {
            template: template.to_string(),
            message: "no Rego source for the admission target (CEL-only templates are not supported yet)"
                .into(),
        }),
        Some(other) => Err(invalid(format!(
            "spec.targets[0].rego must be a string, found {}",
            describe(other)
        ))),
    }
}

fn compile_rego(
    template: &str,
    source: &RegoSource,
    budget: Duration,
    data: &regorus::Value,
) -> Result<(Engine, String)> {
    let mut engine = Engine::new();
    engine.set_rego_v0(!source.v1);
    // OPA's default: a built-in that fails makes its expression undefined, not the query an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(timer_config(budget));
    for (i, lib) in source.libs.iter().enumerate() {
        let source_name = format!("{template}/libs[{i}]");
        let text = for_regorus(lib);
        let package = engine
            .add_policy(source_name.clone(), text)
            .map_err(|e| rego_error(template, &source_name, e))?;
        // Gatekeeper keeps libraries under `data.lib`; anything else could shadow the template or
        // `data.inventory`.
        if package != "data.lib" && !package.starts_with("data.lib.") {
            return Err(PolicyError::Rego {
                template: template.to_string(),
                source_name,
                message: format!(
                    "library package must be under `lib` (package lib.<name>), found {package:?}"
                ),
            });
        }
    }
    let source_name = format!("{template}/rego");
    let text = for_regorus(&source.rego);
    let package = engine
        .add_policy(source_name.clone(), text)
        .map_err(|e| rego_error(template, &source_name, e))?;
    let has_violation = engine
        .has_declared_rule_rooted_at(&source_name, "violation")
        .map_err(|e| rego_error(template, &source_name, e))?;
    if !has_violation {
        return Err(PolicyError::Rego {
            template: template.to_string(),
            source_name,
            message: "missing required rule `violation`".into(),
        });
    }
    engine
        .add_data(data.clone())
        .map_err(|e| PolicyError::InvalidInventory(e.to_string()))?;
    let rule = format!("{package}.violation");
    prepare(&mut engine, &rule, template)?;
    Ok((engine, rule))
}

/// Analyses the policies once (scheduling, loop hoisting) so that clones start ready to evaluate.
fn prepare(engine: &mut Engine, rule: &str, template: &str) -> Result<()> {
    engine
        .compile_with_entrypoint(&rule.into())
        .map(|_| ())
        .map_err(|e| rego_error(template, &format!("{template}/rego"), e))
}

pub(crate) fn timer_config(budget: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit: budget,
        check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
    }
}

fn rego_error(template: &str, source_name: &str, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Rego {
        template: template.to_string(),
        source_name: source_name.to_string(),
        message: format!("{e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::value_is_bmp;
    use serde_json::json;

    #[test]
    fn the_bmp_screen_reads_every_string_and_key() {
        let v = |j: serde_json::Value| regorus::Value::from(j);
        assert!(value_is_bmp(&v(json!({"a": ["b", 1, {"c": "d\u{FFFF}é"}]}))));
        assert!(!value_is_bmp(&v(json!({"a": ["b", 1, {"c": "\u{1F600}"}]}))));
        assert!(!value_is_bmp(&v(json!({"\u{10000}": 1}))));
        let set = regorus::Value::from(std::collections::BTreeSet::from([regorus::Value::from(
            "\u{10FFFF}",
        )]));
        assert!(!value_is_bmp(&set));
    }
}
