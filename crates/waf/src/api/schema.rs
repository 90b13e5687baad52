//! JSON Schema validation for request bodies and parameters: the keyword subset OpenAPI 3.0 and 3.1
//! documents use, compiled once into an arena at load. Validation is bounded in instance depth,
//! schema recursion and steps, stops after [`MAX_VIOLATIONS`], and never panics on any instance.

use super::Violation;
use super::openapi::{Dialect, DocError, pointer_push, resolve_ref};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// At most this many violations are reported per request; further ones are dropped.
pub const MAX_VIOLATIONS: usize = 20;
/// Instances nested deeper than this are refused (serde_json itself stops at 128).
pub const MAX_INSTANCE_DEPTH: usize = 64;
/// Schema recursion (through `$ref`, `allOf` and friends) per evaluation.
const MAX_EVAL_DEPTH: usize = 256;
/// Schema evaluations per request: `anyOf` inside `anyOf` could otherwise take exponential time.
const MAX_STEPS: usize = 200_000;
/// Nesting of schemas (through `$ref`s) at compile time.
const BUDGET: &str = "schema evaluation budget exceeded";
const MAX_COMPILE_DEPTH: usize = 200;
const MAX_NODES: usize = 100_000;
const MAX_PATTERN_LEN: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) const T_NULL: u8 = 1;
pub(crate) const T_BOOL: u8 = 2;
pub(crate) const T_OBJECT: u8 = 4;
pub(crate) const T_ARRAY: u8 = 8;
pub(crate) const T_NUMBER: u8 = 16;
pub(crate) const T_INTEGER: u8 = 32;
pub(crate) const T_STRING: u8 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NodeId(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DateTime,
    Date,
    Time,
    Email,
    Uuid,
    Ipv4,
    Ipv6,
    Hostname,
    Uri,
    Int32,
    Int64,
    Byte,
}

#[derive(Debug, Default)]
struct Node {
    types: Option<u8>,
    /// The `false` schema (also `additionalProperties: false`).
    never: bool,
    read_only: bool,
    /// Only a `$ref`: used to find cycles of references that never reach a schema.
    pure_ref: bool,
    reference: Option<NodeId>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<Regex>,
    format: Option<Format>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    items: Option<NodeId>,
    prefix_items: Vec<NodeId>,
    properties: Vec<(String, NodeId)>,
    pattern_properties: Vec<(Regex, NodeId)>,
    additional: Option<NodeId>,
    required: Vec<String>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    all_of: Vec<NodeId>,
    any_of: Vec<NodeId>,
    one_of: Vec<NodeId>,
    not: Option<NodeId>,
}

/// All schemas of one OpenAPI document, compiled.
#[derive(Debug, Default)]
pub(crate) struct SchemaSet {
    nodes: Vec<Node>,
}

/// Keywords that constrain instances but are not implemented: a schema using them is validated
/// without them, and the model lists a warning (so that "not evaluated" is visible).
const UNSUPPORTED: &[&str] = &[
    "unevaluatedProperties",
    "unevaluatedItems",
    "if",
    "dependentSchemas",
    "dependentRequired",
    "contains",
    "propertyNames",
    "$dynamicRef",
];

pub(crate) struct Compiler<'d> {
    root: &'d Value,
    dialect: Dialect,
    set: SchemaSet,
    by_pointer: HashMap<String, NodeId>,
    pub(crate) warnings: Vec<String>,
}

