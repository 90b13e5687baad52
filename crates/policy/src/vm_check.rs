//! Decides, from a template's parsed Rego alone, whether regorus' register VM can be trusted to
//! give the interpreter's answer for it. It must never say yes when it cannot prove it: a wrong
//! yes turns an evaluation error (fail-closed) into a silent pass.
//!
//! The VM and the interpreter differ where the interpreter raises a run-time error and the VM
//! goes on (measured on regorus 0.14.1):
//! - a function or complete rule with two different outputs for the same input (OPA and the
//!   interpreter: "functions must not produce multiple outputs"; the VM: undefined), whether the
//!   outputs come from two bodies or from one body that iterates;
//! - a partial object rule or object comprehension giving one key two values (the VM keeps one);
//! - arithmetic on a non-number, `|`/`&` on a non-set, `some .. in` over a scalar, a rule head's
//!   `x[_]` over an undefined value or a scalar (the VM, like OPA, makes it undefined); unary
//!   minus on anything but a number literal is an interpreter error too (the VM's compiler
//!   rejects it, so it is refused here for clarity, not safety).
//!
//! A template is eligible only when none of these can happen:
//! - every body of every function and complete rule has a single output: a constant, a
//!   deterministic expression of the parameters, `input` and `data`, or a body without iteration;
//! - every pair of bodies from different definitions (an `else` chain is one definition) either
//!   gives the same output (the same constant, or the same deterministic expression), or cannot
//!   both succeed: one has the literal `E` and the other `not E` (E deterministic, its locals
//!   replaced by their definitions), or they test the same deterministic term with different
//!   type checks (`is_number(x)` / `is_string(x)`), or compare it with constants whose ranges do
//!   not meet (`x == "a"` / `x == "b"`, `count(x) == 0` / `count(x) > 1`, `f("a")` / `f("b")`);
//! - no partial object rule and no object comprehension, unless its value is a constant;
//! - arithmetic operands are provably numbers, set operands provably sets, `in` collections
//!   provably collections;
//! - no `with` modifier (not compared between the two).

use regorus::Value;
use regorus::unstable::{
    ArithOp, AssignOp, BinOp, BoolOp, Expr, Literal, LiteralStmt, Module, Query, Ref, Rule, RuleHead,
};
use std::collections::{BTreeMap, BTreeSet};

/// When the VM may evaluate a template that [`vm_eligible`] admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VmCondition {
    /// For every input.
    Always,
    /// Only when every string the evaluation can read (the review, the parameters, `data`) is
    /// within Unicode's Basic Multilingual Plane: there regorus' `count`, which counts UTF-16
    /// units, equals the number of characters `substring` counts, and two bodies told apart by
    /// the suffixes they take (`substring(s, count(s) - k, -1)`) cannot both succeed. Strings
    /// outside it go to the interpreter.
    BmpStrings,
}

