//! What part of `input.review` a template can read, found from its parsed Rego alone, so that a
//! decision can be remembered for reviews that agree on that part (design note 28).
//!
//! A template's verdict is a function of its input, `data` (its rules, the libraries and the
//! inventory) and the clock or the network if it calls them. The rules and the inventory are
//! fixed for a compiled template (a new inventory makes a new generation), the parameters for a
//! constraint. What is left is the review, which Rego reads only through `input`. Each read is
//! cut at its first part that is not a constant (`input.review.object.spec.containers[_].image`
//! reads `review.object.spec.containers`), and everything under the cut is in the key.
//!
//! Templates rarely read `input` in one place: they name a part (`obj := input.review.object`)
//! and pass parts to functions (`is_update(input.review)`, `object.get(input, "parameters",
//! {})`). Such a name, an *alias*, is followed: what is read through it is read of its path, and
//! binding it reads only the *kind* of value there (absent, null, boolean, number, string,
//! array, object), which decides whether the binding succeeds. A function's parameters are
//! followed the same way, once per function, so a call reads of its argument what the function
//! reads of its parameter (and the argument's kind: a call with an undefined argument fails).
//!
//! It must never leave out something the evaluation can read: a missing path would hand one Pod
//! the remembered verdict of another. So, conservatively:
//! - an alias used any other way (compared, iterated, passed to a built-in, returned) reads its
//!   whole value; so does `input` itself;
//! - an index computed at run time cuts the path there;
//! - a parameter that is a pattern rather than a name reads the whole argument;
//! - a `with` modifier, or a call of a built-in whose answer is not a function of its arguments
//!   (the clock, randomness, the network, the runtime), makes the template not remembered;
//! - functions' summaries are computed to a fixed point (Rego has no recursion); if that takes
//!   more than `MAX_ROUNDS` rounds the key is the whole review.

use crate::rewrite::HOISTED;
use crate::vm_check::{constant, for_each_child, import_names, package_path, rule_path};
use regorus::Value;
use regorus::unstable::{AssignOp, Expr, Literal, Module, Query, Ref, Rule, RuleHead};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

/// Built-ins (or prefixes of their names) whose result can change between two calls with the
/// same arguments.
const NONDETERMINISTIC: [&str; 9] = [
    "external_data",
    "time.now_ns",
    "rand.",
    "uuid.",
    "http.send",
    "opa.runtime",
    "net.lookup_ip_addr",
    // Both compare with the current time.
    "io.jwt.decode_verify",
    "crypto.x509.parse_and_verify_certificates",
];

/// Rounds of the functions' fixed point before giving up on a finer key.
const MAX_ROUNDS: usize = 16;

/// A review larger than this, in the bytes of the parts a template reads, is not remembered: its
/// key would cost more memory than it saves time.
pub(crate) const MAX_KEY_BYTES: usize = 64 * 1024;

/// What a read needs of the value at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Need {
    /// Only whether it is there, and its kind (absent, null, boolean, number, string, array,
    /// object).
    Kind,
    /// All of it.
    Value,
}

/// The parts of `input.review` a template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Footprint {
    /// Paths under `input.review` and what each needs, in order; a path that a `Value` path
    /// covers is left out; an empty path is the whole review.
    Paths(Vec<PathRead>),
    /// Its decisions are not remembered, and why.
    Unremembered(String),
}

/// One path of a footprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRead {
    pub path: Vec<String>,
    pub need: Need,
    /// The same for every template with this path and need (see [`KeyParts`]).
    id: usize,
}

impl PathRead {
    fn new(path: Vec<String>, need: Need) -> Self {
        static IDS: OnceLock<Mutex<HashMap<(Path, Need), usize>>> = OnceLock::new();
        let mut ids = IDS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Bounded by the distinct paths of the templates ever loaded, a few hundred.
        let next = ids.len();
        let id = *ids.entry((path.clone(), need)).or_insert(next);
        Self { path, need, id }
    }
}

/// Where a path starts: the input, or a parameter of the function being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Base {
    Input,
    Param(usize),
}

type Path = Vec<String>;
type Read = (Base, Path, Need);
/// For each parameter of a function, what it reads of the argument (paths relative to it).
type Summary = Vec<BTreeSet<(Path, Need)>>;
/// Local names bound to exactly one path.
type Aliases = BTreeMap<String, (Base, Path)>;

