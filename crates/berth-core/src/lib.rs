//! Berth's domain: integrations, subscriptions, projects, runtimes and the rules that make them
//! valid (names, AWS regions, role ARNs, runtime scope, which secrets an auth mode needs, whether a
//! role's trust policy lets a cluster's role assume it), Shippable resolution (`resolution`):
//! which hub entries of a build apply and what they record, and what a CI build's variables say
//! about the image it made (`provenance`: git facts, issue keys).
//!
//! This crate owns the vocabulary every other crate speaks. It must not touch I/O: no HTTP, no
//! SQL, no AWS SDK, no files, no clock beyond what callers pass in. Adapters (store, server,
//! broker) convert to and from these types at their edges.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

pub mod dockerfile;
mod error;
mod image_ref;
mod integration;
mod name;
pub mod provenance;
mod registry_host;
pub mod resolution;
pub mod shippable;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trust;
mod validate;

pub use error::{DomainError, FieldError};
pub use image_ref::{
    ImageRef, RefError, percent_decode, percent_encode, validate_digest, validate_repository,
    validate_tag,
};
pub use integration::{
    AUTH_MODES, AccessKeysInput, AuthInput, AwsAuth, EcrConfig, Integration, IntegrationConfig,
    IntegrationDraft, IntegrationInput, IntegrationPatch, IntegrationType, MasterType, Meta,
    RoleSource, RoleSourceInput, RuntimeScope, RuntimeScopeInput, SecretField, Secrets, key_hint,
    masked_key_id,
};
pub use name::{Name, ProjectName};
pub use registry_host::{EcrHost, normalize_host, parse_ecr_host, serves_host};
pub use validate::{
    DEFAULT_REGION, validate_access_key_id, validate_endpoint, validate_external_id,
    validate_filter_text, validate_region, validate_registry_id, validate_role_arn,
    validate_secret, validate_session_name,
};
