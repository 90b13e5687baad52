//! Loading an OpenAPI 3.0/3.1 document (JSON or YAML) into an [`ApiModel`]: routes, operations,
//! parameters, request bodies and security requirements, with every schema compiled once. Errors
//! name the source and the JSON pointer of the offending node; the document itself is bounded.

use super::schema::{Compiler, NodeId, SchemaSet};
use crate::{Result, WafError};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Documents larger than this are refused before parsing.
pub const MAX_DOCUMENT_BYTES: usize = 8 << 20;
const MAX_DOCUMENT_DEPTH: usize = 100;
const MAX_OPERATIONS: usize = 10_000;
const MAX_BASE_PATHS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    V30,
    V31,
}

/// A problem at a place in the document; becomes [`WafError::OpenApi`] with the source name.
#[derive(Debug)]
pub(crate) struct DocError {
    pub(crate) pointer: String,
    pub(crate) message: String,
}

impl DocError {
    pub(crate) fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        DocError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    fn into_waf(self, source_name: &str) -> WafError {
        WafError::OpenApi {
            source_name: source_name.to_string(),
            pointer: self.pointer,
            message: self.message,
        }
    }
}

/// Appends `key` to a JSON pointer, escaping `~` and `/`.
pub(crate) fn pointer_push(pointer: &str, key: &str) -> String {
    let mut p = String::with_capacity(pointer.len() + key.len() + 1);
    p.push_str(pointer);
    p.push('/');
    for c in key.chars() {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
    p
}

/// Resolves a local `$ref` (`#/components/...`) to its target and the target's JSON pointer.
pub(crate) fn resolve_ref<'d>(
    root: &'d Value,
    r: &str,
    at: &str,
) -> std::result::Result<(&'d Value, String), DocError> {
    let Some(fragment) = r.strip_prefix('#') else {
        return Err(DocError::new(
            at,
            format!("external $ref {r:?} is not supported (only #/... within the document)"),
        ));
    };
    let decoded = super::percent_decode(fragment.as_bytes(), false);
    let Ok(pointer) = String::from_utf8(decoded) else {
        return Err(DocError::new(
            at,
            format!("$ref {r:?} is not valid UTF-8 once decoded"),
        ));
    };
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(DocError::new(
            at,
            format!("$ref {r:?}: anchors are not supported, use a JSON pointer"),
        ));
    }
    match root.pointer(&pointer) {
        Some(v) => Ok((v, pointer)),
        None => Err(DocError::new(
            at,
            format!("$ref {r:?} points to nothing in the document"),
        )),
    }
}

/// Follows `$ref`s of non-schema objects (parameters, request bodies, path items, security schemes).
fn deref<'d>(
    root: &'d Value,
    v: &'d Value,
    pointer: &str,
) -> std::result::Result<(&'d Value, String), DocError> {
    let mut cur = (v, pointer.to_string());
    for _ in 0..32 {
        match cur.0.get("$ref") {
            Some(Value::String(r)) => cur = resolve_ref(root, r, &pointer_push(&cur.1, "$ref"))?,
            Some(_) => {
                return Err(DocError::new(
                    pointer_push(&cur.1, "$ref"),
                    "$ref must be a string",
                ));
            }
            None => return Ok(cur),
        }
    }
    Err(DocError::new(pointer, "$ref chain longer than 32 (a cycle?)"))
}

/// Options of the positive model that the document does not carry.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Refuse query parameters the operation does not declare (default: allow them).
    pub reject_unknown_query_params: bool,
    /// Bodies larger than this are refused with 413 (the proxy bounds its buffer as well).
    pub max_body_bytes: usize,
    /// Base paths the API is mounted at, replacing those of `servers[].url` (e.g. `["/api"]`).
    pub base_paths: Option<Vec<String>>,
    /// Allow CORS preflights (`OPTIONS` with `Access-Control-Request-Method` naming a declared
    /// operation of the path) without declaring `options` operations.
    pub allow_cors_preflight: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            reject_unknown_query_params: false,
            max_body_bytes: 1 << 20,
            base_paths: None,
            allow_cors_preflight: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamIn {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamIn {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            ParamIn::Path => "path",
            ParamIn::Query => "query",
            ParamIn::Header => "header",
            ParamIn::Cookie => "cookie",
        }
    }
}

/// How a parameter's string is turned into a value (the serialisation styles implemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamValue {
    /// `schema` with style form/simple (arrays split on `,`, or repeated when exploded).
    Delimited { separator: char, explode: bool },
    /// `content: application/json`: the value is JSON.
    Json,
    /// A style or shape that is not implemented: only presence is checked (listed as a warning).
    PresenceOnly,
}

