//! Image reports: what a CI build said about an image it made, keyed by the digest Berth read
//! (the repository, the tag, the size, the platforms, the git facts as the API carries them and
//! the issue keys found in them). A report belongs to the project whose build sent it, so a
//! subscription sees its own projects' reports only; deleting the project deletes them.

use async_trait::async_trait;
use berth_core::ProjectName;
use time::OffsetDateTime;

use crate::StoreError;

/// A report to keep (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub project_id: &'a str,
    pub digest: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub media_type: &'a str,
    pub size: i64,
    pub platforms: &'a [String],
    pub created: Option<&'a str>,
    pub integration: &'a str,
    /// The git facts, as JSON.
    pub git: &'a str,
    pub commit: Option<&'a str>,
    /// Issue keys and their tracker URLs.
    pub issues: &'a [(String, Option<String>)],
    pub actor: &'a str,
}

/// A report as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    pub id: String,
    pub digest: String,
    pub repository: String,
    pub tag: Option<String>,
    pub media_type: String,
    pub size: i64,
    pub platforms: Vec<String>,
    pub created: Option<String>,
    pub project: ProjectName,
    pub integration: String,
    pub git: String,
    pub commit: Option<String>,
    pub issues: Vec<(String, Option<String>)>,
    pub reported_at: OffsetDateTime,
    pub reported_by: String,
}

/// Which reports to find; `subscription` confines them to its projects.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter<'a> {
    pub repository: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub issue: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub digest: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub limit: i64,
}

/// A resource version that is a given digest: project, resource, number, tag.
pub type VersionOfDigest = (ProjectName, String, i64, String);

