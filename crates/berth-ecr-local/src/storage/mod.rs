//! Where the local ECR keeps images: blobs as content-addressed files (written to a temporary
//! file, fsynced, renamed: a crash never leaves half a blob under a digest) and everything that
//! refers to them in SQLite, changed in transactions (no manifest ever points at a missing blob).
//!
//! One room per job: `repositories`, `blobs` (files and which repository holds them, including
//! the upload that becomes one), `manifests` (manifests, tags, referrers) and `sessions` (what STS
//! issued). Upload staging lives in `crate::uploads`.

mod blobs;
mod manifests;
mod repositories;
mod sessions;

pub use sessions::{Session, SessionHolder};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use crate::uploads::{UploadLimits, Uploads};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("repository not found")]
    RepositoryNotFound,
    #[error("repository already exists")]
    RepositoryExists,
    #[error("repository not empty")]
    RepositoryNotEmpty,
    #[error("blobs not found: {0:?}")]
    BlobsMissing(Vec<String>),
    #[error("the manifest declares {digest} as {declared} bytes, but it is {stored} bytes")]
    SizeMismatch {
        digest: String,
        declared: i64,
        stored: i64,
    },
    #[error("child manifests not found: {0:?}")]
    ManifestsMissing(Vec<String>),
    #[error("tag {0} is immutable")]
    TagImmutable(String),
    #[error("upload not found")]
    UploadNotFound,
    #[error("{limit} uploads are open for this principal already; finish or cancel some first")]
    TooManyUploads { limit: usize },
    #[error("the registry's disk is full (no space left under {dir}); the upload was discarded")]
    DiskFull { dir: String },
    #[error(
        "the previous part was {previous} bytes; every part but the last must be at least {min} bytes"
    )]
    PartTooSmall { previous: u64, min: u64 },
    #[error("upload offset {have}, request starts at {asked}")]
    OutOfOrder { have: u64, asked: u64 },
    #[error("digest mismatch: computed {computed}")]
    DigestMismatch { computed: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Clone)]
pub struct Repository {
    pub id: i64,
    pub registry_id: String,
    pub region: String,
    pub name: String,
    pub created_at: i64,
    pub tag_mutability: String,
}

#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub body: Vec<u8>,
    pub image_size: i64,
    pub pushed_at: i64,
    pub tags: Vec<String>,
}

pub struct Storage {
    write: SqlitePool,
    read: SqlitePool,
    pub uploads: Uploads,
    pub blobs: std::sync::Arc<dyn crate::blob_store::BlobStore>,
}

const MIGRATION: &str = include_str!("../../migrations/0001_init.sql");
const SESSIONS_HOLDER_MIGRATION: &str = include_str!("../../migrations/0002_session_holder.sql");

pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub use crate::sigv4::sha256_hex;

impl Storage {
    /// Opens the metadata in `root` and keeps blobs in `blobs` (by default files under `root`).
    pub async fn open(
        root: &Path,
        limits: UploadLimits,
        blobs: Option<std::sync::Arc<dyn crate::blob_store::BlobStore>>,
    ) -> Result<Storage, StorageError> {
        let blobs = match blobs {
            Some(b) => b,
            None => std::sync::Arc::new(crate::blob_store::FileBlobs::open(root)?),
        };
        let uploads = Uploads::open(root.join("uploads"), limits)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(root.join("registry.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'repositories'",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            sqlx::raw_sql(MIGRATION).execute(&mut *tx).await?;
        }
        // 0002: sessions of users (GetSessionToken) beside sessions of roles.
        let has_holder: Option<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_table_info('sessions') WHERE name = 'holder_kind'",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if has_holder.is_none() {
            sqlx::raw_sql(SESSIONS_HOLDER_MIGRATION)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Storage {
            write,
            read,
            uploads,
            blobs,
        })
    }
}
