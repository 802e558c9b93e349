//! Where the local ECR keeps images: blobs as content-addressed files (written to a temporary
//! file, fsynced, renamed: a crash never leaves half a blob under a digest) and everything that
//! refers to them in SQLite, changed in transactions (no manifest ever points at a missing blob).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::oci::ParsedManifest;
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
        "the previous part was {previous} bytes; every part but the last must be at least 5 MiB"
    )]
    PartTooSmall { previous: u64 },
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
    root: PathBuf,
    write: SqlitePool,
    read: SqlitePool,
    pub uploads: Uploads,
}

const MIGRATION: &str = include_str!("../migrations/0001_init.sql");
const SESSIONS_HOLDER_MIGRATION: &str = include_str!("../migrations/0002_session_holder.sql");

pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub use crate::sigv4::sha256_hex;

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Storage {
    pub async fn open(root: &Path, limits: UploadLimits) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
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
            root: root.to_owned(),
            write,
            read,
            uploads,
        })
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root.join("blobs/sha256").join(hex)
    }

    // ---- repositories ----

    fn repo_from(row: &sqlx::sqlite::SqliteRow) -> Result<Repository, sqlx::Error> {
        Ok(Repository {
            id: row.try_get("id")?,
            registry_id: row.try_get("registry_id")?,
            region: row.try_get("region")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            tag_mutability: row.try_get("tag_mutability")?,
        })
    }

    pub async fn create_repository(
        &self,
        registry_id: &str,
        region: &str,
        name: &str,
        tag_mutability: &str,
    ) -> Result<Repository, StorageError> {
        let r = sqlx::query(
            "INSERT INTO repositories (registry_id, region, name, created_at, tag_mutability) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(registry_id)
        .bind(region)
        .bind(name)
        .bind(now_epoch())
        .bind(tag_mutability)
        .execute(&self.write)
        .await;
        match r {
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(StorageError::RepositoryExists)
            }
            Err(e) => Err(e.into()),
            Ok(_) => self
                .repository(registry_id, region, name)
                .await?
                .ok_or(StorageError::RepositoryNotFound),
        }
    }

    pub async fn repository(
        &self,
        registry_id: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<Repository>, StorageError> {
        let row = sqlx::query(
            "SELECT * FROM repositories WHERE registry_id = $1 AND region = $2 AND name = $3",
        )
        .bind(registry_id)
        .bind(region)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(Self::repo_from).transpose()?)
    }

    /// Repositories in name order after `after`, at most `limit`.
    pub async fn repositories(
        &self,
        registry_id: &str,
        region: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Repository>, StorageError> {
        let rows = sqlx::query(
            "SELECT * FROM repositories WHERE registry_id = $1 AND region = $2 AND name > $3 ORDER BY name LIMIT $4",
        )
        .bind(registry_id)
        .bind(region)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(Self::repo_from).collect::<Result<_, _>>()?)
    }

    pub async fn delete_repository(
        &self,
        repo: &Repository,
        force: bool,
    ) -> Result<i64, StorageError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let images: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests WHERE repo_id = $1")
            .bind(repo.id)
            .fetch_one(&mut *tx)
            .await?;
        if images > 0 && !force {
            return Err(StorageError::RepositoryNotEmpty);
        }
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(images)
    }

    // ---- blobs ----

    /// The blob's size when it is in this repository.
    pub async fn blob_in_repo(
        &self,
        repo_id: i64,
        digest: &str,
    ) -> Result<Option<i64>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest WHERE r.repo_id = $1 AND r.digest = $2",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Mounts a blob from another repository when a manifest there references it (as ECR does).
    pub async fn mount(
        &self,
        from: i64,
        to: i64,
        digest: &str,
    ) -> Result<Option<i64>, StorageError> {
        let referenced: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM manifest_refs WHERE repo_id = $1 AND ref_digest = $2 LIMIT 1",
        )
        .bind(from)
        .bind(digest)
        .fetch_optional(&self.write)
        .await?;
        if referenced.is_none() {
            return Ok(None);
        }
        let Some(size) = self.blob_in_repo(from, digest).await? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(to)
        .bind(digest)
        .execute(&self.write)
        .await?;
        Ok(Some(size))
    }

    // ---- uploads ----

    /// Verifies the digest, moves the bytes under it (fsync, rename, fsync directory) and records
    /// the blob as part of the repository. A mismatch discards the upload.
    pub async fn finish_upload(
        &self,
        repo_id: i64,
        id: &str,
        digest: &str,
    ) -> Result<u64, StorageError> {
        let done = self.uploads.finish(repo_id, id).await?;
        if done.digest != digest {
            let _ = tokio::fs::remove_file(&done.path).await;
            return Err(StorageError::DigestMismatch {
                computed: done.digest,
            });
        }
        let target = self.blob_path(digest);
        if tokio::fs::try_exists(&target).await? {
            tokio::fs::remove_file(&done.path).await?;
        } else {
            tokio::fs::rename(&done.path, &target).await?;
            if let Some(dir) = target.parent() {
                sync_dir(dir);
            }
        }
        self.record_blob(repo_id, digest, done.size as i64).await?;
        Ok(done.size)
    }

    async fn record_blob(&self, repo_id: i64, digest: &str, size: i64) -> Result<(), StorageError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(digest)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(repo_id)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- manifests and tags ----

    /// Stores a manifest under its digest and, when given, a tag, after checking that everything
    /// it references is in the repository. One transaction: all of it or none of it.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        body: &[u8],
        parsed: &ParsedManifest,
        tag: Option<&str>,
    ) -> Result<String, StorageError> {
        let digest = format!("sha256:{}", sha256_hex(body));
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let mut missing = Vec::new();
        for (blob, declared) in &parsed.blobs {
            let stored: Option<i64> = sqlx::query_scalar(
                "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest \
                 WHERE r.repo_id = $1 AND r.digest = $2",
            )
            .bind(repo.id)
            .bind(blob)
            .fetch_optional(&mut *tx)
            .await?;
            match stored {
                None => missing.push(blob.clone()),
                Some(size) if size != *declared => {
                    return Err(StorageError::SizeMismatch {
                        digest: blob.clone(),
                        declared: *declared,
                        stored: size,
                    });
                }
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            return Err(StorageError::BlobsMissing(missing));
        }
        let mut size = parsed.size;
        let mut missing = Vec::new();
        for child in &parsed.children {
            let child_size: Option<i64> = sqlx::query_scalar(
                "SELECT image_size FROM manifests WHERE repo_id = $1 AND digest = $2",
            )
            .bind(repo.id)
            .bind(child)
            .fetch_optional(&mut *tx)
            .await?;
            match child_size {
                Some(s) => size += s,
                None => missing.push(child.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(StorageError::ManifestsMissing(missing));
        }
        if let Some(tag) = tag
            && repo.tag_mutability == "IMMUTABLE"
        {
            let current: Option<String> =
                sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2")
                    .bind(repo.id)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
            if current.is_some_and(|d| d != digest) {
                return Err(StorageError::TagImmutable(tag.to_owned()));
            }
        }
        sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, subject, body, image_size, pushed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(repo.id)
        .bind(&digest)
        .bind(&parsed.media_type)
        .bind(&parsed.artifact_type)
        .bind(&parsed.subject)
        .bind(body)
        .bind(size)
        .bind(now_epoch())
        .execute(&mut *tx)
        .await?;
        for r in parsed.blobs.iter().map(|(d, _)| d).chain(&parsed.children) {
            sqlx::query(
                "INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(repo.id)
            .bind(&digest)
            .bind(r)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, tag, digest) VALUES ($1, $2, $3) ON CONFLICT (repo_id, tag) DO UPDATE SET digest = excluded.digest",
            )
            .bind(repo.id)
            .bind(tag)
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(digest)
    }

    /// Resolves a tag or digest to the stored manifest.
    pub async fn manifest(
        &self,
        repo_id: i64,
        reference: &str,
    ) -> Result<Option<StoredManifest>, StorageError> {
        let digest = if crate::oci::is_digest(reference) {
            reference.to_owned()
        } else {
            let d: Option<String> =
                sqlx::query_scalar("SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2")
                    .bind(repo_id)
                    .bind(reference)
                    .fetch_optional(&self.read)
                    .await?;
            match d {
                Some(d) => d,
                None => return Ok(None),
            }
        };
        let row = sqlx::query("SELECT * FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(&digest)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let tags: Vec<String> = sqlx::query_scalar(
            "SELECT tag FROM tags WHERE repo_id = $1 AND digest = $2 ORDER BY tag",
        )
        .bind(repo_id)
        .bind(&digest)
        .fetch_all(&self.read)
        .await?;
        Ok(Some(StoredManifest {
            digest,
            media_type: row.try_get("media_type")?,
            artifact_type: row.try_get("artifact_type")?,
            body: row.try_get("body")?,
            image_size: row.try_get("image_size")?,
            pushed_at: row.try_get("pushed_at")?,
            tags,
        }))
    }

    /// Every image of a repository (one entry per manifest, with its tags).
    pub async fn images(&self, repo_id: i64) -> Result<Vec<StoredManifest>, StorageError> {
        let digests: Vec<String> = sqlx::query_scalar(
            "SELECT digest FROM manifests WHERE repo_id = $1 ORDER BY pushed_at, digest",
        )
        .bind(repo_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(digests.len());
        for d in digests {
            if let Some(m) = self.manifest(repo_id, &d).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Deletes a tag (untagging) or, for a digest, the manifest and all its tags.
    pub async fn delete_manifest(
        &self,
        repo_id: i64,
        reference: &str,
    ) -> Result<bool, StorageError> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        let done = if crate::oci::is_digest(reference) {
            sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(reference)
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND tag = $2")
                .bind(repo_id)
                .bind(reference)
                .execute(&mut *tx)
                .await?
        };
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn tags(
        &self,
        repo_id: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT tag FROM tags WHERE repo_id = $1 AND tag > $2 ORDER BY tag LIMIT $3",
        )
        .bind(repo_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Manifests whose `subject` is `digest` (the referrers API).
    pub async fn referrers(
        &self,
        repo_id: i64,
        digest: &str,
    ) -> Result<Vec<StoredManifest>, StorageError> {
        let digests: Vec<String> = sqlx::query_scalar(
            "SELECT digest FROM manifests WHERE repo_id = $1 AND subject = $2 ORDER BY digest",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for d in digests {
            if let Some(m) = self.manifest(repo_id, &d).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    // ---- STS sessions ----

    pub async fn put_session(
        &self,
        access_key_id: &str,
        session: &Session,
    ) -> Result<(), StorageError> {
        let (kind, name) = match &session.holder {
            SessionHolder::Role(n) => ("role", n),
            SessionHolder::User(n) => ("user", n),
        };
        sqlx::query(
            "INSERT INTO sessions (access_key_id, token_hash, role_name, holder_kind, session_name, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(access_key_id)
        .bind(&session.token_hash)
        .bind(name)
        .bind(kind)
        .bind(&session.session_name)
        .bind(session.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The session an issued temporary key belongs to.
    pub async fn session(&self, access_key_id: &str) -> Result<Option<Session>, StorageError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE access_key_id = $1")
            .bind(access_key_id)
            .fetch_optional(&self.read)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let name: String = r.try_get("role_name")?;
        let kind: String = r.try_get("holder_kind")?;
        Ok(Some(Session {
            token_hash: r.try_get("token_hash")?,
            holder: match kind.as_str() {
                "user" => SessionHolder::User(name),
                _ => SessionHolder::Role(name),
            },
            session_name: r.try_get("session_name")?,
            expires_at: r.try_get("expires_at")?,
        }))
    }
}

/// Whose temporary credentials a session key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionHolder {
    /// AssumeRole / AssumeRoleWithWebIdentity: the role's name.
    Role(String),
    /// GetSessionToken: the IAM user's name.
    User(String),
}

/// Temporary credentials STS issued; the session token is kept only as its hash.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub holder: SessionHolder,
    pub session_name: String,
    pub expires_at: i64,
}