/// Why a template must stay on the interpreter, or when the VM cannot disagree with it.
pub(crate) fn vm_eligible(modules: &[Ref<Module>]) -> Result<VmCondition, String> {
    let program = Program::new(modules);
    let mut problems = Vec::new();
    let mut groups: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
    let no_params = BTreeMap::new();
    let mut chain = 0;
    for module in modules {
        let package = package_path(module);
        let globals = program.globals_for(module);
        for rule in &module.policy {
            let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let (refr, args, assign, kind) = match head {
                RuleHead::Func {
                    refr, args, assign, ..
                } => (refr, args.as_slice(), assign.as_ref(), Kind::Function),
                RuleHead::Compr { refr, assign, .. } => match rule_path(refr) {
                    Some(_) => (refr, &[][..], assign.as_ref(), Kind::Complete),
                    None => (refr, &[][..], assign.as_ref(), Kind::PartialObject),
                },
                RuleHead::Set { key, .. } => {
                    // Sets gather every output: nothing can conflict, only the bodies' own
                    // expressions need checking.
                    let scope = Scope::root(&program, &globals, &no_params);
                    for body in bodies {
                        let facts = scope.query(&body.query, &mut problems);
                        if let Some(key) = key {
                            // The interpreter loops over a head's `x[_]` itself and errors when
                            // `x` is undefined or a scalar ("item cannot be indexed").
                            if facts.scope.render(key, &mut problems).iterates {
                                problems.push(format!("line {}: the rule head iterates", key.span().line));
                            }
                        }
                    }
                    continue;
                }
            };
            let name = format!(
                "{package}.{}",
                rule_path(refr).unwrap_or_else(|| refr.span().text().to_string())
            );
            let mut params = BTreeMap::new();
            let mut head_constants = Vec::new();
            for (i, arg) in args.iter().enumerate() {
                match arg.as_ref() {
                    Expr::Var { span, .. } if span.text() != "_" => {
                        params.entry(span.text().to_string()).or_insert(i);
                    }
                    other => {
                        if let Some(value) = constant(other) {
                            head_constants.push((i, value));
                        }
                    }
                }
            }
            let mut pattern_vars = BTreeSet::new();
            for arg in args {
                if !matches!(arg.as_ref(), Expr::Var { .. }) {
                    vars_in(arg, &mut pattern_vars);
                }
            }
            let scope = Scope::root(&program, &globals, &params).with_opaque(&pattern_vars);
            let hazards = &mut problems;
            let mut group = Vec::new();
            // A rule without a body (`r := 1`, `f(x) := x.a`) is one body that always succeeds.
            let body_list: Vec<Body> = if bodies.is_empty() {
                vec![Body {
                    query: None,
                    output: assign.map(|a| &a.value),
                    is_else: false,
                }]
            } else {
                bodies
                    .iter()
                    .map(|b| Body {
                        query: Some(&b.query),
                        // An `else` without a value gives `true`, like a head without one.
                        output: match (&b.assign, b.is_else) {
                            (Some(a), _) => Some(&a.value),
                            (None, true) => None,
                            (None, false) => assign.map(|a| &a.value),
                        },
                        is_else: b.is_else,
                    })
                    .collect()
            };
            for Body {
                query,
                output,
                is_else,
            } in body_list
            {
                if !is_else {
                    chain += 1;
                }
                let facts = match query {
                    Some(q) => scope.query(q, hazards),
                    None => scope.child().facts(),
                };
                let out = output.map(|o| facts.scope.render(o, hazards));
                let line = query.map_or(refr.span().line, |q| q.span.line);
                if kind == Kind::PartialObject {
                    facts.scope.render(refr, hazards);
                    let constant_value = output.and_then(|o| constant(o));
                    if constant_value.is_none() {
                        hazards.push(format!(
                            "partial object rule `{}` (line {line}) can give one key two values",
                            refr.span().text()
                        ));
                    }
                    continue;
                }
                let single = match &out {
                    None => true,
                    // Deterministic in the parameters, or computed without iteration.
                    Some(t) => !t.iterates && (t.pure || !facts.iterates),
                };
                if !single {
                    hazards.push(format!(
                        "`{name}` (line {line}) iterates and can produce several outputs"
                    ));
                }
                let mut summary = facts.summary(head_constants.clone());
                // A body whose output is undefined gives nothing.
                if let Some(t) = out.as_ref().filter(|t| t.pure && !t.iterates) {
                    summary.defined.insert(t.text.clone());
                }
                group.push(Definition {
                    chain,
                    line,
                    output: output.map(|o| (constant(o), out.clone().unwrap_or_default())),
                    facts: summary,
                });
            }
            groups.entry(name).or_default().extend(group);
        }
    }
    // Pairs told apart only by their suffixes: sound only when no string outside the BMP can
    // reach them, which the template itself must not be able to make.
    let mut bmp_pairs = Vec::new();
    for (name, definitions) in &groups {
        for (i, a) in definitions.iter().enumerate() {
            for b in &definitions[i + 1..] {
                if a.chain == b.chain {
                    continue;
                }
                match compatible(a, b) {
                    Compatibility::Always => {}
                    Compatibility::WithBmpStrings => bmp_pairs.push((name, a.line, b.line)),
                    Compatibility::No => problems.push(format!(
                        "`{name}`: the bodies at lines {} and {} may both succeed with different outputs",
                        a.line, b.line
                    )),
                }
            }
        }
    }
    let mut condition = VmCondition::Always;
    if !bmp_pairs.is_empty() {
        match makes_no_astral_strings(modules, &program) {
            Ok(()) => condition = VmCondition::BmpStrings,
            Err(why) => {
                for (name, a, b) in bmp_pairs {
                    problems.push(format!(
                        "`{name}`: the bodies at lines {a} and {b} may both succeed with different outputs \
                         (they exclude each other only on strings within the BMP, and {why})"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(condition)
    } else {
        problems.sort();
        problems.dedup();
        Err(problems.join("; "))
    }
}

/// One body of a function or rule: its query, its output (`None`: `true`), whether it is an
/// `else` branch.
struct Body<'r> {
    query: Option<&'r Ref<Query>>,
    output: Option<&'r Ref<Expr>>,
    is_else: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    Complete,
    PartialObject,
}

/// One body of a function or complete rule.
struct Definition {
    /// Bodies of one `else` chain share a number: only one of them gives the chain's output.
    chain: usize,
    line: u32,
    /// The output: its constant value when it is one, and its rendering.
    output: Option<(Option<Value>, Term)>,
    facts: Summary,
}

/// What a body's literals say about its inputs, in a form two bodies can be compared by.
#[derive(Default)]
struct Summary {
    /// Deterministic terms that are defined whenever the body gives an output.
    defined: BTreeSet<String>,
    positive: BTreeSet<String>,
    negative: BTreeSet<String>,
    type_checks: Vec<(String, String)>,
    comparisons: Vec<(String, BoolOp, Value)>,
    head_constants: Vec<(usize, Value)>,
    /// Strings the body needs a term's last characters to be (see [`Suffix`]).
    suffixes: Vec<Suffix>,
}

/// A body needs the last `len` characters of the string `of` to be one of `allowed`: it has a
/// literal `f(substring(of, count(of) - len, -1))` (or defines a local by it) with `f` a
/// function whose every definition takes one constant string, and a guard `count(of) > len - 1`
/// (or `>=`, `==`) so the offset is not negative. True only when `count` counts characters,
/// that is on strings within the BMP.
struct Suffix {
    of: String,
    len: usize,
    allowed: BTreeSet<String>,
}

enum Compatibility {
    Always,
    WithBmpStrings,
    No,
}

fn compatible(a: &Definition, b: &Definition) -> Compatibility {
    if same_output(a, b) || exclusive(&a.facts, &b.facts) || exclusive(&b.facts, &a.facts) {
        Compatibility::Always
    } else if suffixes_exclusive(&a.facts, &b.facts) {
        Compatibility::WithBmpStrings
    } else {
        Compatibility::No
    }
}

/// Whether two bodies need the same string to end in ways no string can: a two-character
/// suffix from `{"Ki", "Mi"}` and a one-character one from `{"k", "M"}` (the last character
/// of the first would have to be in the second).
fn suffixes_exclusive(a: &Summary, b: &Summary) -> bool {
    a.suffixes.iter().any(|x| {
        b.suffixes.iter().any(|y| {
            if x.of != y.of {
                return false;
            }
            let (short, long) = if x.len <= y.len { (x, y) } else { (y, x) };
            !long.allowed.iter().any(|w| {
                let tail: String = w.chars().skip(long.len - short.len).collect();
                short.allowed.contains(&tail)
            })
        })
    })
}

fn same_output(a: &Definition, b: &Definition) -> bool {
    let value = |d: &Definition| match &d.output {
        None => Some(Value::from(true)),
        Some((c, _)) => c.clone(),
    };
    if let (Some(x), Some(y)) = (value(a), value(b)) {
        return x == y;
    }
    match (&a.output, &b.output) {
        (Some((_, x)), Some((_, y))) => x.pure && !x.iterates && x.text == y.text && y.pure,
        _ => false,
    }
}

/// Whether a body with facts `a` and one with facts `b` can never both succeed.
fn exclusive(a: &Summary, b: &Summary) -> bool {
    if a.positive.iter().any(|e| b.negative.contains(e)) {
        return true;
    }
    // `not e` and `not e == false` together hold only when `e` is undefined.
    let undefined_in_b =
        |e: &String| b.negative.contains(e) && b.negative.contains(&format!("({e} == false)"));
    if a.defined.iter().any(undefined_in_b) {
        return true;
    }
    let types_differ = a
        .type_checks
        .iter()
        .any(|(ta, xa)| b.type_checks.iter().any(|(tb, xb)| xa == xb && ta != tb));
    if types_differ {
        return true;
    }
    let head_differs = a
        .head_constants
        .iter()
        .any(|(i, va)| b.head_constants.iter().any(|(j, vb)| i == j && va != vb));
    if head_differs {
        return true;
    }
    a.comparisons.iter().any(|(ta, opa, va)| {
        b.comparisons
            .iter()
            .any(|(tb, opb, vb)| ta == tb && disjoint((opa, va), (opb, vb)))
    })
}

/// Whether `t op1 v1` and `t op2 v2` cannot both hold.
fn disjoint((op1, v1): (&BoolOp, &Value), (op2, v2): (&BoolOp, &Value)) -> bool {
    match (op1, op2) {
        (BoolOp::Eq, BoolOp::Eq) => return v1 != v2,
        (BoolOp::Eq, BoolOp::Ne) | (BoolOp::Ne, BoolOp::Eq) => return v1 == v2,
        _ => {}
    }
    // Ranges of numbers. Only constants an f64 holds exactly: rounding could make two ranges
    // that meet look apart.
    let exact = |v: &Value| v.as_f64().ok().filter(|f| Value::from(*f) == *v);
    let (Some(a), Some(b)) = (exact(v1), exact(v2)) else {
        return false;
    };
    let range = |op: &BoolOp, v: f64| -> Option<(f64, bool, f64, bool)> {
        // (low, low inclusive, high, high inclusive)
        match op {
            BoolOp::Eq => Some((v, true, v, true)),
            BoolOp::Lt => Some((f64::NEG_INFINITY, false, v, false)),
            BoolOp::Le => Some((f64::NEG_INFINITY, false, v, true)),
            BoolOp::Gt => Some((v, false, f64::INFINITY, false)),
            BoolOp::Ge => Some((v, true, f64::INFINITY, false)),
            BoolOp::Ne => None,
        }
    };
    let (Some(r1), Some(r2)) = (range(op1, a), range(op2, b)) else {
        return false;
    };
    // The term need not be a number, and Rego orders values of different types: `t == n` makes
    // it the number n, and a non-number is below every number or above every number, so it
    // satisfies `t < a` or `t > b` but never both. Either way disjoint ranges cannot both hold.
    let (lo, lo_inc) = if r1.0 > r2.0 || (r1.0 == r2.0 && !r1.1) {
        (r1.0, r1.1)
    } else {
        (r2.0, r2.1)
    };
    let (hi, hi_inc) = if r1.2 < r2.2 || (r1.2 == r2.2 && !r1.3) {
        (r1.2, r1.3)
    } else {
        (r2.2, r2.3)
    };
    lo > hi || (lo == hi && !(lo_inc && hi_inc))
}

/// Canonical text of an expression, with parameters by position and locals by definition.
#[derive(Clone, Default, Debug)]
struct Term {
    text: String,
    /// Depends only on parameters, `input`, `data`, rules and constants, deterministically.
    pure: bool,
    /// Evaluating it can bind a variable to several values.
    iterates: bool,
}

impl Term {
    fn leaf(text: String, pure: bool) -> Self {
        Self {
            text,
            pure,
            iterates: false,
        }
    }
}

/// What a variable refers to.
#[derive(Clone)]
enum Binding {
    /// Bound once, by `x := e` with `e` deterministic.
    Defined { term: Term, kind: ValueKind },
    /// Bound some other way (iteration, a pattern, unification, a comprehension); `kind` is
    /// what is known of its type.
    Opaque { kind: ValueKind },
}

/// What is statically known about a value's type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Number,
    Set,
    Collection,
    Unknown,
}

/// The whole policy: which names are rules and which functions only return numbers.
struct Program {
    rules_by_package: BTreeMap<String, BTreeSet<String>>,
    numeric_functions: BTreeSet<String>,
    /// Complete rules whose every definition (and default) is a set.
    set_rules: BTreeSet<String>,
    /// Functions whose every definition takes one argument, a constant string (`f("Ki") = 1`):
    /// a call is defined only on those strings.
    table_functions: BTreeMap<String, BTreeSet<String>>,
}

impl Program {
    fn new(modules: &[Ref<Module>]) -> Self {
        let mut rules_by_package: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut outputs: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        let mut set_outputs: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        // Function path → the constant string each definition takes, `None` for any other.
        let mut keys: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for module in modules {
            let package = package_path(module);
            for rule in &module.policy {
                let (refr, key) = match rule.as_ref() {
                    Rule::Spec {
                        head: RuleHead::Func { refr, args, .. },
                        ..
                    } => {
                        let key = match args.as_slice() {
                            [arg] => constant(arg).and_then(|v| v.as_string().ok().map(|s| s.to_string())),
                            _ => None,
                        };
                        (refr, key)
                    }
                    Rule::Default { refr, .. } => (refr, None),
                    _ => continue,
                };
                if let Some(path) = rule_path(refr) {
                    keys.entry(format!("data.{package}.{path}"))
                        .or_default()
                        .push(key);
                }
            }
        }
        let table_functions = keys
            .into_iter()
            .filter_map(|(path, keys)| Some((path, keys.into_iter().collect::<Option<BTreeSet<_>>>()?)))
            .collect();
        for module in modules {
            let package = package_path(module);
            for rule in &module.policy {
                let (refr, numeric) = match rule.as_ref() {
                    Rule::Spec { head, bodies, .. } => match head {
                        RuleHead::Func { refr, assign, .. } => {
                            let head_out = assign.as_ref().map(|a| &a.value);
                            let mut numeric: Vec<bool> = bodies
                                .iter()
                                .map(|b| {
                                    let out = b.assign.as_ref().map(|a| &a.value).or(head_out);
                                    out.is_some_and(|o| constant(o).is_some_and(|v| v.as_number().is_ok()))
                                })
                                .collect();
                            if bodies.is_empty() {
                                numeric.push(
                                    head_out
                                        .is_some_and(|o| constant(o).is_some_and(|v| v.as_number().is_ok())),
                                );
                            }
                            (refr, Some(numeric))
                        }
                        RuleHead::Compr { refr, assign, .. } => {
                            let head_out = assign.as_ref().map(|a| &a.value);
                            let all_sets = bodies.iter().all(|b| {
                                let out = b.assign.as_ref().map(|a| &a.value).or(head_out);
                                out.is_some_and(|o| {
                                    matches!(o.as_ref(), Expr::Set { .. } | Expr::SetCompr { .. })
                                })
                            }) && head_out.is_some();
                            if let Some(path) = rule_path(refr) {
                                set_outputs
                                    .entry(format!("data.{package}.{path}"))
                                    .or_default()
                                    .push(all_sets);
                            }
                            (refr, None)
                        }
                        RuleHead::Set { refr, .. } => (refr, None),
                    },
                    Rule::Default { refr, value, .. } => {
                        if let Some(path) = rule_path(refr) {
                            set_outputs
                                .entry(format!("data.{package}.{path}"))
                                .or_default()
                                .push(matches!(value.as_ref(), Expr::Set { .. } | Expr::SetCompr { .. }));
                        }
                        (refr, Some(vec![false]))
                    }
                };
                let Some(first) = first_name(refr) else {
                    continue;
                };
                rules_by_package.entry(package.clone()).or_default().insert(first);
                if let (Some(numeric), Some(path)) = (numeric, rule_path(refr)) {
                    outputs
                        .entry(format!("data.{package}.{path}"))
                        .or_default()
                        .extend(numeric);
                }
            }
        }
        let numeric_functions = outputs
            .into_iter()
            .filter(|(_, v)| !v.is_empty() && v.iter().all(|n| *n))
            .map(|(k, _)| k)
            .collect();
        let set_rules = set_outputs
            .into_iter()
            .filter(|(_, v)| v.iter().all(|n| *n))
            .map(|(k, _)| k)
            .collect();
        Self {
            rules_by_package,
            numeric_functions,
            set_rules,
            table_functions,
        }
    }

    /// Names that refer to something other than a local in `module`: its rules, its imports,
    /// `input` and `data`.
    fn globals_for(&self, module: &Ref<Module>) -> Globals {
        let package = package_path(module);
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        names.insert("input".into(), "input".into());
        names.insert("data".into(), "data".into());
        for rule in self.rules_by_package.get(&package).into_iter().flatten() {
            names.insert(rule.clone(), format!("data.{package}.{rule}"));
        }
        names.extend(import_names(module));
        Globals { names }
    }
}

/// The names `module`'s imports bind, and the paths they stand for (`import data.lib.x.f` binds
/// `f`; `import data.lib.x as y` binds `y`); `future.*` and `rego.v1` bind none.
pub(crate) fn import_names(module: &Ref<Module>) -> impl Iterator<Item = (String, String)> + '_ {
    module.imports.iter().filter_map(|import| {
        let path = import.refr.span().text().to_string();
        let alias = match &import.r#as {
            Some(span) => span.text().to_string(),
            None => path.rsplit('.').next().unwrap_or("").to_string(),
        };
        (!alias.is_empty() && !path.starts_with("future.") && path != "rego.v1").then_some((alias, path))
    })
}

struct Globals {
    /// Name → the path it stands for.
    names: BTreeMap<String, String>,
}

/// The variables visible in a query.
struct Scope<'a> {
    program: &'a Program,
    globals: &'a Globals,
    params: &'a BTreeMap<String, usize>,
    locals: BTreeMap<String, Binding>,
    parent: Option<&'a Scope<'a>>,
    /// `is_number(t)` literals seen so far (rendered `t`), in this query and enclosing ones.
    numbers: BTreeSet<String>,
}

