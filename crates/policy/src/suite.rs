//! Gatekeeper `suite.yaml` runner with `gator verify` semantics: per test a template and a
//! constraint; per case a fresh policy state, one object (plain or AdmissionReview), optional
//! inventory and assertions on the violations. Files are read through [`SuiteFiles`], so this
//! module never touches the file system itself.

use crate::{AdmissionRequest, PolicyError, PolicySet, RegoEngine, Review};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Reads the files a suite names. Paths are as written in the suite (relative to its directory).
pub trait SuiteFiles {
    /// Every document of the file, in order; `Err` carries a message naming the file.
    fn read_documents(&self, path: &str) -> Result<Vec<Value>, String>;
}

/// Options for a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time budget for one constraint evaluation.
    pub time_budget: Duration,
    /// Which evaluator runs the templates.
    pub rego_engine: RegoEngine,
    /// Also review every case with the interpreter alone and fail the case when the results
    /// differ (violations, messages, details, kinds of error): checks that the VM, where it is
    /// used, gives the interpreter's answers.
    pub compare_engines: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            time_budget: crate::DEFAULT_TIME_BUDGET,
            rego_engine: RegoEngine::Auto,
            compare_engines: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// The suite's `metadata.name`.
    pub name: String,
    pub skipped: bool,
    /// An error that stopped the whole suite (malformed suite document).
    pub error: Option<String>,
    pub tests: Vec<TestResult>,
    pub runtime: Duration,
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub skipped: bool,
    /// An error that stopped the test before its cases (template or constraint not loadable).
    pub error: Option<String>,
    pub cases: Vec<CaseResult>,
    pub runtime: Duration,
    /// Cases the test declares (counted as failed when `error` stopped them).
    declared_cases: usize,
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub skipped: bool,
    /// Why the case failed; `None` is a pass.
    pub error: Option<String>,
    pub runtime: Duration,
}

/// Passed / failed / skipped counts over cases. A test stopped by an error counts each of its
/// declared cases (at least one) as failed; an `invalid` test counts as one case; a suite that
/// cannot be read counts as one failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl TestResult {
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || self.cases.iter().any(|c| c.error.is_some())
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        if self.skipped {
            c.skipped += self.declared_cases.max(1);
        } else if self.error.is_some() {
            c.failed += self.declared_cases.max(1);
        } else if self.cases.is_empty() {
            // An `invalid` test: its only check is that the constraint was rejected.
            c.passed += 1;
        } else {
            for case in &self.cases {
                match (&case.error, case.skipped) {
                    (_, true) => c.skipped += 1,
                    (None, false) => c.passed += 1,
                    (Some(_), false) => c.failed += 1,
                }
            }
        }
        c
    }
}

impl SuiteResult {
    pub fn is_failure(&self) -> bool {
        self.error.is_some() || self.tests.iter().any(TestResult::is_failure)
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        if self.error.is_some() {
            c.failed += 1;
        }
        for t in &self.tests {
            c += t.counts();
        }
        c
    }
}

/// Whether a document is a Gatekeeper test Suite (`kind: Suite`, group test.gatekeeper.sh).
pub fn is_suite(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("Suite")
        && doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("test.gatekeeper.sh/"))
}

/// Runs every test of one suite document.
pub fn run_suite(suite: &Value, files: &dyn SuiteFiles, options: &RunOptions) -> SuiteResult {
    let start = Instant::now();
    let name = suite
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut result = SuiteResult {
        name,
        skipped: false,
        error: None,
        tests: Vec::new(),
        runtime: Duration::ZERO,
    };
    match parse_suite(suite) {
        Err(e) => result.error = Some(e),
        Ok(parsed) if parsed.skip => result.skipped = true,
        Ok(parsed) => {
            result.tests = parsed.tests.iter().map(|t| run_test(t, files, options)).collect();
        }
    }
    result.runtime = start.elapsed();
    result
}

struct Suite {
    skip: bool,
    tests: Vec<Test>,
}

struct Test {
    name: String,
    template: String,
    constraint: String,
    expansion: String,
    invalid: bool,
    skip: bool,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    object: String,
    inventory: Vec<String>,
    assertions: Vec<Assertion>,
    skip: bool,
}