#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) location: ParamIn,
    pub(crate) required: bool,
    pub(crate) schema: Option<NodeId>,
    pub(crate) value: ParamValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Form,
    Text,
    /// Content type enforced, body not parsed (multipart, XML, binary, ...).
    Opaque,
}

#[derive(Debug)]
pub(crate) struct MediaEntry {
    /// Lower-case `type/subtype`, either part possibly `*`.
    pub(crate) range: (String, String),
    pub(crate) schema: Option<NodeId>,
}

#[derive(Debug)]
pub(crate) struct RequestBody {
    pub(crate) required: bool,
    pub(crate) content: Vec<MediaEntry>,
}

/// One operation (method + path template) of the model.
#[derive(Debug)]
pub struct Operation {
    pub(crate) method: &'static str,
    pub(crate) route_template: String,
    pub(crate) operation_id: Option<String>,
    pub(crate) params: Vec<Param>,
    pub(crate) body: Option<RequestBody>,
    pub(crate) security_schemes: Vec<String>,
    pub(crate) jwt_required: bool,
}

impl Operation {
    /// Upper-case HTTP method, e.g. `GET`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The path template as written in the document, e.g. `/users/{id}` (without the base path).
    pub fn route_template(&self) -> &str {
        &self.route_template
    }

    pub fn operation_id(&self) -> Option<&str> {
        self.operation_id.as_deref()
    }

    /// True when every alternative security requirement includes an `http` `bearer` scheme:
    /// the request must carry a valid JWT (`Authorization: Bearer ...`).
    pub fn jwt_required(&self) -> bool {
        self.jwt_required
    }

    /// Names of the security schemes the operation's requirements mention (all alternatives).
    pub fn security_schemes(&self) -> &[String] {
        &self.security_schemes
    }
}

#[derive(Debug)]
pub(crate) enum Piece {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
pub(crate) enum Segment {
    Literal(String),
    Param(String),
    /// Literals and parameters in one segment, e.g. `{name}.{ext}`.
    Mixed(Vec<Piece>),
}

#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) template: String,
    pub(crate) segments: Vec<Segment>,
    pub(crate) operations: Vec<Operation>,
}

impl Route {
    /// Literal segments rank above mixed ones, which rank above parameters, left to right.
    pub(crate) fn rank(&self) -> impl Iterator<Item = u8> + '_ {
        self.segments.iter().map(|s| match s {
            Segment::Literal(_) => 2,
            Segment::Mixed(_) => 1,
            Segment::Param(_) => 0,
        })
    }
}

/// An OpenAPI document compiled into a positive model of the API. Immutable, `Send + Sync`.
#[derive(Debug)]
pub struct ApiModel {
    pub(crate) source_name: String,
    pub(crate) options: ApiOptions,
    /// Each base path as its segments (empty: mounted at `/`).
    pub(crate) base_paths: Vec<Vec<String>>,
    pub(crate) routes: Vec<Route>,
    pub(crate) schemas: SchemaSet,
    warnings: Vec<String>,
}

const METHODS: [(&str, &str); 8] = [
    ("get", "GET"),
    ("put", "PUT"),
    ("post", "POST"),
    ("delete", "DELETE"),
    ("options", "OPTIONS"),
    ("head", "HEAD"),
    ("patch", "PATCH"),
    ("trace", "TRACE"),
];

impl ApiModel {
    /// Compiles an OpenAPI 3.0.x or 3.1.x document (JSON or YAML) with default [`ApiOptions`].
    pub fn from_document(bytes: &[u8], source_name: &str) -> Result<ApiModel> {
        ApiModel::from_document_with(bytes, source_name, ApiOptions::default())
    }

    pub fn from_document_with(bytes: &[u8], source_name: &str, options: ApiOptions) -> Result<ApiModel> {
        let root = parse_document(bytes).map_err(|e| e.into_waf(source_name))?;
        let mut model = Loader::load(&root, options).map_err(|e| e.into_waf(source_name))?;
        model.source_name = source_name.to_string();
        Ok(model)
    }

