//! The REST API's wire types: the request and response bodies of every `/api/v1` endpoint, as
//! the server sends them and the CLI (and any other client) reads them, each with its OpenAPI
//! schema.
//!
//! This crate owns shapes only: serde and schema derives, no logic, no validation (that is
//! `berth-core`'s), no HTTP and no I/O. Field names here are a public contract that scripts
//! depend on: extend them, never rename them.

#![forbid(unsafe_code)]
// No function over 100 lines in `src/`: a longer one is doing two jobs.
#![deny(clippy::too_many_lines)]

mod ci;
mod credentials;
mod error;
mod gitops;
mod images;
mod integrations;
mod records;
mod reports;
mod users;

pub use ci::{
    AppliedEntry, BootImage, Dependencies, Dependency, Resolution, ResolveRequest, ResourceEnv,
    ResourcesRequest, SkippedEntry,
};
pub use credentials::{
    ConnectionTest, HostRequest, RegionOptions, RegistryCredentials, RepositoryEnsured,
    RepositoryRequest, TestStep,
};
pub use error::{ErrorBody, ErrorObject};
pub use gitops::{
    GitOpsDiff, GitOpsInput, GitOpsView, ImportNote, ImportReport, Reconciled, SyncList, SyncView,
};
pub use images::{
    DeliveryView, EventReceipt, EventSecret, ImageResourceInput, ImageResourceList,
    ImageResourceView, ImageVersionPage, ImageVersionView, PostedState, RecordedVersion,
    TriggerCreated, TriggerInput, TriggerList, TriggerView,
};
pub use integrations::{
    AccessKeysInput, AmbientWord, AuthInput, AuthView, IntegrationInput, IntegrationPage,
    IntegrationPatch, IntegrationView, KeyView, RoleSourceInput, RoleSourceView, RuntimeScopeInput,
    RuntimesView,
};
pub use records::{
    CreatedToken, EnvironmentList, EnvironmentView, Health, MetaView, NewEnvironment, NewProject,
    NewRuntime, NewSubscription, NewToken, ProjectList, ProjectView, ReleasedDependencies,
    RuntimeCertificate, RuntimeClusterRole, RuntimeList, RuntimeNamespace, RuntimeView,
    SubscriptionList, SubscriptionView, TokenList, TokenView,
};
pub use reports::{
    GitFacts, ImageDetail, ImageList, ImageReportInput, ImageReportView, ImageSummary, IssueView,
    VersionRef,
};
pub use users::{NewPassword, NewUser, UserList, UserView};
