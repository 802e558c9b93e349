//! Blobs: which repository holds which, cross-repository mounts, and the finished upload that
//! becomes a blob under its digest.

use super::{Storage, StorageError};

impl Storage {
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

    /// Verifies the digest, hands the bytes to the blob store under it and records the blob as
    /// part of the repository. A mismatch discards the upload.
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
        self.blobs.keep(digest, &done.path, done.size).await?;
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
}
