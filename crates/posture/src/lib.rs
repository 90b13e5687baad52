//! Posture checks over Kubernetes objects: Pod Security Standards, hardening checks, RBAC,
//! NetworkPolicy microsegmentation and label/annotation/toleration policies. Sans-I/O: objects come
//! in as JSON values, findings go out; files, stdin and clusters belong to the adapters.
//!
//! Per-object checks run as each object is scanned, so documents can be streamed. Checks that need
//! several objects (RBAC paths, NetworkPolicy coverage, exposure through Services and Ingresses) keep
//! compact summaries and report in [`Scanner::finish`].

pub mod catalogue;
pub mod labels;
pub mod manifest;
pub mod netpol;
pub mod object;
pub mod pss;
pub mod rbac;
pub mod workload;

pub use object::{Object, Origin};
pub use pss::{PssLevel, PssSettings, PssVersion};

use palisade_core::Finding;
use serde_json::Value;
use std::collections::HashMap;

/// Errors from posture configuration (policy files, PSS level/version strings).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostureError {
    #[error("unknown Pod Security level {0:?}: expected privileged, baseline or restricted")]
    UnknownPssLevel(String),
    #[error("invalid Pod Security version {0:?}: expected v1.0 to v1.{max} or latest", max = pss::LATEST_MINOR)]
    InvalidPssVersion(String),
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
}

/// How a scan is configured.
#[derive(Debug, Clone, Default)]
pub struct ScanConfig {
    /// Level and version used for pods whose namespace does not set its own.
    pub pss: PssSettings,
    /// Required/forbidden labels, annotations, tolerations and node selectors.
    pub policy: labels::Policy,
}

/// Runs every posture check over a stream of objects.
pub struct Scanner {
    config: ScanConfig,
    /// PSS settings from `pod-security.kubernetes.io/enforce` labels on Namespace objects.
    namespace_pss: HashMap<String, PssSettings>,
    rbac: rbac::Collector,
    netpol: netpol::Collector,
    exposure: workload::ExposureCollector,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Scanner {
        Scanner {
            config,
            namespace_pss: HashMap::new(),
            rbac: rbac::Collector::default(),
            netpol: netpol::Collector::default(),
            exposure: workload::ExposureCollector::default(),
        }
    }

    /// Records the Pod Security labels of a Namespace object. Adapters call this for every Namespace
    /// before scanning (a pre-pass), so that order in the input does not matter.
    pub fn observe_namespace(&mut self, value: &Value) {
        let origin = Origin::default();
        let obj = Object::new(value, &origin);
        if obj.kind() != "Namespace" || obj.name().is_empty() {
            return;
        }
        if let Some(settings) = pss::settings_from_namespace(&obj, self.config.pss) {
            self.namespace_pss.insert(obj.name().to_string(), settings);
        }
    }

    /// The PSS settings that apply to pods in `namespace`.
    pub fn pss_for(&self, namespace: Option<&str>) -> PssSettings {
        namespace
            .and_then(|ns| self.namespace_pss.get(ns))
            .copied()
            .unwrap_or(self.config.pss)
    }

    /// Runs the per-object checks and records what the cross-object checks need.
    pub fn scan(&mut self, value: &Value, origin: &Origin) -> Vec<Finding> {
        let obj = Object::new(value, origin);
        let mut out = Vec::new();
        if obj.kind() == "Namespace" {
            self.observe_namespace(value);
        }
        let pss = self.pss_for(obj.namespace());
        pss::check(&obj, pss, &mut out);
        workload::check(&obj, &mut out);
        labels::check(&obj, &self.config.policy, &mut out);
        self.rbac.observe(&obj);
        self.netpol.observe(&obj);
        self.exposure.observe(&obj);
        out
    }

    /// Findings that need the whole input: RBAC, NetworkPolicy coverage, exposure paths.
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut out = Vec::new();
        self.rbac.finish(&mut out);
        self.netpol.finish(&mut out);
        self.exposure.finish(&mut out);
        out
    }

    pub fn rbac(&self) -> &rbac::Collector {
        &self.rbac
    }

    pub fn netpol(&self) -> &netpol::Collector {
        &self.netpol
    }
}
