//! GitOps: integrations as Kubernetes resources in the shared configuration repository. This
//! crate renders an integration's files ([`resources`]: a ConfigMap and a SealedSecret per
//! target directory; [`desired`]: all of them, tagged with what they were made from), seals
//! secret values for a runtime's sealed-secrets controller ([`seal`]), in the exact format the
//! Bitnami controller decrypts, and lands changes in the repository as commits through the
//! system `git` ([`repo`]).
//!
//! This crate owns resource rendering, sealing and the repository. It must not touch HTTP, SQL
//! or AWS, and it only ever encrypts: no private key enters Berth.

#![forbid(unsafe_code)]

pub mod desired;
pub mod repo;
pub mod resources;
pub mod seal;