/// A query's scope after all its literals, and what they say.
struct Facts<'a> {
    scope: Scope<'a>,
    iterates: bool,
    defined: BTreeSet<String>,
    positive: BTreeSet<String>,
    negative: BTreeSet<String>,
    type_checks: Vec<(String, String)>,
    comparisons: Vec<(String, BoolOp, Value)>,
}

impl Facts<'_> {
    fn summary(mut self, head_constants: Vec<(usize, Value)>) -> Summary {
        for (i, v) in &head_constants {
            self.comparisons.push((format!("${i}"), BoolOp::Eq, v.clone()));
        }
        let mut suffixes = Vec::new();
        for term in &self.defined {
            for (function, keys) in &self.scope.program.table_functions {
                let Some(arg) = term
                    .strip_prefix(function.as_str())
                    .and_then(|t| t.strip_prefix('('))
                    .and_then(|t| t.strip_suffix(",)"))
                else {
                    continue;
                };
                let Some((of, len)) = suffix_term(arg) else {
                    continue;
                };
                if self.count_at_least(&of) < len as f64 {
                    continue;
                }
                let allowed = keys
                    .iter()
                    .filter(|k| k.chars().count() == len)
                    .cloned()
                    .collect();
                suffixes.push(Suffix { of, len, allowed });
            }
        }
        Summary {
            defined: self.defined,
            positive: self.positive,
            negative: self.negative,
            type_checks: self.type_checks,
            comparisons: self.comparisons,
            head_constants,
            suffixes,
        }
    }

    /// The least `count(of)` can be when the body succeeds, from its comparisons.
    fn count_at_least(&self, of: &str) -> f64 {
        let counted = format!("count({of},)");
        self.comparisons
            .iter()
            .filter(|(t, _, _)| *t == counted)
            .filter_map(|(_, op, v)| {
                let n = v.as_f64().ok()?;
                match op {
                    BoolOp::Gt if n.fract() == 0.0 => Some(n + 1.0),
                    BoolOp::Ge | BoolOp::Eq => Some(n.ceil()),
                    _ => None,
                }
            })
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// `(s, k)` when `arg` renders `substring(s, count(s) - k, -1)` with `k` a positive integer.
fn suffix_term(arg: &str) -> Option<(String, usize)> {
    let inner = arg.strip_prefix("substring(")?;
    let inner = inner
        .strip_suffix(",-1,)")
        .or_else(|| inner.strip_suffix(",-(1),)"))?;
    let (rest, k) = inner.strip_suffix(')')?.rsplit_once(" - ")?;
    let k: usize = k.parse().ok().filter(|k| *k > 0)?;
    // rest is `s,(count(s,)`: `s` twice around a fixed text.
    let rest = rest.strip_suffix(",)")?;
    const MIDDLE: &str = ",(count(";
    let l = rest.len().checked_sub(MIDDLE.len())? / 2;
    let (of, tail) = (rest.get(..l)?, rest.get(l..)?);
    (tail.strip_prefix(MIDDLE)? == of).then(|| (of.to_string(), k))
}

const TYPE_CHECKS: [&str; 7] = [
    "is_number",
    "is_string",
    "is_boolean",
    "is_array",
    "is_set",
    "is_object",
    "is_null",
];

/// Built-ins whose every defined result is a number.
const NUMERIC_BUILTINS: [&str; 11] = [
    "to_number",
    "count",
    "abs",
    "ceil",
    "floor",
    "round",
    "sum",
    "product",
    "indexof",
    "units.parse",
    "units.parse_bytes",
];

/// Built-ins whose every defined result is a set.
const SET_BUILTINS: [&str; 2] = ["intersection", "union"];

/// Built-ins that can give different results for the same arguments.
const NONDETERMINISTIC: [&str; 6] = [
    "time.now_ns",
    "rand.intn",
    "uuid.rfc4122",
    "http.send",
    "opa.runtime",
    "trace",
];

impl<'a> Scope<'a> {
    fn root(program: &'a Program, globals: &'a Globals, params: &'a BTreeMap<String, usize>) -> Self {
        Self {
            program,
            globals,
            params,
            locals: BTreeMap::new(),
            parent: None,
            numbers: BTreeSet::new(),
        }
    }

    fn with_opaque(mut self, names: &BTreeSet<String>) -> Self {
        for n in names {
            self.locals.insert(
                n.clone(),
                Binding::Opaque {
                    kind: ValueKind::Unknown,
                },
            );
        }
        self
    }

    fn child<'b>(&'b self) -> Scope<'b> {
        Scope {
            program: self.program,
            globals: self.globals,
            params: self.params,
            locals: BTreeMap::new(),
            parent: Some(self),
            numbers: self.numbers.clone(),
        }
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        if let Some(b) = self.locals.get(name) {
            return Some(b.clone());
        }
        self.parent.and_then(|p| p.lookup(name))
    }

    fn is_bound(&self, name: &str) -> bool {
        name != "_"
            && (self.lookup(name).is_some()
                || self.params.contains_key(name)
                || self.globals.names.contains_key(name))
    }

    fn facts(self) -> Facts<'a> {
        Facts {
            scope: self,
            iterates: false,
            defined: BTreeSet::new(),
            positive: BTreeSet::new(),
            negative: BTreeSet::new(),
            type_checks: Vec::new(),
            comparisons: Vec::new(),
        }
    }

    /// Walks a query's literals in order, binding its locals.
    fn query<'b>(&'b self, query: &Query, hazards: &mut Vec<String>) -> Facts<'b> {
        let mut facts = self.child().facts();
        for stmt in &query.stmts {
            facts.literal(stmt, hazards);
        }
        facts
    }

    fn render(&self, expr: &Ref<Expr>, hazards: &mut Vec<String>) -> Term {
        match expr.as_ref() {
            Expr::String { value, .. }
            | Expr::RawString { value, .. }
            | Expr::Number { value, .. }
            | Expr::Bool { value, .. }
            | Expr::Null { value, .. } => Term::leaf(serde_json::to_string(value).unwrap_or_default(), true),
            Expr::Var { span, .. } => self.render_var(span.text()),
            Expr::Array { items, .. } => self.render_items("[", items, "]", hazards),
            Expr::Set { items, .. } => self.render_items("set(", items, ")", hazards),
            Expr::Object { fields, .. } => {
                let mut out = Term::leaf("{".into(), true);
                for (_, k, v) in fields {
                    let k = self.render(k, hazards);
                    let v = self.render(v, hazards);
                    out.text.push_str(&format!("{}:{},", k.text, v.text));
                    out.pure &= k.pure && v.pure;
                    out.iterates |= k.iterates || v.iterates;
                }
                out.text.push('}');
                out
            }
            Expr::ArrayCompr {
                span, term, query, ..
            }
            | Expr::SetCompr {
                span, term, query, ..
            } => {
                let facts = self.query(query, hazards);
                facts.scope.render(term, hazards);
                Term::leaf(format!("<comprehension {}>", span.start), false)
            }
            Expr::ObjectCompr {
                span,
                key,
                value,
                query,
                ..
            } => {
                let facts = self.query(query, hazards);
                facts.scope.render(key, hazards);
                facts.scope.render(value, hazards);
                if constant(value).is_none() {
                    hazards.push(format!(
                        "object comprehension at line {} can give one key two values",
                        span.line
                    ));
                }
                Term::leaf(format!("<comprehension {}>", span.start), false)
            }
            Expr::Call { fcn, params, .. } => {
                let written = fcn.span().text();
                // Named by what it resolves to: one name can be two functions in two modules.
                let name = self.function_path(written);
                let mut out = Term::leaf(format!("{name}("), !NONDETERMINISTIC.contains(&name.as_str()));
                for p in params {
                    let t = self.render(p, hazards);
                    out.text.push_str(&t.text);
                    out.text.push(',');
                    out.pure &= t.pure;
                    out.iterates |= t.iterates;
                }
                out.text.push(')');
                if name == "walk" && params.len() == 2 {
                    out.iterates = true;
                    out.pure = false;
                }
                out
            }
            Expr::UnaryExpr { expr, span, .. } => {
                // The interpreter negates only number literals and errors on anything else.
                if !matches!(expr.as_ref(), Expr::Number { .. }) {
                    hazards.push(format!(
                        "line {}: unary minus on `{}`",
                        span.line,
                        expr.span().text()
                    ));
                }
                let t = self.render(expr, hazards);
                Term {
                    text: format!("-({})", t.text),
                    ..t
                }
            }
            Expr::RefDot { refr, field, .. } => {
                let t = self.render(refr, hazards);
                let field = serde_json::to_string(&field.1).unwrap_or_default();
                Term {
                    text: format!("{}[{field}]", t.text),
                    ..t
                }
            }
            Expr::RefBrack { refr, index, .. } => {
                let base = self.render(refr, hazards);
                let mut unbound = BTreeSet::new();
                free_vars(index, &mut unbound);
                let iterates_here = unbound.iter().any(|v| !self.is_bound(v));
                let idx = self.render(index, hazards);
                Term {
                    text: format!("{}[{}]", base.text, idx.text),
                    pure: base.pure && idx.pure && !iterates_here,
                    iterates: base.iterates || idx.iterates || iterates_here,
                }
            }
            Expr::BinExpr {
                op, lhs, rhs, span, ..
            } => {
                let l = self.render(lhs, hazards);
                let r = self.render(rhs, hazards);
                if self.kind(lhs) != ValueKind::Set || self.kind(rhs) != ValueKind::Set {
                    hazards.push(format!(
                        "line {}: `{}` on values not known to be sets",
                        span.line,
                        span.text()
                    ));
                }
                let sym = match op {
                    BinOp::Union => "|",
                    BinOp::Intersection => "&",
                };
                binary(l, sym, r)
            }
            Expr::ArithExpr {
                op, lhs, rhs, span, ..
            } => {
                let l = self.render(lhs, hazards);
                let r = self.render(rhs, hazards);
                let (kl, kr) = (self.kind(lhs), self.kind(rhs));
                let ok = (kl == ValueKind::Number && kr == ValueKind::Number)
                    || (matches!(op, ArithOp::Sub) && kl == ValueKind::Set && kr == ValueKind::Set);
                if !ok {
                    hazards.push(format!(
                        "line {}: arithmetic `{}` on values not known to be numbers",
                        span.line,
                        span.text()
                    ));
                }
                let sym = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Mod => "%",
                };
                binary(l, sym, r)
            }
            Expr::BoolExpr { op, lhs, rhs, .. } => {
                let l = self.render(lhs, hazards);
                let r = self.render(rhs, hazards);
                binary(l, bool_op(op), r)
            }
            Expr::AssignExpr { lhs, rhs, .. } => {
                let l = self.render(lhs, hazards);
                let r = self.render(rhs, hazards);
                let mut t = binary(l, "=", r);
                t.pure = false;
                t
            }
            Expr::Membership {
                key,
                value,
                collection,
                span,
                ..
            } => {
                if self.kind(collection) != ValueKind::Collection && self.kind(collection) != ValueKind::Set {
                    hazards.push(format!(
                        "line {}: `in` over a value not known to be a collection",
                        span.line
                    ));
                }
                let mut t = self.render(collection, hazards);
                if let Some(k) = key {
                    let k = self.render(k, hazards);
                    t = binary(k, ",", t);
                }
                let v = self.render(value, hazards);
                binary(v, " in ", t)
            }
        }
    }

    fn render_var(&self, name: &str) -> Term {
        if name == "_" {
            return Term {
                text: "_".into(),
                pure: false,
                iterates: true,
            };
        }
        match self.lookup(name) {
            Some(Binding::Defined { term, .. }) => {
                return Term::leaf(term.text, true);
            }
            Some(Binding::Opaque { .. }) => return Term::leaf(name.to_string(), false),
            None => {}
        }
        if let Some(i) = self.params.get(name) {
            return Term::leaf(format!("${i}"), true);
        }
        if let Some(path) = self.globals.names.get(name) {
            return Term::leaf(path.clone(), true);
        }
        Term {
            text: name.to_string(),
            pure: false,
            iterates: true,
        }
    }

    fn render_items(&self, open: &str, items: &[Ref<Expr>], close: &str, hazards: &mut Vec<String>) -> Term {
        let mut out = Term::leaf(open.to_string(), true);
        for item in items {
            let t = self.render(item, hazards);
            out.text.push_str(&t.text);
            out.text.push(',');
            out.pure &= t.pure;
            out.iterates |= t.iterates;
        }
        out.text.push_str(close);
        out
    }

    /// What is known about the type of `expr`'s value, when it has one.
    fn kind(&self, expr: &Ref<Expr>) -> ValueKind {
        match expr.as_ref() {
            Expr::Number { .. } => ValueKind::Number,
            Expr::UnaryExpr { expr, .. } => self.kind(expr),
            Expr::ArithExpr { op, lhs, rhs, .. } => match (self.kind(lhs), self.kind(rhs)) {
                (ValueKind::Number, ValueKind::Number) => ValueKind::Number,
                (ValueKind::Set, ValueKind::Set) if matches!(op, ArithOp::Sub) => ValueKind::Set,
                _ => ValueKind::Unknown,
            },
            Expr::BinExpr { lhs, rhs, .. } => {
                if self.kind(lhs) == ValueKind::Set && self.kind(rhs) == ValueKind::Set {
                    ValueKind::Set
                } else {
                    ValueKind::Unknown
                }
            }
            Expr::Set { .. } | Expr::SetCompr { .. } => ValueKind::Set,
            Expr::Array { .. } | Expr::Object { .. } | Expr::ArrayCompr { .. } | Expr::ObjectCompr { .. } => {
                ValueKind::Collection
            }
            Expr::Call { fcn, .. } => {
                let name = fcn.span().text();
                let first = name.split('.').next().unwrap_or(name);
                let builtin = !self.globals.names.contains_key(first);
                if builtin && NUMERIC_BUILTINS.contains(&name) {
                    return ValueKind::Number;
                }
                if builtin && SET_BUILTINS.contains(&name) {
                    return ValueKind::Set;
                }
                let path = self.function_path(name);
                if self.program.numeric_functions.contains(&path) {
                    ValueKind::Number
                } else {
                    ValueKind::Unknown
                }
            }
            Expr::Var { span, .. } => {
                match self.lookup(span.text()) {
                    Some(Binding::Defined { kind, .. } | Binding::Opaque { kind })
                        if kind != ValueKind::Unknown =>
                    {
                        return kind;
                    }
                    Some(_) => {}
                    None => {
                        if self.params.contains_key(span.text()) {
                            return self.guarded_number(expr);
                        }
                        if let Some(path) = self.globals.names.get(span.text())
                            && self.program.set_rules.contains(path)
                        {
                            return ValueKind::Set;
                        }
                    }
                }
                self.guarded_number(expr)
            }
            _ => self.guarded_number(expr),
        }
    }

    /// A term that an earlier literal `is_number(term)` proved to be a number.
    fn guarded_number(&self, expr: &Ref<Expr>) -> ValueKind {
        let t = self.render(expr, &mut Vec::new());
        if t.pure && self.numbers.contains(&t.text) {
            ValueKind::Number
        } else {
            ValueKind::Unknown
        }
    }

    /// The full path of a called function, as `Program` names them.
    fn function_path(&self, name: &str) -> String {
        if name.starts_with("data.") {
            return name.to_string();
        }
        let (first, rest) = match name.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (name, None),
        };
        match self.globals.names.get(first) {
            Some(path) => match rest {
                Some(r) => format!("{path}.{r}"),
                None => path.clone(),
            },
            None => name.to_string(),
        }
    }
}

