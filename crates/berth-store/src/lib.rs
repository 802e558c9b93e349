//! Storage for Berth's records: the [`Store`] trait, its SQLite backend (the embedded default:
//! one WAL-mode file in the data directory) and its PostgreSQL backend (several replicas sharing
//! one database), each with its own migrations, plus sealing of secrets at rest ([`seal`]).
//!
//! This crate owns every SQL statement and every ciphertext. It must not know about HTTP, the CLI
//! or AWS: callers hand it validated domain values from `berth-core` and get domain values back.
//! Secret values enter only as `SecretString`s to be sealed and leave only through
//! [`Store::open_secrets`] (the GitOps push password through [`GitOpsStore::gitops_settings`],
//! for the process that pushes; a trigger's signing secret through
//! [`ImageStore::claim_deliveries`], for the process that signs). Image resources, their
//! versions and triggers are [`images`]'s; CI's image reports are [`reports`]'s.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

pub mod accounts;
mod error;
pub mod gitops;
pub mod images;
mod migrate;
mod postgres;
pub mod reports;
mod rows;
pub mod seal;
mod sql;
mod sqlite;
mod statements;
pub mod token_cache;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::{
    DomainError, Integration, IntegrationDraft, IntegrationType, Meta, Name, ProjectName, Secrets,
};

pub use accounts::{
    Accounts, ConnectionTestRecord, IntegrationCount, Session, SessionOwner, User, UserRecord,
};
pub use error::StoreError;
pub use gitops::{
    GitOpsSettings, GitOpsSettingsInput, GitOpsStore, SyncRecord, SyncState, WrittenFile,
};
pub use images::{
    Attempt, Delivery, DeliveryState, DueDelivery, ImageResource, ImageStore, ImageVersion,
    Recorded, ResourceInput, Sighting, Trigger, VersionSource,
};
pub use postgres::PgStore;
pub use reports::{ImageReport, NewReport, ReportFilter, ReportStore};
pub use seal::{Keyring, MasterKey, SealError};
pub use sqlite::SqliteStore;
pub use token_cache::TokenCache;

/// Where the records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://PATH` or a bare path, SQLite.
    pub fn parse(value: &str) -> Location {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Location::Postgres(value.to_owned())
        } else {
            let path = value
                .strip_prefix("sqlite://")
                .or_else(|| value.strip_prefix("sqlite:"))
                .unwrap_or(value);
            Location::Sqlite(PathBuf::from(path))
        }
    }

    /// For logs and start-up banners: never prints a password that a URL may carry.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite {}", p.display()),
            Location::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
                let host = host.split('?').next().unwrap_or(host);
                format!("postgres {scheme}://{host}")
            }
        }
    }
}

/// Opens the store, applies pending migrations and checks that the master key fits the data.
pub async fn open(location: &Location, keyring: Keyring) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Sqlite(path) => Arc::new(SqliteStore::open(path, keyring).await?),
        Location::Postgres(url) => Arc::new(PgStore::open(url, keyring).await?),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub name: Name,
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub name: ProjectName,
    pub subscription: Name,
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    pub id: String,
    pub name: Name,
    pub sealing_cert: Option<String>,
    /// Where its GitOps resources are applied; `None` uses the repository's namespace.
    pub namespace: Option<String>,
    /// The IAM role its cluster assumes integration roles as.
    pub cluster_role_arn: Option<String>,
    pub meta: Meta,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub name: Name,
    pub subscription: Name,
    pub integrations: Vec<Name>,
    pub meta: Meta,
}

/// What a token may do: everything, or read what one subscription was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRole {
    Admin,
    Subscription(Name),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub role: TokenRole,
    pub description: String,
    pub created_at: time::OffsetDateTime,
    pub created_by: String,
}

/// A token as stored: its public id and the SHA-256 of its secret part.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub info: TokenInfo,
    pub secret_hash: Vec<u8>,
}

/// A filtered, paginated integrations listing. Results are ordered by case-folded name, which
/// is unique, so `after` (the last name key of the previous page) is a stable cursor.
#[derive(Debug, Clone, Default)]
pub struct IntegrationQuery {
    pub kind: Option<IntegrationType>,
    pub name_contains: Option<String>,
    pub subscription: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The name key to pass as `after` for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// A change computed from the current integration inside the write transaction, so concurrent
/// edits serialise instead of overwriting each other.
pub type IntegrationChange<'a> =
    Box<dyn FnOnce(&Integration) -> Result<IntegrationDraft, DomainError> + Send + 'a>;

#[async_trait]
pub trait Store: Accounts + GitOpsStore + ImageStore + ReportStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The cache of registry tokens shared by replicas, on backends that have one (PostgreSQL).
    fn token_cache(&self) -> Option<&dyn TokenCache>;

