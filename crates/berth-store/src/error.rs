use berth_core::{DomainError, FieldError};

use crate::SealError;

/// Why a store operation failed. `Database` and `Corrupt` carry internals for the logs; the
/// server shows clients only a generic message for them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} '{name}' already exists (names are compared case-insensitively)")]
    Duplicate { kind: &'static str, name: String },
    #[error("{field}: {kind} '{name}' does not exist")]
    UnknownReference {
        field: String,
        kind: &'static str,
        name: String,
    },
    #[error("{kind} '{name}' is still in use by {}", users.join(", "))]
    InUse {
        kind: &'static str,
        name: String,
        users: Vec<String>,
    },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("{0}")]
    KeyMismatch(String),
    #[error("the master key was rotated by another process; restart Berth so it loads the new key")]
    KeyRotated,
    #[error("database schema: {0}")]
    Migration(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<FieldError> for StoreError {
    fn from(e: FieldError) -> Self {
        StoreError::Domain(DomainError::Invalid(e))
    }
}

impl StoreError {
    pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
        e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
    }
}