impl Footprint {
    /// Reads the footprint of a template's modules (its own and its libraries').
    pub(crate) fn of(modules: &[Ref<Module>]) -> Self {
        let names = Names::new(modules);
        let mut summaries: BTreeMap<String, Summary> = names.initial_summaries();
        let mut refusals = BTreeSet::new();
        // `import input.review.object as o` reads through another name everywhere in its
        // module: taken as the whole review rather than followed.
        let imports_input = modules
            .iter()
            .any(|m| m.imports.iter().any(|i| root_name(&i.refr) == Some("input")));
        if imports_input {
            return Self::Paths(vec![PathRead::new(Vec::new(), Need::Value)]);
        }
        for _ in 0..MAX_ROUNDS {
            let mut reads = BTreeSet::new();
            let mut next = names.initial_summaries();
            refusals.clear();
            for module in modules {
                let globals = names.globals(module);
                for rule in &module.policy {
                    let mut reader = Reader {
                        globals: &globals,
                        summaries: &summaries,
                        reads: BTreeSet::new(),
                        refusals: &mut refusals,
                    };
                    let function = reader.rule(rule, &package_path(module));
                    for (base, path, need) in reader.reads {
                        match (base, &function) {
                            (Base::Input, _) => {
                                reads.insert((path, need));
                            }
                            (Base::Param(i), Some(f)) => {
                                if let Some(param) = next.get_mut(f).and_then(|s| s.get_mut(i)) {
                                    param.insert((path, need));
                                }
                            }
                            // A parameter outside a function cannot be: read it all.
                            (Base::Param(_), None) => {
                                reads.insert((Vec::new(), Need::Value));
                            }
                        }
                    }
                }
            }
            if !refusals.is_empty() {
                return Self::Unremembered(refusals.into_iter().collect::<Vec<_>>().join(", "));
            }
            if next == summaries {
                return Self::Paths(
                    review_paths(reads)
                        .into_iter()
                        .map(|(path, need)| PathRead::new(path, need))
                        .collect(),
                );
            }
            summaries = next;
        }
        Self::Paths(vec![PathRead::new(Vec::new(), Need::Value)])
    }

    /// The cache key of `review` (`input.review` as JSON) for this footprint: for each path, the
    /// kind of value there and, where the whole value is needed, its JSON (fields in the
    /// request's order: the same object written in another order is only a miss).
    /// `None` when not remembered, or when the key would exceed [`MAX_KEY_BYTES`]. `parts`
    /// holds the pieces already made for this review (templates share most of their paths).
    pub(crate) fn key(&self, review: &serde_json::Value, parts: &KeyParts) -> Option<Vec<u8>> {
        let Self::Paths(paths) = self else {
            return None;
        };
        let mut key = Vec::new();
        for p in paths {
            let part = parts.get(p.id, || key_part(review, &p.path, p.need))?;
            key.extend_from_slice(&part);
            if key.len() > MAX_KEY_BYTES {
                return None;
            }
        }
        Some(key)
    }

    /// For people: `review.object.spec.containers, kind of review.object`, or why not.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unremembered(why) => format!("not remembered: {why}"),
            Self::Paths(paths) if paths.is_empty() => "nothing of the review".into(),
            Self::Paths(paths) => {
                let mut out = String::new();
                for (i, p) in paths.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if p.need == Need::Kind {
                        out.push_str("kind of ");
                    }
                    out.push_str("review");
                    for part in &p.path {
                        let _ = write!(out, ".{part}");
                    }
                }
                out
            }
        }
    }
}

