//! Admission policy engine, Gatekeeper-compatible: ConstraintTemplates (Rego, compiled once with
//! regorus), Constraints with `spec.match` and `enforcementAction`, `data.inventory`, and a runner
//! for Gatekeeper `suite.yaml` files with `gator verify` semantics. Sans-I/O: documents come in as
//! `serde_json::Value`, files through the [`suite::SuiteFiles`] trait; never a file or a socket.
//!
//! ```
//! use palisade_policy::{AdmissionRequest, PolicySet};
//! use serde_json::json;
//!
//! let mut set = PolicySet::new();
//! set.add_template(&json!({
//!     "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
//!     "metadata": {"name": "k8sdenyall"},
//!     "spec": {"crd": {"spec": {"names": {"kind": "K8sDenyAll"}}},
//!              "targets": [{"target": "admission.k8s.gatekeeper.sh",
//!                           "rego": "package k8sdenyall\nviolation[{\"msg\": \"denied\"}] { true }"}]}
//! })).unwrap();
//! set.add_constraint(&json!({
//!     "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDenyAll",
//!     "metadata": {"name": "deny-pods"},
//!     "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}}
//! })).unwrap();
//! let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}});
//! let review = set.review(&AdmissionRequest::from_object(&pod).unwrap());
//! assert_eq!(review.violations[0].msg, "denied");
//! ```

mod constraint;
mod decision_cache;
mod error;
mod footprint;
mod inventory;
mod request;
mod review_pool;
mod rewrite;
pub mod suite;
mod template;
mod util;
mod vm_check;
use decision_cache::{DecisionCache, Remembered};
use vm_check::VmCondition;

pub use constraint::EnforcementAction;
pub use error::{PolicyError, Result};
pub use request::AdmissionRequest;
pub use template::ADMISSION_TARGET;

use constraint::Constraint;
use inventory::Inventory;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use template::CompiledTemplate;

/// Bounds the memory of the whole process as regorus counts it (every allocation, through the
/// global allocator regorus installs): once live bytes pass `bytes`, evaluations in progress stop
/// with [`PolicyError::Memory`] instead of growing until the kernel kills the process. Process-wide,
/// so set it once, at start, above what the rest of the process needs; `None` removes it.
pub fn set_memory_limit(bytes: Option<u64>) {
    regorus::set_global_memory_limit(bytes);
}

/// Default time budget for evaluating one constraint against one request.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_millis(100);

/// Which regorus evaluator runs the templates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegoEngine {
    /// The register VM for every template a static check proves it cannot disagree with the
    /// interpreter on (about 2.5x less CPU), the interpreter for the rest.
    #[default]
    Auto,
    /// The interpreter for every template.
    Interpreter,
}

impl std::str::FromStr for RegoEngine {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "interpreter" => Ok(Self::Interpreter),
            other => Err(format!(
                "unknown Rego engine {other:?}: expected auto or interpreter"
            )),
        }
    }
}

/// Which evaluator a template runs on, and why not the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateEngine {
    pub name: String,
    /// `true` when reviews evaluate it on the register VM.
    pub vm: bool,
    /// Why it stays on the interpreter (`None` on the VM or when the interpreter is forced).
    pub reason: Option<String>,
    /// On the VM only for some reviews: which (the interpreter takes the others).
    pub condition: Option<String>,
    /// What of the review its remembered decisions are keyed by, or why they are not
    /// remembered (`PolicySet::set_decision_cache`).
    pub remembered_by: String,
    /// Whether its decisions can be remembered at all.
    pub rememberable: bool,
}

/// A template that was added: its name and the constraint kind it defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateId {
    pub name: String,
    pub kind: String,
}

/// One `violation[{"msg": ..., "details": ...}]` result of one constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub msg: String,
    /// `details` from the rule, `{}` when the rule gives none.
    pub details: Value,
    pub template: String,
    pub constraint_kind: String,
    pub constraint_name: String,
    pub enforcement_action: EnforcementAction,
}