impl<'d> Compiler<'d> {
    pub(crate) fn new(root: &'d Value, dialect: Dialect) -> Self {
        Compiler {
            root,
            dialect,
            set: SchemaSet::default(),
            by_pointer: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The schemas compiled so far (complete for any schema whose `compile` has returned).
    pub(crate) fn set(&self) -> &SchemaSet {
        &self.set
    }

    pub(crate) fn finish(self) -> Result<SchemaSet, DocError> {
        // A chain of bare `$ref`s that loops never reaches a schema.
        for start in 0..self.set.nodes.len() {
            let mut id = NodeId(start as u32);
            let mut hops = 0;
            while let Some(n) = self.set.node(id).filter(|n| n.pure_ref) {
                let Some(next) = n.reference else { break };
                id = next;
                hops += 1;
                // Chains are bounded by the compile depth, so a longer walk is a loop.
                if hops > MAX_COMPILE_DEPTH + 1 {
                    let pointer = self
                        .by_pointer
                        .iter()
                        .find(|(_, v)| v.0 as usize == start)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_default();
                    return Err(DocError::new(pointer, "$ref cycle that never reaches a schema"));
                }
            }
        }
        Ok(self.set)
    }

    /// Compiles the schema at `pointer` (memoised by pointer, so recursive schemas work).
    pub(crate) fn compile(&mut self, schema: &Value, pointer: &str) -> Result<NodeId, DocError> {
        self.compile_at(schema, pointer, 0)
    }

    fn compile_at(&mut self, schema: &Value, pointer: &str, depth: usize) -> Result<NodeId, DocError> {
        if let Some(id) = self.by_pointer.get(pointer) {
            return Ok(*id);
        }
        if depth > MAX_COMPILE_DEPTH {
            return Err(DocError::new(
                pointer,
                format!("schemas nested deeper than {MAX_COMPILE_DEPTH} (through $ref)"),
            ));
        }
        if self.set.nodes.len() >= MAX_NODES {
            return Err(DocError::new(pointer, format!("more than {MAX_NODES} schemas")));
        }
        let id = NodeId(self.set.nodes.len() as u32);
        self.set.nodes.push(Node::default());
        self.by_pointer.insert(pointer.to_string(), id);
        let node = self.build(schema, pointer, depth)?;
        if let Some(slot) = self.set.nodes.get_mut(id.0 as usize) {
            *slot = node;
        }
        Ok(id)
    }

    fn sub(&mut self, v: &Value, pointer: &str, key: &str, depth: usize) -> Result<NodeId, DocError> {
        let p = pointer_push(pointer, key);
        self.compile_at(v, &p, depth + 1)
    }

    fn sub_list(
        &mut self,
        v: &Value,
        pointer: &str,
        key: &str,
        depth: usize,
    ) -> Result<Vec<NodeId>, DocError> {
        let Value::Array(list) = v else {
            return Err(DocError::new(
                pointer_push(pointer, key),
                "expected an array of schemas",
            ));
        };
        let base = pointer_push(pointer, key);
        let mut out = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            out.push(self.sub(s, &base, &i.to_string(), depth)?);
        }
        Ok(out)
    }

    fn build(&mut self, schema: &Value, pointer: &str, depth: usize) -> Result<Node, DocError> {
        let obj = match schema {
            Value::Bool(true) => return Ok(Node::default()),
            Value::Bool(false) => {
                return Ok(Node {
                    never: true,
                    ..Node::default()
                });
            }
            Value::Object(o) => o,
            _ => return Err(DocError::new(pointer, "a schema must be an object or a boolean")),
        };
        let mut n = Node::default();
        if let Some(r) = obj.get("$ref") {
            let Value::String(r) = r else {
                return Err(DocError::new(
                    pointer_push(pointer, "$ref"),
                    "$ref must be a string",
                ));
            };
            let (target, target_pointer) = resolve_ref(self.root, r, &pointer_push(pointer, "$ref"))?;
            n.reference = Some(self.compile_at(target, &target_pointer, depth + 1)?);
            // OpenAPI 3.0 ignores the siblings of `$ref`; 3.1 (JSON Schema 2020-12) applies them.
            if self.dialect == Dialect::V30 || obj.len() == 1 {
                n.pure_ref = true;
                return Ok(n);
            }
        }
        for k in UNSUPPORTED {
            if obj.contains_key(*k) {
                self.warnings.push(format!(
                    "{pointer}: schema keyword `{k}` is not supported and not checked"
                ));
            }
        }
        let num = |key: &str| -> Result<Option<f64>, DocError> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::Number(x)) => Ok(x.as_f64()),
                Some(_) => Err(DocError::new(pointer_push(pointer, key), "expected a number")),
            }
        };
        let count = |key: &str| -> Result<Option<u64>, DocError> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::Number(x)) => match x.as_u64() {
                    Some(c) => Ok(Some(c)),
                    None => Err(DocError::new(
                        pointer_push(pointer, key),
                        "expected a non-negative integer",
                    )),
                },
                Some(_) => Err(DocError::new(
                    pointer_push(pointer, key),
                    "expected a non-negative integer",
                )),
            }
        };
        if let Some(t) = obj.get("type") {
            let mut mask = 0u8;
            let names: Vec<&Value> = match t {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for name in names {
                mask |= match name.as_str() {
                    Some("null") => T_NULL,
                    Some("boolean") => T_BOOL,
                    Some("object") => T_OBJECT,
                    Some("array") => T_ARRAY,
                    Some("number") => T_NUMBER,
                    Some("integer") => T_INTEGER,
                    Some("string") => T_STRING,
                    _ => {
                        return Err(DocError::new(
                            pointer_push(pointer, "type"),
                            "unknown type (expected null, boolean, object, array, number, integer or string)",
                        ));
                    }
                };
            }
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                mask |= T_NULL;
            }
            n.types = Some(mask);
        }
        n.read_only = obj.get("readOnly") == Some(&Value::Bool(true));
        if let Some(e) = obj.get("enum") {
            let Value::Array(values) = e else {
                return Err(DocError::new(
                    pointer_push(pointer, "enum"),
                    "enum must be an array",
                ));
            };
            n.enumeration = Some(values.clone());
        }
        n.constant = obj.get("const").cloned();
        n.min_length = count("minLength")?;
        n.max_length = count("maxLength")?;
        if let Some(p) = obj.get("pattern") {
            n.pattern = Some(compile_pattern(p, &pointer_push(pointer, "pattern"))?);
        }
        n.format = match obj.get("format").and_then(Value::as_str) {
            Some("date-time") => Some(Format::DateTime),
            Some("date") => Some(Format::Date),
            Some("time") => Some(Format::Time),
            Some("email") => Some(Format::Email),
            Some("uuid") => Some(Format::Uuid),
            Some("ipv4") => Some(Format::Ipv4),
            Some("ipv6") => Some(Format::Ipv6),
            Some("hostname") => Some(Format::Hostname),
            Some("uri") => Some(Format::Uri),
            Some("int32") => Some(Format::Int32),
            Some("int64") => Some(Format::Int64),
            Some("byte") => Some(Format::Byte),
            // Unknown formats are annotations (JSON Schema), e.g. `binary`, `password`.
            _ => None,
        };
        n.minimum = num("minimum")?;
        n.maximum = num("maximum")?;
        // 3.0 (draft 4): booleans that make minimum/maximum exclusive; 3.1: numbers.
        match obj.get("exclusiveMinimum") {
            Some(Value::Bool(true)) => n.exclusive_minimum = n.minimum.take(),
            Some(Value::Bool(false)) | None => {}
            Some(_) => n.exclusive_minimum = num("exclusiveMinimum")?,
        }
        match obj.get("exclusiveMaximum") {
            Some(Value::Bool(true)) => n.exclusive_maximum = n.maximum.take(),
            Some(Value::Bool(false)) | None => {}
            Some(_) => n.exclusive_maximum = num("exclusiveMaximum")?,
        }
        n.multiple_of = num("multipleOf")?;
        if n.multiple_of.is_some_and(|m| m <= 0.0 || !m.is_finite()) {
            return Err(DocError::new(
                pointer_push(pointer, "multipleOf"),
                "multipleOf must be positive",
            ));
        }
        n.min_items = count("minItems")?;
        n.max_items = count("maxItems")?;
        n.unique_items = obj.get("uniqueItems") == Some(&Value::Bool(true));
        match obj.get("items") {
            // Draft 4 tuple form.
            Some(a @ Value::Array(_)) => n.prefix_items = self.sub_list(a, pointer, "items", depth)?,
            Some(s) => n.items = Some(self.sub(s, pointer, "items", depth)?),
            None => {}
        }
        if let Some(a) = obj.get("prefixItems") {
            n.prefix_items = self.sub_list(a, pointer, "prefixItems", depth)?;
        }
        if let Some(p) = obj.get("properties") {
            let (props, base) = object_at(p, pointer, "properties")?;
            for (name, s) in props {
                let id = self.sub(s, &base, name, depth)?;
                n.properties.push((name.clone(), id));
            }
        }
        if let Some(p) = obj.get("patternProperties") {
            let (props, base) = object_at(p, pointer, "patternProperties")?;
            for (pat, s) in props {
                let re = compile_pattern(&Value::String(pat.clone()), &pointer_push(&base, pat))?;
                let id = self.sub(s, &base, pat, depth)?;
                n.pattern_properties.push((re, id));
            }
        }
        if let Some(a) = obj.get("additionalProperties") {
            n.additional = Some(self.sub(a, pointer, "additionalProperties", depth)?);
        }
        if let Some(r) = obj.get("required") {
            let Value::Array(names) = r else {
                return Err(DocError::new(
                    pointer_push(pointer, "required"),
                    "expected an array of names",
                ));
            };
            for name in names {
                let Value::String(name) = name else {
                    return Err(DocError::new(
                        pointer_push(pointer, "required"),
                        "expected an array of names",
                    ));
                };
                n.required.push(name.clone());
            }
        }
        n.min_properties = count("minProperties")?;
        n.max_properties = count("maxProperties")?;
        if let Some(a) = obj.get("allOf") {
            n.all_of = self.sub_list(a, pointer, "allOf", depth)?;
        }
        if let Some(a) = obj.get("anyOf") {
            n.any_of = self.sub_list(a, pointer, "anyOf", depth)?;
        }
        if let Some(a) = obj.get("oneOf") {
            n.one_of = self.sub_list(a, pointer, "oneOf", depth)?;
        }
        if let Some(s) = obj.get("not") {
            n.not = Some(self.sub(s, pointer, "not", depth)?);
        }
        Ok(n)
    }
}

