//! The crate's one error type: every message names the template, constraint or file it is about.

use std::time::Duration;

/// Everything that can go wrong while loading policies or reviewing an object.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The ConstraintTemplate document itself is malformed (missing or mistyped field).
    #[error("ConstraintTemplate {template}: {message}")]
    InvalidTemplate { template: String, message: String },
    /// The template's Rego does not parse or compile; `message` is regorus' diagnostic with the
    /// line and column inside the named source (`<template>/rego` or `<template>/libs[i]`).
    #[error("ConstraintTemplate {template}: Rego error in {source_name}: {message}")]
    Rego {
        template: String,
        source_name: String,
        message: String,
    },
    /// The template has no Rego for the `admission.k8s.gatekeeper.sh` target (CEL-only).
    #[error("ConstraintTemplate {template}: {message}")]
    UnsupportedTemplate { template: String, message: String },
    /// The Constraint document is malformed or names a kind no template defines.
    #[error("constraint {constraint}: {message}")]
    InvalidConstraint { constraint: String, message: String },
    /// `spec.parameters` does not fit the template's openAPIV3Schema.
    #[error("constraint {constraint}: parameters do not match the template's schema: {message}")]
    ConstraintSchema { constraint: String, message: String },
    /// The object or AdmissionRequest under review is malformed.
    #[error("invalid review input: {0}")]
    InvalidRequest(String),
    /// An inventory object could not be placed in `data.inventory`.
    #[error("invalid inventory object: {0}")]
    InvalidInventory(String),
    /// Evaluation of one constraint exceeded the time budget.
    #[error(
        "constraint {constraint} (template {template}): evaluation exceeded its time budget of {budget:?}"
    )]
    Budget {
        template: String,
        constraint: String,
        budget: Duration,
    },
    /// Evaluation of one constraint stopped at the process's memory limit ([`crate::set_memory_limit`]).
    #[error(
        "constraint {constraint} (template {template}): evaluation stopped at the memory limit ({usage} bytes in use, limit {limit})"
    )]
    Memory {
        template: String,
        constraint: String,
        usage: u64,
        limit: u64,
    },
    /// Evaluation of one constraint failed at run time (for example conflicting rule values).
    #[error("constraint {constraint} (template {template}): evaluation error: {message}")]
    Evaluation {
        template: String,
        constraint: String,
        message: String,
    },
    /// A suite file is malformed.
    #[error("{0}")]
    InvalidSuite(String),
}

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