/// The part of a key for one path of a review; `None` when over [`MAX_KEY_BYTES`]. Read from
/// the review's JSON, which Rego's value is made from: equal JSON, equal value.
fn key_part(review: &serde_json::Value, path: &[String], need: Need) -> KeyPart {
    use serde_json::Value as Json;
    let mut key = Vec::new();
    let mut at = Some(review);
    let mut whole = need == Need::Value;
    for part in path {
        at = match at {
            Some(Json::Object(fields)) => fields.get(part.as_str()),
            None => break,
            // What a path into an array or a scalar yields is Rego's business: the key holds the
            // whole value, whatever the lookup makes of it.
            Some(_) => {
                key.push(NOT_AN_OBJECT);
                whole = true;
                break;
            }
        };
    }
    key.push(at.map_or(0, kind_tag));
    if whole && let Some(at) = at {
        let start = key.len();
        key.extend_from_slice(&[0; 4]);
        serde_json::to_writer(&mut key, at).ok()?;
        if key.len() > MAX_KEY_BYTES {
            return None;
        }
        let len = u32::try_from(key.len() - start - 4).ok()?;
        key[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }
    Some(key.into())
}

/// The key parts made for one review, by the id of their path and need (`None` inside: over
/// the size limit).
#[derive(Default)]
pub(crate) struct KeyParts(Mutex<Vec<Option<KeyPart>>>);

/// One path's part of a key; `None` when over the size limit.
type KeyPart = Option<Arc<[u8]>>;

impl KeyParts {
    fn get(&self, id: usize, make: impl FnOnce() -> KeyPart) -> KeyPart {
        if let Some(Some(found)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return found.clone();
        }
        // Made outside the lock: two threads may both make one, to the same bytes.
        let made = make();
        let mut parts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if parts.len() <= id {
            parts.resize(id + 1, None);
        }
        parts[id] = Some(made.clone());
        made
    }
}

/// In a key: the path runs through a value that is not an object, which follows whole.
const NOT_AN_OBJECT: u8 = 0xFF;

/// A value's kind as one byte of a key (0 is absent).
fn kind_tag(v: &serde_json::Value) -> u8 {
    match v {
        serde_json::Value::Null => 1,
        serde_json::Value::Bool(_) => 2,
        serde_json::Value::Number(_) => 3,
        serde_json::Value::String(_) => 4,
        serde_json::Value::Array(_) => 5,
        serde_json::Value::Object(_) => 7,
    }
}

/// The input's reads as paths under `input.review`, each left out where a whole value read
/// covers it. `input.parameters` is the constraint's and fixed; any other part of the input,
/// or the input itself, is taken as the whole review.
fn review_paths(reads: BTreeSet<(Path, Need)>) -> Vec<(Path, Need)> {
    let mut under_review: BTreeSet<(Path, Need)> = BTreeSet::new();
    for (path, need) in reads {
        match path.split_first() {
            Some((first, _)) if first == "parameters" => {}
            Some((first, rest)) if first == "review" => {
                under_review.insert((rest.to_vec(), need));
            }
            // The kind of the input itself: always an object.
            None if need == Need::Kind => {}
            _ => {
                under_review.insert((Vec::new(), Need::Value));
            }
        }
    }
    let values: Vec<Path> = under_review
        .iter()
        .filter(|(_, n)| *n == Need::Value)
        .map(|(p, _)| p.clone())
        .collect();
    under_review
        .into_iter()
        .filter(|(path, need)| {
            !values
                .iter()
                .any(|v| path.starts_with(v) && (path.len() > v.len() || *need == Need::Kind))
        })
        .collect()
}

/// The names of a policy: its functions (by full path) and each module's rules and imports.
struct Names {
    /// Function path → for each parameter, whether it is a plain name (else a pattern).
    functions: BTreeMap<String, Vec<bool>>,
    rules_by_package: BTreeMap<String, BTreeSet<String>>,
}

impl Names {
    fn new(modules: &[Ref<Module>]) -> Self {
        let mut functions: BTreeMap<String, Vec<bool>> = BTreeMap::new();
        let mut rules_by_package: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for module in modules {
            let package = package_path(module);
            for rule in &module.policy {
                let refr = match rule.as_ref() {
                    Rule::Spec { head, .. } => match head {
                        RuleHead::Func { refr, .. }
                        | RuleHead::Compr { refr, .. }
                        | RuleHead::Set { refr, .. } => refr,
                    },
                    Rule::Default { refr, .. } => refr,
                };
                if let Some(first) = root_name(refr) {
                    rules_by_package
                        .entry(package.clone())
                        .or_default()
                        .insert(first.to_string());
                }
                if let (
                    Rule::Spec {
                        head: RuleHead::Func { args, .. },
                        ..
                    },
                    Some(path),
                ) = (rule.as_ref(), rule_path(refr))
                {
                    let plain: Vec<bool> = args
                        .iter()
                        .map(|a| matches!(a.as_ref(), Expr::Var { .. }))
                        .collect();
                    let entry = functions.entry(format!("data.{package}.{path}")).or_default();
                    // Definitions of one function agree on arity; a parameter is plain only if
                    // it is in every definition.
                    if entry.len() < plain.len() {
                        entry.resize(plain.len(), true);
                    }
                    for (i, p) in plain.into_iter().enumerate() {
                        entry[i] &= p;
                    }
                }
            }
        }
        Self {
            functions,
            rules_by_package,
        }
    }

    /// Every function reads nothing of its plain parameters yet, and all of the others.
    fn initial_summaries(&self) -> BTreeMap<String, Summary> {
        self.functions
            .iter()
            .map(|(path, plain)| {
                let summary = plain
                    .iter()
                    .map(|&p| {
                        if p {
                            BTreeSet::new()
                        } else {
                            BTreeSet::from([(Vec::new(), Need::Value)])
                        }
                    })
                    .collect();
                (path.clone(), summary)
            })
            .collect()
    }

    /// Name → the path it stands for in `module`: its package's rules and its imports.
    fn globals(&self, module: &Ref<Module>) -> BTreeMap<String, String> {
        let package = package_path(module);
        let mut names = BTreeMap::new();
        for rule in self.rules_by_package.get(&package).into_iter().flatten() {
            names.insert(rule.clone(), format!("data.{package}.{rule}"));
        }
        names.extend(import_names(module));
        names
    }
}

/// A reference that starts at `input` or an alias.
struct Resolved<'e> {
    base: Base,
    /// Up to the first part computed at run time.
    path: Path,
    /// Index expressions computed at run time, to be read themselves.
    runtime: Vec<&'e Ref<Expr>>,
    /// No part was computed at run time: the reference names exactly `path`.
    exact: bool,
}

