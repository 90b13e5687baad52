//! A small client for the OCI distribution API: pull manifests and blobs with anonymous or
//! credentialed bearer tokens (the `WWW-Authenticate` challenge dance) or basic auth, credentials
//! from `~/.docker/config.json`, digests verified, every read bounded. Push exists for tests and
//! signatures. Blocking by design: scanners and the webhook's blocking pool call it.

mod client;
mod credentials;
mod reference;
#[doc(hidden)]
pub mod testing;

pub use client::{Client, ClientOptions, Manifest, MediaTypes};
pub use credentials::{Credential, DockerConfig};
pub use reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: authentication failed: {message}")]
    Auth { url: String, message: String },
    #[error("{what} larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid docker config {path}: {message}")]
    Config { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// `sha256:<hex>` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
