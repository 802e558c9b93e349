//! Manifests and tags: put (every referenced blob and child present), get, list, delete, and
//! the referrers of a subject.

use sqlx::Row;

use super::{Repository, Storage, StorageError, StoredManifest, now_epoch, sha256_hex};
use crate::oci::ParsedManifest;

impl Storage {
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
}
