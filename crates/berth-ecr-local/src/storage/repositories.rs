//! Repositories: create, look up, list, delete when empty.

use sqlx::Row;

use super::{Repository, Storage, StorageError, now_epoch};

impl Storage {
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
}