/// A constraint that matched the kind but could not be decided (for example a namespaceSelector
/// without the Namespace object). Never a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotEvaluated {
    pub constraint_kind: String,
    pub constraint_name: String,
    pub reason: String,
}

/// The outcome of reviewing one request against every constraint.
#[derive(Debug, Default)]
pub struct Review {
    pub violations: Vec<Violation>,
    pub not_evaluated: Vec<NotEvaluated>,
    /// Constraints whose evaluation failed (time budget, run-time error); the caller decides
    /// between fail-open and fail-closed.
    pub errors: Vec<PolicyError>,
    /// How long each evaluated constraint took, by template name (for per-policy metrics).
    pub timings: Vec<(String, Duration)>,
    /// How many of the evaluated constraints answered from remembered decisions.
    pub remembered: usize,
}

/// Compiled templates, their constraints and the inventory. Compile once, review many times;
/// `review` takes `&self` and is safe to call from several threads.
#[derive(Clone)]
pub struct PolicySet {
    // Shared with the review pool's threads while a review runs.
    templates: BTreeMap<String, Arc<CompiledTemplate>>,
    constraints: BTreeMap<(String, String), Arc<Constraint>>,
    inventory: Inventory,
    budget: Duration,
    engine: RegoEngine,
    /// Threads one review may evaluate its constraints on (1: the caller's only).
    review_threads: usize,
    /// Remembered decisions, when enabled (`set_decision_cache`); shared by clones.
    decisions: Option<Arc<DecisionCache>>,
}

impl Default for PolicySet {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicySet {
    pub fn new() -> Self {
        Self {
            templates: BTreeMap::new(),
            constraints: BTreeMap::new(),
            inventory: Inventory::default(),
            budget: DEFAULT_TIME_BUDGET,
            engine: RegoEngine::Auto,
            review_threads: 1,
            decisions: None,
        }
    }

    /// Remembers up to `capacity` decisions (0: none, the default): a constraint's verdict on
    /// the part of a review its template reads answers for the next review that agrees on that
    /// part (design note 28). Templates that call the clock or the network are never
    /// remembered, nor a spent time budget or the memory limit.
    pub fn set_decision_cache(&mut self, capacity: usize) {
        self.decisions = (capacity > 0).then(|| Arc::new(DecisionCache::new(capacity)));
    }

    /// Decisions answered from the cache and evaluated, since it was enabled.
    pub fn decision_cache_counts(&self) -> (u64, u64) {
        self.decisions.as_ref().map_or((0, 0), |c| c.counts())
    }

    /// Chooses the evaluator (default [`RegoEngine::Auto`]); applies to templates already added.
    pub fn set_rego_engine(&mut self, engine: RegoEngine) {
        self.engine = engine;
    }

    /// How many threads one review may spread its constraints over (default 1, at least 1). A
    /// webhook waiting on its answer gets it sooner when cores are idle; batch runs (audit,
    /// verify) are better served one review per thread. A review spreads only while it is the
    /// only one in progress in the process.
    pub fn set_review_threads(&mut self, threads: usize) {
        self.review_threads = threads.max(1);
    }

    /// For each template, in kind order, whether it runs on the VM and why not.
    pub fn template_engines(&self) -> Vec<TemplateEngine> {
        self.templates
            .values()
            .map(|t| {
                let (vm, reason, condition) = match (&t.vm, self.engine) {
                    (_, RegoEngine::Interpreter) => (false, None, None),
                    (Ok(vm), RegoEngine::Auto) => (
                        true,
                        None,
                        match vm.condition {
                            VmCondition::Always => None,
                            VmCondition::BmpStrings => Some(
                                "every string of the review, the constraint's parameters and data is \
                                 within the Basic Multilingual Plane"
                                    .into(),
                            ),
                        },
                    ),
                    (Err(reason), RegoEngine::Auto) => (false, Some(reason.clone()), None),
                };
                TemplateEngine {
                    name: t.name.clone(),
                    vm,
                    reason,
                    condition,
                    remembered_by: t.footprint.describe(),
                    rememberable: matches!(t.footprint, footprint::Footprint::Paths(_)),
                }
            })
            .collect()
    }