    /// The options the model was loaded with.
    pub fn options(&self) -> &ApiOptions {
        &self.options
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Parts of the document that are accepted but not enforced (unsupported schema keywords,
    /// parameter styles, body media types): the proxy should log them at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// All operations, in document order.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.routes.iter().flat_map(|r| r.operations.iter())
    }
}

fn parse_document(bytes: &[u8]) -> std::result::Result<Value, DocError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocError::new(
            "",
            format!("document larger than {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let root = if first == Some(&b'{') {
        serde_json::from_slice::<Value>(bytes).map_err(|e| DocError::new("", format!("invalid JSON: {e}")))?
    } else {
        let y: serde_yaml_ng::Value =
            serde_yaml_ng::from_slice(bytes).map_err(|e| DocError::new("", format!("invalid YAML: {e}")))?;
        yaml_to_json(y, "", 0)?
    };
    if depth_exceeds(&root, MAX_DOCUMENT_DEPTH) {
        return Err(DocError::new(
            "",
            format!("document nested deeper than {MAX_DOCUMENT_DEPTH} levels"),
        ));
    }
    Ok(root)
}

fn depth_exceeds(v: &Value, limit: usize) -> bool {
    if limit == 0 {
        return true;
    }
    match v {
        Value::Array(a) => a.iter().any(|x| depth_exceeds(x, limit - 1)),
        Value::Object(o) => o.values().any(|x| depth_exceeds(x, limit - 1)),
        _ => false,
    }
}

fn yaml_to_json(
    y: serde_yaml_ng::Value,
    pointer: &str,
    depth: usize,
) -> std::result::Result<Value, DocError> {
    use serde_yaml_ng::Value as Y;
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(DocError::new(
            pointer,
            format!("document nested deeper than {MAX_DOCUMENT_DEPTH} levels"),
        ));
    }
    Ok(match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => return Err(DocError::new(pointer, "numbers must be finite")),
                }
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.push(yaml_to_json(
                    item,
                    &pointer_push(pointer, &i.to_string()),
                    depth + 1,
                )?);
            }
            Value::Array(out)
        }
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                // Response codes (`200:`) and similar keys are numbers in YAML.
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err(DocError::new(pointer, "mapping keys must be scalars")),
                };
                let p = pointer_push(pointer, &key);
                let value = yaml_to_json(v, &p, depth + 1)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value, pointer, depth + 1)?,
    })
}

/// A security scheme as far as the proxy cares.
struct Scheme {
    bearer: bool,
}

struct Loader<'d> {
    root: &'d Value,
    compiler: Compiler<'d>,
    schemes: HashMap<String, Scheme>,
    warnings: Vec<String>,
}

fn as_object<'v>(v: &'v Value, pointer: &str) -> std::result::Result<&'v Map<String, Value>, DocError> {
    v.as_object()
        .ok_or_else(|| DocError::new(pointer, "expected an object"))
}