impl<'a> Facts<'a> {
    fn literal(&mut self, stmt: &LiteralStmt, hazards: &mut Vec<String>) {
        let usable = stmt.with_mods.is_empty();
        if !usable {
            // The VM's `with` (replacing input, data or a function) is not compared here.
            hazards.push(format!("line {}: `with` is not checked", stmt.span.line));
        }
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                for v in vars {
                    self.scope.locals.insert(
                        v.text().to_string(),
                        Binding::Opaque {
                            kind: ValueKind::Unknown,
                        },
                    );
                }
                self.iterates = true;
            }
            Literal::SomeIn {
                key,
                value,
                collection,
                span,
            } => {
                self.scope.render(collection, hazards);
                let kind = self.scope.kind(collection);
                if kind != ValueKind::Collection && kind != ValueKind::Set {
                    hazards.push(format!(
                        "line {}: `some .. in` over a value not known to be a collection",
                        span.line
                    ));
                }
                let mut names = BTreeSet::new();
                if let Some(k) = key {
                    vars_in(k, &mut names);
                }
                vars_in(value, &mut names);
                for n in names {
                    if !self.scope.is_bound(&n) {
                        self.scope.locals.insert(
                            n,
                            Binding::Opaque {
                                kind: ValueKind::Unknown,
                            },
                        );
                    }
                }
                self.iterates = true;
            }
            Literal::Every { domain, query, .. } => {
                let d = self.scope.render(domain, hazards);
                self.iterates |= d.iterates;
                // The body's bindings stay inside it.
                let _ = self.scope.query(query, hazards);
            }
            Literal::NotExpr { expr, .. } => {
                let t = self.scope.render(expr, hazards);
                if usable && t.pure && !is_assignment(expr) {
                    self.negative.insert(t.text);
                }
            }
            Literal::Expr { expr, .. } => self.expression(expr, usable, hazards),
        }
    }

    fn expression(&mut self, expr: &Ref<Expr>, usable: bool, hazards: &mut Vec<String>) {
        if let Expr::AssignExpr { op, lhs, rhs, .. } = expr.as_ref() {
            let lhs_var = match lhs.as_ref() {
                Expr::Var { span, .. } if span.text() != "_" => Some(span.text()),
                _ => None,
            };
            let rhs_var = match rhs.as_ref() {
                Expr::Var { span, .. } if span.text() != "_" => Some(span.text()),
                _ => None,
            };
            let colon = matches!(op, AssignOp::ColEq);
            if let Some(name) = lhs_var.filter(|n| colon || !self.scope.is_bound(n)) {
                self.define(name, rhs, hazards);
                return;
            }
            if !colon && let Some(name) = rhs_var.filter(|n| !self.scope.is_bound(n)) {
                self.define(name, lhs, hazards);
                return;
            }
            // Destructuring or a comparison by unification: bind whatever is new, opaquely.
            let l = self.scope.render(lhs, hazards);
            let r = self.scope.render(rhs, hazards);
            self.iterates |= l.iterates || r.iterates;
            let mut names = BTreeSet::new();
            vars_in(lhs, &mut names);
            vars_in(rhs, &mut names);
            let mut bound_new = false;
            for n in names {
                if !self.scope.is_bound(&n) {
                    self.scope.locals.insert(
                        n,
                        Binding::Opaque {
                            kind: ValueKind::Unknown,
                        },
                    );
                    bound_new = true;
                }
            }
            if !bound_new && usable && matches!(op, AssignOp::Eq) {
                self.comparison(&BoolOp::Eq, lhs, rhs, hazards);
            }
            return;
        }
        let t = self.scope.render(expr, hazards);
        self.iterates |= t.iterates;
        self.bind_new(expr);
        if !usable || !t.pure {
            return;
        }
        self.positive.insert(t.text.clone());
        self.defined.insert(t.text.clone());
        match expr.as_ref() {
            Expr::Call { fcn, params, .. } if params.len() == 1 => {
                let name = fcn.span().text();
                if TYPE_CHECKS.contains(&name) {
                    let arg = self.scope.render(&params[0], hazards);
                    if arg.pure {
                        if name == "is_number" {
                            self.scope.numbers.insert(arg.text.clone());
                        }
                        self.type_checks.push((name.to_string(), arg.text));
                    }
                }
            }
            Expr::BoolExpr { op, lhs, rhs, .. } => self.comparison(op, lhs, rhs, hazards),
            _ => {}
        }
    }

    fn comparison(&mut self, op: &BoolOp, lhs: &Ref<Expr>, rhs: &Ref<Expr>, hazards: &mut Vec<String>) {
        let (term, value, op) = match (constant(lhs), constant(rhs)) {
            (None, Some(v)) => (self.scope.render(lhs, hazards), v, op.clone()),
            (Some(v), None) => (self.scope.render(rhs, hazards), v, flip(op)),
            _ => return,
        };
        if term.pure && !term.iterates {
            self.comparisons.push((term.text, op, value));
        }
    }

    /// Variables met for the first time in an expression are bound by it (by iteration).
    fn bind_new(&mut self, expr: &Ref<Expr>) {
        let mut names = BTreeSet::new();
        free_vars(expr, &mut names);
        for n in names {
            if !self.scope.is_bound(&n) && n != "_" {
                self.scope.locals.insert(
                    n,
                    Binding::Opaque {
                        kind: ValueKind::Unknown,
                    },
                );
            }
        }
    }

    fn define(&mut self, name: &str, value: &Ref<Expr>, hazards: &mut Vec<String>) {
        let t = self.scope.render(value, hazards);
        self.iterates |= t.iterates;
        self.bind_new(value);
        if t.pure && !t.iterates {
            self.defined.insert(t.text.clone());
        }
        let binding = if t.pure && !t.iterates {
            Binding::Defined {
                kind: self.scope.kind(value),
                term: t,
            }
        } else {
            Binding::Opaque {
                kind: self.scope.kind(value),
            }
        };
        self.scope.locals.insert(name.to_string(), binding);
    }
}

