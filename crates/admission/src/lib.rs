//! The admission webhook: AdmissionReview v1 over HTTPS, `/validate` and `/mutate`, with the
//! posture catalogue enforced, warned or audited per namespace. The decision logic (review,
//! catalogue, mutate, decide) is pure; `server` and `tls` are the adapter around it.

pub mod catalogue;
pub mod cluster;
pub mod cosign;
pub mod decide;
pub mod manifests;
pub mod metrics;
pub mod mutate;
pub mod review;
pub mod role_guard;
pub mod scan_gate;
pub mod server;

pub use decide::Webhook;
pub use server::{FailurePolicy, Server, ServerConfig};

/// Errors from starting or running the webhook.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] palisade_tls::TlsError),
    /// Listing objects from the Kubernetes API for `data.inventory`.
    #[error("cluster sync: {0}")]
    Cluster(String),
    /// A palisade.yaml that cannot be packaged for the cluster (`admission manifests --config`).
    #[error("configuration: {0}")]
    Config(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
