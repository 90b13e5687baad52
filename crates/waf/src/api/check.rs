//! Checking one request against the model: route and method, parameters (decoded and coerced to
//! their schema types), content type and body. Pure and bounded; refusals say where and why.

use super::openapi::{
    ApiModel, BodyKind, Operation, Param, ParamIn, ParamValue, Piece, Route, Segment, body_kind, media_range,
};
use super::schema::{Cx, NodeId, T_ARRAY, T_BOOL, T_INTEGER, T_NULL, T_NUMBER, T_OBJECT, T_STRING};
use super::{Allowed, ApiRequest, ApiVerdict, Refusal, Violation, percent_decode};
use serde_json::{Map, Value};

/// Query strings, forms and cookie headers with more pairs than this are refused.
const MAX_PAIRS: usize = 512;

fn refuse<'m>(
    status: u16,
    route: Option<&'m Route>,
    location: &str,
    message: impl Into<String>,
) -> ApiVerdict<'m> {
    ApiVerdict::Refused(Refusal {
        status,
        allow: Vec::new(),
        route_template: route.map(|r| r.template.as_str()),
        operation: None,
        violations: vec![Violation {
            location: location.to_string(),
            message: message.into(),
        }],
    })
}

/// Splits `a=1&b=2` into decoded pairs (a key without `=` has an empty value).
fn parse_pairs(s: &[u8], sep: u8, plus: bool) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for part in s.split(|c| *c == sep) {
        let part = if sep == b';' { part.trim_ascii() } else { part };
        if part.is_empty() {
            continue;
        }
        if out.len() >= MAX_PAIRS {
            return None;
        }
        let (k, v) = match part.iter().position(|c| *c == b'=') {
            Some(i) => (
                part.get(..i).unwrap_or_default(),
                part.get(i + 1..).unwrap_or_default(),
            ),
            None => (part, &b""[..]),
        };
        out.push((percent_decode(k, plus), percent_decode(v, plus)));
    }
    Some(out)
}

