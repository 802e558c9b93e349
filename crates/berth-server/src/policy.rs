//! The one authorization policy: what a caller may see. An admin token sees everything; a
//! subscription token sees its own subscription, the integrations assigned to it and its
//! projects. A record it may not see answers exactly as a record that does not exist, so a
//! token cannot probe which names exist elsewhere. Handlers declare one check each:
//! `require_admin`, a `visible_*` lookup, or `confine_list` for a list's filter.

use berth_core::Integration;
use berth_store::{Project, StoreError};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;

/// Names are compared as the store compares them: ASCII case-insensitively.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Principal {
    pub fn may_see_subscription(&self, subscription: &str) -> bool {
        self.subscription()
            .is_none_or(|own| same_name(own.as_str(), subscription))
    }

    pub fn may_see_integration(&self, integration: &Integration) -> bool {
        self.subscription()
            .is_none_or(|own| integration.is_assigned_to(own))
    }

    pub fn may_see_project(&self, project: &Project) -> bool {
        self.may_see_subscription(project.subscription.as_str())
    }
}

/// The one answer for "absent" and "not yours".
pub fn absent(kind: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("{kind} '{name}' does not exist"))
}

/// A list's subscription filter for this caller: a subscription token lists its own only, and
/// asking for another is refused the same way whether that subscription exists or not.
pub fn confine_list(caller: &Principal, asked: Option<String>) -> Result<Option<String>, ApiError> {
    match (caller.subscription(), asked) {
        (None, asked) => Ok(asked),
        (Some(own), Some(asked)) if !same_name(own.as_str(), &asked) => {
            Err(ApiError::forbidden(format!(
                "this token belongs to subscription '{own}' and cannot list subscription '{asked}'"
            )))
        }
        (Some(own), _) => Ok(Some(own.to_string())),
    }
}

/// Only "not found" means absent; any other store failure is that failure.
pub(crate) fn found<T>(result: Result<T, StoreError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The integration if it exists and the caller may see it.
pub fn seen_integration(caller: &Principal, integration: Integration) -> Option<Integration> {
    caller
        .may_see_integration(&integration)
        .then_some(integration)
}

/// The integration named `name`, or `None` when it is absent or not the caller's to see.
pub async fn lookup_integration(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Option<Integration>, ApiError> {
    Ok(found(state.store.get_integration(name).await)?.and_then(|i| seen_integration(caller, i)))
}

/// The integration named `name`; 404 when absent or not the caller's to see.
pub async fn visible_integration(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Integration, ApiError> {
    lookup_integration(state, caller, name)
        .await?
        .ok_or_else(|| absent("integration", name))
}

/// The project named `name`, or `None` when it is absent or not the caller's to see.
pub async fn lookup_project(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Option<Project>, ApiError> {
    Ok(found(state.store.get_project(name).await)?.filter(|p| caller.may_see_project(p)))
}

/// The project named `name`; 404 when absent or not the caller's to see.
pub async fn visible_project(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Project, ApiError> {
    lookup_project(state, caller, name)
        .await?
        .ok_or_else(|| absent("project", name))
}
