//! The crate's one error type. Errors about rule files name the file, the line and the directive,
//! and carry a stable code so that tooling can match on them.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WafError {
    /// A directive could not be parsed or compiled.
    #[error("{file}:{line}: {directive}: {message} [{code}]")]
    Rule {
        file: String,
        line: usize,
        directive: String,
        /// Stable code, e.g. `waf.syntax`, `waf.regex`, `waf.unknown-variable`.
        code: &'static str,
        message: String,
    },
    /// The loader callback failed to provide an included file or a data file.
    #[error("{file}:{line}: cannot load {path}: {message} [waf.include]")]
    Load {
        file: String,
        line: usize,
        path: String,
        message: String,
    },
    /// A request or response exceeded a configured bound.
    #[error("{what} exceeds the limit of {limit} bytes [waf.limit]")]
    Limit { what: &'static str, limit: usize },
    /// An OpenAPI document could not be loaded; `pointer` is the JSON pointer of the offending node.
    #[error("{source_name}: {pointer}: {message} [waf.openapi]")]
    OpenApi {
        source_name: String,
        pointer: String,
        message: String,
    },
    /// A JWKS document (or the JWT verifier's configuration) is unusable.
    #[error("{source_name}: {pointer}: {message} [waf.jwks]")]
    Jwks {
        source_name: String,
        pointer: String,
        message: String,
    },
    /// The transaction was driven out of order (e.g. a request body after the response).
    #[error("transaction misuse: {0} [waf.state]")]
    State(&'static str),
}

pub type Result<T> = std::result::Result<T, WafError>;
