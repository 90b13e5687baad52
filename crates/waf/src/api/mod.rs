//! API protection (sans-I/O): an OpenAPI 3.0/3.1 document as a positive model of an API, and JWT
//! verification. Bytes and values in, verdicts out; it never opens files or sockets, and no request,
//! document or token makes it panic, recurse without bound or run without a step budget.
//!
//! ```
//! use palisade_waf::api::{ApiModel, ApiRequest, ApiVerdict};
//!
//! let model = ApiModel::from_document(
//!     br#"
//! openapi: 3.1.0
//! info: {title: pets, version: "1"}
//! paths:
//!   /pets/{id}:
//!     get:
//!       operationId: getPet
//!       parameters:
//!         - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
//! "#,
//!     "pets.yaml",
//! )?;
//! let ok = model.check(&ApiRequest::new("GET", "/pets/7"));
//! assert!(matches!(ok, ApiVerdict::Allowed(ref a) if a.operation.route_template() == "/pets/{id}"));
//! let bad = model.check(&ApiRequest::new("GET", "/pets/x"));
//! assert!(matches!(bad, ApiVerdict::Refused(ref r) if r.status == 400));
//! # Ok::<(), palisade_waf::WafError>(())
//! ```

mod check;
pub mod jwt;
mod openapi;
pub mod schema;

pub use jwt::{Claims, JwtRejection, JwtVerifier, JwtVerifierBuilder};
pub use openapi::{ApiModel, ApiOptions, MAX_DOCUMENT_BYTES, Operation};

/// One request as the API model sees it. The proxy fills it from the HTTP request it buffered.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    /// The raw request path, percent-encoded as received (a `?query` suffix is split off).
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: &'a str,
    /// Header names and values as received (names are compared case-insensitively).
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> ApiRequest<'a> {
    /// A request without query, headers or body; `path` may carry `?query`.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        ApiRequest {
            method,
            path,
            query,
            ..ApiRequest::default()
        }
    }
}

/// One reason to refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where: `path.id`, `query.limit`, `header.x-tenant`, `cookie.session`, `body`,
    /// `body/items/0/name` (a JSON pointer under `body`).
    pub location: String,
    pub message: String,
}

/// The model's decision on a request.
#[derive(Debug)]
pub enum ApiVerdict<'m> {
    Allowed(Allowed<'m>),
    Refused(Refusal<'m>),
}

impl ApiVerdict<'_> {
    pub fn is_allowed(&self) -> bool {
        matches!(self, ApiVerdict::Allowed(_))
    }

    /// The matched operation (also for refusals after the operation was found).
    pub fn operation(&self) -> Option<&Operation> {
        match self {
            ApiVerdict::Allowed(a) => Some(a.operation),
            ApiVerdict::Refused(r) => r.operation,
        }
    }
}

#[derive(Debug)]
pub struct Allowed<'m> {
    /// Route template, operation id and whether a JWT is required.
    pub operation: &'m Operation,
    /// A CORS preflight (`OPTIONS` naming `operation`'s method, with
    /// [`ApiOptions::allow_cors_preflight`]): browsers send no credentials on a preflight, so the
    /// proxy must not demand the operation's JWT for it.
    pub cors_preflight: bool,
}

#[derive(Debug)]
pub struct Refusal<'m> {
    /// 400 (parameters, body, malformed path), 404 (unknown path), 405 (unknown method for a known
    /// path), 413 (body larger than the model's limit), 415 (content type not declared).
    pub status: u16,
    /// For 405: the methods the path declares (for the `Allow` header).
    pub allow: Vec<&'static str>,
    /// The matched route template, when the path matched.
    pub route_template: Option<&'m str>,
    pub operation: Option<&'m Operation>,
    /// At most [`schema::MAX_VIOLATIONS`].
    pub violations: Vec<Violation>,
}

/// Percent-decodes bytes; `plus` turns `+` into a space (query strings and forms). Malformed
/// escapes stay as they are.
pub(crate) fn percent_decode(s: &[u8], plus: bool) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|c| hex(*c)),
                s.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if plus && c == b'+' { b' ' } else { c });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared<T: Send + Sync>() {}

    #[test]
    fn engines_are_shareable_across_threads() {
        shared::<ApiModel>();
        shared::<JwtVerifier>();
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b+c", false), b"a b+c");
        assert_eq!(percent_decode(b"a%20b+c", true), b"a b c");
        assert_eq!(percent_decode(b"%zz%4", true), b"%zz%4");
        assert_eq!(percent_decode(b"%C3%A9%", false), "é%".as_bytes());
    }
}