/// Built-ins whose results hold no character outside the BMP when their arguments hold none
/// (their strings are pieces of the arguments, or ASCII), besides the `TYPE_CHECKS`. `sprintf`
/// is checked apart: `%c` makes any character from a number.
const BMP_PRESERVING: [&str; 26] = [
    "count",
    "substring",
    "replace",
    "endswith",
    "startswith",
    "contains",
    "to_number",
    "regex.match",
    "object.get",
    "trim",
    "trim_left",
    "trim_right",
    "trim_prefix",
    "trim_suffix",
    "trim_space",
    "split",
    "concat",
    "indexof",
    "format_int",
    "type_name",
    "abs",
    "ceil",
    "floor",
    "round",
    "max",
    "min",
];

/// `Ok` when evaluating the template cannot make a string holding a character outside the BMP
/// from inputs that hold none: no such character in its literals, and only built-ins from
/// [`BMP_PRESERVING`] (and `sprintf` with a literal format of `%v`, `%s` and `%d`).
fn makes_no_astral_strings(modules: &[Ref<Module>], program: &Program) -> Result<(), String> {
    let mut problems = BTreeSet::new();
    for module in modules {
        let globals = program.globals_for(module);
        let mut check = |e: &Ref<Expr>| match e.as_ref() {
            Expr::String { value, .. } | Expr::RawString { value, .. }
                if value.as_string().is_ok_and(|s| !is_bmp(s)) =>
            {
                problems.insert(format!("line {}: a literal outside the BMP", e.span().line));
            }
            Expr::Call { fcn, params, .. } => {
                let name = fcn.span().text();
                let first = name.split('.').next().unwrap_or(name);
                if globals.names.contains_key(first) {
                    return;
                }
                let literal_format = || match params.first().map(|p| p.as_ref()) {
                    Some(Expr::String { value, .. } | Expr::RawString { value, .. }) => {
                        value.as_string().ok().is_some_and(|f| plain_format(f))
                    }
                    _ => false,
                };
                let ok = BMP_PRESERVING.contains(&name)
                    || TYPE_CHECKS.contains(&name)
                    || (name == "sprintf" && literal_format());
                if !ok {
                    problems.insert(format!("`{name}` (line {}) may make one", e.span().line));
                }
            }
            _ => {}
        };
        walk_module(module, &mut check);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the template can make strings outside it: {}",
            problems.into_iter().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Whether a `sprintf` format uses only `%v`, `%s`, `%d` (with flags and widths) and `%%`.
fn plain_format(format: &str) -> bool {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let verb = chars.find(|c| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '#' | ' ' | '.')));
        if !matches!(verb, Some('v' | 's' | 'd' | '%')) {
            return false;
        }
    }
    true
}