impl ApiModel {
    /// Checks a request against the model. Never panics; bounded in time by the body size limit
    /// and the schema step budget.
    pub fn check<'m>(&'m self, req: &ApiRequest<'_>) -> ApiVerdict<'m> {
        let (raw_path, extra_query) = match req.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.path, None),
        };
        let query = if req.query.is_empty() {
            extra_query.unwrap_or_default()
        } else {
            req.query
        };
        let Some(rest) = raw_path.strip_prefix('/') else {
            return refuse(400, None, "path", "the path must start with '/'");
        };
        let mut segments: Vec<String> = Vec::new();
        for raw in rest.split('/') {
            let decoded = percent_decode(raw.as_bytes(), false);
            if decoded.contains(&b'/') || decoded.contains(&b'\\') {
                return refuse(400, None, "path", "encoded '/' or '\\' in a path segment");
            }
            let Ok(seg) = String::from_utf8(decoded) else {
                return refuse(400, None, "path", "path is not valid UTF-8 once decoded");
            };
            if seg == "." || seg == ".." {
                return refuse(400, None, "path", "dot segments ('.', '..') are not allowed");
            }
            segments.push(seg);
        }
        let Some((route, values)) = self.match_route(&segments) else {
            return refuse(404, None, "path", "no path of the API matches");
        };
        let method = req.method.to_ascii_uppercase();
        let find = |m: &str| route.operations.iter().find(|o| o.method() == m);
        let mut op = find(&method);
        if op.is_none() && method == "HEAD" {
            op = find("GET");
        }
        if op.is_none() && method == "OPTIONS" && self.options.allow_cors_preflight {
            let requested = header_values(req, "access-control-request-method");
            if let Some(m) = requested.first() {
                let m = String::from_utf8_lossy(m).trim().to_ascii_uppercase();
                if let Some(target) = find(&m) {
                    return ApiVerdict::Allowed(Allowed { operation: target });
                }
            }
        }
        let Some(op) = op else {
            let mut allow: Vec<&'static str> = route.operations.iter().map(|o| o.method()).collect();
            if allow.contains(&"GET") && !allow.contains(&"HEAD") {
                allow.push("HEAD");
            }
            return ApiVerdict::Refused(Refusal {
                status: 405,
                allow,
                route_template: Some(&route.template),
                operation: None,
                violations: vec![Violation {
                    location: "method".to_string(),
                    message: format!("method {method} is not declared for this path"),
                }],
            });
        };
        let refused = |status: u16, violations: Vec<Violation>| {
            ApiVerdict::Refused(Refusal {
                status,
                allow: Vec::new(),
                route_template: Some(&route.template),
                operation: Some(op),
                violations,
            })
        };
        let single = |location: &str, message: String| {
            vec![Violation {
                location: location.to_string(),
                message,
            }]
        };
        if req.body.len() > self.options.max_body_bytes {
            let msg = format!("body larger than {} bytes", self.options.max_body_bytes);
            return refused(413, single("body", msg));
        }
        let Some(pairs) = parse_pairs(query.as_bytes(), b'&', true) else {
            return refused(
                400,
                single("query", format!("more than {MAX_PAIRS} query parameters")),
            );
        };
        let mut cookies = Vec::new();
        for c in header_values(req, "cookie") {
            match parse_pairs(c, b';', false) {
                Some(mut p) if cookies.len() + p.len() <= MAX_PAIRS => cookies.append(&mut p),
                _ => {
                    return refused(
                        400,
                        single("header.cookie", format!("more than {MAX_PAIRS} cookies")),
                    );
                }
            }
        }
        let mut cx = Cx::new();
        for p in &op.params {
            if cx.full() {
                break;
            }
            let raw: Vec<Vec<u8>> = match p.location {
                ParamIn::Path => values
                    .iter()
                    .filter(|(n, _)| *n == p.name)
                    .map(|(_, v)| v.as_bytes().to_vec())
                    .collect(),
                ParamIn::Query => pairs
                    .iter()
                    .filter(|(k, _)| k == p.name.as_bytes())
                    .map(|(_, v)| v.clone())
                    .collect(),
                ParamIn::Header => header_values(req, &p.name)
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
                ParamIn::Cookie => cookies
                    .iter()
                    .filter(|(k, _)| k == p.name.as_bytes())
                    .map(|(_, v)| v.clone())
                    .collect(),
            };
            self.check_param(p, raw, &mut cx);
        }
        if self.options.reject_unknown_query_params {
            for (k, _) in &pairs {
                if !op
                    .params
                    .iter()
                    .any(|p| p.location == ParamIn::Query && p.name.as_bytes() == k.as_slice())
                {
                    let name = String::from_utf8_lossy(k);
                    cx.push(&format!("query.{}", short(&name)), "parameter is not declared");
                }
            }
        }
        if let Some(status) = self.check_body(op, req, &mut cx) {
            return refused(status, cx.violations);
        }
        if cx.violations.is_empty() {
            ApiVerdict::Allowed(Allowed { operation: op })
        } else {
            refused(400, cx.violations)
        }
    }

    /// The best route for the decoded segments, with the path parameters' values.
    fn match_route(&self, segments: &[String]) -> Option<(&Route, Vec<(&str, String)>)> {
        let mut best: Option<(&Route, Vec<(&str, String)>)> = None;
        for base in &self.base_paths {
            let Some(rest) = strip_base(segments, base) else {
                continue;
            };
            let rest: &[String] = if rest.is_empty() { &[String::new()] } else { rest };
            for route in &self.routes {
                if route.segments.len() != rest.len() {
                    continue;
                }
                let Some(values) = match_segments(&route.segments, rest) else {
                    continue;
                };
                let better = match &best {
                    None => true,
                    Some((b, _)) => route.rank().cmp(b.rank()) == std::cmp::Ordering::Greater,
                };
                if better {
                    best = Some((route, values));
                }
            }
            if best.is_some() {
                // Bases are sorted longest first: the most specific mount wins.
                break;
            }
        }
        best
    }

    fn check_param(&self, p: &Param, raw: Vec<Vec<u8>>, cx: &mut Cx) {
        let loc = format!("{}.{}", p.location.prefix(), p.name);
        if raw.is_empty() {
            if p.required {
                cx.push(&loc, "required parameter is missing");
            }
            return;
        }
        let mut strings = Vec::with_capacity(raw.len());
        for r in raw {
            match String::from_utf8(r) {
                Ok(s) => strings.push(s),
                Err(_) => return cx.push(&loc, "not valid UTF-8"),
            }
        }
        let Some(schema) = p.schema else { return };
        let value = match p.value {
            ParamValue::PresenceOnly => return,
            ParamValue::Json => {
                if strings.len() > 1 {
                    return cx.push(&loc, "given more than once");
                }
                match serde_json::from_str::<Value>(strings.first().map(String::as_str).unwrap_or_default()) {
                    Ok(v) => v,
                    Err(_) => return cx.push(&loc, "not valid JSON"),
                }
            }
            ParamValue::Delimited { separator, explode } => {
                let types = self.schemas.coercion_types(schema);
                if types & T_ARRAY != 0 && types & !(T_ARRAY | T_NULL) == 0 {
                    let items = self.schemas.items_of(schema);
                    // Exploded query/cookie arrays repeat the name; otherwise one delimited value.
                    let parts: Vec<&str> =
                        if explode && matches!(p.location, ParamIn::Query | ParamIn::Cookie) {
                            strings.iter().map(String::as_str).collect()
                        } else {
                            if strings.len() > 1 && p.location != ParamIn::Header {
                                return cx.push(&loc, "given more than once");
                            }
                            strings.iter().flat_map(|s| s.split(separator)).collect()
                        };
                    Value::Array(parts.into_iter().map(|s| self.coerce(s, items)).collect())
                } else {
                    if strings.len() > 1 {
                        // Parameter pollution: the upstream may take the first or the last value.
                        return cx.push(&loc, "given more than once");
                    }
                    self.coerce(
                        strings.first().map(String::as_str).unwrap_or_default(),
                        Some(schema),
                    )
                }
            }
        };
        self.schemas.validate(schema, &value, &loc, cx);
    }

    /// A parameter or form string as the type its schema asks for (left a string when it does not
    /// parse, so that the type check reports it).
    fn coerce(&self, s: &str, schema: Option<NodeId>) -> Value {
        let types = schema.map_or(0, |id| self.schemas.coercion_types(id));
        if types & (T_INTEGER | T_NUMBER) != 0 {
            if let Ok(i) = s.parse::<i64>() {
                return Value::from(i);
            }
            if let Ok(u) = s.parse::<u64>() {
                return Value::from(u);
            }
            let numeric = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c));
            if let Some(n) = s
                .parse::<f64>()
                .ok()
                .filter(|_| numeric)
                .and_then(serde_json::Number::from_f64)
            {
                return Value::Number(n);
            }
        }
        if types & T_BOOL != 0 {
            match s {
                "true" => return Value::Bool(true),
                "false" => return Value::Bool(false),
                _ => {}
            }
        }
        if types & T_NULL != 0 && types & T_STRING == 0 && s == "null" {
            return Value::Null;
        }
        Value::String(s.to_string())
    }

    /// Content type and body. Returns a status for refusals that are not 400.
    fn check_body(&self, op: &Operation, req: &ApiRequest<'_>, cx: &mut Cx) -> Option<u16> {
        let Some(body) = &op.body else {
            if !req.body.is_empty() {
                cx.push("body", "the operation takes no request body");
            }
            return None;
        };
        if req.body.is_empty() {
            if body.required {
                cx.push("body", "request body is required");
            }
            return None;
        }
        let header_ct = header_values(req, "content-type");
        let ct = req
            .content_type
            .map(str::to_string)
            .or_else(|| header_ct.first().map(|v| String::from_utf8_lossy(v).into_owned()));
        let Some(ct) = ct else {
            cx.push(
                "header.content-type",
                "missing: a request body needs a content type",
            );
            return Some(415);
        };
        let range = media_range(&ct);
        // Exact type first, then `type/*`, then `*/*`.
        let entry = body
            .content
            .iter()
            .find(|e| e.range == range)
            .or_else(|| {
                body.content
                    .iter()
                    .find(|e| e.range.0 == range.0 && e.range.1 == "*")
            })
            .or_else(|| body.content.iter().find(|e| e.range.0 == "*" && e.range.1 == "*"));
        let Some(entry) = entry.filter(|_| !range.0.is_empty() && !range.1.is_empty()) else {
            let accepted: Vec<String> = body
                .content
                .iter()
                .map(|e| format!("{}/{}", e.range.0, e.range.1))
                .collect();
            cx.push(
                "header.content-type",
                format!(
                    "{}/{} is not accepted (expected {})",
                    short(&range.0),
                    short(&range.1),
                    accepted.join(", ")
                ),
            );
            return Some(415);
        };
        // Without a schema the content type was all there was to check.
        let schema = entry.schema?;
        let value = match body_kind(&range) {
            BodyKind::Json => match serde_json::from_slice::<Value>(req.body) {
                Ok(v) => v,
                Err(e) => {
                    cx.push(
                        "body",
                        format!("not valid JSON (line {}, column {})", e.line(), e.column()),
                    );
                    return None;
                }
            },
            BodyKind::Form => {
                let Some(pairs) = parse_pairs(req.body, b'&', true) else {
                    cx.push("body", format!("more than {MAX_PAIRS} form fields"));
                    return None;
                };
                let mut obj = Map::new();
                for (k, v) in pairs {
                    let (Ok(k), Ok(v)) = (String::from_utf8(k), String::from_utf8(v)) else {
                        cx.push("body", "form field is not valid UTF-8");
                        return None;
                    };
                    let prop = self.schemas.property_of(schema, &k);
                    let is_array = prop.is_some_and(|p| self.schemas.coercion_types(p) & T_ARRAY != 0);
                    if is_array {
                        let items = prop.and_then(|p| self.schemas.items_of(p));
                        let item = self.coerce(&v, items);
                        match obj.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
                            Value::Array(a) => a.push(item),
                            other => *other = Value::Array(vec![item]),
                        }
                    } else {
                        let value = match prop {
                            Some(p) if self.schemas.coercion_types(p) & T_OBJECT != 0 => Value::String(v),
                            _ => self.coerce(&v, prop),
                        };
                        if obj.insert(k.clone(), value).is_some() {
                            cx.push(&format!("body/{}", short(&k)), "form field given more than once");
                        }
                    }
                }
                Value::Object(obj)
            }
            BodyKind::Text => match std::str::from_utf8(req.body) {
                Ok(s) => Value::String(s.to_string()),
                Err(_) => {
                    cx.push("body", "text body is not valid UTF-8");
                    return None;
                }
            },
            BodyKind::Opaque => return None,
        };
        self.schemas.validate(schema, &value, "body", cx);
        None
    }
}

