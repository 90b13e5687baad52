//! Container images taken apart without unpacking them: docker-archive tarballs, OCI image layouts
//! and OCI archives are read with verified digests, every layer is streamed once through whiteout
//! handling into a virtual filesystem with per-layer attribution, and catalogers turn package
//! databases and lockfiles into packages with purls. It never writes to disk and never trusts a size,
//! a path or a link it reads from an image: every bound is in [`Limits`].

pub mod audit;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod dirscan;
pub mod layers;
pub mod purl;
pub mod sbom;
pub mod scan;
pub mod secrets;
pub mod source;
pub mod suppress;
mod tarstream;
pub mod vulns;

pub use catalog::{Ecosystem, OsInfo, Package};
pub use config::{HistoryEntry, ImageConfig};
pub use layers::{EntryKind, FileRef, FileVisitor, Filesystem, FsEntry, LayerInfo, RemovedEntry, RemovedHow};
pub use scan::{ImageReport, LayerSummary, Warning, scan_directory, scan_directory_with, scan_image};
pub use source::{ImageSource, Platform, open_image};

/// Everything that can go wrong reading an image or a directory. Errors about the input name the
/// file, blob or layer and say what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "{0}: not a docker-archive (manifest.json), an OCI layout directory (oci-layout, index.json) or an OCI archive"
    )]
    UnknownFormat(String),
    #[error("{what}: invalid JSON: {message}")]
    Json { what: String, message: String },
    #[error("{what}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{what}: digest mismatch: expected {expected}, computed {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("blob {0} is not in the image")]
    MissingBlob(String),
    #[error("unsupported digest {0:?}: expected sha256:<64 hex digits>")]
    UnsupportedDigest(String),
    #[error("no image for platform {wanted}; the index has: {available}")]
    NoPlatform { wanted: String, available: String },
    #[error("invalid platform {0:?}: expected os/arch[/variant], for example linux/amd64")]
    BadPlatform(String),
    #[error("layer {layer}: unsafe path {path:?}: {reason}")]
    UnsafePath {
        layer: String,
        path: String,
        reason: &'static str,
    },
    #[error("layer {layer}: {what} limit of {limit} exceeded")]
    LimitExceeded {
        layer: String,
        what: &'static str,
        limit: u64,
    },
    #[error("layer {layer}: {message}")]
    Layer { layer: String, message: String },
    #[error("invalid image: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, ImageError>;

impl ImageError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// Bounds on everything read from an image or a directory. Exceeding one is an error naming the
/// limit, never a hang or an out-of-memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest, index or config JSON document.
    pub max_json_bytes: u64,
    /// Most layers in one image.
    pub max_layers: usize,
    /// Most tar entries over all layers of one image (or files in one directory scan).
    pub max_entries: u64,
    /// Most uncompressed bytes over all layers of one image.
    pub max_total_bytes: u64,
    /// Largest single file in a layer.
    pub max_file_bytes: u64,
    /// Largest ratio of uncompressed to compressed bytes of a layer, checked once
    /// `ratio_grace_bytes` have been decompressed.
    pub max_ratio: u64,
    pub ratio_grace_bytes: u64,
    /// Longest path (bytes) of a tar entry or link target.
    pub max_path_len: usize,
    /// Most links followed when resolving a path in the virtual filesystem.
    pub max_link_hops: usize,
    /// Largest file whose content is read into memory for visitors (catalogers, scanners); larger
    /// files are skipped with a warning.
    pub max_visit_bytes: u64,
    /// Nested archives (jars in wars): depth and size of each inner archive read into memory.
    pub max_nested_depth: usize,
    pub max_nested_bytes: u64,
    /// Most entries read from one zip archive.
    pub max_zip_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1 << 20;
        Limits {
            max_json_bytes: 8 * MIB,
            max_layers: 500,
            max_entries: 2_000_000,
            max_total_bytes: 64 * 1024 * MIB,
            max_file_bytes: 16 * 1024 * MIB,
            max_ratio: 200,
            ratio_grace_bytes: 64 * MIB,
            max_path_len: 4096,
            max_link_hops: 40,
            max_visit_bytes: 256 * MIB,
            max_nested_depth: 3,
            max_nested_bytes: 64 * MIB,
            max_zip_entries: 100_000,
        }
    }
}