/// Whether every character of `s` is within the Basic Multilingual Plane (U+0000..U+FFFF):
/// UTF-8 starts the others, and only them, with a byte of 0xF0 or more.
pub(crate) fn is_bmp(s: &str) -> bool {
    !s.bytes().any(|b| b >= 0xF0)
}

/// Calls `f` on every expression of every rule of `module` (heads, bodies, defaults) and every
/// expression inside them.
fn walk_module(module: &Ref<Module>, f: &mut impl FnMut(&Ref<Expr>)) {
    for rule in &module.policy {
        match rule.as_ref() {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Func {
                        refr, args, assign, ..
                    } => {
                        walk(refr, f);
                        args.iter().for_each(|a| walk(a, f));
                        if let Some(a) = assign {
                            walk(&a.value, f);
                        }
                    }
                    RuleHead::Compr { refr, assign, .. } => {
                        walk(refr, f);
                        if let Some(a) = assign {
                            walk(&a.value, f);
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        walk(refr, f);
                        if let Some(k) = key {
                            walk(k, f);
                        }
                    }
                }
                for body in bodies {
                    if let Some(a) = &body.assign {
                        walk(&a.value, f);
                    }
                    walk_query(&body.query, f);
                }
            }
            Rule::Default {
                refr, args, value, ..
            } => {
                walk(refr, f);
                args.iter().for_each(|a| walk(a, f));
                walk(value, f);
            }
        }
    }
}