/// `value` (the member `key` of the schema at `pointer`) as a JSON object, with its own pointer.
fn object_at<'v>(
    value: &'v Value,
    pointer: &str,
    key: &str,
) -> Result<(&'v Map<String, Value>, String), DocError> {
    let at = pointer_push(pointer, key);
    match value {
        Value::Object(map) => Ok((map, at)),
        _ => Err(DocError::new(at, "expected an object")),
    }
}

fn compile_pattern(p: &Value, pointer: &str) -> Result<Regex, DocError> {
    let Value::String(p) = p else {
        return Err(DocError::new(pointer, "pattern must be a string"));
    };
    if p.len() > MAX_PATTERN_LEN {
        return Err(DocError::new(
            pointer,
            format!("pattern longer than {MAX_PATTERN_LEN} bytes"),
        ));
    }
    RegexBuilder::new(p)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            DocError::new(
                pointer,
                format!("pattern is not supported (no look-around or back-references): {first}"),
            )
        })
}

/// The state of one validation: the step budget and the violations found so far.
pub(crate) struct Cx {
    steps: usize,
    pub(crate) violations: Vec<Violation>,
}

impl Cx {
    pub(crate) fn new() -> Self {
        Cx {
            steps: 0,
            violations: Vec::new(),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.violations.len() >= MAX_VIOLATIONS
    }

    pub(crate) fn push(&mut self, location: &str, message: impl Into<String>) {
        if !self.full() {
            self.violations.push(Violation {
                location: location.to_string(),
                message: message.into(),
            });
        }
    }
}

/// Appends `/segment` to an instance location, escaped as in a JSON pointer and shortened.
fn loc_push(loc: &mut String, seg: &str) {
    loc.push('/');
    for (i, c) in seg.chars().enumerate() {
        if i >= 64 {
            loc.push('…');
            break;
        }
        match c {
            '~' => loc.push_str("~0"),
            '/' => loc.push_str("~1"),
            c if c.is_control() => {
                let _ = write!(loc, "\\u{{{:x}}}", c as u32);
            }
            c => loc.push(c),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn type_list(mask: u8) -> String {
    let names = [
        (T_NULL, "null"),
        (T_BOOL, "boolean"),
        (T_OBJECT, "object"),
        (T_ARRAY, "array"),
        (T_NUMBER, "number"),
        (T_INTEGER, "integer"),
        (T_STRING, "string"),
    ];
    names
        .iter()
        .filter(|(m, _)| mask & m != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

impl SchemaSet {
    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0 as usize)
    }

    /// The types a parameter string may be coerced to: the union of `type`s reachable through
    /// `$ref`, `allOf`, `anyOf` and `oneOf` (0 when the schema says nothing).
    pub(crate) fn coercion_types(&self, id: NodeId) -> u8 {
        self.coercion_types_at(id, 0)
    }

    fn coercion_types_at(&self, id: NodeId, depth: usize) -> u8 {
        let Some(n) = self.node(id) else { return 0 };
        if depth > 16 {
            return 0;
        }
        if let Some(t) = n.types {
            return t;
        }
        let mut mask = 0;
        for c in n
            .reference
            .iter()
            .chain(&n.all_of)
            .chain(&n.any_of)
            .chain(&n.one_of)
        {
            mask |= self.coercion_types_at(*c, depth + 1);
        }
        if mask == 0
            && n.enumeration
                .as_ref()
                .is_some_and(|e| e.iter().all(Value::is_number))
        {
            mask = T_NUMBER;
        }
        mask
    }

    /// The schema of an array's items (through `$ref` and `allOf`), for coercing parameters.
    pub(crate) fn items_of(&self, id: NodeId) -> Option<NodeId> {
        self.find(id, 0, &|n: &Node| n.items)
    }

    /// The schema of an object's property, for coercing form fields.
    pub(crate) fn property_of(&self, id: NodeId, name: &str) -> Option<NodeId> {
        self.find(id, 0, &|n: &Node| {
            n.properties
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .or_else(|| {
                    n.pattern_properties
                        .iter()
                        .find(|(re, _)| re.is_match(name))
                        .map(|(_, v)| *v)
                        .or(n.additional)
                })
        })
    }

    fn find(&self, id: NodeId, depth: usize, f: &dyn Fn(&Node) -> Option<NodeId>) -> Option<NodeId> {
        let n = self.node(id)?;
        if depth > 16 {
            return None;
        }
        if let Some(x) = f(n) {
            return Some(x);
        }
        n.reference
            .iter()
            .chain(&n.all_of)
            .chain(&n.any_of)
            .chain(&n.one_of)
            .find_map(|c| self.find(*c, depth + 1, f))
    }

    /// Validates `value`; violations go to `cx` (located under `loc`) and the result says
    /// whether it passed.
    pub(crate) fn validate(&self, id: NodeId, value: &Value, loc: &str, cx: &mut Cx) -> bool {
        let mut loc = loc.to_string();
        let ok = self.eval(id, value, &mut loc, 0, 0, cx, true);
        // Exhaustion inside anyOf/oneOf/not is not reported there; say so once.
        if cx.steps > MAX_STEPS && !cx.violations.iter().any(|v| v.message == BUDGET) {
            cx.violations.truncate(MAX_VIOLATIONS - 1);
            cx.push(&loc, BUDGET);
        }
        ok && cx.steps <= MAX_STEPS
    }

    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        id: NodeId,
        v: &Value,
        loc: &mut String,
        depth: usize,
        idepth: usize,
        cx: &mut Cx,
        report: bool,
    ) -> bool {
        let mut ok = true;
        macro_rules! fail {
            ($($msg:tt)*) => {{
                if !report {
                    return false;
                }
                cx.push(loc, format!($($msg)*));
                if cx.full() {
                    return false;
                }
                ok = false;
            }};
        }
        cx.steps += 1;
        if cx.steps > MAX_STEPS {
            if report {
                cx.push(loc, BUDGET);
            }
            return false;
        }
        if depth > MAX_EVAL_DEPTH {
            if report {
                cx.push(loc, format!("schema recursion deeper than {MAX_EVAL_DEPTH}"));
            }
            return false;
        }
        if idepth > MAX_INSTANCE_DEPTH {
            if report {
                cx.push(loc, format!("nested deeper than {MAX_INSTANCE_DEPTH} levels"));
            }
            return false;
        }
        let Some(n) = self.node(id) else { return true };
        if n.never {
            if report {
                cx.push(loc, "no value is allowed here");
            }
            return false;
        }
        if let Some(r) = n.reference
            && !self.eval(r, v, loc, depth + 1, idepth, cx, report)
        {
            if !report || cx.full() {
                return false;
            }
            ok = false;
        }
        if let Some(mask) = n.types {
            let matches = match v {
                Value::Null => mask & T_NULL != 0,
                Value::Bool(_) => mask & T_BOOL != 0,
                Value::Object(_) => mask & T_OBJECT != 0,
                Value::Array(_) => mask & T_ARRAY != 0,
                Value::String(_) => mask & T_STRING != 0,
                Value::Number(x) => mask & T_NUMBER != 0 || (mask & T_INTEGER != 0 && is_integer(x)),
            };
            if !matches {
                if report {
                    cx.push(
                        loc,
                        format!("expected {}, found {}", type_list(mask), type_name(v)),
                    );
                }
                // Other keywords would only repeat the type mismatch.
                return false;
            }
        }
        if let Some(e) = &n.enumeration
            && !e.iter().any(|x| json_eq(x, v))
        {
            fail!("not one of the {} allowed values", e.len());
        }
        if let Some(c) = &n.constant
            && !json_eq(c, v)
        {
            fail!("not the required constant value");
        }
        match v {
            Value::String(s) => {
                if n.min_length.is_some() || n.max_length.is_some() {
                    let len = s.chars().count() as u64;
                    if let Some(m) = n.min_length.filter(|m| len < *m) {
                        fail!("length {len} is below minLength {m}");
                    }
                    if let Some(m) = n.max_length.filter(|m| len > *m) {
                        fail!("length {len} is above maxLength {m}");
                    }
                }
                if let Some(re) = &n.pattern
                    && !re.is_match(s)
                {
                    fail!("does not match pattern {}", re.as_str());
                }
                if let Some(f) = n.format
                    && !check_format(f, s)
                {
                    fail!("not a valid {}", format_name(f));
                }
            }
            Value::Number(x) => {
                let f = x.as_f64().unwrap_or(f64::NAN);
                if let Some(m) = n.minimum.filter(|m| f < *m) {
                    fail!("below the minimum {m}");
                }
                if let Some(m) = n.maximum.filter(|m| f > *m) {
                    fail!("above the maximum {m}");
                }
                if let Some(m) = n.exclusive_minimum.filter(|m| f <= *m) {
                    fail!("not above the exclusive minimum {m}");
                }
                if let Some(m) = n.exclusive_maximum.filter(|m| f >= *m) {
                    fail!("not below the exclusive maximum {m}");
                }
                if let Some(m) = n.multiple_of
                    && !is_multiple(x, m)
                {
                    fail!("not a multiple of {m}");
                }
                let range = match n.format {
                    Some(Format::Int32) => Some((i32::MIN as f64, i32::MAX as f64)),
                    Some(Format::Int64) => Some((i64::MIN as f64, i64::MAX as f64)),
                    _ => None,
                };
                if let Some((lo, hi)) = range
                    && (!(lo..=hi).contains(&f) || (x.is_u64() && x.as_i64().is_none()))
                {
                    fail!(
                        "out of range for {}",
                        format_name(n.format.unwrap_or(Format::Int64))
                    );
                }
            }
            Value::Array(a) => {
                let len = a.len() as u64;
                if let Some(m) = n.min_items.filter(|m| len < *m) {
                    fail!("{len} items, fewer than minItems {m}");
                }
                if let Some(m) = n.max_items.filter(|m| len > *m) {
                    fail!("{len} items, more than maxItems {m}");
                }
                if n.unique_items && !all_unique(a, cx) {
                    fail!("items are not unique");
                }
                for (i, item) in a.iter().enumerate() {
                    let schema = n.prefix_items.get(i).copied().or(n.items);
                    let Some(s) = schema else { continue };
                    let len = loc.len();
                    loc_push(loc, &i.to_string());
                    let good = self.eval(s, item, loc, depth + 1, idepth + 1, cx, report);
                    loc.truncate(len);
                    if !good {
                        if !report || cx.full() {
                            return false;
                        }
                        ok = false;
                    }
                }
            }
            Value::Object(o) => {
                ok &= self.eval_object(n, o, loc, depth, idepth, cx, report);
                if !ok && (!report || cx.full()) {
                    return false;
                }
            }
            _ => {}
        }
        for s in &n.all_of {
            if !self.eval(*s, v, loc, depth + 1, idepth, cx, report) {
                if !report || cx.full() {
                    return false;
                }
                ok = false;
            }
        }
        if !n.any_of.is_empty() {
            let mut any = false;
            for s in &n.any_of {
                if self.eval(*s, v, loc, depth + 1, idepth, cx, false) {
                    any = true;
                    break;
                }
            }
            if !any {
                fail!("matches none of the {} schemas in anyOf", n.any_of.len());
            }
        }
        if !n.one_of.is_empty() {
            let mut matched = 0;
            for s in &n.one_of {
                if self.eval(*s, v, loc, depth + 1, idepth, cx, false) {
                    matched += 1;
                    if matched > 1 {
                        break;
                    }
                }
            }
            if matched == 0 {
                fail!("matches none of the {} schemas in oneOf", n.one_of.len());
            } else if matched > 1 {
                fail!("matches more than one schema in oneOf");
            }
        }
        if let Some(s) = n.not
            && self.eval(s, v, loc, depth + 1, idepth, cx, false)
        {
            fail!("matches a schema it must not match (not)");
        }
        ok
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_object(
        &self,
        n: &Node,
        o: &Map<String, Value>,
        loc: &mut String,
        depth: usize,
        idepth: usize,
        cx: &mut Cx,
        report: bool,
    ) -> bool {
        let mut ok = true;
        let len = o.len() as u64;
        let mut note = |cx: &mut Cx, loc: &str, msg: String| {
            ok = false;
            if report {
                cx.push(loc, msg);
            }
        };
        if let Some(m) = n.min_properties.filter(|m| len < *m) {
            note(cx, loc, format!("{len} properties, fewer than minProperties {m}"));
        }
        if let Some(m) = n.max_properties.filter(|m| len > *m) {
            note(cx, loc, format!("{len} properties, more than maxProperties {m}"));
        }
        for r in &n.required {
            if !o.contains_key(r) {
                // readOnly properties are required in responses only.
                let read_only = n
                    .properties
                    .iter()
                    .find(|(k, _)| k == r)
                    .is_some_and(|(_, id)| self.is_read_only(*id));
                if !read_only {
                    let mut at = loc.clone();
                    loc_push(&mut at, r);
                    note(cx, &at, "required property is missing".to_string());
                }
            }
        }
        if !ok && (!report || cx.full()) {
            return false;
        }
        for (key, value) in o {
            let mut schemas: Vec<NodeId> = Vec::new();
            if let Some((_, id)) = n.properties.iter().find(|(k, _)| k == key) {
                schemas.push(*id);
            }
            for (re, id) in &n.pattern_properties {
                if re.is_match(key) {
                    schemas.push(*id);
                }
            }
            if schemas.is_empty()
                && let Some(a) = n.additional
            {
                schemas.push(a);
            }
            let l = loc.len();
            loc_push(loc, key);
            for s in schemas {
                if !self.eval(s, value, loc, depth + 1, idepth + 1, cx, report) {
                    ok = false;
                    if !report || cx.full() {
                        loc.truncate(l);
                        return false;
                    }
                }
            }
            loc.truncate(l);
        }
        ok
    }

    fn is_read_only(&self, id: NodeId) -> bool {
        let mut id = id;
        for _ in 0..16 {
            let Some(n) = self.node(id) else { return false };
            if n.read_only {
                return true;
            }
            match n.reference {
                Some(r) => id = r,
                None => return false,
            }
        }
        false
    }
}

fn all_unique(a: &[Value], cx: &mut Cx) -> bool {
    // Quadratic, so charged to the step budget; arrays are bounded by the body size.
    for (i, x) in a.iter().enumerate() {
        for y in a.iter().skip(i + 1) {
            cx.steps += 1;
            if cx.steps > MAX_STEPS || json_eq(x, y) {
                return false;
            }
        }
    }
    true
}

fn is_multiple(x: &serde_json::Number, m: f64) -> bool {
    if m.fract() == 0.0 && m <= i64::MAX as f64 {
        let mi = m as i64;
        if let Some(i) = x.as_i64() {
            return mi != 0 && i % mi == 0;
        }
        if let Some(u) = x.as_u64() {
            return mi > 0 && u % (mi as u64) == 0;
        }
    }
    let Some(f) = x.as_f64() else { return false };
    let q = f / m;
    q.is_finite() && (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::DateTime => "date-time",
        Format::Date => "date",
        Format::Time => "time",
        Format::Email => "email",
        Format::Uuid => "uuid",
        Format::Ipv4 => "ipv4",
        Format::Ipv6 => "ipv6",
        Format::Hostname => "hostname",
        Format::Uri => "uri",
        Format::Int32 => "int32",
        Format::Int64 => "int64",
        Format::Byte => "byte (base64)",
    }
}

fn check_format(f: Format, s: &str) -> bool {
    match f {
        Format::DateTime => {
            let b = s.as_bytes();
            b.len() > 11
                && matches!(b.get(10), Some(b'T' | b't' | b' '))
                && s.get(..10).is_some_and(is_date)
                && s.get(11..).is_some_and(is_time)
        }
        Format::Date => is_date(s),
        Format::Time => is_time(s),
        Format::Email => is_email(s),
        Format::Uuid => {
            let b = s.as_bytes();
            b.len() == 36
                && b.iter().enumerate().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => *c == b'-',
                    _ => c.is_ascii_hexdigit(),
                })
        }
        Format::Ipv4 => s.parse::<std::net::Ipv4Addr>().is_ok(),
        Format::Ipv6 => s.parse::<std::net::Ipv6Addr>().is_ok(),
        Format::Hostname => is_hostname(s),
        Format::Uri => {
            let Some((scheme, rest)) = s.split_once(':') else {
                return false;
            };
            let mut sc = scheme.bytes();
            sc.next().is_some_and(|c| c.is_ascii_alphabetic())
                && sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
                && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        Format::Byte => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        // Numeric formats are range checks on numbers.
        Format::Int32 | Format::Int64 => true,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() != n || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// RFC 3339 `full-date`.
fn is_date(s: &str) -> bool {
    let (Some(y), Some(m), Some(d)) = (
        s.get(0..4).and_then(|x| digits(x, 4)),
        s.get(5..7).and_then(|x| digits(x, 2)),
        s.get(8..10).and_then(|x| digits(x, 2)),
    ) else {
        return false;
    };
    if s.len() != 10 || s.as_bytes().get(4) != Some(&b'-') || s.as_bytes().get(7) != Some(&b'-') {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 `full-time`: `HH:MM:SS[.frac](Z|±HH:MM)`.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(h), Some(m), Some(sec)) = (
        s.get(0..2).and_then(|x| digits(x, 2)),
        s.get(3..5).and_then(|x| digits(x, 2)),
        s.get(6..8).and_then(|x| digits(x, 2)),
    ) else {
        return false;
    };
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') || h > 23 || m > 59 || sec > 60 {
        return false;
    }
    let mut rest = s.get(8..).unwrap_or_default();
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    match rest {
        "Z" | "z" => true,
        off => {
            let ob = off.as_bytes();
            ob.len() == 6
                && matches!(ob.first(), Some(b'+' | b'-'))
                && ob.get(3) == Some(&b':')
                && off.get(1..3).and_then(|x| digits(x, 2)).is_some_and(|h| h <= 23)
                && off.get(4..6).and_then(|x| digits(x, 2)).is_some_and(|m| m <= 59)
        }
    }
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// A pragmatic `addr-spec`: a dot-atom local part and a hostname (or an IP literal).
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c) || !c.is_ascii();
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|p| !p.is_empty() && p.chars().all(atom))
        && (is_hostname(domain)
            || domain
                .strip_prefix('[')
                .and_then(|d| d.strip_suffix(']'))
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value, dialect: Dialect) -> (SchemaSet, NodeId) {
        let root = json!({ "s": schema });
        let mut c = Compiler::new(&root, dialect);
        let s = root.get("s").unwrap_or(&Value::Null);
        let id = c.compile(s, "/s").unwrap();
        (c.finish().unwrap(), id)
    }

    fn errors(schema: Value, value: Value) -> Vec<Violation> {
        let (set, id) = compile(schema, Dialect::V31);
        let mut cx = Cx::new();
        let ok = set.validate(id, &value, "body", &mut cx);
        assert_eq!(ok, cx.violations.is_empty(), "{:?}", cx.violations);
        cx.violations
    }

    fn passes(schema: Value, value: Value) {
        let v = errors(schema.clone(), value.clone());
        assert!(v.is_empty(), "{schema} should accept {value}: {v:?}");
    }

    fn fails(schema: Value, value: Value, needle: &str) {
        let v = errors(schema.clone(), value.clone());
        assert!(
            v.iter()
                .any(|x| x.message.contains(needle) || x.location.contains(needle)),
            "{schema} should refuse {value} with {needle:?}: {v:?}"
        );
    }

    #[test]
    fn types_nullable_and_type_arrays() {
        passes(json!({"type": "integer"}), json!(3));
        passes(json!({"type": "integer"}), json!(3.0));
        fails(
            json!({"type": "integer"}),
            json!(3.5),
            "expected integer, found number",
        );
        passes(json!({"type": "number"}), json!(3));
        fails(json!({"type": "string"}), json!(null), "found null");
        passes(json!({"type": ["string", "null"]}), json!(null));
        fails(json!({"type": "object"}), json!([]), "found array");
        fails(json!({"type": "boolean"}), json!("true"), "found string");
        let (set, id) = compile(json!({"type": "string", "nullable": true}), Dialect::V30);
        let mut cx = Cx::new();
        assert!(set.validate(id, &Value::Null, "b", &mut cx));
        assert!(!set.validate(id, &json!(1), "b", &mut cx));
        let bad = Compiler::new(&json!({}), Dialect::V31)
            .compile(&json!({"type": "int"}), "/x")
            .err();
        assert!(bad.is_some());
    }

    #[test]
    fn enum_and_const() {
        passes(json!({"enum": ["a", 1, null]}), json!(1.0));
        fails(json!({"enum": ["a", "b"]}), json!("c"), "not one of the 2");
        passes(json!({"const": {"a": [1]}}), json!({"a": [1.0]}));
        fails(json!({"const": "x"}), json!("y"), "constant");
    }

    #[test]
    fn string_keywords() {
        passes(json!({"minLength": 2, "maxLength": 3}), json!("été"));
        fails(json!({"maxLength": 2}), json!("été"), "above maxLength 2");
        fails(json!({"minLength": 4}), json!("été"), "below minLength 4");
        passes(json!({"pattern": "^[a-z]+$"}), json!("abc"));
        fails(
            json!({"pattern": "^[a-z]+$"}),
            json!("abC"),
            "does not match pattern",
        );
        // ECMA patterns are unanchored.
        passes(json!({"pattern": "b"}), json!("abc"));
        // Length keywords apply to strings only.
        passes(json!({"minLength": 4}), json!(1));
        let bad = Compiler::new(&json!({}), Dialect::V31)
            .compile(&json!({"pattern": "(?=a)"}), "/p")
            .err();
        assert!(bad.is_some_and(|e| e.message.contains("look-around")));
    }

    #[test]
    fn formats() {
        let ok = [
            ("date-time", "2026-02-28T23:59:60.123+01:00"),
            ("date-time", "2024-02-29t00:00:00z"),
            ("date", "2000-02-29"),
            ("time", "10:00:00Z"),
            ("email", "a.b+c@example.org"),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000"),
            ("ipv4", "192.0.2.1"),
            ("ipv6", "2001:db8::1"),
            ("hostname", "api.example.com"),
            ("uri", "https://example.com/x?y"),
            ("byte", "aGVsbG8="),
            ("binary", "anything"),
        ];
        for (f, s) in ok {
            passes(json!({"format": f}), json!(s));
        }
        let bad = [
            ("date-time", "2026-02-30T00:00:00Z"),
            ("date-time", "2026-01-01T24:00:00Z"),
            ("date-time", "2026-01-01T00:00:00"),
            ("date", "1900-02-29"),
            ("date", "2026-1-01"),
            ("time", "10:00:00+1:00"),
            ("email", "a@@b"),
            ("email", "no-at.example"),
            ("uuid", "123e4567e89b12d3a456426614174000"),
            ("ipv4", "256.0.0.1"),
            ("ipv4", "01.2.3.4"),
            ("ipv6", "2001:db8:::1"),
            ("hostname", "-bad.example"),
            ("uri", "no scheme"),
            ("byte", "not base64!"),
        ];
        for (f, s) in bad {
            fails(json!({"format": f}), json!(s), "not a valid");
        }
        fails(
            json!({"type": "integer", "format": "int32"}),
            json!(2147483648u64),
            "out of range",
        );
        passes(
            json!({"type": "integer", "format": "int32"}),
            json!(-2147483648i64),
        );
    }

    #[test]
    fn numeric_keywords() {
        passes(json!({"minimum": 1, "maximum": 3}), json!(3));
        fails(json!({"minimum": 1}), json!(0), "below the minimum");
        fails(json!({"maximum": 1}), json!(1.5), "above the maximum");
        fails(json!({"exclusiveMinimum": 1}), json!(1), "exclusive minimum");
        fails(json!({"exclusiveMaximum": 1}), json!(1), "exclusive maximum");
        passes(json!({"exclusiveMaximum": 1}), json!(0.99));
        // 3.0 boolean form.
        let (set, id) = compile(json!({"maximum": 5, "exclusiveMaximum": true}), Dialect::V30);
        let mut cx = Cx::new();
        assert!(!set.validate(id, &json!(5), "b", &mut cx));
        assert!(set.validate(id, &json!(4), "b", &mut Cx::new()));
        passes(json!({"multipleOf": 0.01}), json!(19.99));
        passes(json!({"multipleOf": 5}), json!(-15));
        fails(json!({"multipleOf": 5}), json!(7), "multiple of 5");
        fails(json!({"multipleOf": 0.5}), json!(0.3), "multiple of");
        assert!(
            Compiler::new(&json!({}), Dialect::V31)
                .compile(&json!({"multipleOf": 0}), "/m")
                .is_err()
        );
    }

    #[test]
    fn array_keywords() {
        let s = json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3});
        passes(s.clone(), json!([1, 2]));
        fails(s.clone(), json!([]), "fewer than minItems 1");
        fails(s.clone(), json!([1, 2, 3, 4]), "more than maxItems 3");
        let v = errors(s, json!([1, "x"]));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].location, "body/1");
        passes(json!({"uniqueItems": true}), json!([1, "1", [1]]));
        fails(
            json!({"uniqueItems": true}),
            json!([{"a": 1}, {"a": 1.0}]),
            "not unique",
        );
        let t = json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false});
        passes(t.clone(), json!(["a", 1]));
        fails(t.clone(), json!([1, 1]), "body/0");
        fails(t, json!(["a", 1, 2]), "no value is allowed");
    }

    #[test]
    fn object_keywords() {
        let s = json!({
            "type": "object",
            "required": ["name", "id"],
            "properties": {
                "id": {"type": "integer", "readOnly": true},
                "name": {"type": "string"},
                "a/b": {"type": "string"}
            },
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 3
        });
        passes(s.clone(), json!({"name": "rex"}));
        fails(s.clone(), json!({"id": 1}), "body/name");
        fails(s.clone(), json!({"name": "x", "extra": 1}), "body/extra");
        fails(s.clone(), json!({"name": 1, "a/b": 2}), "body/a~1b");
        fails(s.clone(), json!({}), "fewer than minProperties 1");
        fails(
            s,
            json!({"name": "", "a/b": "", "id": 1, "x": 1}),
            "more than maxProperties 3",
        );
        let m = json!({"additionalProperties": {"type": "integer"}, "patternProperties": {"^x-": {"type": "string"}}});
        passes(m.clone(), json!({"a": 1, "x-b": "s"}));
        fails(m.clone(), json!({"a": "s"}), "expected integer");
        fails(m, json!({"x-b": 1}), "expected string");
    }

    #[test]
    fn combinators() {
        let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        passes(any.clone(), json!(1));
        fails(any, json!(1.5), "none of the 2 schemas in anyOf");
        let one = json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
        passes(one.clone(), json!(1.5));
        fails(one, json!(1), "more than one");
        let all = json!({"allOf": [{"minimum": 1}, {"maximum": 2}]});
        passes(all.clone(), json!(2));
        fails(all, json!(3), "above the maximum");
        passes(json!({"not": {"type": "null"}}), json!(0));
        fails(json!({"not": {"type": "null"}}), json!(null), "(not)");
        passes(json!(true), json!({"x": 1}));
        fails(json!(false), json!(1), "no value");
    }

    #[test]
    fn refs_recursion_and_cycles() {
        let root = json!({
            "components": {"schemas": {
                "Node": {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}, "v": {"type": "integer"}}},
                "A": {"$ref": "#/components/schemas/B"},
                "B": {"$ref": "#/components/schemas/A"},
                "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}]}
            }}
        });
        let mut c = Compiler::new(&root, Dialect::V31);
        let node = c
            .compile(&json!({"$ref": "#/components/schemas/Node"}), "/x")
            .unwrap();
        let lp = c
            .compile(&json!({"$ref": "#/components/schemas/Loop"}), "/y")
            .unwrap();
        let set = c.finish().unwrap();
        let mut deep = json!({"v": 1});
        for _ in 0..10 {
            deep = json!({"child": deep});
        }
        assert!(set.validate(node, &deep, "body", &mut Cx::new()));
        let mut bad = json!({"v": "x"});
        for _ in 0..3 {
            bad = json!({"child": bad});
        }
        let mut cx = Cx::new();
        assert!(!set.validate(node, &bad, "body", &mut cx));
        assert_eq!(cx.violations[0].location, "body/child/child/child/v");
        // A schema that only refers to itself fails closed instead of overflowing the stack.
        let mut cx = Cx::new();
        assert!(!set.validate(lp, &json!(1), "body", &mut cx));
        assert!(cx.violations[0].message.contains("recursion"));

        let mut c = Compiler::new(&root, Dialect::V31);
        c.compile(&json!({"$ref": "#/components/schemas/A"}), "/z")
            .unwrap();
        assert!(c.finish().unwrap_err().message.contains("cycle"));
        let mut c = Compiler::new(&root, Dialect::V31);
        let e = c
            .compile(&json!({"$ref": "#/components/schemas/Nope"}), "/z")
            .unwrap_err();
        assert_eq!(e.pointer, "/z/$ref");
        let e = c.compile(&json!({"$ref": "other.yaml#/X"}), "/w").unwrap_err();
        assert!(e.message.contains("external"));
    }

    #[test]
    fn ref_siblings_by_dialect() {
        let root = json!({"S": {"type": "string"}});
        let s = json!({"$ref": "#/S", "maxLength": 1});
        for (d, ok) in [(Dialect::V30, true), (Dialect::V31, false)] {
            let mut c = Compiler::new(&root, d);
            let id = c.compile(&s, "/x").unwrap();
            let set = c.finish().unwrap();
            assert_eq!(set.validate(id, &json!("ab"), "b", &mut Cx::new()), ok);
        }
    }

    #[test]
    fn deep_instances_and_violation_cap() {
        let (set, id) = compile(json!({"items": {"$ref": "#/s"}}), Dialect::V31);
        let mut v = json!([]);
        for _ in 0..100 {
            v = json!([v]);
        }
        let mut cx = Cx::new();
        assert!(!set.validate(id, &v, "body", &mut cx));
        assert!(cx.violations[0].message.contains("nested deeper"));
        let (set, id) = compile(json!({"items": {"type": "string"}}), Dialect::V31);
        let mut cx = Cx::new();
        assert!(!set.validate(id, &json!(vec![1; 100]), "body", &mut cx));
        assert_eq!(cx.violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn exponential_combinators_hit_the_budget() {
        // 40 levels of anyOf whose branches both fail at the bottom: 2^40 evaluations unbounded.
        let mut defs = Map::new();
        defs.insert("s0".into(), json!({"type": "string"}));
        for i in 1..=40 {
            let prev = format!("#/d/s{}", i - 1);
            defs.insert(
                format!("s{i}"),
                json!({"anyOf": [{"$ref": prev}, {"$ref": prev}]}),
            );
        }
        let root = json!({ "d": defs });
        let mut c = Compiler::new(&root, Dialect::V31);
        let id = c.compile(&json!({"$ref": "#/d/s40"}), "/x").unwrap();
        let set = c.finish().unwrap();
        let mut cx = Cx::new();
        let started = std::time::Instant::now();
        assert!(!set.validate(id, &json!(1), "body", &mut cx));
        assert!(cx.steps <= MAX_STEPS + 1000);
        assert!(cx.violations.iter().any(|v| v.message == BUDGET));
        assert!(started.elapsed().as_secs() < 5);
    }
}