impl<'d> Loader<'d> {
    fn load(root: &'d Value, options: ApiOptions) -> std::result::Result<ApiModel, DocError> {
        let doc = as_object(root, "")?;
        if doc.contains_key("swagger") {
            return Err(DocError::new(
                "/swagger",
                "Swagger 2.0 is not supported: convert it to OpenAPI 3",
            ));
        }
        let dialect = match doc.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0.") || v == "3.0" => Dialect::V30,
            Some(v) if v.starts_with("3.1.") || v == "3.1" => Dialect::V31,
            Some(v) => {
                return Err(DocError::new(
                    "/openapi",
                    format!("OpenAPI version {v:?} is not supported (3.0.x or 3.1.x)"),
                ));
            }
            None => {
                return Err(DocError::new(
                    "/openapi",
                    "missing `openapi` version (3.0.x or 3.1.x)",
                ));
            }
        };
        let mut l = Loader {
            root,
            compiler: Compiler::new(root, dialect),
            schemes: HashMap::new(),
            warnings: Vec::new(),
        };
        l.load_schemes()?;
        let global_security = match doc.get("security") {
            Some(s) => Some(l.security(s, "/security")?),
            None => None,
        };
        let base_paths = match &options.base_paths {
            Some(list) => list.iter().map(|b| split_base(b)).collect(),
            None => l.server_bases(doc.get("servers"), "/servers")?,
        };
        let mut routes: Vec<Route> = Vec::new();
        let mut shapes: HashMap<String, String> = HashMap::new();
        let mut operation_count = 0;
        if let Some(paths) = doc.get("paths") {
            for (template, item) in as_object(paths, "/paths")? {
                let pointer = pointer_push("/paths", template);
                let segments = parse_template(template, &pointer)?;
                let shape = shape_of(&segments);
                if let Some(other) = shapes.insert(shape, template.clone()) {
                    return Err(DocError::new(
                        &pointer,
                        format!("path template matches the same requests as {other:?}"),
                    ));
                }
                let (item, item_pointer) = deref(root, item, &pointer)?;
                let item_obj = as_object(item, &item_pointer)?;
                if item_obj.contains_key("servers") {
                    l.warnings
                        .push(format!("{item_pointer}/servers: path-level servers are ignored"));
                }
                let shared = match item_obj.get("parameters") {
                    Some(p) => l.params(p, &pointer_push(&item_pointer, "parameters"))?,
                    None => Vec::new(),
                };
                let mut operations = Vec::new();
                for (key, method) in METHODS {
                    let Some(op) = item_obj.get(key) else { continue };
                    operation_count += 1;
                    if operation_count > MAX_OPERATIONS {
                        return Err(DocError::new(
                            "/paths",
                            format!("more than {MAX_OPERATIONS} operations"),
                        ));
                    }
                    let op_pointer = pointer_push(&item_pointer, key);
                    operations.push(l.operation(
                        op,
                        &op_pointer,
                        method,
                        template,
                        &segments,
                        &shared,
                        global_security.as_ref(),
                    )?);
                }
                routes.push(Route {
                    template: template.clone(),
                    segments,
                    operations,
                });
            }
        }
        let mut warnings = l.warnings;
        warnings.append(&mut l.compiler.warnings);
        let schemas = l.compiler.finish()?;
        Ok(ApiModel {
            source_name: String::new(),
            options,
            base_paths,
            routes,
            schemas,
            warnings,
        })
        .map(|mut m| {
            m.warnings.dedup();
            m
        })
    }

    fn load_schemes(&mut self) -> std::result::Result<(), DocError> {
        let Some(schemes) = self.root.pointer("/components/securitySchemes") else {
            return Ok(());
        };
        for (name, s) in as_object(schemes, "/components/securitySchemes")? {
            let pointer = pointer_push("/components/securitySchemes", name);
            let (s, _) = deref(self.root, s, &pointer)?;
            let ty = s.get("type").and_then(Value::as_str);
            let scheme = s
                .get("scheme")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            self.schemes.insert(
                name.clone(),
                Scheme {
                    bearer: ty == Some("http") && scheme.as_deref() == Some("bearer"),
                },
            );
        }
        Ok(())
    }

    /// A security requirement list: alternatives, each a set of scheme names.
    fn security(&self, v: &Value, pointer: &str) -> std::result::Result<Vec<Vec<String>>, DocError> {
        let Value::Array(list) = v else {
            return Err(DocError::new(
                pointer,
                "expected an array of security requirements",
            ));
        };
        let mut out = Vec::new();
        for (i, req) in list.iter().enumerate() {
            let p = pointer_push(pointer, &i.to_string());
            let mut names = Vec::new();
            for name in as_object(req, &p)?.keys() {
                if !self.schemes.contains_key(name) {
                    return Err(DocError::new(
                        pointer_push(&p, name),
                        format!("security scheme {name:?} is not defined in components.securitySchemes"),
                    ));
                }
                names.push(name.clone());
            }
            out.push(names);
        }
        Ok(out)
    }

    fn server_bases(
        &mut self,
        servers: Option<&Value>,
        pointer: &str,
    ) -> std::result::Result<Vec<Vec<String>>, DocError> {
        let Some(Value::Array(list)) = servers else {
            return Ok(vec![Vec::new()]);
        };
        if list.is_empty() {
            return Ok(vec![Vec::new()]);
        }
        let mut bases: Vec<Vec<String>> = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let p = pointer_push(pointer, &i.to_string());
            let Some(url) = s.get("url").and_then(Value::as_str) else {
                return Err(DocError::new(pointer_push(&p, "url"), "a server needs a url"));
            };
            for expanded in expand_server_variables(url, s.get("variables")) {
                let path = server_path(&expanded);
                let segs = split_base(&path);
                if !bases.contains(&segs) {
                    bases.push(segs);
                }
                if bases.len() > MAX_BASE_PATHS {
                    return Err(DocError::new(
                        p,
                        format!("servers expand to more than {MAX_BASE_PATHS} base paths"),
                    ));
                }
            }
        }
        // Longest first, so that `/v1/admin` wins over `/v1`.
        bases.sort_by_key(|b| std::cmp::Reverse(b.len()));
        Ok(bases)
    }

    fn params(&mut self, v: &'d Value, pointer: &str) -> std::result::Result<Vec<Param>, DocError> {
        let Value::Array(list) = v else {
            return Err(DocError::new(pointer, "expected an array of parameters"));
        };
        let mut out: Vec<Param> = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let (p, pp) = deref(self.root, p, &pointer_push(pointer, &i.to_string()))?;
            let Some(param) = self.param(p, &pp)? else {
                continue;
            };
            if out
                .iter()
                .any(|o| o.name == param.name && o.location == param.location)
            {
                return Err(DocError::new(
                    pp,
                    format!("parameter {:?} is declared twice", param.name),
                ));
            }
            out.push(param);
        }
        Ok(out)
    }

    fn param(&mut self, p: &'d Value, pointer: &str) -> std::result::Result<Option<Param>, DocError> {
        let obj = as_object(p, pointer)?;
        let Some(name) = obj.get("name").and_then(Value::as_str) else {
            return Err(DocError::new(
                pointer_push(pointer, "name"),
                "a parameter needs a name",
            ));
        };
        let location = match obj.get("in").and_then(Value::as_str) {
            Some("path") => ParamIn::Path,
            Some("query") => ParamIn::Query,
            Some("header") => ParamIn::Header,
            Some("cookie") => ParamIn::Cookie,
            _ => {
                return Err(DocError::new(
                    pointer_push(pointer, "in"),
                    "`in` must be path, query, header or cookie",
                ));
            }
        };
        // OpenAPI: these header parameters "SHALL be ignored" (the request line covers them).
        if location == ParamIn::Header
            && ["accept", "content-type", "authorization"].contains(&name.to_ascii_lowercase().as_str())
        {
            return Ok(None);
        }
        let required = location == ParamIn::Path || obj.get("required") == Some(&Value::Bool(true));
        let style = obj
            .get("style")
            .and_then(Value::as_str)
            .unwrap_or(match location {
                ParamIn::Query | ParamIn::Cookie => "form",
                ParamIn::Path | ParamIn::Header => "simple",
            });
        let explode = obj
            .get("explode")
            .and_then(Value::as_bool)
            .unwrap_or(style == "form");
        let mut schema = None;
        let mut value = match style {
            "form" | "simple" => ParamValue::Delimited {
                separator: ',',
                explode,
            },
            "spaceDelimited" => ParamValue::Delimited {
                separator: ' ',
                explode,
            },
            "pipeDelimited" => ParamValue::Delimited {
                separator: '|',
                explode,
            },
            _ => ParamValue::PresenceOnly,
        };
        if let Some(s) = obj.get("schema") {
            schema = Some(self.compiler.compile(s, &pointer_push(pointer, "schema"))?);
        } else if let Some(Value::Object(content)) = obj.get("content") {
            let json = content.iter().find(|(k, _)| is_json(&media_range(k)));
            match json {
                Some((k, media)) => {
                    value = ParamValue::Json;
                    if let Some(s) = media.get("schema") {
                        let p = pointer_push(&pointer_push(&pointer_push(pointer, "content"), k), "schema");
                        schema = Some(self.compiler.compile(s, &p)?);
                    }
                }
                None => value = ParamValue::PresenceOnly,
            }
        }
        if let (Some(id), ParamValue::Delimited { .. }) = (schema, value)
            && self.compiler.set().coercion_types(id) == super::schema::T_OBJECT
        {
            value = ParamValue::PresenceOnly;
        }
        if value == ParamValue::PresenceOnly {
            self.warnings.push(format!(
                "{pointer}: parameter {name:?} (style {style}{}) is checked for presence only",
                if schema.is_some() { ", object" } else { "" }
            ));
        }
        Ok(Some(Param {
            name: name.to_string(),
            location,
            required,
            schema,
            value,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        op: &'d Value,
        pointer: &str,
        method: &'static str,
        template: &str,
        segments: &[Segment],
        shared: &[Param],
        global_security: Option<&Vec<Vec<String>>>,
    ) -> std::result::Result<Operation, DocError> {
        let obj = as_object(op, pointer)?;
        let mut params = match obj.get("parameters") {
            Some(p) => self.params(p, &pointer_push(pointer, "parameters"))?,
            None => Vec::new(),
        };
        for s in shared {
            if !params
                .iter()
                .any(|p| p.name == s.name && p.location == s.location)
            {
                params.push(Param {
                    name: s.name.clone(),
                    location: s.location,
                    required: s.required,
                    schema: s.schema,
                    value: s.value,
                });
            }
        }
        // Every template variable is a path parameter; undeclared ones are plain strings.
        let mut template_names: Vec<&str> = Vec::new();
        for seg in segments {
            let names: Vec<&str> = match seg {
                Segment::Param(n) => vec![n.as_str()],
                Segment::Mixed(pieces) => pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Param(n) => Some(n.as_str()),
                        Piece::Literal(_) => None,
                    })
                    .collect(),
                Segment::Literal(_) => Vec::new(),
            };
            for n in names {
                template_names.push(n);
                if !params.iter().any(|p| p.location == ParamIn::Path && p.name == n) {
                    self.warnings
                        .push(format!("{pointer}: path parameter {n:?} is not declared"));
                    params.push(Param {
                        name: n.to_string(),
                        location: ParamIn::Path,
                        required: true,
                        schema: None,
                        value: ParamValue::Delimited {
                            separator: ',',
                            explode: false,
                        },
                    });
                }
            }
        }
        // A declared path parameter the template lacks could never be present.
        params.retain(|p| {
            let stray = p.location == ParamIn::Path && !template_names.contains(&p.name.as_str());
            if stray {
                self.warnings.push(format!(
                    "{pointer}: path parameter {:?} is not in the template, ignored",
                    p.name
                ));
            }
            !stray
        });
        if obj.contains_key("servers") {
            self.warnings
                .push(format!("{pointer}/servers: operation-level servers are ignored"));
        }
        let body = match obj.get("requestBody") {
            Some(b) => Some(self.request_body(b, &pointer_push(pointer, "requestBody"))?),
            None => None,
        };
        let security = match obj.get("security") {
            Some(s) => Some(self.security(s, &pointer_push(pointer, "security"))?),
            None => global_security.cloned(),
        };
        let alternatives = security.unwrap_or_default();
        let jwt_required = !alternatives.is_empty()
            && alternatives
                .iter()
                .all(|alt| alt.iter().any(|n| self.schemes.get(n).is_some_and(|s| s.bearer)));
        let mut security_schemes: Vec<String> = Vec::new();
        for n in alternatives.into_iter().flatten() {
            if !security_schemes.contains(&n) {
                security_schemes.push(n);
            }
        }
        Ok(Operation {
            method,
            route_template: template.to_string(),
            operation_id: obj.get("operationId").and_then(Value::as_str).map(str::to_string),
            params,
            body,
            security_schemes,
            jwt_required,
        })
    }

    fn request_body(&mut self, b: &'d Value, pointer: &str) -> std::result::Result<RequestBody, DocError> {
        let (b, bp) = deref(self.root, b, pointer)?;
        let obj = as_object(b, &bp)?;
        let required = obj.get("required") == Some(&Value::Bool(true));
        let Some(content) = obj.get("content") else {
            return Err(DocError::new(
                pointer_push(&bp, "content"),
                "a request body needs `content`",
            ));
        };
        let content_pointer = pointer_push(&bp, "content");
        let mut entries = Vec::new();
        for (media, m) in as_object(content, &content_pointer)? {
            let mp = pointer_push(&content_pointer, media);
            let range = media_range(media);
            if range.0.is_empty() || range.1.is_empty() {
                return Err(DocError::new(
                    mp,
                    "expected a media type such as application/json",
                ));
            }
            let schema = match m.get("schema") {
                Some(s) => Some(self.compiler.compile(s, &pointer_push(&mp, "schema"))?),
                None => None,
            };
            if schema.is_some() && body_kind(&range) == BodyKind::Opaque {
                self.warnings.push(format!(
                    "{mp}: {media} bodies are not parsed: only the content type is checked"
                ));
            }
            entries.push(MediaEntry { range, schema });
        }
        Ok(RequestBody {
            required,
            content: entries,
        })
    }
}

