//! Image resources and their versions: a project's image resource follows one tag of one
//! repository; every digest the tag moves to is a new, immutable version. Whether a sighting is
//! new is decided by the database (the followed tag's current digest, compared and set in one
//! statement), so polling, a CI post and a push event that see the same push record it once,
//! on either backend and across replicas.

use std::collections::BTreeMap;

use async_trait::async_trait;
use berth_core::{Meta, ProjectName};
use time::OffsetDateTime;

use crate::StoreError;

/// Where a version was seen first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// Berth's poller read the tag.
    Poll,
    /// A CI job posted it (`berth ci post-resource-state`).
    Post,
    /// A registry push event arrived.
    Webhook,
}

impl VersionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::Poll => "poll",
            VersionSource::Post => "post",
            VersionSource::Webhook => "webhook",
        }
    }

    fn parse(text: &str) -> Result<VersionSource, StoreError> {
        match text {
            "poll" => Ok(VersionSource::Poll),
            "post" => Ok(VersionSource::Post),
            "webhook" => Ok(VersionSource::Webhook),
            other => Err(StoreError::Corrupt(format!("version source '{other}'"))),
        }
    }
}

/// What defines an image resource (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInput {
    pub name: String,
    /// The integration whose credentials read the repository.
    pub integration: String,
    /// `registry/repository`, Shippable's `versionTemplate.sourceName`.
    pub source_name: String,
    /// The tag followed (`versionTemplate.versionName`).
    pub tag: String,
    /// How often Berth reads the tag itself; 0: never (versions come from CI and events);
    /// `None` keeps what a redefined resource had (0 for a new one).
    pub poll_seconds: Option<i64>,
}

/// An image resource as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageResource {
    pub id: String,
    pub project: ProjectName,
    pub name: String,
    pub integration: String,
    pub source_name: String,
    pub tag: String,
    pub poll_seconds: i64,
    pub next_poll_at: OffsetDateTime,
    /// Failed polls in a row (the backoff's exponent); 0 after a success.
    pub poll_failures: i64,
    pub last_error: Option<String>,
    pub event_secret_set: bool,
    /// The number the newest version got; 0 before the first.
    pub last_version: i64,
    pub meta: Meta,
}

/// One immutable version of an image resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVersion {
    pub version_number: i64,
    pub version_name: String,
    pub digest: String,
    pub source: VersionSource,
    pub pushed_at: OffsetDateTime,
    /// `key=value` pairs a CI post added.
    pub properties: BTreeMap<String, String>,
}

/// A sighting of a tag at a digest.
#[derive(Debug, Clone)]
pub struct Sighting<'a> {
    pub version_name: &'a str,
    pub digest: &'a str,
    pub source: VersionSource,
    pub pushed_at: OffsetDateTime,
    pub properties: &'a BTreeMap<String, String>,
}

/// What a sighting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The tag moved (or was seen for the first time): this is the new version.
    New(ImageVersion),
    /// The tag is where it was: this is the version it already is.
    Known(ImageVersion),
}

impl Recorded {
    pub fn version(&self) -> &ImageVersion {
        match self {
            Recorded::New(v) | Recorded::Known(v) => v,
        }
    }
}

/// Where a resource's new versions are announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub id: String,
    pub resource_id: String,
    pub url: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// Where one announcement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Delivered => "DELIVERED",
            DeliveryState::Failed => "FAILED",
        }
    }

    fn parse(text: &str) -> Result<DeliveryState, StoreError> {
        match text {
            "PENDING" => Ok(DeliveryState::Pending),
            "DELIVERED" => Ok(DeliveryState::Delivered),
            "FAILED" => Ok(DeliveryState::Failed),
            other => Err(StoreError::Corrupt(format!("delivery state '{other}'"))),
        }
    }
}

/// One announcement of one version to one trigger: the delivery log's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub trigger_id: String,
    pub version_number: i64,
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

/// A delivery taken for sending, with what it is sent with.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: secrecy::SecretString,
    pub resource: ImageResource,
    pub version: ImageVersion,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: i64,
    },
    /// Retried at `retry_at`, or given up when that is `None`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: Option<OffsetDateTime>,
    },
}

