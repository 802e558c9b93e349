//! Image resources of a project and their versions: `/api/v1/projects/{project}/resources/…`
//! and the registry push events at `/api/v1/resources/{project}/{name}/events`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::MetaView;

/// `PUT /api/v1/projects/{project}/resources/{name}`: what an image resource follows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageResourceInput {
    /// The integration whose credentials read the repository (the project's subscription must
    /// be allowed to use it).
    pub integration: String,
    /// `registry/repository`, as Shippable's `versionTemplate.sourceName`.
    pub source_name: String,
    /// The tag followed [default: `latest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_name: Option<String>,
    /// Seconds between Berth's own reads of the tag (60 to 86400); 0 or absent: never, versions
    /// then come from CI posts and push events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_seconds: Option<i64>,
}

/// An image resource.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageResourceView {
    pub project: String,
    pub name: String,
    pub integration: String,
    pub source_name: String,
    pub version_name: String,
    pub poll_seconds: i64,
    /// When Berth reads the tag next (RFC 3339), when it polls.
    pub next_poll_at: Option<String>,
    /// Failed polls in a row, and the last one's reason.
    pub poll_failures: i64,
    pub last_error: Option<String>,
    /// Whether push events are accepted (a secret was issued).
    pub event_secret_set: bool,
    /// The newest version's number; 0 before the first.
    pub latest_version: i64,
    #[serde(flatten)]
    pub meta: MetaView,
}

/// `GET /api/v1/projects/{project}/resources`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageResourceList {
    pub items: Vec<ImageResourceView>,
}

/// One immutable version of an image resource.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageVersionView {
    pub version_number: i64,
    /// The tag.
    pub version_name: String,
    /// The manifest digest the tag pointed at.
    pub digest: String,
    /// `poll`, `post` or `webhook`: where Berth saw it first.
    pub source: String,
    /// RFC 3339: when it was pushed (the event's time) or first seen.
    pub pushed_at: String,
    /// `key=value` pairs a CI post added.
    pub properties: BTreeMap<String, String>,
}

/// `GET /api/v1/projects/{project}/resources/{name}/versions`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageVersionPage {
    pub items: Vec<ImageVersionView>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/projects/{project}/resources/{name}/versions` (`berth ci
/// post-resource-state`): Berth reads the digest the tag has now, through the integration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostedState {
    /// The tag to record [default: the one the resource follows].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_name: Option<String>,
    /// More `key=value` facts to keep with a new version (at most 32, values ≤ 1,024 bytes).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// What a post or a push event recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedVersion {
    /// False when the tag was already at that digest: the version is the known one.
    pub new: bool,
    pub version: ImageVersionView,
}

/// `POST /api/v1/projects/{project}/resources/{name}/event-secret`: shown once; send it as the
/// `X-Berth-Event-Secret` header of push events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventSecret {
    pub secret: String,
    /// Where to send the events.
    pub events_path: String,
}

/// The answer to a push event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventReceipt {
    /// `recorded`, or `ignored` with the reason (another tag or repository, a failed push).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<RecordedVersion>,
}

/// `POST /api/v1/projects/{project}/resources/{name}/triggers` (admin): where new versions are
/// announced, signed with `secret` (a random one is made and shown once when absent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    /// An http(s) URL without credentials in it.
    pub url: String,
    /// The HMAC-SHA256 key (at least 16 characters) [default: a random one, shown once].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One announcement of a version to a trigger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub version_number: i64,
    /// `PENDING` (being tried), `DELIVERED`, or `FAILED` (given up).
    pub state: String,
    pub attempts: i64,
    /// The receiver's last HTTP status, when it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// RFC 3339: the next try, while `PENDING`.
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
}

/// A trigger and its newest deliveries (at most 20).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriggerView {
    pub id: String,
    pub url: String,
    pub created_at: String,
    pub created_by: String,
    pub deliveries: Vec<DeliveryView>,
}

/// A trigger just added; `secret` only when Berth made it (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriggerCreated {
    pub trigger: TriggerView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET /api/v1/projects/{project}/resources/{name}/triggers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TriggerList {
    pub items: Vec<TriggerView>,
}
