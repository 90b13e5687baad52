//! The shared model every palisade engine speaks: findings, severities, rule metadata, framework
//! references and exceptions. It does no I/O and depends on none of our crates, so every engine and
//! adapter can stand on it.

pub mod date;
pub mod exception;
pub mod finding;
pub mod glob;
pub mod rule;

pub use date::Date;
pub use exception::{Exception, ExceptionSet, ExceptionSource};
pub use finding::{Evidence, Finding, FindingStatus, ResourceRef, Severity, VulnerabilityRef};
pub use rule::{Category, Fixtures, Framework, FrameworkRef, RuleMeta};

/// Errors from parsing the model's own textual forms (severities, dates, exceptions).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("unknown severity {0:?}: expected one of critical, high, medium, low, info")]
    UnknownSeverity(String),
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    InvalidDate(String),
    #[error("invalid exception: {0}")]
    InvalidException(String),
}
