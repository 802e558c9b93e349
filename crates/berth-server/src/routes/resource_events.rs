//! `POST /api/v1/resources/{project}/{name}/events`: a registry push event, in the shape of
//! ECR's EventBridge "ECR Image Action" event, authenticated by the resource's own secret
//! (`X-Berth-Event-Secret`). A forged event (no or a wrong secret), a replayed one (an `id`
//! already taken) or a stale one (`time` more than 15 minutes off) is refused; a push of another
//! tag or repository, or a failed one, is acknowledged and ignored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use berth_api::EventReceipt;
use berth_core::ImageRef;
use berth_store::VersionSource;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Refusals;
use super::resources::secret_matches;
use crate::AppState;
use crate::error::ApiError;
use crate::images::record;

/// EventBridge events are at most 256 KiB; an ECR image action is well under 4 KiB.
const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_SKEW_MINUTES: i64 = 15;
pub(crate) const SECRET_HEADER: &str = "x-berth-event-secret";

#[derive(Deserialize)]
struct Event {
    id: String,
    time: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Detail,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "action-type")]
    action_type: String,
    result: String,
    #[serde(rename = "repository-name")]
    repository_name: String,
    #[serde(rename = "image-digest")]
    image_digest: String,
    #[serde(rename = "image-tag", default)]
    image_tag: Option<String>,
}

fn refused() -> ApiError {
    ApiError::unauthorized(format!(
        "the event's {SECRET_HEADER} header is missing or is not this resource's event secret"
    ))
}

/// Records the push the event reports, when it is a successful push of the followed tag.
#[utoipa::path(post, path = "/api/v1/resources/{project}/{name}/events", tag = "resources",
    params(("project" = String, Path, description = "`org/repo`; its `/` is not encoded"), ("name" = String, Path),
        ("X-Berth-Event-Secret" = String, Header, description = "The resource's event secret")),
    request_body(content = serde_json::Value, description = "An EventBridge \"ECR Image Action\" event"),
    security(()),
    responses((status = 200, body = EventReceipt), (status = 202, body = EventReceipt), Refusals))]
pub async fn event(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<EventReceipt>), ApiError> {
    let (project, name) = path
        .strip_suffix("/events")
        .and_then(|rest| rest.rsplit_once('/'))
        .ok_or_else(|| {
            ApiError::not_found("events go to /api/v1/resources/{org}/{repo}/{resource}/events")
        })?;
    if body.len() > MAX_EVENT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body: an event is at most {MAX_EVENT_BYTES} bytes"),
        )
        .on_field("body"));
    }
    // Unknown resources and wrong secrets answer alike: the caller holds no token.
    let project =
        crate::policy::found(state.store.get_project(project).await)?.ok_or_else(refused)?;
    let resource = crate::policy::found(state.store.get_resource(&project.id, name).await)?
        .ok_or_else(refused)?;
    let stored = state.store.event_secret_hash(&resource.id).await?;
    let presented = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok());
    match (presented, stored) {
        (Some(p), Some(h)) if secret_matches(p, &h) => {}
        _ => return Err(refused()),
    }
    let event: Event = crate::json::parse(&body)?;
    let pushed_at = checked_time(&event)?;
    let ignore = |reason: String| {
        Ok((
            StatusCode::ACCEPTED,
            Json(EventReceipt {
                outcome: "ignored".into(),
                reason: Some(reason),
                version: None,
            }),
        ))
    };
    if event.detail_type != "ECR Image Action" {
        return Err(ApiError::invalid(
            "detail-type",
            format!("'{}' is not an ECR Image Action event", event.detail_type),
        ));
    }
    let d = &event.detail;
    berth_core::validate_digest(&d.image_digest)
        .map_err(|rule| ApiError::invalid("detail.image-digest", rule))?;
    // Noted before anything is recorded: a replay of an old push must never move the tag back.
    if !state.store.note_event(&resource.id, &event.id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "event_replayed",
            format!("id: event {} was already taken", event.id),
        )
        .on_field("id"));
    }
    let repository = ImageRef::parse(&resource.source_name)
        .map(|r| r.repository)
        .unwrap_or_default();
    if d.action_type != "PUSH" || d.result != "SUCCESS" {
        return ignore(format!("a {} that ended {}", d.action_type, d.result));
    }
    if d.repository_name != repository || d.image_tag.as_deref() != Some(resource.tag.as_str()) {
        return ignore(format!(
            "{}:{} is not {repository}:{}, which the resource follows",
            d.repository_name,
            d.image_tag.as_deref().unwrap_or("(no tag)"),
            resource.tag
        ));
    }
    let recorded = record(
        &state,
        &resource,
        &resource.tag,
        &d.image_digest,
        VersionSource::Webhook,
        pushed_at,
        &Default::default(),
    )
    .await?;
    Ok((
        StatusCode::OK,
        Json(EventReceipt {
            outcome: "recorded".into(),
            reason: None,
            version: Some(super::resources::recorded_view(&recorded)),
        }),
    ))
}

/// The event's `time`, refused when it is not RFC 3339 or more than 15 minutes off the clock
/// (a replay of an old event, or a delivery so late it is no longer news).
fn checked_time(event: &Event) -> Result<OffsetDateTime, ApiError> {
    let t = OffsetDateTime::parse(&event.time, &Rfc3339)
        .map_err(|_| ApiError::invalid("time", format!("'{}' is not RFC 3339", event.time)))?;
    let skew = (OffsetDateTime::now_utc() - t).whole_minutes();
    if skew.abs() > MAX_SKEW_MINUTES {
        return Err(ApiError::invalid(
            "time",
            format!(
                "the event is from {}, more than {MAX_SKEW_MINUTES} minutes from now: refused as a replay",
                event.time
            ),
        ));
    }
    Ok(t)
}