#[derive(Debug)]
enum Expect {
    Yes,
    No,
    Exactly(u64),
}

struct Assertion {
    violations: Result<Expect, String>,
    message: Option<String>,
}

fn parse_suite(doc: &Value) -> Result<Suite, String> {
    if !is_suite(doc) {
        return Err("not a Suite: expected kind Suite, apiVersion test.gatekeeper.sh/v1alpha1".into());
    }
    let skip = flag(doc.get("skip"), "skip")?;
    let mut tests = Vec::new();
    for (i, t) in list(doc.get("tests"), "tests")?.iter().enumerate() {
        let at = format!("tests[{i}]");
        let mut cases = Vec::new();
        for (j, c) in list(t.get("cases"), &format!("{at}.cases"))?.iter().enumerate() {
            let cat = format!("{at}.cases[{j}]");
            let mut assertions = Vec::new();
            for (k, a) in list(c.get("assertions"), &format!("{cat}.assertions"))?
                .iter()
                .enumerate()
            {
                let aat = format!("{cat}.assertions[{k}]");
                assertions.push(Assertion {
                    violations: expectation(a.get("violations")),
                    message: opt_string(a.get("message"), &format!("{aat}.message"))?,
                });
            }
            cases.push(Case {
                name: string(c.get("name"), &format!("{cat}.name"))?,
                object: string(c.get("object"), &format!("{cat}.object"))?,
                inventory: list(c.get("inventory"), &format!("{cat}.inventory"))?
                    .iter()
                    .enumerate()
                    .map(|(n, p)| string(Some(p), &format!("{cat}.inventory[{n}]")))
                    .collect::<Result<_, _>>()?,
                assertions,
                skip: flag(c.get("skip"), &format!("{cat}.skip"))?,
            });
        }
        tests.push(Test {
            name: string(t.get("name"), &format!("{at}.name"))?,
            template: string(t.get("template"), &format!("{at}.template"))?,
            constraint: string(t.get("constraint"), &format!("{at}.constraint"))?,
            expansion: string(t.get("expansion"), &format!("{at}.expansion"))?,
            invalid: flag(t.get("invalid"), &format!("{at}.invalid"))?,
            skip: flag(t.get("skip"), &format!("{at}.skip"))?,
            cases,
        });
    }
    Ok(Suite { skip, tests })
}

fn list<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a [Value], String> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("{field} must be a list, found {other}")),
    }
}

fn string(v: Option<&Value>, field: &str) -> Result<String, String> {
    Ok(opt_string(v, field)?.unwrap_or_default())
}

fn opt_string(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // YAML scalars such as a name `1` or `yes` arrive typed; Go's decoder would have read
        // them as strings from YAML 1.1 only when quoted, but a name is a name.
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{field} must be a string, found {other}")),
    }
}

/// A boolean written as YAML 1.2 (`true`) or YAML 1.1 (`yes`, `on`) as gator's loader reads it.
fn flag(v: Option<&Value>, field: &str) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" | "" => Ok(false),
            _ => Err(format!("{field} must be a boolean, found {s:?}")),
        },
        Some(other) => Err(format!("{field} must be a boolean, found {other}")),
    }
}

/// `violations:` as gator's IntOrString, plus the YAML 1.1 booleans `yes`/`no` that a YAML 1.2
/// loader keeps as strings and a YAML 1.1 loader turns into booleans. Absent means "yes".
/// Errors are reported when the assertion runs, as gator does.
fn expectation(v: Option<&Value>) -> Result<Expect, String> {
    const WANT: &str = r#"assertion.violations, if set, must be a nonnegative integer, "yes", or "no""#;
    match v {
        None | Some(Value::Null) => Ok(Expect::Yes),
        Some(Value::Bool(true)) => Ok(Expect::Yes),
        Some(Value::Bool(false)) => Ok(Expect::No),
        Some(Value::String(s)) if s == "yes" => Ok(Expect::Yes),
        Some(Value::String(s)) if s == "no" => Ok(Expect::No),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Expect::Exactly)
            .ok_or_else(|| format!("{WANT}, found {n}")),
        Some(other) => Err(format!("{WANT}, found {other}")),
    }
}