    /// Sets the time budget for evaluating one constraint (default [`DEFAULT_TIME_BUDGET`]).
    pub fn set_time_budget(&mut self, budget: Duration) {
        self.budget = budget;
        for t in self.templates.values_mut() {
            Arc::make_mut(t)
                .engine
                .set_execution_timer_config(template::timer_config(budget));
        }
    }

    /// Compiles a ConstraintTemplate. A template for a kind already present replaces it.
    pub fn add_template(&mut self, doc: &Value) -> Result<TemplateId> {
        let compiled = CompiledTemplate::compile(doc, self.budget, &self.inventory.data_document())?;
        let id = TemplateId {
            name: compiled.name.clone(),
            kind: compiled.kind.clone(),
        };
        self.templates.insert(compiled.kind.clone(), Arc::new(compiled));
        Ok(id)
    }

    /// Adds (or replaces) a Constraint; its kind must be a template's CRD kind.
    pub fn add_constraint(&mut self, doc: &Value) -> Result<()> {
        let kind = util::str_at(doc, &["kind"]).unwrap_or("");
        let template = self
            .templates
            .get(kind)
            .ok_or_else(|| PolicyError::InvalidConstraint {
                constraint: format!(
                    "{kind}/{}",
                    util::str_at(doc, &["metadata", "name"]).unwrap_or("<unnamed>")
                ),
                message: format!("no ConstraintTemplate defines the kind {kind:?}"),
            })?;
        let constraint = Constraint::parse(doc, template.parameters_schema.as_ref())?;
        self.constraints.insert(
            (constraint.kind.clone(), constraint.name.clone()),
            Arc::new(constraint),
        );
        Ok(())
    }

    /// Replaces `data.inventory` with these objects (and the Namespaces `namespaceSelector` uses).
    pub fn set_inventory(&mut self, objects: Vec<Value>) -> Result<()> {
        let inventory = Inventory::from_objects(objects)?;
        let data = inventory.data_document();
        for t in self.templates.values_mut() {
            Arc::make_mut(t).set_data(&data)?;
        }
        self.inventory = inventory;
        Ok(())
    }

    /// The templates, in kind order.
    pub fn templates(&self) -> impl Iterator<Item = TemplateId> + '_ {
        self.templates.values().map(|t| TemplateId {
            name: t.name.clone(),
            kind: t.kind.clone(),
        })
    }

    /// The constraints as (kind, name), in order.
    pub fn constraints(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.constraints.keys().map(|(k, n)| (k.as_str(), n.as_str()))
    }

    /// Reviews a request against every constraint; the request's Namespace, when one is needed,
    /// comes from the inventory.
    pub fn review(&self, request: &AdmissionRequest) -> Review {
        let namespace = match request.namespace() {
            "" => None,
            ns => self.inventory.namespace(ns),
        };
        self.review_with_namespace(request, namespace)
    }