/// Shortens a name taken from the request before it goes into a message.
fn short(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

fn header_values<'a>(req: &ApiRequest<'a>, name: &str) -> Vec<&'a [u8]> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .collect()
}

fn strip_base<'s>(segments: &'s [String], base: &[String]) -> Option<&'s [String]> {
    if segments.len() < base.len() {
        return None;
    }
    let (head, rest) = segments.split_at(base.len());
    (head == base).then_some(rest)
}

fn match_segments<'r>(template: &'r [Segment], segments: &[String]) -> Option<Vec<(&'r str, String)>> {
    let mut values = Vec::new();
    for (t, s) in template.iter().zip(segments) {
        match t {
            Segment::Literal(l) => {
                if l != s {
                    return None;
                }
            }
            Segment::Param(name) => {
                if s.is_empty() {
                    return None;
                }
                values.push((name.as_str(), s.clone()));
            }
            Segment::Mixed(pieces) => match_mixed(pieces, s, &mut values)?,
        }
    }
    Some(values)
}

/// Matches `{name}.{ext}`-style segments: each variable takes the shortest non-empty text up to
/// the next literal; the last one takes the rest.
fn match_mixed<'r>(pieces: &'r [Piece], s: &str, values: &mut Vec<(&'r str, String)>) -> Option<()> {
    let mut rest = s;
    let mut iter = pieces.iter().peekable();
    while let Some(piece) = iter.next() {
        match piece {
            Piece::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
            Piece::Param(name) => {
                let end = match iter.peek() {
                    Some(Piece::Literal(next)) => {
                        let from = rest.char_indices().nth(1).map_or(rest.len(), |(i, _)| i);
                        from + rest.get(from..)?.find(next.as_str())?
                    }
                    _ => rest.len(),
                };
                let value = rest.get(..end)?;
                if value.is_empty() {
                    return None;
                }
                values.push((name.as_str(), value.to_string()));
                rest = rest.get(end..)?;
            }
        }
    }
    rest.is_empty().then_some(())
}
