//! Palisade's vulnerability database: the OSV model, version schemes, matching a package against
//! advisories, CVSS scoring, and the local indexed store. Everything but [`store`] and
//! [`import`] is pure (strings and structs in, answers out); those two are the file adapters.

pub mod cvss;
pub mod import;
pub mod matcher;
pub mod osv;
pub mod store;
pub mod version;

pub use cvss::{CvssV3, severity_from_score};
pub use import::{ImportLimits, SkippedFile};
pub use matcher::{Lookup, PackageRef, Unevaluated, VulnMatch, match_advisory};
pub use osv::Advisory;
pub use store::{Database, ImportReport, Status, default_path, import, import_labelled};
pub use version::{Scheme, Version};

use std::path::PathBuf;

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    #[error("invalid {scheme} version {version:?}: {reason}")]
    InvalidVersion {
        scheme: &'static str,
        version: String,
        reason: String,
    },
    #[error("invalid CVSS vector {vector:?}: {reason}")]
    InvalidCvss { vector: String, reason: String },
    #[error("{file}: not a valid OSV record: {reason}")]
    InvalidOsv { file: String, reason: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    #[error(
        "{}: database schema version {found}, this palisade reads version {expected}: import the data again",
        path.display()
    )]
    SchemaMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: {message}", path.display())]
    Limit { path: PathBuf, message: String },
    #[error("{}: nothing to import: {message}", path.display())]
    NothingImported { path: PathBuf, message: String },
}

pub type Result<T, E = VulnDbError> = std::result::Result<T, E>;