#[async_trait]
pub trait ReportStore: Send + Sync {
    async fn add_report(&self, report: &NewReport<'_>) -> Result<ImageReport, StoreError>;
    /// Matching reports, newest first, at most `limit`.
    async fn find_reports(&self, filter: &ReportFilter<'_>)
    -> Result<Vec<ImageReport>, StoreError>;
    /// The resource versions that are `digest` (in `subscription`'s projects when given).
    async fn versions_of(
        &self,
        digest: &str,
        subscription: Option<&str>,
    ) -> Result<Vec<VersionOfDigest>, StoreError>;
}

pub(crate) fn read_report(row: &impl crate::rows::Columns) -> Result<ImageReport, StoreError> {
    let json = |column: &str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&row.text(column)?)
            .map_err(|e| StoreError::Corrupt(format!("report {column}: {e}")))
    };
    let platforms = serde_json::from_value(json("platforms")?)
        .map_err(|e| StoreError::Corrupt(format!("report platforms: {e}")))?;
    let issues = serde_json::from_value(json("issues")?)
        .map_err(|e| StoreError::Corrupt(format!("report issues: {e}")))?;
    Ok(ImageReport {
        id: row.text("id")?,
        digest: row.text("digest")?,
        repository: row.text("repository")?,
        tag: row.maybe_text("tag")?,
        media_type: row.text("media_type")?,
        size: row.int("size")?,
        platforms,
        created: row.maybe_text("created")?,
        project: ProjectName::parse("project", &row.text("project_name")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        integration: row.text("integration")?,
        git: row.text("git")?,
        commit: row.maybe_text("commit_sha")?,
        issues,
        reported_at: row.time("reported_at")?,
        reported_by: row.text("reported_by")?,
    })
}

/// Reports with their project's name, filtered; `$1`…`$7` are the filter's fields in order,
/// `$8` the limit. A `NULL` filter matches everything.
pub(crate) const FIND_REPORTS: &str = "SELECT r.*, p.name AS project_name FROM image_reports r \
     JOIN projects p ON p.id = r.project_id JOIN subscriptions s ON s.id = p.subscription_id \
     WHERE ($1 IS NULL OR r.repository = $1) AND ($2 IS NULL OR r.tag = $2) \
     AND ($3 IS NULL OR EXISTS (SELECT 1 FROM image_report_issues i WHERE i.report_id = r.id AND i.issue_key = $3)) \
     AND ($4 IS NULL OR r.commit_sha = $4) AND ($5 IS NULL OR r.digest = $5) \
     AND ($6 IS NULL OR s.name_key = $6) \
     ORDER BY r.reported_at DESC, r.id LIMIT $7";

pub(crate) const VERSIONS_OF: &str = "SELECT p.name AS project_name, res.name AS resource, \
     v.version_number, v.version_name FROM image_versions v \
     JOIN image_resources res ON res.id = v.resource_id JOIN projects p ON p.id = res.project_id \
     JOIN subscriptions s ON s.id = p.subscription_id \
     WHERE v.digest = $1 AND ($2 IS NULL OR s.name_key = $2) \
     ORDER BY p.name_key, res.name_key, v.version_number";

/// Implements [`ReportStore`] for a backend; the statements are the same on both.
macro_rules! reports_store {
    ($store:ty) => {
        mod reports_impl {
            use super::*;
            use $crate::StoreError;
            use $crate::reports::{
                FIND_REPORTS, ImageReport, NewReport, ReportFilter, ReportStore, VERSIONS_OF,
                VersionOfDigest, read_report,
            };
            use $crate::rows::Columns as _;

            #[async_trait::async_trait]
            impl ReportStore for $store {
                async fn add_report(&self, r: &NewReport<'_>) -> Result<ImageReport, StoreError> {
                    let id = $crate::sql::new_id();
                    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO image_reports (id, project_id, digest, repository, tag, media_type, \
                         size, platforms, created, integration, git, commit_sha, issues, reported_at, \
                         reported_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    )
                    .bind(&id)
                    .bind(r.project_id)
                    .bind(r.digest)
                    .bind(r.repository)
                    .bind(r.tag)
                    .bind(r.media_type)
                    .bind(r.size)
                    .bind(serde_json::to_string(r.platforms).map_err(corrupt)?)
                    .bind(r.created)
                    .bind(r.integration)
                    .bind(r.git)
                    .bind(r.commit)
                    .bind(serde_json::to_string(r.issues).map_err(corrupt)?)
                    .bind($crate::sql::now())
                    .bind(r.actor)
                    .execute(&mut *tx)
                    .await?;
                    for (key, _) in r.issues {
                        sqlx::query(
                            "INSERT INTO image_report_issues (report_id, issue_key) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(&id)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    let sql = "SELECT r.*, p.name AS project_name FROM image_reports r \
                               JOIN projects p ON p.id = r.project_id WHERE r.id = $1";
                    let row = sqlx::query(sql).bind(&id).fetch_one(self.reader()).await?;
                    read_report(&row)
                }

                async fn find_reports(
                    &self,
                    f: &ReportFilter<'_>,
                ) -> Result<Vec<ImageReport>, StoreError> {
                    let rows = sqlx::query(FIND_REPORTS)
                        .bind(f.repository)
                        .bind(f.tag)
                        .bind(f.issue)
                        .bind(f.commit)
                        .bind(f.digest)
                        .bind(f.subscription.map(str::to_ascii_lowercase))
                        .bind(f.limit)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(read_report).collect()
                }

                async fn versions_of(
                    &self,
                    digest: &str,
                    subscription: Option<&str>,
                ) -> Result<Vec<VersionOfDigest>, StoreError> {
                    let rows = sqlx::query(VERSIONS_OF)
                        .bind(digest)
                        .bind(subscription.map(str::to_ascii_lowercase))
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter()
                        .map(|row| {
                            Ok((
                                berth_core::ProjectName::parse("project", &row.text("project_name")?)
                                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                                row.text("resource")?,
                                row.int("version_number")?,
                                row.text("version_name")?,
                            ))
                        })
                        .collect()
                }
            }
        }
    };
}
pub(crate) use reports_store;