/// `type/subtype` in lower case without parameters.
pub(crate) fn media_range(s: &str) -> (String, String) {
    let essence = s
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((t, st)) => (t.trim().to_string(), st.trim().to_string()),
        None => (essence, String::new()),
    }
}

pub(crate) fn is_json(range: &(String, String)) -> bool {
    range.0 == "application" && (range.1 == "json" || range.1.ends_with("+json"))
}

pub(crate) fn body_kind(range: &(String, String)) -> BodyKind {
    if is_json(range) {
        BodyKind::Json
    } else if range.0 == "application" && range.1 == "x-www-form-urlencoded" {
        BodyKind::Form
    } else if range.0 == "text" {
        BodyKind::Text
    } else {
        BodyKind::Opaque
    }
}

fn parse_template(template: &str, pointer: &str) -> std::result::Result<Vec<Segment>, DocError> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(DocError::new(pointer, "a path must start with '/'"));
    };
    let mut segments = Vec::new();
    for seg in rest.split('/') {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = seg.chars();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    if name.is_empty() || name.contains('{') {
                        return Err(DocError::new(pointer, "malformed path template variable"));
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    }
                    if matches!(pieces.last(), Some(Piece::Param(_))) {
                        return Err(DocError::new(
                            pointer,
                            "two template variables must be separated by a literal",
                        ));
                    }
                    pieces.push(Piece::Param(name));
                }
                '}' => return Err(DocError::new(pointer, "unbalanced '}' in path template")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        segments.push(match pieces.len() {
            0 => Segment::Literal(String::new()),
            1 => match pieces.pop() {
                Some(Piece::Literal(l)) => Segment::Literal(l),
                Some(Piece::Param(p)) => Segment::Param(p),
                None => Segment::Literal(String::new()),
            },
            _ => Segment::Mixed(pieces),
        });
    }
    Ok(segments)
}