fn read_one(files: &dyn SuiteFiles, path: &str, what: &str) -> Result<Value, String> {
    let mut docs = files.read_documents(path)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(format!("{what} {path:?} defines no YAML objects")),
        n => Err(format!("{what} {path:?} defines {n} objects, want exactly 1")),
    }
}

/// Template and constraint loaded into a fresh set; each case clones it, which is a fresh state.
fn load_test(t: &Test, files: &dyn SuiteFiles, options: &RunOptions) -> Result<PolicySet, PolicyErrorOr> {
    if t.template.is_empty() {
        return Err(PolicyErrorOr::Other("invalid suite: missing template".into()));
    }
    let template = read_one(files, &t.template, "template").map_err(PolicyErrorOr::Other)?;
    let mut set = PolicySet::new();
    set.set_time_budget(options.time_budget);
    set.set_rego_engine(options.rego_engine);
    set.add_template(&template)
        .map_err(|e| PolicyErrorOr::Other(format!("adding template: {e}")))?;
    if t.constraint.is_empty() {
        return Err(PolicyErrorOr::Other("invalid suite: missing constraint".into()));
    }
    let constraint = read_one(files, &t.constraint, "constraint").map_err(PolicyErrorOr::Other)?;
    set.add_constraint(&constraint).map_err(PolicyErrorOr::Policy)?;
    Ok(set)
}

enum PolicyErrorOr {
    Policy(PolicyError),
    Other(String),
}

fn run_test(t: &Test, files: &dyn SuiteFiles, options: &RunOptions) -> TestResult {
    let start = Instant::now();
    let mut result = TestResult {
        name: t.name.clone(),
        skipped: t.skip,
        error: None,
        cases: Vec::new(),
        runtime: Duration::ZERO,
        declared_cases: t.cases.len(),
    };
    if t.skip {
        return result;
    }
    if !t.expansion.is_empty() {
        result.error = Some("expansion templates are not supported".into());
        return result;
    }
    let loaded = load_test(t, files, options);
    if t.invalid {
        match loaded {
            Err(PolicyErrorOr::Policy(PolicyError::ConstraintSchema { .. })) => {}
            Err(PolicyErrorOr::Policy(e)) => {
                result.error = Some(format!(
                    "constraint should be rejected by the template's schema, got: {e}"
                ));
            }
            Err(PolicyErrorOr::Other(e)) => result.error = Some(e),
            Ok(_) => {
                result.error = Some("constraint is valid, but the test says it is invalid".into());
            }
        }
        result.declared_cases = 1;
        result.runtime = start.elapsed();
        return result;
    }
    let set = match loaded {
        Ok(set) => set,
        Err(PolicyErrorOr::Policy(e)) => {
            result.error = Some(format!("adding constraint: {e}"));
            result.runtime = start.elapsed();
            return result;
        }
        Err(PolicyErrorOr::Other(e)) => {
            result.error = Some(e);
            result.runtime = start.elapsed();
            return result;
        }
    };
    result.cases = t
        .cases
        .iter()
        .map(|c| {
            let case_start = Instant::now();
            if c.skip {
                return CaseResult {
                    name: c.name.clone(),
                    skipped: true,
                    error: None,
                    runtime: Duration::ZERO,
                };
            }
            let error = run_case(&set, c, files, options.compare_engines).err();
            CaseResult {
                name: c.name.clone(),
                skipped: false,
                error,
                runtime: case_start.elapsed(),
            }
        })
        .collect();
    result.runtime = start.elapsed();
    result
}

