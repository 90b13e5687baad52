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

/// A refusal before any route matched.
fn refuse<'m>(status: u16, location: &str, message: impl Into<String>) -> ApiVerdict<'m> {
    ApiVerdict::Refused(Refusal {
        status,
        allow: Vec::new(),
        route_template: None,
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
            return refuse(400, "path", "the path must start with '/'");
        };
        let mut segments: Vec<String> = Vec::new();
        for raw in rest.split('/') {
            let decoded = percent_decode(raw.as_bytes(), false);
            if decoded.contains(&b'/') || decoded.contains(&b'\\') {
                return refuse(400, "path", "encoded '/' or '\\' in a path segment");
            }
            let Ok(seg) = String::from_utf8(decoded) else {
                return refuse(400, "path", "path is not valid UTF-8 once decoded");
            };
            if seg == "." || seg == ".." {
                return refuse(400, "path", "dot segments ('.', '..') are not allowed");
            }
            segments.push(seg);
        }
        let Some((route, values)) = self.match_route(&segments) else {
            return refuse(404, "path", "no path of the API matches");
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
                    return ApiVerdict::Allowed(Allowed {
                        operation: target,
                        cors_preflight: true,
                    });
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
                    message: format!("method {} is not declared for this path", short(&method)),
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
            ApiVerdict::Allowed(Allowed {
                operation: op,
                cors_preflight: false,
            })
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

#[cfg(test)]
mod tests {
    use super::super::{ApiModel, ApiOptions, ApiRequest, ApiVerdict};

    const PETS_31: &[u8] = include_bytes!("../../tests/fixtures/api/petstore-3.1.yaml");
    const PETS_30: &[u8] = include_bytes!("../../tests/fixtures/api/petstore-3.0.json");

    fn pets() -> ApiModel {
        ApiModel::from_document(PETS_31, "petstore-3.1.yaml").unwrap()
    }

    /// (status, locations) of a refusal, or (200, []) when allowed.
    fn outcome(model: &ApiModel, req: &ApiRequest<'_>) -> (u16, Vec<String>) {
        match model.check(req) {
            ApiVerdict::Allowed(_) => (200, Vec::new()),
            ApiVerdict::Refused(r) => (r.status, r.violations.into_iter().map(|v| v.location).collect()),
        }
    }

    fn get(model: &ApiModel, path: &str) -> (u16, Vec<String>) {
        outcome(model, &ApiRequest::new("GET", path))
    }

    fn json_post<'a>(path: &'a str, body: &'a str) -> ApiRequest<'a> {
        ApiRequest {
            content_type: Some("application/json; charset=utf-8"),
            body: body.as_bytes(),
            ..ApiRequest::new("POST", path)
        }
    }

    #[test]
    fn routes_base_paths_and_specificity() {
        let m = pets();
        let ApiVerdict::Allowed(a) = m.check(&ApiRequest::new("GET", "/api/v1/pets/mine")) else {
            panic!("literal route refused");
        };
        assert_eq!(a.operation.route_template(), "/pets/mine");
        assert_eq!(a.operation.operation_id(), Some("myPets"));
        let ApiVerdict::Allowed(a) = m.check(&ApiRequest::new("GET", "/api/v2/pets/12")) else {
            panic!("templated route refused");
        };
        assert_eq!(a.operation.route_template(), "/pets/{petId}");
        assert!(a.operation.jwt_required());
        assert_eq!(a.operation.security_schemes(), ["bearerAuth"]);
        // deletePet also accepts an API key: a JWT is not strictly required.
        let v = m.check(&ApiRequest::new("DELETE", "/api/v1/pets/12"));
        assert!(v.is_allowed());
        assert_eq!(v.operation().map(|o| o.jwt_required()), Some(false));
        // Anonymous (security: []) operations.
        let v = m.check(&ApiRequest::new("GET", "/api/v1/pets"));
        assert_eq!(v.operation().map(|o| o.jwt_required()), Some(false));

        assert_eq!(get(&m, "/pets").0, 404, "outside the base path");
        assert_eq!(get(&m, "/api/v3/pets").0, 404);
        assert_eq!(get(&m, "/api/v1/cats").0, 404);
        assert_eq!(get(&m, "/api/v1/pets/1/extra").0, 404);
        assert_eq!(
            get(&m, "/api/v1/pets/").0,
            404,
            "an empty path parameter does not match"
        );
        match m.check(&ApiRequest::new("PATCH", "/api/v1/pets/1")) {
            ApiVerdict::Refused(r) => {
                assert_eq!(r.status, 405);
                assert_eq!(r.route_template, Some("/pets/{petId}"));
                assert_eq!(r.allow, ["GET", "DELETE", "HEAD"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            outcome(&m, &ApiRequest::new("HEAD", "/api/v1/pets/1")).0,
            200,
            "HEAD as GET"
        );
        assert_eq!(outcome(&m, &ApiRequest::new("get", "/api/v1/pets/1")).0, 200);
    }

    #[test]
    fn path_parameters_and_mixed_segments() {
        let m = pets();
        assert_eq!(get(&m, "/api/v1/pets/0"), (400, vec!["path.petId".to_string()]));
        assert_eq!(get(&m, "/api/v1/pets/abc"), (400, vec!["path.petId".to_string()]));
        assert_eq!(
            get(&m, "/api/v1/pets/%31%32").0,
            200,
            "percent-decoded before coercion"
        );
        let put = |path: &'static str| ApiRequest {
            content_type: Some("image/png"),
            body: b"\x89PNG",
            ..ApiRequest::new("PUT", path)
        };
        assert_eq!(outcome(&m, &put("/api/v1/pets/3/photo.png")).0, 200);
        assert_eq!(
            outcome(&m, &put("/api/v1/pets/3/photo.gif")),
            (400, vec!["path.ext".to_string()])
        );
        assert_eq!(outcome(&m, &put("/api/v1/pets/3/photo.")).0, 404);
        let mut text = put("/api/v1/pets/3/photo.png");
        text.content_type = Some("text/plain");
        assert_eq!(outcome(&m, &text).0, 415);
    }

    #[test]
    fn malformed_paths_are_refused() {
        let m = pets();
        for p in [
            "/api/v1/pets/..",
            "/api/v1/pets/%2e%2E",
            "/api/v1/pets/1%2F2",
            "/api/v1/./pets",
            "pets",
        ] {
            assert_eq!(get(&m, p).0, 400, "{p}");
        }
        assert_eq!(get(&m, "/api/v1/pets/%ff").0, 400, "not UTF-8");
    }

    #[test]
    fn query_parameters() {
        let m = pets();
        assert_eq!(get(&m, "/api/v1/pets?limit=10&sort=asc&tags=a&tags=b").0, 200);
        assert_eq!(
            get(&m, "/api/v1/pets?limit=0"),
            (400, vec!["query.limit".to_string()])
        );
        assert_eq!(get(&m, "/api/v1/pets?limit=ten").1, ["query.limit"]);
        assert_eq!(get(&m, "/api/v1/pets?limit=1.5").1, ["query.limit"]);
        assert_eq!(
            get(&m, "/api/v1/pets?limit=1&limit=2").1,
            ["query.limit"],
            "pollution"
        );
        assert_eq!(get(&m, "/api/v1/pets?sort=up").1, ["query.sort"]);
        assert_eq!(
            get(&m, "/api/v1/pets?tags=a&tags=abcdefghijkl").1,
            ["query.tags/1"]
        );
        assert_eq!(
            get(&m, "/api/v1/pets?unknown=1").0,
            200,
            "unknown parameters allowed by default"
        );
        let strict = ApiModel::from_document_with(
            PETS_31,
            "p",
            ApiOptions {
                reject_unknown_query_params: true,
                ..ApiOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            get(&strict, "/api/v1/pets?limit=2&unknown=1").1,
            ["query.unknown"]
        );

        assert_eq!(get(&m, "/api/v1/search").1, ["query.q"], "required");
        assert_eq!(
            get(&m, "/api/v1/search?q=caf%C3%A9+cr%C3%A8me").0,
            200,
            "decoded, + is a space"
        );
        assert_eq!(get(&m, "/api/v1/search?q=123456789012345678901").1, ["query.q"]);
        assert_eq!(get(&m, "/api/v1/search?q=x&ids=1,2,3&exact=true").0, 200);
        assert_eq!(get(&m, "/api/v1/search?q=x&ids=1,b").1, ["query.ids/1"]);
        assert_eq!(get(&m, "/api/v1/search?q=x&exact=yes").1, ["query.exact"]);
        assert_eq!(get(&m, "/api/v1/search?q=x&filter=%7B%22a%22%3A1%7D").0, 200);
        assert_eq!(
            get(&m, "/api/v1/search?q=x&filter=%7B%22a%22%3A%22s%22%7D").1,
            ["query.filter/a"]
        );
        assert_eq!(get(&m, "/api/v1/search?q=x&filter=nope").1, ["query.filter"]);
        assert_eq!(
            get(&m, "/api/v1/search?q=x&deep=anything").0,
            200,
            "deepObject: presence only"
        );
        assert!(m.warnings().iter().any(|w| w.contains("deepObject")));
        let many = format!("/api/v1/pets?{}", "a=1&".repeat(600));
        assert_eq!(get(&m, &many).1, ["query"]);
    }

    #[test]
    fn header_and_cookie_parameters() {
        let m = pets();
        let uuid = b"123e4567-e89b-12d3-a456-426614174000";
        let mut r = ApiRequest::new("GET", "/api/v1/pets");
        r.headers = vec![("x-request-id", &uuid[..])];
        assert_eq!(outcome(&m, &r).0, 200, "header names are case-insensitive");
        r.headers = vec![("X-Request-ID", b"nope")];
        assert_eq!(outcome(&m, &r).1, ["header.X-Request-Id"]);
        let mut r = ApiRequest::new("GET", "/api/v1/search?q=x");
        r.headers = vec![("Cookie", b"theme=dark; session=deadbeef")];
        assert_eq!(outcome(&m, &r).0, 200);
        r.headers = vec![("Cookie", b"session=DEADBEEF")];
        assert_eq!(outcome(&m, &r).1, ["cookie.session"]);
    }

    #[test]
    fn json_bodies() {
        let m = pets();
        let ok = r#"{"name": "Rex", "tag": null, "status": "sold", "birthday": "2020-02-29",
                     "owner": {"email": "a@example.org", "friend": {"email": "b@example.org"}},
                     "photoUrls": ["https://example.org/rex.png"]}"#;
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", ok)).0, 200);
        let (status, locs) = outcome(
            &m,
            &json_post(
                "/api/v1/pets",
                r#"{"name": "", "status": "lost", "extra": 1, "birthday": "2021-02-29",
                    "owner": {"friend": {"email": "nope"}}, "photoUrls": ["x:a", "x:a"]}"#,
            ),
        );
        assert_eq!(status, 400);
        for l in [
            "body/name",
            "body/status",
            "body/extra",
            "body/birthday",
            "body/owner/email",
            "body/owner/friend/email",
            "body/photoUrls",
        ] {
            assert!(locs.iter().any(|x| x == l), "{l} missing from {locs:?}");
        }
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", "{}")).1, ["body/name"]);
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", "[1]")).1, ["body"]);
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", "{\"name\": ")).1, ["body"]);
        assert_eq!(
            outcome(&m, &json_post("/api/v1/pets", "")).1,
            ["body"],
            "required body"
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", &deep)).0, 400);
        let mut wrong = json_post("/api/v1/pets", ok);
        wrong.content_type = Some("application/xml");
        assert_eq!(
            outcome(&m, &wrong),
            (415, vec!["header.content-type".to_string()])
        );
        wrong.content_type = None;
        assert_eq!(outcome(&m, &wrong).0, 415);
        wrong.headers = vec![("Content-Type", b"application/json")];
        assert_eq!(outcome(&m, &wrong).0, 200, "content type from the headers");
        let mut get_with_body = ApiRequest::new("GET", "/api/v1/pets");
        get_with_body.body = b"x";
        assert_eq!(outcome(&m, &get_with_body).1, ["body"]);
        let big = format!("{{\"name\": \"{}\"}}", "a".repeat(2 << 20));
        assert_eq!(outcome(&m, &json_post("/api/v1/pets", &big)).0, 413);
    }

    #[test]
    fn form_text_and_opaque_bodies() {
        let m = pets();
        let form = |body: &'static str| ApiRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            body: body.as_bytes(),
            ..ApiRequest::new("POST", "/api/v1/pets")
        };
        assert_eq!(
            outcome(&m, &form("name=Rex&status=sold&photoUrls=a:b&photoUrls=c:d")).0,
            200
        );
        assert_eq!(outcome(&m, &form("name=Rex&status=lost")).1, ["body/status"]);
        assert_eq!(outcome(&m, &form("status=sold")).1, ["body/name"]);
        assert_eq!(outcome(&m, &form("name=a&name=b")).1, ["body/name"]);
        let text = |ct: &'static str, body: &'static str| ApiRequest {
            content_type: Some(ct),
            body: body.as_bytes(),
            ..ApiRequest::new("POST", "/api/v1/notes")
        };
        assert_eq!(outcome(&m, &text("text/plain", "short")).0, 200);
        assert_eq!(outcome(&m, &text("text/plain", "far too long")).1, ["body"]);
        assert_eq!(
            outcome(&m, &text("multipart/form-data; boundary=x", "--x--")).0,
            200
        );
        assert!(m.warnings().iter().any(|w| w.contains("multipart/form-data")));
        assert_eq!(outcome(&m, &text("text/html", "<b>")).0, 415);
    }

    #[test]
    fn openapi_30_document() {
        let m = ApiModel::from_document(PETS_30, "petstore-3.0.json").unwrap();
        let post = |body: &'static str| json_post("/v3/store/orders", body);
        assert_eq!(
            outcome(&m, &post(r#"{"petId": 1, "quantity": 9, "note": null}"#)).0,
            200
        );
        assert_eq!(
            outcome(&m, &post(r#"{"petId": 1, "quantity": 10}"#)).1,
            ["body/quantity"]
        );
        assert_eq!(
            outcome(&m, &post(r#"{"petId": 1, "quantity": 1, "ref": "x"}"#)).1,
            ["body/ref"]
        );
        assert_eq!(
            outcome(
                &m,
                &post(r#"{"petId": 1, "quantity": 1, "shipDate": "2026-13-01T00:00:00Z"}"#)
            )
            .1,
            ["body/shipDate"]
        );
        assert_eq!(
            get(&m, "/v3/store/orders/123e4567-e89b-12d3-a456-426614174000").0,
            200
        );
        assert_eq!(get(&m, "/v3/store/orders/42").1, ["path.orderId"]);
        assert!(!m.operations().any(|o| o.jwt_required()));
    }

    #[test]
    fn cors_preflight_and_base_path_override() {
        let options = ApiOptions {
            allow_cors_preflight: true,
            base_paths: Some(vec!["/gw/pets-api/".to_string()]),
            ..ApiOptions::default()
        };
        let m = ApiModel::from_document_with(PETS_31, "p", options).unwrap();
        let mut r = ApiRequest::new("OPTIONS", "/gw/pets-api/pets/1");
        assert_eq!(outcome(&m, &r).0, 405);
        r.headers = vec![("Access-Control-Request-Method", b"DELETE")];
        match m.check(&r) {
            ApiVerdict::Allowed(a) => {
                assert!(a.cors_preflight);
                assert_eq!(a.operation.operation_id(), Some("deletePet"));
            }
            other => panic!("{other:?}"),
        }
        r.headers = vec![("Access-Control-Request-Method", b"PUT")];
        assert_eq!(outcome(&m, &r).0, 405);
        assert_eq!(get(&m, "/api/v1/pets/1").0, 404);
        assert_eq!(get(&m, "/gw/pets-api/pets/1").0, 200);
    }

    #[test]
    fn violations_are_capped() {
        let m = pets();
        let body = format!(
            "{{\"name\": \"x\", {}}}",
            (0..100)
                .map(|i| format!("\"k{i}\": 1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let (status, locs) = outcome(&m, &json_post("/api/v1/pets", &body));
        assert_eq!(status, 400);
        assert_eq!(locs.len(), super::super::schema::MAX_VIOLATIONS);
    }

    #[test]
    fn arbitrary_requests_never_panic() {
        // A deterministic stand-in for the fuzz target: pieces that reach every branch, shuffled.
        let m = pets();
        let pieces = [
            "/", "api", "v1", "v2", "pets", "mine", "photo.", "png", "search", "notes", "%", "%2", "%ff",
            "%2F", "..", "{", "}", "?", "&", "=", "+", ";", ",", "q", "ids", "limit", "tags", "filter",
            "deep", "1", "-1", "1e999", "true", "null", "\"", "[", "]", "{\"a\":", "é", "\u{0}", " ",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"];
        let types = [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "image/png",
            "",
            "a/",
        ];
        for _ in 0..3000 {
            let mut parts = [String::new(), String::new(), String::new()];
            for part in parts.iter_mut() {
                for _ in 0..(next() % 12) {
                    part.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                }
            }
            let [path, query, body] = parts;
            let req = ApiRequest {
                method: methods[(next() % methods.len() as u64) as usize],
                path: &path,
                query: &query,
                headers: vec![("Cookie", query.as_bytes()), ("x-request-id", body.as_bytes())],
                content_type: Some(types[(next() % types.len() as u64) as usize]),
                body: body.as_bytes(),
            };
            let _ = m.check(&req);
        }
    }
}