/// Reads one rule, collecting what it reads of the input and of its parameters.
struct Reader<'a> {
    globals: &'a BTreeMap<String, String>,
    summaries: &'a BTreeMap<String, Summary>,
    reads: BTreeSet<Read>,
    refusals: &'a mut BTreeSet<String>,
}

impl Reader<'_> {
    /// Reads a rule; the function's path when it is a function.
    fn rule(&mut self, rule: &Ref<Rule>, package: &str) -> Option<String> {
        match rule.as_ref() {
            Rule::Default { value, .. } => {
                self.expr(value, &Aliases::new());
                None
            }
            Rule::Spec { head, bodies, .. } => {
                let mut base = Aliases::new();
                let function = if let RuleHead::Func { refr, args, .. } = head {
                    for (i, arg) in args.iter().enumerate() {
                        if let Expr::Var { span, .. } = arg.as_ref() {
                            base.insert(span.text().to_string(), (Base::Param(i), Vec::new()));
                        }
                    }
                    rule_path(refr).map(|p| format!("data.{package}.{p}"))
                } else {
                    None
                };
                if bodies.is_empty() {
                    self.head(head, &base);
                }
                for body in bodies {
                    let mut aliases = base.clone();
                    self.query(&body.query, &mut aliases);
                    if let Some(a) = &body.assign {
                        self.expr(&a.value, &aliases);
                    }
                    // The head's terms see the body's names.
                    self.head(head, &aliases);
                }
                function
            }
        }
    }

    fn head(&mut self, head: &RuleHead, aliases: &Aliases) {
        match head {
            RuleHead::Func { assign, .. } => {
                if let Some(a) = assign {
                    self.expr(&a.value, aliases);
                }
            }
            RuleHead::Compr { refr, assign, .. } => {
                self.expr(refr, aliases);
                if let Some(a) = assign {
                    self.expr(&a.value, aliases);
                }
            }
            RuleHead::Set { refr, key, .. } => {
                self.expr(refr, aliases);
                if let Some(k) = key {
                    self.expr(k, aliases);
                }
            }
        }
    }

    fn query(&mut self, query: &Query, aliases: &mut Aliases) {
        for stmt in &query.stmts {
            if !stmt.with_mods.is_empty() {
                self.refusals
                    .insert(format!("a `with` modifier (line {})", stmt.span.line));
            }
            match &stmt.literal {
                Literal::SomeVars { vars, .. } => {
                    for v in vars {
                        aliases.remove(v.text());
                    }
                }
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    self.expr(collection, aliases);
                    for pattern in key.iter().chain([value]) {
                        unbind(pattern, aliases);
                        self.expr(pattern, aliases);
                    }
                }
                Literal::Expr { expr, .. } => self.statement(expr, aliases),
                Literal::NotExpr { expr, .. } => self.expr(expr, aliases),
                Literal::Every {
                    key,
                    value,
                    domain,
                    query,
                    ..
                } => {
                    self.expr(domain, aliases);
                    let mut inner = aliases.clone();
                    for v in key.iter().chain([value]) {
                        inner.remove(v.text());
                    }
                    self.query(query, &mut inner);
                }
            }
        }
    }

    /// An expression statement: `x := <path>` binds an alias, reading only the path's kind (so
    /// does `=` to a name the negation rewrite made, which is new by construction).
    fn statement(&mut self, expr: &Ref<Expr>, aliases: &mut Aliases) {
        let Expr::AssignExpr { op, lhs, rhs, .. } = expr.as_ref() else {
            return self.expr(expr, aliases);
        };
        let binds = match op {
            AssignOp::ColEq => true,
            AssignOp::Eq => {
                matches!(lhs.as_ref(), Expr::Var { span, .. } if span.text().starts_with(HOISTED))
            }
        };
        if !binds {
            return self.expr(expr, aliases);
        }
        if let Expr::Var { span, .. } = lhs.as_ref()
            && let Some(Resolved { base, path, .. }) = self.resolve(rhs, aliases).filter(|r| r.exact)
        {
            self.reads.insert((base, path.clone(), Need::Kind));
            aliases.insert(span.text().to_string(), (base, path));
            return;
        }
        self.expr(rhs, aliases);
        unbind(lhs, aliases);
        self.expr(lhs, aliases);
    }

    /// For a reference that starts at `input` or an alias: its base, its constant path up to
    /// the first part computed at run time, and the index expressions computed at run time.
    fn resolve<'e>(&self, e: &'e Ref<Expr>, aliases: &Aliases) -> Option<Resolved<'e>> {
        // Parts from the outermost inwards.
        let mut parts: Vec<Option<String>> = Vec::new();
        let mut runtime = Vec::new();
        let mut at = e;
        let root = loop {
            match at.as_ref() {
                Expr::RefDot { refr, field, .. } => {
                    parts.push(field.1.as_string().ok().map(|s| s.to_string()));
                    at = refr;
                }
                Expr::RefBrack { refr, index, .. } => {
                    match index.as_ref() {
                        Expr::String { value, .. } | Expr::RawString { value, .. } => {
                            parts.push(value.as_string().ok().map(|s| s.to_string()));
                        }
                        _ => {
                            parts.push(None);
                            runtime.push(index);
                        }
                    }
                    at = refr;
                }
                Expr::Var { span, .. } => break span.text(),
                _ => return None,
            }
        };
        let (base, mut path) = match aliases.get(root) {
            Some((base, path)) => (*base, path.clone()),
            None if root == "input" => (Base::Input, Vec::new()),
            None => return None,
        };
        let exact = parts.iter().all(Option::is_some);
        path.extend(parts.iter().rev().map_while(|p| p.clone()));
        Some(Resolved {
            base,
            path,
            runtime,
            exact,
        })
    }

    fn expr(&mut self, e: &Ref<Expr>, aliases: &Aliases) {
        match e.as_ref() {
            Expr::Var { span, .. } => {
                let name = span.text();
                if let Some((base, path)) = aliases.get(name) {
                    self.reads.insert((*base, path.clone(), Need::Value));
                } else if name == "input" {
                    self.reads.insert((Base::Input, Vec::new(), Need::Value));
                }
            }
            Expr::RefDot { .. } | Expr::RefBrack { .. } => match self.resolve(e, aliases) {
                Some(r) => {
                    self.reads.insert((r.base, r.path, Need::Value));
                    for index in r.runtime {
                        self.expr(index, aliases);
                    }
                }
                None => for_each_child(e, false, &mut |c| self.expr(c, aliases)),
            },
            Expr::Call { fcn, params, .. } => self.call(e, fcn, params, aliases),
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                let mut inner = aliases.clone();
                self.query(query, &mut inner);
                self.expr(term, &inner);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                let mut inner = aliases.clone();
                self.query(query, &mut inner);
                self.expr(key, &inner);
                self.expr(value, &inner);
            }
            _ => for_each_child(e, false, &mut |c| self.expr(c, aliases)),
        }
    }

    fn call(&mut self, e: &Ref<Expr>, fcn: &Ref<Expr>, params: &[Ref<Expr>], aliases: &Aliases) {
        let name = fcn.span().text();
        if NONDETERMINISTIC.iter().any(|n| name.starts_with(n)) {
            self.refusals.insert(format!(
                "calls `{name}` (line {}), whose answer is not a function of the review",
                e.span().line
            ));
        }
        // `object.get(x, "k", d)` / `object.get(x, ["k1", "k2"], d)` reads x's kind and the
        // value under the keys.
        if name == "object.get"
            && let [object, keys, default] = params
            && let Some(Resolved { base, path, .. }) = self.resolve(object, aliases).filter(|r| r.exact)
            && let Some(keys) = constant(keys).and_then(|k| constant_keys(&k))
        {
            self.reads.insert((base, path.clone(), Need::Kind));
            let mut under = path;
            under.extend(keys);
            self.reads.insert((base, under, Need::Value));
            self.expr(default, aliases);
            return;
        }
        let Some(summary) = self.function(name) else {
            // A built-in reads all of its arguments.
            params.iter().for_each(|p| self.expr(p, aliases));
            return;
        };
        for (i, param) in params.iter().enumerate() {
            match (self.resolve(param, aliases), summary.get(i)) {
                (
                    Some(Resolved {
                        base,
                        path,
                        exact: true,
                        ..
                    }),
                    Some(reads),
                ) => {
                    self.reads.insert((base, path.clone(), Need::Kind));
                    for (relative, need) in reads {
                        let mut full = path.clone();
                        full.extend(relative.iter().cloned());
                        self.reads.insert((base, full, *need));
                    }
                }
                _ => self.expr(param, aliases),
            }
        }
    }

    /// The summary of the user function `name` names here, if it is one.
    fn function(&self, name: &str) -> Option<Summary> {
        let full = if name.starts_with("data.") {
            name.to_string()
        } else {
            let (first, rest) = match name.split_once('.') {
                Some((f, r)) => (f, Some(r)),
                None => (name, None),
            };
            let path = self.globals.get(first)?;
            match rest {
                Some(r) => format!("{path}.{r}"),
                None => path.clone(),
            }
        };
        self.summaries.get(&full).cloned()
    }
}