/// Image resources, their versions and the poll schedule.
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Creates the resource or redefines it (what it follows; its versions stay).
    async fn put_resource(
        &self,
        project_id: &str,
        input: &ResourceInput,
        actor: &str,
    ) -> Result<ImageResource, StoreError>;
    async fn get_resource(&self, project_id: &str, name: &str)
    -> Result<ImageResource, StoreError>;
    async fn list_resources(&self, project_id: &str) -> Result<Vec<ImageResource>, StoreError>;
    async fn delete_resource(&self, project_id: &str, name: &str) -> Result<(), StoreError>;
    /// Records a sighting: a new version when the tag's digest changed, else the known one.
    async fn record_sighting(
        &self,
        resource_id: &str,
        sighting: &Sighting<'_>,
    ) -> Result<Recorded, StoreError>;
    /// Versions newest first, those numbered below `before` when given, at most `limit`.
    async fn list_versions(
        &self,
        resource_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ImageVersion>, StoreError>;
    /// The newest version, or the one pinned by number or by name (its newest).
    async fn find_version(
        &self,
        resource_id: &str,
        number: Option<i64>,
        name: Option<&str>,
    ) -> Result<Option<ImageVersion>, StoreError>;
    /// Takes the resources whose poll is due, moving each one's next poll `lease_seconds` on so
    /// another replica does not take it meanwhile.
    async fn claim_polls(
        &self,
        now: OffsetDateTime,
        lease_seconds: i64,
    ) -> Result<Vec<ImageResource>, StoreError>;
    /// The polled resources (of any project) following `tag` of `source_name` through the
    /// integration: one read of the tag serves them all.
    async fn followers(
        &self,
        integration: &str,
        source_name: &str,
        tag: &str,
    ) -> Result<Vec<ImageResource>, StoreError>;
    /// A poll ended: on success the next is `next_at` and the failures reset; on failure the
    /// count grows and `error` is kept.
    async fn finish_poll(
        &self,
        resource_id: &str,
        error: Option<&str>,
        next_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Replaces the hash of the resource's event secret.
    async fn set_event_secret_hash(&self, resource_id: &str, hash: &str) -> Result<(), StoreError>;
    async fn event_secret_hash(&self, resource_id: &str) -> Result<Option<String>, StoreError>;
    /// Notes a push event; `false` when it was taken before (a replay).
    async fn note_event(&self, resource_id: &str, event_id: &str) -> Result<bool, StoreError>;
    /// Adds a trigger (its secret sealed); versions recorded from now on are announced to it.
    async fn add_trigger(
        &self,
        resource_id: &str,
        url: &str,
        secret: &secrecy::SecretString,
        actor: &str,
    ) -> Result<Trigger, StoreError>;
    async fn list_triggers(&self, resource_id: &str) -> Result<Vec<Trigger>, StoreError>;
    async fn delete_trigger(&self, resource_id: &str, trigger_id: &str) -> Result<(), StoreError>;
    /// A trigger's deliveries, newest version first, at most `limit`.
    async fn deliveries(&self, trigger_id: &str, limit: i64) -> Result<Vec<Delivery>, StoreError>;
    /// Takes the pending deliveries that are due, each leased for `lease_seconds`.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_seconds: i64,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    async fn finish_delivery(
        &self,
        trigger_id: &str,
        version_number: i64,
        attempt: &Attempt,
    ) -> Result<(), StoreError>;
}

/// The field trigger secrets are sealed under (with the trigger's id as owner).
pub(crate) const TRIGGER_SECRET_FIELD: &str = "trigger_secret";

pub(crate) fn read_trigger(row: &impl crate::rows::Columns) -> Result<Trigger, StoreError> {
    Ok(Trigger {
        id: row.text("id")?,
        resource_id: row.text("resource_id")?,
        url: row.text("url")?,
        created_at: row.time("created_at")?,
        created_by: row.text("created_by")?,
    })
}

pub(crate) fn read_delivery(row: &impl crate::rows::Columns) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        trigger_id: row.text("trigger_id")?,
        version_number: row.int("version_number")?,
        state: DeliveryState::parse(&row.text("state")?)?,
        attempts: row.int("attempts")?,
        last_status: row.maybe_int("last_status")?,
        last_error: row.maybe_text("last_error")?,
        next_attempt_at: row.time("next_attempt_at")?,
        delivered_at: row.maybe_time("delivered_at")?,
    })
}