/// The template with variable names erased: two templates with the same shape are ambiguous.
fn shape_of(segments: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segments {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(_) => s.push_str("{}"),
            Segment::Mixed(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Literal(l) => s.push_str(l),
                        Piece::Param(_) => s.push_str("{}"),
                    }
                }
            }
        }
    }
    s
}

fn split_base(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The path of a server URL: `https://h/v1` and `/v1` give `/v1`; `https://h` gives `/`.
fn server_path(url: &str) -> String {
    let after_scheme = match url.find("://") {
        Some(i) => {
            let rest = url.get(i + 3..).unwrap_or_default();
            match rest.find('/') {
                Some(j) => rest.get(j..).unwrap_or_default(),
                None => "",
            }
        }
        None => url,
    };
    let path = after_scheme.split(['?', '#']).next().unwrap_or_default();
    path.to_string()
}

/// Server URL variables: every `enum` value (bounded), otherwise the default.
fn expand_server_variables(url: &str, vars: Option<&Value>) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some(Value::Object(vars)) = vars else {
        return out;
    };
    for (name, v) in vars {
        let placeholder = format!("{{{name}}}");
        let values: Vec<String> = match v.get("enum") {
            Some(Value::Array(e)) if !e.is_empty() => {
                e.iter().filter_map(Value::as_str).map(str::to_string).collect()
            }
            _ => v
                .get("default")
                .and_then(Value::as_str)
                .map(str::to_string)
                .into_iter()
                .collect(),
        };
        let mut next = Vec::new();
        for u in &out {
            if !u.contains(&placeholder) {
                next.push(u.clone());
                continue;
            }
            for val in &values {
                if next.len() <= MAX_BASE_PATHS {
                    next.push(u.replace(&placeholder, val));
                }
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_error(doc: &str) -> (String, String) {
        match ApiModel::from_document(doc.as_bytes(), "api.yaml") {
            Err(WafError::OpenApi {
                source_name,
                pointer,
                message,
            }) => {
                assert_eq!(source_name, "api.yaml");
                (pointer, message)
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("document accepted:\n{doc}"),
        }
    }

    const HEAD: &str = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n";

    #[test]
    fn bad_documents_name_the_place() {
        assert_eq!(load_error("swagger: '2.0'\n").0, "/swagger");
        assert_eq!(load_error("openapi: 2.5.0\n").0, "/openapi");
        assert_eq!(load_error("info: {}\n").0, "/openapi");
        assert!(load_error("- a\n- b\n").1.contains("expected an object"));
        assert!(load_error("{\"openapi\": ").1.contains("invalid JSON"));
        assert!(load_error("a: [\n").1.contains("invalid YAML"));
        let cases = [
            ("paths: {users: {}}", "/paths/users", "start with '/'"),
            (
                "paths: {'/a/{id}': {get: {parameters: [{name: id, in: body}]}}}",
                "/paths/~1a~1{id}/get/parameters/0/in",
                "`in`",
            ),
            (
                "paths: {/a: {get: {parameters: [{name: q, in: query, schema: {pattern: '(?<=x)y'}}]}}}",
                "/paths/~1a/get/parameters/0/schema/pattern",
                "look-around",
            ),
            (
                "paths: {/a: {get: {parameters: [{$ref: 'other.yaml#/p'}]}}}",
                "/paths/~1a/get/parameters/0/$ref",
                "external",
            ),
            (
                "paths: {/a: {post: {requestBody: {content: {application/json: {schema: {$ref: '#/nope'}}}}}}}",
                "/paths/~1a/post/requestBody/content/application~1json/schema/$ref",
                "points to nothing",
            ),
            (
                "paths: {'/a/{x}': {}, '/a/{y}': {}}",
                "/paths/~1a~1{y}",
                "same requests",
            ),
            (
                "paths: {/a: {get: {security: [{jwt: []}]}}}",
                "/paths/~1a/get/security/0/jwt",
                "not defined",
            ),
            (
                "paths: {/a: {get: {parameters: [{name: q, in: query}, {name: q, in: query}]}}}",
                "/paths/~1a/get/parameters/1",
                "twice",
            ),
            (
                "paths: {/a: {parameters: [{$ref: '#/p'}]}}\np: {$ref: '#/p'}",
                "/paths/~1a/parameters/0",
                "cycle",
            ),
            (
                "paths: {/a: {post: {requestBody: {content: {application/json: {schema: {type: strin}}}}}}}",
                "/paths/~1a/post/requestBody/content/application~1json/schema/type",
                "unknown type",
            ),
        ];
        for (body, pointer, needle) in cases {
            let (p, m) = load_error(&format!("{HEAD}{body}\n"));
            assert_eq!(p, pointer, "{body}: {m}");
            assert!(m.contains(needle), "{body}: {m}");
        }
    }

    #[test]
    fn documents_are_bounded() {
        let big = format!("{HEAD}x: '{}'\n", "a".repeat(MAX_DOCUMENT_BYTES));
        assert!(load_error(&big).1.contains("larger than"));
        // A billion laughs: aliases that would expand to gigabytes.
        let mut laughs = format!("{HEAD}a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = (b'a' + i - 1) as char;
            let name = (b'a' + i) as char;
            laughs.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let started = std::time::Instant::now();
        let (_, m) = load_error(&laughs);
        assert!(m.contains("repetition limit"), "{m}");
        assert!(started.elapsed().as_secs() < 2);
        let deep = format!("{HEAD}x: {}{}\n", "[".repeat(120), "]".repeat(120));
        assert!(ApiModel::from_document(deep.as_bytes(), "deep.yaml").is_err());
        let deep_json = format!(
            "{{\"openapi\": \"3.1.0\", \"x\": {}{}}}",
            "[".repeat(110),
            "]".repeat(110)
        );
        assert!(load_error(&deep_json).1.contains("nested deeper"));
    }

    #[test]
    fn servers_and_templates() {
        let doc = format!(
            "{HEAD}servers: [{{url: 'https://h.example/'}}, {{url: '/api/{{v}}/x', variables: {{v: {{default: v9}}}}}}]\n\
             paths: {{/: {{get: {{}}}}, /a: {{get: {{}}}}}}\n"
        );
        let m = ApiModel::from_document(doc.as_bytes(), "s").unwrap();
        assert_eq!(
            m.base_paths,
            vec![vec!["api".to_string(), "v9".to_string(), "x".to_string()], vec![]]
        );
        assert!(m.check(&crate::api::ApiRequest::new("GET", "/")).is_allowed());
        assert!(
            m.check(&crate::api::ApiRequest::new("GET", "/api/v9/x"))
                .is_allowed()
        );
        assert!(
            m.check(&crate::api::ApiRequest::new("GET", "/api/v9/x/a"))
                .is_allowed()
        );
        assert!(
            load_error(&format!("{HEAD}paths: {{'/a/{{x}}{{y}}': {{}}}}\n"))
                .1
                .contains("separated")
        );
        assert!(
            load_error(&format!("{HEAD}paths: {{'/a/x}}': {{}}}}\n"))
                .1
                .contains("unbalanced")
        );
        let undeclared = format!("{HEAD}paths: {{'/u/{{id}}': {{get: {{}}}}}}\n");
        let m = ApiModel::from_document(undeclared.as_bytes(), "u").unwrap();
        assert!(m.warnings().iter().any(|w| w.contains("\"id\" is not declared")));
        assert!(
            m.check(&crate::api::ApiRequest::new("GET", "/u/anything"))
                .is_allowed()
        );
        let stray = format!(
            "{HEAD}paths: {{'/u': {{get: {{parameters: [{{name: id, in: path, required: true}}]}}}}}}\n"
        );
        let m = ApiModel::from_document(stray.as_bytes(), "u").unwrap();
        assert!(m.warnings().iter().any(|w| w.contains("not in the template")));
        assert!(m.check(&crate::api::ApiRequest::new("GET", "/u")).is_allowed());
        assert_eq!(server_path("https://h.example:8443/base/?x"), "/base/");
        assert_eq!(server_path("https://h.example"), "");
    }

    #[test]
    fn unsupported_keywords_are_listed() {
        let doc = format!(
            "{HEAD}paths: {{/a: {{post: {{requestBody: {{content: {{application/json: {{schema: {{unevaluatedProperties: false}}}}}}}}}}}}}}\n"
        );
        let m = ApiModel::from_document(doc.as_bytes(), "w").unwrap();
        assert!(
            m.warnings().iter().any(|w| w.contains("unevaluatedProperties")),
            "{:?}",
            m.warnings()
        );
    }
}