/// Calls `f` on `expr` and every expression inside it, comprehensions' queries included.
fn walk(expr: &Ref<Expr>, f: &mut impl FnMut(&Ref<Expr>)) {
    f(expr);
    match expr.as_ref() {
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            walk(term, f);
            walk_query(query, f);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => {
            walk(key, f);
            walk(value, f);
            walk_query(query, f);
        }
        _ => for_each_child(expr, true, &mut |child| walk(child, f)),
    }
}

fn walk_query(query: &Ref<Query>, f: &mut impl FnMut(&Ref<Expr>)) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    walk(k, f);
                }
                walk(value, f);
                walk(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk(expr, f),
            Literal::Every { domain, query, .. } => {
                walk(domain, f);
                walk_query(query, f);
            }
        }
        for w in &stmt.with_mods {
            walk(&w.refr, f);
            walk(&w.r#as, f);
        }
    }
}

fn binary(l: Term, op: &str, r: Term) -> Term {
    Term {
        text: format!("({} {op} {})", l.text, r.text),
        pure: l.pure && r.pure,
        iterates: l.iterates || r.iterates,
    }
}

fn bool_op(op: &BoolOp) -> &'static str {
    match op {
        BoolOp::Lt => "<",
        BoolOp::Le => "<=",
        BoolOp::Eq => "==",
        BoolOp::Ge => ">=",
        BoolOp::Gt => ">",
        BoolOp::Ne => "!=",
    }
}

fn flip(op: &BoolOp) -> BoolOp {
    match op {
        BoolOp::Lt => BoolOp::Gt,
        BoolOp::Le => BoolOp::Ge,
        BoolOp::Gt => BoolOp::Lt,
        BoolOp::Ge => BoolOp::Le,
        BoolOp::Eq => BoolOp::Eq,
        BoolOp::Ne => BoolOp::Ne,
    }
}

fn is_assignment(expr: &Ref<Expr>) -> bool {
    matches!(expr.as_ref(), Expr::AssignExpr { .. })
}

/// The value of an expression made only of literals.
pub(crate) fn constant(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.clone()),
        Expr::Array { items, .. } => items
            .iter()
            .map(|i| constant(i))
            .collect::<Option<Vec<_>>>()
            .map(Value::from),
        Expr::Set { items, .. } => items
            .iter()
            .map(|i| constant(i))
            .collect::<Option<BTreeSet<_>>>()
            .map(Value::from),
        Expr::Object { fields, .. } => fields
            .iter()
            .map(|(_, k, v)| Some((constant(k)?, constant(v)?)))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Value::from),
        _ => None,
    }
}

/// Every variable name in an expression outside comprehensions and call targets.
fn free_vars(expr: &Ref<Expr>, out: &mut BTreeSet<String>) {
    if let Expr::Var { span, .. } = expr.as_ref() {
        out.insert(span.text().to_string());
    }
    for_each_child(expr, false, &mut |child| free_vars(child, out));
}

/// Calls `f` on each expression directly inside `expr`, comprehensions excepted (their parts
/// are bound by their own query); a call's target only when `call_targets`.
pub(crate) fn for_each_child(expr: &Ref<Expr>, call_targets: bool, f: &mut impl FnMut(&Ref<Expr>)) {
    match expr.as_ref() {
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(&mut *f),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
            f(k);
            f(v);
        }),
        Expr::Call { fcn, params, .. } => {
            if call_targets {
                f(fcn);
            }
            params.iter().for_each(&mut *f);
        }
        Expr::UnaryExpr { expr, .. } => f(expr),
        Expr::RefDot { refr, .. } => f(refr),
        Expr::RefBrack { refr, index, .. } => {
            f(refr);
            f(index);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            f(lhs);
            f(rhs);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                f(k);
            }
            f(value);
            f(collection);
        }
        _ => {}
    }
}

/// Variables of a pattern (argument or destructuring target).
fn vars_in(expr: &Ref<Expr>, out: &mut BTreeSet<String>) {
    free_vars(expr, out);
    out.remove("_");
}

pub(crate) fn package_path(module: &Ref<Module>) -> String {
    module.package.refr.span().text().to_string()
}

/// A rule head's path (`a.b`, `a["b"]` → `a.b`), or `None` when an index is not a string (a
/// partial object rule).
pub(crate) fn rule_path(refr: &Ref<Expr>) -> Option<String> {
    match refr.as_ref() {
        Expr::Var { span, .. } => Some(span.text().to_string()),
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", rule_path(refr)?, field.0.text())),
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                Some(format!("{}.{}", rule_path(refr)?, value.as_string().ok()?))
            }
            _ => None,
        },
        _ => None,
    }
}