pub(crate) fn read_resource(
    row: &impl crate::rows::Columns,
    project: &str,
) -> Result<ImageResource, StoreError> {
    Ok(ImageResource {
        id: row.text("id")?,
        project: ProjectName::parse("project", project)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name: row.text("name")?,
        integration: row.text("integration")?,
        source_name: row.text("source_name")?,
        tag: row.text("tag")?,
        poll_seconds: row.int("poll_seconds")?,
        next_poll_at: row.time("next_poll_at")?,
        poll_failures: row.int("poll_failures")?,
        last_error: row.maybe_text("last_error")?,
        event_secret_set: row.maybe_text("event_secret_hash")?.is_some(),
        last_version: row.int("last_version")?,
        meta: crate::rows::read_meta(row)?,
    })
}

pub(crate) fn read_version(row: &impl crate::rows::Columns) -> Result<ImageVersion, StoreError> {
    let properties = serde_json::from_str(&row.text("properties")?)
        .map_err(|e| StoreError::Corrupt(format!("version properties: {e}")))?;
    Ok(ImageVersion {
        version_number: row.int("version_number")?,
        version_name: row.text("version_name")?,
        digest: row.text("digest")?,
        source: VersionSource::parse(&row.text("source")?)?,
        pushed_at: row.time("pushed_at")?,
        properties,
    })
}

pub(crate) const RESOURCE_SELECT: &str = "SELECT r.*, p.name AS project_name FROM image_resources r \
     JOIN projects p ON p.id = r.project_id";

pub(crate) const VERSION_COLUMNS: &str =
    "version_number, version_name, digest, source, pushed_at, properties";