    /// Reviews a request with a caller-supplied Namespace object (the webhook's cache).
    pub fn review_with_namespace(&self, request: &AdmissionRequest, namespace: Option<&Value>) -> Review {
        let mut out = Review::default();
        let mut review_json = request.as_json().clone();
        if let Value::Object(map) = &mut review_json {
            map.insert(
                "namespaceObject".into(),
                namespace.cloned().unwrap_or(Value::Null),
            );
        }
        let mut matched_constraints = Vec::new();
        for constraint in self.constraints.values() {
            let Some(template) = self.templates.get(&constraint.kind) else {
                continue;
            };
            let mut matched = false;
            let mut unknown = None;
            for obj in request.match_targets() {
                match constraint.matcher.matches(obj, namespace) {
                    Ok(true) => {
                        matched = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(reason) => {
                        unknown = Some(reason.0);
                        break;
                    }
                }
            }
            if let Some(reason) = unknown {
                out.not_evaluated.push(NotEvaluated {
                    constraint_kind: constraint.kind.clone(),
                    constraint_name: constraint.name.clone(),
                    reason,
                });
                continue;
            }
            if !matched {
                continue;
            }
            matched_constraints.push((template.clone(), constraint.clone()));
        }
        for (template, spent, verdict) in self.evaluate_all(matched_constraints, review_json) {
            out.timings.push((template.name.clone(), spent));
            out.remembered += usize::from(verdict.remembered);
            match verdict.outcome {
                Ok(violations) => out.violations.extend(violations.iter().cloned()),
                Err(e) => out.errors.push(e),
            }
        }
        out
    }

    /// Evaluates the matched constraints, on this thread and, while no other review is in
    /// progress, up to `review_threads - 1` pool threads; results in the constraints' order.
    fn evaluate_all(
        &self,
        matched: Vec<(Arc<CompiledTemplate>, Arc<Constraint>)>,
        review: Value,
    ) -> Vec<review_pool::Outcome> {
        // Spreading pays only while cores are idle: with other reviews in progress (a webhook
        // under load) CPU is already the bottleneck and a helper would only queue.
        let _active = ActiveReview::enter();
        let threads = if ACTIVE_REVIEWS.load(std::sync::atomic::Ordering::Relaxed) > 1 {
            1
        } else {
            self.review_threads.min(matched.len())
        };
        review_pool::Job::new(matched, review, self.evaluator()).run(threads.saturating_sub(1))
    }

    fn evaluator(&self) -> Evaluator {
        Evaluator {
            engine: self.engine,
            budget: self.budget,
            decisions: self.decisions.clone(),
        }
    }
}

/// What evaluating one constraint needs besides the template, the constraint and the review:
/// copied into each review so that pool threads need no reference to the policy set.
#[derive(Clone)]
pub(crate) struct Evaluator {
    engine: RegoEngine,
    budget: Duration,
    decisions: Option<Arc<DecisionCache>>,
}

/// One constraint's answer about one review.
pub(crate) struct Verdict {
    pub outcome: Result<Arc<[Violation]>>,
    /// Answered from the decision cache.
    pub remembered: bool,
}

impl Evaluator {
    /// The remembered decision of `constraint` about this review, if any; otherwise the key to
    /// remember its decision by (`None`: not to be remembered).
    pub(crate) fn remembered(
        &self,
        template: &CompiledTemplate,
        constraint: &Constraint,
        review: &review_pool::ReviewInput,
    ) -> Result<Verdict, Option<Vec<u8>>> {
        let cache = self.decisions.as_ref().ok_or(None)?;
        let key = template
            .footprint
            .key(&review.json, &review.key_parts)
            .ok_or(None)?;
        let outcome = match cache.get(template.generation, constraint.generation, key) {
            Ok(Remembered::Violations(violations)) => Ok(violations),
            Ok(Remembered::EvaluationError(message)) => Err(PolicyError::Evaluation {
                template: template.name.clone(),
                constraint: format!("{}/{}", constraint.kind, constraint.name),
                message: message.to_string(),
            }),
            Err(key) => return Err(Some(key)),
        };
        Ok(Verdict {
            outcome,
            remembered: true,
        })
    }

    /// Evaluates `constraint` and remembers its decision under `key`, if given.
    pub(crate) fn evaluate(
        &self,
        template: &CompiledTemplate,
        constraint: &Constraint,
        review: &review_pool::ReviewInput,
        key: Option<Vec<u8>>,
    ) -> Verdict {
        let outcome: Result<Arc<[Violation]>> =
            self.evaluate_now(template, constraint, review).map(Arc::from);
        if let (Some(cache), Some(key)) = (&self.decisions, key) {
            let (t, c) = (template.generation, constraint.generation);
            match &outcome {
                Ok(violations) => cache.put(t, c, key, Remembered::Violations(violations.clone())),
                Err(PolicyError::Evaluation { message, .. }) => {
                    cache.put(t, c, key, Remembered::EvaluationError(message.as_str().into()))
                }
                // A spent budget or the memory limit depends on the load, not the review.
                Err(_) => {}
            }
        }
        Verdict {
            outcome,
            remembered: false,
        }
    }