/// The names a pattern binds stop being aliases.
fn unbind(pattern: &Ref<Expr>, aliases: &mut Aliases) {
    if let Expr::Var { span, .. } = pattern.as_ref() {
        aliases.remove(span.text());
    }
    for_each_child(pattern, false, &mut |c| unbind(c, aliases));
}

/// `"k"` → `[k]`, `["k1", "k2"]` → `[k1, k2]`; `None` for anything else.
fn constant_keys(keys: &Value) -> Option<Vec<String>> {
    match keys {
        Value::String(s) => Some(vec![s.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|k| k.as_string().ok().map(|s| s.to_string()))
            .collect(),
        _ => None,
    }
}

/// The name a rule head starts with (`violation` of `violation[x]`).
fn root_name(refr: &Ref<Expr>) -> Option<&str> {
    match refr.as_ref() {
        Expr::Var { span, .. } => Some(span.text()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => root_name(refr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The footprint of a template (package `t`) and libraries, as `describe` writes it.
    fn footprint(rego: &str, libs: &[&str]) -> String {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(true);
        for (i, lib) in libs.iter().enumerate() {
            engine
                .add_policy(format!("lib{i}.rego"), crate::rewrite::for_regorus(lib))
                .unwrap();
        }
        engine
            .add_policy(
                "t.rego".into(),
                crate::rewrite::for_regorus(&format!("package t\n{rego}\n")),
            )
            .unwrap();
        Footprint::of(engine.get_modules()).describe()
    }

    #[test]
    fn a_path_is_cut_where_an_index_is_computed() {
        assert_eq!(
            footprint(
                r#"violation[{"msg": m}] { c := input.review.object.spec.containers[_]; m := c.image }"#,
                &[]
            ),
            "review.object.spec.containers"
        );
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { input.review.object.metadata.labels["app"] == "a" }"#,
                &[]
            ),
            "review.object.metadata.labels.app"
        );
        // The index itself reads the review.
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { input.review.object.metadata.labels[input.review.name] }"#,
                &[]
            ),
            "review.name, review.object.metadata.labels"
        );
    }

    #[test]
    fn aliases_and_parameters_are_followed() {
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { o := input.review.object; o.spec.hostPID }"#,
                &[]
            ),
            "kind of review.object, review.object.spec.hostPID"
        );
        let lib = "package lib.u\nis_update(review) { review.operation == \"UPDATE\" }";
        assert_eq!(
            footprint(
                "import data.lib.u.is_update\nviolation[{\"msg\": \"x\"}] { not is_update(input.review); input.review.object.spec.x }",
                &[lib]
            ),
            "kind of review, review.object.spec.x, review.operation"
        );
        // Through two functions, and a function that returns part of its parameter.
        assert_eq!(
            footprint(
                "violation[{\"msg\": \"x\"}] { f(input.review.object) }\nf(o) { g(o.spec) }\ng(s) = s.a\n",
                &[]
            ),
            "kind of review.object, kind of review.object.spec, review.object.spec.a"
        );
        // `object.get` with constant keys reads its object's kind and what is under the keys.
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { p := object.get(input, "parameters", {}); object.get(input.review.object, ["spec", "x"], 1) == 2; p.a }"#,
                &[]
            ),
            "kind of review.object, review.object.spec.x"
        );
    }

    #[test]
    fn whatever_else_reads_the_whole_value() {
        // An alias compared whole, passed to a built-in, or iterated.
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { o := input.review.object; count(o) > 1 }"#,
                &[]
            ),
            "review.object"
        );
        assert_eq!(
            footprint(
                r#"violation[{"msg": "x"}] { some k; input.review.object.metadata[k] }"#,
                &[]
            ),
            "review.object.metadata"
        );
        assert_eq!(
            footprint(r#"violation[{"msg": "x"}] { x := input; x.a }"#, &[]),
            "review"
        );
        // A parameter that is a pattern reads the whole argument.
        assert_eq!(
            footprint(
                "violation[{\"msg\": \"x\"}] { f(input.review.object) }\nf({\"a\": a}) { a }\n",
                &[]
            ),
            "review.object"
        );
        // Imported input: the whole review.
        assert_eq!(
            footprint(
                "import input.review.object as o\nviolation[{\"msg\": \"x\"}] { o.spec.x }",
                &[]
            ),
            "review"
        );
        // Input that is not the review or the parameters: the whole review.
        assert_eq!(
            footprint(r#"violation[{"msg": "x"}] { input.other }"#, &[]),
            "review"
        );
    }

    #[test]
    fn the_clock_and_with_are_not_remembered() {
        let f = footprint(r#"violation[{"msg": "x"}] { time.now_ns() > 0 }"#, &[]);
        assert!(
            f.starts_with("not remembered") && f.contains("time.now_ns"),
            "{f}"
        );
        let f = footprint(
            r#"violation[{"msg": "x"}] { g with input as {} }
g { input.a }"#,
            &[],
        );
        assert!(f.starts_with("not remembered") && f.contains("with"), "{f}");
    }

    #[test]
    fn a_key_holds_kinds_values_and_whatever_a_path_runs_into() {
        let fp = Footprint::Paths(vec![
            PathRead::new(vec!["object".into()], Need::Kind),
            PathRead::new(vec!["object".into(), "spec".into(), "x".into()], Need::Value),
        ]);
        let key = |j: serde_json::Value| fp.key(&j, &KeyParts::default()).unwrap();
        let base = key(serde_json::json!({"object": {"spec": {"x": 1}, "metadata": {"name": "a"}}}));
        // What the footprint does not read does not change the key.
        assert_eq!(
            base,
            key(serde_json::json!({"object": {"spec": {"x": 1}, "metadata": {"name": "b"}}}))
        );
        assert_ne!(base, key(serde_json::json!({"object": {"spec": {"x": 2}}})));
        // Absent and an object without the field differ by the kind read.
        assert_ne!(key(serde_json::json!({})), key(serde_json::json!({"object": {}})));
        // A path through an array or a scalar holds it whole.
        assert_ne!(
            key(serde_json::json!({"object": {"spec": [1]}})),
            key(serde_json::json!({"object": {"spec": [2]}}))
        );
        // Too large: not remembered.
        let big = "a".repeat(MAX_KEY_BYTES);
        assert!(
            fp.key(
                &serde_json::json!({"object": {"spec": {"x": big}}}),
                &KeyParts::default()
            )
            .is_none()
        );
    }
}