/// Implements [`ImageStore`] for a backend; the statements are the same on both.
macro_rules! images_store {
    ($store:ty) => {
        mod images_impl {
            use super::*;
            use $crate::rows::Columns as _;
            use $crate::StoreError;
            use $crate::images::{
                ImageResource, ImageStore, ImageVersion, RESOURCE_SELECT, Recorded,
                ResourceInput, Sighting, VERSION_COLUMNS, read_resource, read_version,
            };
            use time::OffsetDateTime;

            fn resource(row: &impl $crate::rows::Columns) -> Result<ImageResource, StoreError> {
                read_resource(row, &row.text("project_name")?)
            }

            fn absent(name: &str) -> StoreError {
                StoreError::NotFound {
                    kind: "resource",
                    name: name.to_owned(),
                }
            }

            #[async_trait::async_trait]
            impl ImageStore for $store {
                async fn put_resource(
                    &self,
                    project_id: &str,
                    input: &ResourceInput,
                    actor: &str,
                ) -> Result<ImageResource, StoreError> {
                    let now = $crate::sql::now();
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO image_resources (id, project_id, name, name_key, integration, \
                         source_name, tag, poll_seconds, next_poll_at, poll_failures, last_version, \
                         created_at, updated_at, created_by, updated_by, version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, 0), $9, 0, 0, $9, $9, $10, $10, 1) \
                         ON CONFLICT (project_id, name_key) DO UPDATE SET name = excluded.name, \
                         integration = excluded.integration, source_name = excluded.source_name, \
                         tag = excluded.tag, poll_seconds = COALESCE($8, image_resources.poll_seconds), \
                         next_poll_at = excluded.next_poll_at, poll_failures = 0, last_error = NULL, \
                         updated_at = excluded.updated_at, updated_by = excluded.updated_by, \
                         version = image_resources.version + 1",
                    )
                    .bind($crate::sql::new_id())
                    .bind(project_id)
                    .bind(&input.name)
                    .bind(input.name.to_ascii_lowercase())
                    .bind(&input.integration)
                    .bind(&input.source_name)
                    .bind(&input.tag)
                    .bind(input.poll_seconds)
                    .bind(now)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    self.get_resource(project_id, &input.name).await
                }

                async fn get_resource(
                    &self,
                    project_id: &str,
                    name: &str,
                ) -> Result<ImageResource, StoreError> {
                    let sql = format!("{RESOURCE_SELECT} WHERE r.project_id = $1 AND r.name_key = $2");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(project_id)
                        .bind(name.to_ascii_lowercase())
                        .fetch_optional(self.reader())
                        .await?
                        .ok_or_else(|| absent(name))?;
                    resource(&row)
                }

                async fn list_resources(
                    &self,
                    project_id: &str,
                ) -> Result<Vec<ImageResource>, StoreError> {
                    let sql = format!("{RESOURCE_SELECT} WHERE r.project_id = $1 ORDER BY r.name_key");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(project_id)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(resource).collect()
                }

                async fn delete_resource(&self, project_id: &str, name: &str) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let gone = sqlx::query(
                        "DELETE FROM image_resources WHERE project_id = $1 AND name_key = $2",
                    )
                    .bind(project_id)
                    .bind(name.to_ascii_lowercase())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if gone == 0 {
                        return Err(absent(name));
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn record_sighting(
                    &self,
                    resource_id: &str,
                    sighting: &Sighting<'_>,
                ) -> Result<Recorded, StoreError> {
                    let mut tx = self.begin_write().await?;
                    // The compare-and-set: a row comes back only when the tag is new or moved.
                    let moved = sqlx::query(
                        "INSERT INTO image_heads (resource_id, version_name, digest) VALUES ($1, $2, $3) \
                         ON CONFLICT (resource_id, version_name) DO UPDATE SET digest = excluded.digest \
                         WHERE image_heads.digest <> excluded.digest RETURNING digest",
                    )
                    .bind(resource_id)
                    .bind(sighting.version_name)
                    .bind(sighting.digest)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                    if !moved {
                        let sql = format!(
                            "SELECT {VERSION_COLUMNS} FROM image_versions WHERE resource_id = $1 \
                             AND version_name = $2 AND digest = $3 ORDER BY version_number DESC LIMIT 1"
                        );
                        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(resource_id)
                            .bind(sighting.version_name)
                            .bind(sighting.digest)
                            .fetch_one(&mut *tx)
                            .await?;
                        return Ok(Recorded::Known(read_version(&row)?));
                    }
                    let number: i64 = sqlx::query_scalar(
                        "UPDATE image_resources SET last_version = last_version + 1 WHERE id = $1 \
                         RETURNING last_version",
                    )
                    .bind(resource_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let properties = serde_json::to_string(sighting.properties)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(
                        "INSERT INTO image_versions (resource_id, version_number, version_name, digest, \
                         source, pushed_at, properties) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(resource_id)
                    .bind(number)
                    .bind(sighting.version_name)
                    .bind(sighting.digest)
                    .bind(sighting.source.as_str())
                    .bind(sighting.pushed_at)
                    .bind(properties)
                    .execute(&mut *tx)
                    .await?;
                    // Announced in the same transaction: a version is never without its deliveries.
                    sqlx::query(
                        "INSERT INTO trigger_deliveries (trigger_id, version_number, state, attempts, \
                         next_attempt_at) SELECT id, $2, 'PENDING', 0, $3 FROM image_triggers \
                         WHERE resource_id = $1",
                    )
                    .bind(resource_id)
                    .bind(number)
                    .bind($crate::sql::now())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(Recorded::New(ImageVersion {
                        version_number: number,
                        version_name: sighting.version_name.to_owned(),
                        digest: sighting.digest.to_owned(),
                        source: sighting.source,
                        pushed_at: sighting.pushed_at,
                        properties: sighting.properties.clone(),
                    }))
                }

                async fn list_versions(
                    &self,
                    resource_id: &str,
                    before: Option<i64>,
                    limit: i64,
                ) -> Result<Vec<ImageVersion>, StoreError> {
                    let sql = format!(
                        "SELECT {VERSION_COLUMNS} FROM image_versions WHERE resource_id = $1 \
                         AND version_number < $2 ORDER BY version_number DESC LIMIT $3"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(resource_id)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(limit)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(read_version).collect()
                }

                async fn find_version(
                    &self,
                    resource_id: &str,
                    number: Option<i64>,
                    name: Option<&str>,
                ) -> Result<Option<ImageVersion>, StoreError> {
                    let sql = format!(
                        "SELECT {VERSION_COLUMNS} FROM image_versions WHERE resource_id = $1 \
                         AND ($2 IS NULL OR version_number = $2) AND ($3 IS NULL OR version_name = $3) \
                         ORDER BY version_number DESC LIMIT 1"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(resource_id)
                        .bind(number)
                        .bind(name)
                        .fetch_optional(self.reader())
                        .await?;
                    row.as_ref().map(read_version).transpose()
                }

                async fn claim_polls(
                    &self,
                    now: OffsetDateTime,
                    lease_seconds: i64,
                ) -> Result<Vec<ImageResource>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    // One statement takes them and returns them whole, project name included.
                    let rows = sqlx::query(
                        "UPDATE image_resources SET next_poll_at = $2 \
                         WHERE poll_seconds > 0 AND next_poll_at <= $1 RETURNING *, \
                         (SELECT p.name FROM projects p WHERE p.id = image_resources.project_id) AS project_name",
                    )
                    .bind(now)
                    .bind(now + time::Duration::seconds(lease_seconds))
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    rows.iter().map(resource).collect()
                }

                async fn followers(
                    &self,
                    integration: &str,
                    source_name: &str,
                    tag: &str,
                ) -> Result<Vec<ImageResource>, StoreError> {
                    let sql = format!(
                        "{RESOURCE_SELECT} WHERE r.poll_seconds > 0 AND LOWER(r.integration) = $1 \
                         AND r.source_name = $2 AND r.tag = $3"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(integration.to_ascii_lowercase())
                        .bind(source_name)
                        .bind(tag)
                        .fetch_all(self.reader())
                        .await?;
                    rows.iter().map(resource).collect()
                }

                async fn finish_poll(
                    &self,
                    resource_id: &str,
                    error: Option<&str>,
                    next_at: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "UPDATE image_resources SET next_poll_at = $2, last_error = $3, \
                         poll_failures = CASE WHEN $3 IS NULL THEN 0 ELSE poll_failures + 1 END \
                         WHERE id = $1",
                    )
                    .bind(resource_id)
                    .bind(next_at)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn set_event_secret_hash(
                    &self,
                    resource_id: &str,
                    hash: &str,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("UPDATE image_resources SET event_secret_hash = $2 WHERE id = $1")
                        .bind(resource_id)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn event_secret_hash(
                    &self,
                    resource_id: &str,
                ) -> Result<Option<String>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "SELECT event_secret_hash FROM image_resources WHERE id = $1",
                    )
                    .bind(resource_id)
                    .fetch_optional(self.reader())
                    .await?
                    .flatten())
                }

                async fn note_event(
                    &self,
                    resource_id: &str,
                    event_id: &str,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let fresh = sqlx::query(
                        "INSERT INTO image_events (resource_id, event_id, received_at) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(resource_id)
                    .bind(event_id)
                    .bind($crate::sql::now())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    tx.commit().await?;
                    Ok(fresh)
                }

                async fn add_trigger(
                    &self,
                    resource_id: &str,
                    url: &str,
                    secret: &secrecy::SecretString,
                    actor: &str,
                ) -> Result<$crate::images::Trigger, StoreError> {
                    let id = $crate::sql::new_id();
                    let sealed = self.keyring.seal(&id, $crate::images::TRIGGER_SECRET_FIELD, secret)?;
                    let mut tx = self.begin_write().await?;
                    let added = sqlx::query(
                        "INSERT INTO image_triggers (id, resource_id, url, key_id, nonce, ciphertext, \
                         created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&id)
                    .bind(resource_id)
                    .bind(url)
                    .bind(sealed.key_id)
                    .bind(sealed.nonce)
                    .bind(sealed.ciphertext)
                    .bind($crate::sql::now())
                    .bind(actor)
                    .execute(&mut *tx)
                    .await;
                    match added {
                        Err(e) if StoreError::is_unique_violation(&e) => {
                            return Err(StoreError::Duplicate { kind: "trigger", name: url.to_owned() });
                        }
                        other => other?,
                    };
                    tx.commit().await?;
                    let row = sqlx::query("SELECT * FROM image_triggers WHERE id = $1")
                        .bind(&id)
                        .fetch_one(self.reader())
                        .await?;
                    $crate::images::read_trigger(&row)
                }

                async fn list_triggers(
                    &self,
                    resource_id: &str,
                ) -> Result<Vec<$crate::images::Trigger>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT * FROM image_triggers WHERE resource_id = $1 ORDER BY created_at, id",
                    )
                    .bind(resource_id)
                    .fetch_all(self.reader())
                    .await?;
                    rows.iter().map($crate::images::read_trigger).collect()
                }

                async fn delete_trigger(
                    &self,
                    resource_id: &str,
                    trigger_id: &str,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let gone = sqlx::query("DELETE FROM image_triggers WHERE resource_id = $1 AND id = $2")
                        .bind(resource_id)
                        .bind(trigger_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if gone == 0 {
                        return Err(StoreError::NotFound { kind: "trigger", name: trigger_id.to_owned() });
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn deliveries(
                    &self,
                    trigger_id: &str,
                    limit: i64,
                ) -> Result<Vec<$crate::images::Delivery>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT * FROM trigger_deliveries WHERE trigger_id = $1 \
                         ORDER BY version_number DESC LIMIT $2",
                    )
                    .bind(trigger_id)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                    rows.iter().map($crate::images::read_delivery).collect()
                }

                async fn claim_deliveries(
                    &self,
                    now: OffsetDateTime,
                    lease_seconds: i64,
                ) -> Result<Vec<$crate::images::DueDelivery>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let rows = sqlx::query(
                        "UPDATE trigger_deliveries SET next_attempt_at = $2 \
                         WHERE state = 'PENDING' AND next_attempt_at <= $1 RETURNING *",
                    )
                    .bind(now)
                    .bind(now + time::Duration::seconds(lease_seconds))
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    let mut due = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let delivery = $crate::images::read_delivery(row)?;
                        let t = sqlx::query(
                            "SELECT resource_id, url, key_id, nonce, ciphertext FROM image_triggers WHERE id = $1",
                        )
                        .bind(&delivery.trigger_id)
                        .fetch_one(self.reader())
                        .await?;
                        let sealed = $crate::seal::Sealed {
                            key_id: t.text("key_id")?,
                            nonce: t.try_get("nonce")?,
                            ciphertext: t.try_get("ciphertext")?,
                        };
                        let secret = self.keyring.open(&delivery.trigger_id, $crate::images::TRIGGER_SECRET_FIELD, &sealed)?;
                        let resource_id = t.text("resource_id")?;
                        let sql = format!("{RESOURCE_SELECT} WHERE r.id = $1");
                        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(&resource_id)
                            .fetch_one(self.reader())
                            .await?;
                        let version = self
                            .find_version(&resource_id, Some(delivery.version_number), None)
                            .await?
                            .ok_or_else(|| StoreError::Corrupt("a delivery of a missing version".into()))?;
                        due.push($crate::images::DueDelivery {
                            url: t.text("url")?,
                            secret,
                            resource: resource(&r)?,
                            version,
                            delivery,
                        });
                    }
                    Ok(due)
                }

                async fn finish_delivery(
                    &self,
                    trigger_id: &str,
                    version_number: i64,
                    attempt: &$crate::images::Attempt,
                ) -> Result<(), StoreError> {
                    use $crate::images::Attempt;
                    let now = $crate::sql::now();
                    let (state, status, error, next, delivered) = match attempt {
                        Attempt::Delivered { status } => ("DELIVERED", Some(*status), None, now, Some(now)),
                        Attempt::Failed { status, error, retry_at: Some(at) } => ("PENDING", *status, Some(error.as_str()), *at, None),
                        Attempt::Failed { status, error, retry_at: None } => ("FAILED", *status, Some(error.as_str()), now, None),
                    };
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "UPDATE trigger_deliveries SET state = $3, attempts = attempts + 1, last_status = $4, \
                         last_error = $5, next_attempt_at = $6, delivered_at = $7 \
                         WHERE trigger_id = $1 AND version_number = $2",
                    )
                    .bind(trigger_id)
                    .bind(version_number)
                    .bind(state)
                    .bind(status)
                    .bind(error)
                    .bind(next)
                    .bind(delivered)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }
        }
    };
}
pub(crate) use images_store;