fn run_case(base: &PolicySet, c: &Case, files: &dyn SuiteFiles, compare_engines: bool) -> Result<(), String> {
    if c.object.is_empty() {
        return Err("invalid case: must define object".into());
    }
    if c.assertions.is_empty() {
        return Err("invalid case: assertions must be non-empty".into());
    }
    let mut set = base.clone();
    let object = read_one(files, &c.object, "object")?;
    let mut inventory = Vec::new();
    for path in &c.inventory {
        let docs = files.read_documents(path)?;
        if docs.is_empty() {
            return Err(format!("inventory {path:?} defines no YAML objects"));
        }
        inventory.extend(docs);
    }
    if !inventory.is_empty() {
        set.set_inventory(inventory).map_err(|e| e.to_string())?;
    }
    let is_admission_review = object.get("kind").and_then(Value::as_str) == Some("AdmissionReview")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("admission.k8s.io/"));
    let request = if is_admission_review {
        AdmissionRequest::from_admission_review(&object)
    } else {
        AdmissionRequest::from_object(&object)
    }
    .map_err(|e| format!("reviewing {:?}: {e}", c.object))?;
    let review = set.review(&request);
    if compare_engines {
        let mut interpreter = set.clone();
        interpreter.set_rego_engine(RegoEngine::Interpreter);
        let reference = interpreter.review(&request);
        if let Some(difference) = differences(&review, &reference) {
            return Err(format!("the VM and the interpreter disagree: {difference}"));
        }
    }
    if let Some(n) = review.not_evaluated.first() {
        return Err(format!(
            "constraint {}/{} not evaluated: {}",
            n.constraint_kind, n.constraint_name, n.reason
        ));
    }
    // Like Gatekeeper, an evaluation error becomes a result whose message is the error.
    let messages: Vec<String> = review
        .violations
        .iter()
        .map(|v| v.msg.clone())
        .chain(review.errors.iter().map(ToString::to_string))
        .collect();
    for a in &c.assertions {
        check_assertion(a, &messages)?;
    }
    Ok(())
}

/// How two reviews of one request differ, if they do. Errors are compared by kind: the two
/// evaluators word their messages differently.
fn differences(review: &Review, reference: &Review) -> Option<String> {
    if review.violations != reference.violations {
        return Some(format!(
            "violations {:?} against {:?}",
            review.violations, reference.violations
        ));
    }
    if review.not_evaluated != reference.not_evaluated {
        return Some("different constraints not evaluated".into());
    }
    let kinds = |r: &Review| r.errors.iter().map(std::mem::discriminant).collect::<Vec<_>>();
    if kinds(review) != kinds(reference) {
        let show = |r: &Review| r.errors.iter().map(ToString::to_string).collect::<Vec<_>>();
        return Some(format!("errors {:?} against {:?}", show(review), show(reference)));
    }
    None
}

fn check_assertion(a: &Assertion, messages: &[String]) -> Result<(), String> {
    let matching = match &a.message {
        None => messages.len(),
        Some(pattern) => {
            let re =
                regex::Regex::new(pattern).map_err(|e| format!("invalid message regex {pattern:?}: {e}"))?;
            messages.iter().filter(|m| re.is_match(m)).count()
        }
    };
    let expect = a.violations.as_ref().map_err(Clone::clone)?;
    let containing = a
        .message
        .as_ref()
        .map(|m| format!(" containing {m:?}"))
        .unwrap_or_default();
    let failure = match expect {
        Expect::Yes if matching == 0 => Some("at least 1".to_string()),
        Expect::No if matching > 0 => Some("none".to_string()),
        Expect::Exactly(n) if matching as u64 != *n => Some(format!("exactly {n}")),
        _ => None,
    };
    match failure {
        None => Ok(()),
        Some(want) => Err(format!(
            "unexpected number of violations: got {matching} violations{containing} but want {want}; got messages {messages:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn violations_accept_bool_string_and_int() {
        assert!(matches!(expectation(Some(&json!(true))), Ok(Expect::Yes)));
        assert!(matches!(expectation(Some(&json!("no"))), Ok(Expect::No)));
        assert!(matches!(expectation(Some(&json!(false))), Ok(Expect::No)));
        assert!(matches!(expectation(Some(&json!(2))), Ok(Expect::Exactly(2))));
        assert!(matches!(expectation(None), Ok(Expect::Yes)));
        assert!(expectation(Some(&json!(-1))).is_err());
        assert!(expectation(Some(&json!("maybe"))).is_err());
    }

    #[test]
    fn message_is_an_unanchored_regex() {
        let a = Assertion {
            violations: Ok(Expect::Exactly(1)),
            message: Some("privileged".into()),
        };
        assert!(check_assertion(&a, &["container <c> is privileged".into(), "other".into()]).is_ok());
        let err = check_assertion(&a, &[]).unwrap_err();
        assert!(
            err.contains("got 0 violations containing \"privileged\" but want exactly 1"),
            "{err}"
        );
        let bad = Assertion {
            violations: Ok(Expect::Yes),
            message: Some("(".into()),
        };
        assert!(check_assertion(&bad, &["x".into()]).is_err());
    }
}