    fn evaluate_now(
        &self,
        template: &CompiledTemplate,
        constraint: &Constraint,
        review: &review_pool::ReviewInput,
    ) -> Result<Vec<Violation>> {
        let mut input = BTreeMap::new();
        input.insert(regorus::Value::from("review"), review.value().clone());
        input.insert(regorus::Value::from("parameters"), constraint.parameters.clone());
        let input = regorus::Value::from(input);
        let label = || format!("{}/{}", constraint.kind, constraint.name);
        let result = match (&template.vm, self.engine) {
            (Ok(vm), RegoEngine::Auto)
                if vm.applies(|| review.bmp() && template::value_is_bmp(&constraint.parameters)) =>
            {
                vm.evaluate(input, self.budget).map_err(|failure| match failure {
                    template::VmFailure::Budget => PolicyError::Budget {
                        template: template.name.clone(),
                        constraint: label(),
                        budget: self.budget,
                    },
                    template::VmFailure::Memory { usage, limit } => PolicyError::Memory {
                        template: template.name.clone(),
                        constraint: label(),
                        usage,
                        limit,
                    },
                    template::VmFailure::Other(message) => PolicyError::Evaluation {
                        template: template.name.clone(),
                        constraint: label(),
                        message,
                    },
                })?
            }
            _ => self.interpret(template, constraint, input)?,
        };
        violations_of(&result, template, constraint)
    }

    fn interpret(
        &self,
        template: &CompiledTemplate,
        constraint: &Constraint,
        input: regorus::Value,
    ) -> Result<regorus::Value> {
        let mut engine = template.engine.clone();
        engine.set_input(input);
        engine.eval_rule(template.rule.clone()).map_err(|e| {
            let message = format!("{e:#}");
            let limit = e
                .chain()
                .find_map(|c| c.downcast_ref::<regorus::LimitError>())
                .copied();
            if let Some(regorus::LimitError::MemoryLimitExceeded { usage, limit }) = limit {
                PolicyError::Memory {
                    template: template.name.clone(),
                    constraint: format!("{}/{}", constraint.kind, constraint.name),
                    usage,
                    limit,
                }
            } else if message.contains("execution exceeded time limit") {
                PolicyError::Budget {
                    template: template.name.clone(),
                    constraint: format!("{}/{}", constraint.kind, constraint.name),
                    budget: self.budget,
                }
            } else {
                PolicyError::Evaluation {
                    template: template.name.clone(),
                    constraint: format!("{}/{}", constraint.kind, constraint.name),
                    message,
                }
            }
        })
    }
}

/// Reviews in progress in this process, on any policy set.
static ACTIVE_REVIEWS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a review in [`ACTIVE_REVIEWS`] while it lives.
struct ActiveReview;

impl ActiveReview {
    fn enter() -> Self {
        ACTIVE_REVIEWS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self
    }
}

impl Drop for ActiveReview {
    fn drop(&mut self) {
        ACTIVE_REVIEWS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The `violation` set of one evaluation as violations of `constraint`.
fn violations_of(
    result: &regorus::Value,
    template: &CompiledTemplate,
    constraint: &Constraint,
) -> Result<Vec<Violation>> {
    let mut violations = Vec::new();
    let results: Vec<&regorus::Value> = match result {
        regorus::Value::Set(set) => set.iter().collect(),
        regorus::Value::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    };
    let msg_key = regorus::Value::from("msg");
    let details_key = regorus::Value::from("details");
    for r in results {
        let Ok(obj) = r.as_object() else { continue };
        // Gatekeeper's hook reads `r.msg`: a result without one is undefined and dropped.
        let msg = match obj.get(&msg_key) {
            None | Some(regorus::Value::Undefined) => continue,
            Some(regorus::Value::String(s)) => s.to_string(),
            Some(other) => serde_json::to_string(other).unwrap_or_default(),
        };
        let details = obj
            .get(&details_key)
            .and_then(|d| serde_json::to_value(d).ok())
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        violations.push(Violation {
            msg,
            details,
            template: template.name.clone(),
            constraint_kind: constraint.kind.clone(),
            constraint_name: constraint.name.clone(),
            enforcement_action: constraint.enforcement_action,
        });
    }
    Ok(violations)
}
