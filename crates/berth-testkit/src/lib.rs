//! Test support shared by every crate's tests, so each does not keep its own copy: one temp
//! directory type, one way to find a peer program with one policy for its absence (PostgreSQL
//! included), one local ECR fixture, Git repositories, a watch over the process list for
//! secrets, and the integration fixtures of `berth_core::testing`.
//!
//! Dev-only: it is a `[dev-dependencies]` entry of the crates that use it and never a
//! dependency of a shipped crate. It owns no product behaviour and must not grow any: helpers
//! that a test of one crate alone needs stay in that crate's `tests/common`.

#![forbid(unsafe_code)]

mod dir;
pub mod git;
mod local_ecr;
mod peer;
mod postgres;
mod processes;

pub use berth_core::testing as integration;
pub use dir::{TempDir, random_hex};
pub use local_ecr::{IamToml, Keys, LocalEcrFixture, random_keys};
pub use peer::{in_ci, peer, require, unavailable};
pub use postgres::{POSTGRES_URL_VAR, TempDb, postgres_url};
pub use processes::{ProcessWatch, Scan};