fn first_name(refr: &Ref<Expr>) -> Option<String> {
    match refr.as_ref() {
        Expr::Var { span, .. } => Some(span.text().to_string()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => first_name(refr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{VmCondition, plain_format, vm_eligible};

    fn verdict(rego: &str) -> Result<VmCondition, String> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(true);
        engine
            .add_policy("t.rego".into(), format!("package t\n{rego}\n"))
            .map_err(|e| format!("parse: {e}"))?;
        vm_eligible(engine.get_modules())
    }

    fn refused(rego: &str, why: &str) {
        let err = verdict(rego).expect_err("must be refused");
        assert!(err.contains(why), "{err}");
    }

    #[test]
    fn conflicting_bodies_are_refused() {
        refused(
            "f(x) = 1 { x.a }\nf(x) = 2 { x.b }",
            "`t.f`: the bodies at lines 2 and 3",
        );
        refused("r = 1 { input.a }\nr = 2 { input.b }", "`t.r`");
        // The library's get_probe: two probes on one container give two outputs.
        refused(
            "get_probe(c) = p { p := c.livenessProbe }\nget_probe(c) = p { p := c.readinessProbe }",
            "`t.get_probe`",
        );
    }

    #[test]
    fn same_constant_outputs_are_accepted() {
        verdict("f(x) { x.a }\nf(x) { x.b }").unwrap();
        verdict("missing(o, k) = true { not o[k] }\nmissing(o, k) = true { o[k] == \"\" }").unwrap();
        verdict("g(x) = x.name { x.a }\ng(y) = y.name { y.b }").unwrap();
    }

    #[test]
    fn exclusive_not_bodies_are_accepted() {
        // canonify_cpu of the library: parameters are compared by position, not name.
        verdict(
            r#"f(orig) = new { is_number(orig); new := orig * 1000 }
f(x) = new { not is_number(x); endswith(x, "m"); new := to_number(replace(x, "m", "")) }
f(orig) = new { not is_number(orig); not endswith(orig, "m"); new := to_number(orig) * 1000 }"#,
        )
        .unwrap();
        // A local defined by a deterministic expression stands for that expression.
        verdict(
            r#"m("k") = 1000 { true }
f(x) = s { s := substring(x, 0, 1); m(s) }
f(x) = s { not m(substring(x, 0, 1)); s := "" }"#,
        )
        .unwrap();
    }

    #[test]
    fn a_body_that_needs_its_term_undefined_excludes_one_that_outputs_it() {
        // The library's get_default (psp-capabilities).
        verdict(
            "get_default(obj, param, _) := obj[param]\n\
             get_default(obj, param, d) := d { not obj[param]; not obj[param] == false }",
        )
        .unwrap();
        // Without the second literal `obj[param]` may be `false`, giving both outputs.
        refused(
            "get_default(obj, param, _) := obj[param]\n\
             get_default(obj, param, d) := d { not obj[param] }",
            "`t.get_default`",
        );
    }

    #[test]
    fn a_guard_on_a_local_variable_is_refused() {
        refused(
            "f(x) = 1 { y := input.items[_]; y == x }\nf(x) = 2 { y := input.items[_]; not y == x }",
            "`t.f`",
        );
    }

    #[test]
    fn type_checks_and_constant_comparisons_are_exclusive() {
        verdict("f(x) = 1 { is_string(x) }\nf(x) = 2 { is_number(x) }").unwrap();
        verdict("f(x) = 1 { x.kind == \"a\" }\nf(x) = 2 { x.kind == \"b\" }").unwrap();
        verdict("f(x) = 1 { count(x) == 0 }\nf(x) = 2 { count(x) > 1 }\nf(x) = 3 { count(x) == 1 }").unwrap();
        verdict("f(\"a\") = 1 { true }\nf(\"b\") = 2 { true }").unwrap();
        verdict("f(x) = 1 { x != \"/\" }\nf(\"/\") = 2 { true }").unwrap();
        refused("f(x) = 1 { count(x) > 1 }\nf(x) = 2 { count(x) > 2 }", "`t.f`");
        refused("f(x) = 1 { is_string(x) }\nf(x) = 2 { is_string(x) }", "`t.f`");
    }

    #[test]
    fn else_chains_are_one_definition() {
        verdict("f(x) = 1 { x > 0 } else = 2 { true }").unwrap();
    }

    #[test]
    fn one_body_that_iterates_is_refused() {
        refused("f(x) = y { y := x[_] }", "iterates");
        refused("r = y { y := input.items[_] }", "iterates");
        // The output does not depend on the iteration: one value.
        verdict("f(x) = true { x[_] == 1 }").unwrap();
    }

    #[test]
    fn key_conflicts_and_operator_type_errors_are_refused() {
        refused("o[k] = v { v := input.a[k] }", "partial object rule");
        refused(
            "r := {k: v | v := input.a[_]; k := \"x\"}",
            "object comprehension",
        );
        refused("r := input.a + 1", "arithmetic");
        refused("r := input.a | input.b", "not known to be sets");
        verdict("r := count(input.a) + 1").unwrap();
        verdict("r := s - {1} { s := {x | x := input.a[_]} }").unwrap();
        verdict("f(x) = y { is_number(x); y := x * 2 }").unwrap();
        refused("f(x) = y { y := x * 2; is_number(x) }", "arithmetic");
        refused("r { input.a with input as {} }", "`with`");
        refused("r := -input.a", "unary minus");
        verdict("r := -1").unwrap();
        refused("s[input.a[_]] { true }", "rule head iterates");
    }

    /// The library's `get_suffix` (containerlimits, containerrequests, containerresourceratios,
    /// ephemeralstoragelimit), reduced: the one- and two-character suffix bodies.
    const SUFFIXES: &str = r#"mem_multiple("k") = 1000 { true }
mem_multiple("M") = 1000000 { true }
mem_multiple("") = 1 { true }
mem_multiple("Ki") = 1024 { true }
mem_multiple("Mi") = 1048576 { true }
get_suffix(mem) = suffix {
  is_string(mem)
  count(mem) > 0
  suffix := substring(mem, count(mem) - 1, -1)
  mem_multiple(suffix)
}
get_suffix(mem) = suffix {
  is_string(mem)
  count(mem) > 1
  suffix := substring(mem, count(mem) - 2, -1)
  mem_multiple(suffix)
}
get_suffix(mem) = suffix {
  is_string(mem)
  count(mem) > 1
  not mem_multiple(substring(mem, count(mem) - 1, -1))
  not mem_multiple(substring(mem, count(mem) - 2, -1))
  suffix := ""
}
r = sprintf("%v: %d", [get_suffix(input.a), count(input.a)])"#;

    #[test]
    fn suffix_bodies_are_exclusive_on_bmp_strings_only() {
        assert_eq!(verdict(SUFFIXES), Ok(VmCondition::BmpStrings));
        // Everything else needs no condition.
        assert_eq!(verdict("f(x) { x.a }\nf(x) { x.b }"), Ok(VmCondition::Always));
        // A two-character key ending in a one-character key: "1kk" ends in "k" and in "kk", so
        // both bodies succeed.
        refused(
            &SUFFIXES.replace(r#"mem_multiple("Mi")"#, r#"mem_multiple("kk")"#),
            "`t.get_suffix`: the bodies at lines 7 and 13",
        );
        // Without `count(mem) > 1` the offset can be negative: nothing is known of the suffix.
        refused(
            &SUFFIXES.replacen("count(mem) > 1\n  suffix", "suffix", 1),
            "`t.get_suffix`",
        );
        // `mem_multiple` defined for any string: no longer a table of suffixes.
        refused(
            &format!("{SUFFIXES}\nmem_multiple(s) = 1 {{ startswith(s, \"x\") }}"),
            "`t.get_suffix`",
        );
        // Suffixes of two different strings say nothing about each other.
        refused(
            &SUFFIXES
                .replace(
                    "count(mem) - 2, -1)\n  mem",
                    "count(mem) - 2, -1)\n  is_string(input.b)\n  mem",
                )
                .replacen(
                    "suffix := substring(mem, count(mem) - 2, -1)",
                    "suffix := substring(input.b, count(input.b) - 2, -1)",
                    1,
                ),
            "`t.get_suffix`: the bodies at lines 7 and 13",
        );
    }

    #[test]
    fn the_bmp_condition_needs_a_template_that_makes_no_astral_strings() {
        let decoded = SUFFIXES.replace("get_suffix(input.a)", "get_suffix(base64.decode(input.a))");
        refused(&decoded, "`base64.decode` (line 26) may make one");
        let by_number = SUFFIXES.replace(r#""%v: %d""#, r#""%c: %d""#);
        refused(&by_number, "`sprintf`");
        let literal = SUFFIXES.replace("get_suffix(input.a)", "get_suffix(\"\u{1F600}k\")");
        refused(&literal, "a literal outside the BMP");
        assert!(plain_format("%v %s %5d %-3v 100%%"));
        assert!(!plain_format("%c"));
        assert!(!plain_format("%x"));
        assert!(!plain_format("trailing %"));
    }
}