    /// A number that grows with every committed write (by any replica or admin command), for
    /// caches that must never serve data older than the last write they could have seen.
    async fn generation(&self) -> Result<i64, StoreError>;

    async fn create_integration(
        &self,
        draft: IntegrationDraft,
        actor: &str,
    ) -> Result<Integration, StoreError>;
    /// By name, case-insensitively.
    async fn get_integration(&self, name: &str) -> Result<Integration, StoreError>;
    async fn list_integrations(
        &self,
        query: &IntegrationQuery,
    ) -> Result<Page<Integration>, StoreError>;
    async fn update_integration(
        &self,
        name: &str,
        actor: &str,
        change: IntegrationChange<'_>,
    ) -> Result<Integration, StoreError>;
    async fn delete_integration(&self, name: &str) -> Result<(), StoreError>;
    /// Records, in one transaction, what a project's build uses (its hub entries, pipeline
    /// resources, custom CI image). They belong to the project: deleting it deletes them.
    /// Recording one again is a no-op; an integration deleted meanwhile fails the call.
    async fn record_project_dependencies(
        &self,
        project: &str,
        dependencies: &[berth_core::resolution::Dependency],
    ) -> Result<(), StoreError>;
    /// What uses the integration, as (kind, name), sorted: recorded dependencies, environments
    /// and the runtimes it is shared with.
    async fn dependencies(
        &self,
        integration_name: &str,
    ) -> Result<Vec<(berth_core::resolution::DependencyKind, String)>, StoreError>;
    /// Opens the integration's sealed secrets; for the credential broker only.
    async fn open_secrets(&self, integration_id: &str) -> Result<Secrets, StoreError>;

    async fn create_subscription(
        &self,
        name: &Name,
        actor: &str,
    ) -> Result<Subscription, StoreError>;
    async fn get_subscription(&self, name: &str) -> Result<Subscription, StoreError>;
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    async fn delete_subscription(&self, name: &str) -> Result<(), StoreError>;

    async fn create_project(
        &self,
        name: &ProjectName,
        subscription: &str,
        actor: &str,
    ) -> Result<Project, StoreError>;
    async fn get_project(&self, name: &str) -> Result<Project, StoreError>;
    async fn list_projects(&self, subscription: Option<&str>) -> Result<Vec<Project>, StoreError>;
    async fn delete_project(&self, name: &str) -> Result<(), StoreError>;
    /// Forgets what the project's builds recorded (its hub entries, pipeline resources and custom
    /// CI image), so an admin can release stale dependencies without deleting the project; the
    /// next build records again what it still uses. Returns how many were released.
    async fn release_project_dependencies(&self, name: &str) -> Result<u64, StoreError>;
    /// How many dependencies the project's builds have recorded.
    async fn project_dependency_count(&self, name: &str) -> Result<u64, StoreError>;

    /// Creates an environment using `integrations` (each assigned to `subscription`), and records
    /// it as their dependency, in one transaction.
    async fn create_environment(
        &self,
        name: &Name,
        subscription: &str,
        integrations: &[Name],
        actor: &str,
    ) -> Result<Environment, StoreError>;
    async fn list_environments(
        &self,
        subscription: Option<&str>,
    ) -> Result<Vec<Environment>, StoreError>;
    /// Deletes the environment and releases its integrations.
    async fn delete_environment(&self, name: &str) -> Result<(), StoreError>;

    async fn create_runtime(
        &self,
        name: &Name,
        sealing_cert: Option<&str>,
        actor: &str,
    ) -> Result<Runtime, StoreError>;
    async fn get_runtime(&self, name: &str) -> Result<Runtime, StoreError>;
    async fn list_runtimes(&self) -> Result<Vec<Runtime>, StoreError>;
    async fn delete_runtime(&self, name: &str) -> Result<(), StoreError>;

    async fn create_token(
        &self,
        id: &str,
        secret_hash: &[u8],
        role: &TokenRole,
        description: &str,
        actor: &str,
    ) -> Result<TokenInfo, StoreError>;
    async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    async fn delete_token(&self, id: &str) -> Result<(), StoreError>;
    /// Removes every admin token and stores the given one, in one transaction.
    async fn replace_admin_token(
        &self,
        id: &str,
        secret_hash: &[u8],
        actor: &str,
    ) -> Result<TokenInfo, StoreError>;
    /// Stores the first admin token unless one exists; returns whether it was stored. Replicas
    /// starting together race safely: at most one admin token can exist.
    async fn create_first_admin_token(
        &self,
        id: &str,
        secret_hash: &[u8],
        actor: &str,
    ) -> Result<bool, StoreError>;

    /// Re-seals every secret under `new_ring`'s primary key in one transaction. `new_ring` must
    /// also hold the keys the secrets are sealed under now. Returns how many were re-sealed.
    async fn reseal_all(&self, new_ring: &Keyring) -> Result<usize, StoreError>;
}
